package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
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
