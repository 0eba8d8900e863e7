package atomicfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
	"github.com/securedeviceaccess/sda/internal/atomicfile/atomicfiletest"
)

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.json")
	if err := atomicfile.Write(name, []byte("old"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	temps := []string{
		atomicfiletest.Crash(t, name), atomicfiletest.Crash(t, name),
		atomicfiletest.Crash(t, filepath.Join(dir, "g")),
	}
	other := atomicfiletest.Crash(t, filepath.Join(dir, "other.json"))
	unrelated := []string{
		"notes", "f.json.1.tmp", ".f.json.tmp", ".f.json..tmp", ".f.json.12x.tmp", ".f.json.-1.tmp",
		".f.json.1.tmp.bak", "..1.tmp", ".other.json.7.tmp.d",
	}
	atomicfiletest.Unrelated(t, dir, unrelated...)
	// A directory or a symbolic link with a temporary's name is not one.
	if err := os.Mkdir(filepath.Join(dir, ".f.json.77.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes", filepath.Join(dir, ".f.json.78.tmp")); err != nil {
		t.Fatal(err)
	}
	unrelated = append(unrelated, ".f.json.77.tmp", ".f.json.78.tmp", "f.json", filepath.Base(other))

	if err := atomicfile.RemoveTemps(dir, func(base string) bool { return base == "f.json" || base == "g" }); err != nil {
		t.Fatal(err)
	}
	atomicfiletest.CheckRemoved(t, dir, temps, unrelated...)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(left)
	slices.Sort(unrelated)
	if !slices.Equal(left, unrelated) {
		t.Fatalf("left\n%q\nwant\n%q", left, unrelated)
	}
	if got, _ := os.ReadFile(name); string(got) != "old" {
		t.Fatalf("content %q", got)
	}
	// A directory that does not exist holds no temporaries.
	if err := atomicfile.RemoveTemps(filepath.Join(dir, "missing"), func(string) bool { return true }); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
}
