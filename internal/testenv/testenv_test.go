package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// recorder records how a test ended instead of ending it.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skip(...any)           { r.skipped = true; runtime.Goexit() }

func TestMissing(t *testing.T) {
	for _, ci := range []string{"true", "", "false"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Missing(r, "no %s", "server")
			}()
			<-done
			if want := ci == "true"; r.failed != want || r.skipped == want {
				t.Fatalf("CI=%q: failed %v, skipped %v", ci, r.failed, r.skipped)
			}
		})
	}
}

func TestChromium(t *testing.T) {
	run := func(f func(testing.TB)) *recorder {
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			f(r)
		}()
		<-done
		return r
	}
	t.Run("given", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "chromium")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv(ChromiumEnv, bin)
		var got string
		if r := run(func(tb testing.TB) { got = Chromium(tb) }); r.failed || r.skipped || got != bin {
			t.Fatalf("Chromium() = %q (failed %v, skipped %v), want %q", got, r.failed, r.skipped, bin)
		}
	})
	for _, ci := range []string{"true", ""} {
		t.Run("missing, CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			t.Setenv(ChromiumEnv, filepath.Join(t.TempDir(), "none"))
			r := run(func(tb testing.TB) { Chromium(tb) })
			if want := ci == "true"; r.failed != want || r.skipped == want {
				t.Fatalf("failed %v, skipped %v", r.failed, r.skipped)
			}
		})
	}
}
