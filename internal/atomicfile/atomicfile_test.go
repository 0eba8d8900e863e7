package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.json")
	if err := Write(name, []byte("one"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if err := Write(name, []byte("two"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil || string(got) != "two" {
		t.Fatalf("content %q, %v", got, err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	boom := errors.New("boom")
	for _, at := range []string{"write", "sync", "rename"} {
		err := Write(name, []byte("three"), 0o600, func(step string) error {
			if step == at {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failure at %s: %v", at, err)
		}
		if got, _ := os.ReadFile(name); string(got) != "two" {
			t.Fatalf("failure at %s changed the file to %q", at, got)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("failure at %s left %d files", at, len(entries))
		}
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o600, nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// crashedWrite runs Write and stops the process's part of it dead at step
// at, as a power loss would: the hook panics, so Write's error path (which
// removes the temporary file) never runs.
func crashedWrite(t *testing.T, name, at string) {
	t.Helper()
	defer func() {
		if r := recover(); r != "crash" {
			t.Fatalf("recovered %v", r)
		}
	}()
	Write(name, []byte("new"), 0o600, func(step string) error {
		if step == at {
			panic("crash")
		}
		return nil
	})
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.json")
	if err := Write(name, []byte("old"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"write", "sync", "rename"} {
		crashedWrite(t, name, at)
	}
	crashedWrite(t, filepath.Join(dir, "g"), "rename")
	crashedWrite(t, filepath.Join(dir, "other.json"), "rename")
	temps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(temps) != 5 {
		t.Fatalf("the crashes left %d temporary files, want 5: %v", len(temps), temps)
	}
	unrelated := []string{
		"notes", "f.json.1.tmp", ".f.json.tmp", ".f.json..tmp", ".f.json.12x.tmp", ".f.json.-1.tmp",
		".f.json.1.tmp.bak", "..1.tmp", ".other.json.7.tmp.d",
	}
	for _, u := range unrelated {
		if err := os.WriteFile(filepath.Join(dir, u), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory or a symbolic link with a temporary's name is not one.
	if err := os.Mkdir(filepath.Join(dir, ".f.json.77.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes", filepath.Join(dir, ".f.json.78.tmp")); err != nil {
		t.Fatal(err)
	}
	unrelated = append(unrelated, ".f.json.77.tmp", ".f.json.78.tmp", "f.json")

	others, _ := filepath.Glob(filepath.Join(dir, ".other.json.*.tmp"))
	want := append(unrelated, others...)

	if err := RemoveTemps(dir, func(base string) bool { return base == "f.json" || base == "g" }); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for i := range want {
		want[i] = filepath.Base(want[i])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("left\n%q\nwant\n%q", got, want)
	}
	if got, _ := os.ReadFile(name); string(got) != "old" {
		t.Fatalf("content %q", got)
	}
	// A directory that does not exist holds no temporaries.
	if err := RemoveTemps(filepath.Join(dir, "missing"), func(string) bool { return true }); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
}
