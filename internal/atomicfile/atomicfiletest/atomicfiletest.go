package atomicfiletest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
)

// errCrash is the panic that stops a write dead.
var errCrash = errors.New("atomicfiletest: crash")

// Crash runs atomicfile.Write of name and stops it dead before the rename,
// as a power loss or kill -9 would: Write's error path, which removes the
// temporary file, never runs. It returns the temporary file left behind.
func Crash(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Dir(name)
	before, _ := filepath.Glob(filepath.Join(dir, ".*"))
	func() {
		defer func() {
			if r := recover(); r != errCrash {
				t.Fatalf("atomicfiletest: write of %s ended with %v, not the crash", name, r)
			}
		}()
		atomicfile.Write(name, []byte("half a value"), 0o600, func(step string) error {
			if step == "rename" {
				panic(errCrash)
			}
			return nil
		})
	}()
	after, _ := filepath.Glob(filepath.Join(dir, ".*"))
	for _, a := range after {
		if !slices.Contains(before, a) {
			return a
		}
	}
	t.Fatalf("atomicfiletest: the crashed write of %s left no temporary file", name)
	return ""
}

// Unrelated creates in dir the named files, which are not temporaries of
// the store (other names, near misses of the temporaries' names).
func Unrelated(t testing.TB, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckRemoved fails t unless the temporaries are gone and the unrelated
// files of dir are still there.
func CheckRemoved(t testing.TB, dir string, temps []string, unrelated ...string) {
	t.Helper()
	for _, name := range temps {
		if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temporary %s is still there (%v)", filepath.Base(name), err)
		}
	}
	for _, u := range unrelated {
		if _, err := os.Lstat(filepath.Join(dir, u)); err != nil {
			t.Errorf("unrelated file %s: %v", u, err)
		}
	}
}
