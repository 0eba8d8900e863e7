package testenv

import (
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
