package atomicfile

import (
	"errors"
	"io/fs"
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

// TestCreate: Create makes a new file with its content and mode, never
// replaces an existing one, and leaves nothing behind when it fails; the
// file appears at its name only once its content is complete and synced.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "k.key")
	var steps []string
	err := Create(name, []byte("one"), 0o600, func(step string) error {
		steps = append(steps, step)
		if step == "link" {
			// The complete content is in the temporary, nothing at name.
			if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("before the link, %s exists: %v", name, err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("before the link, %d files", len(entries))
			}
			if got, _ := os.ReadFile(filepath.Join(dir, entries[0].Name())); string(got) != "one" {
				t.Errorf("before the link, the temporary holds %q", got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"write", "sync", "link"}; !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != "one" {
		t.Fatalf("content %q, %v", got, err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	onlyName := func(when string) {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != "k.key" {
			t.Fatalf("%s: the directory holds %v, want only k.key", when, entries)
		}
	}
	onlyName("after Create")

	// An existing file is never replaced.
	if err := Create(name, []byte("two"), 0o600, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(name); string(got) != "one" {
		t.Fatalf("Create replaced the file: %q", got)
	}
	onlyName("after refusing to replace")

	// A failure at any step creates nothing.
	boom := errors.New("boom")
	other := filepath.Join(dir, "other.key")
	for _, at := range []string{"write", "sync", "link"} {
		err := Create(other, []byte("three"), 0o600, func(step string) error {
			if step == at {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failure at %s: %v", at, err)
		}
		onlyName("failure at " + at)
	}
	if err := Create(filepath.Join(dir, "missing", "f"), nil, 0o600, nil); err == nil {
		t.Fatal("create in a missing directory succeeded")
	}
}
