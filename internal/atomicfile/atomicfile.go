package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Write's temporary file for a file named base is "." + base + "." +
// random decimal digits + ".tmp" (the "*" of os.CreateTemp's pattern).
const (
	tempPrefix = "."
	tempSuffix = ".tmp"
)

func tempPattern(base string) string { return tempPrefix + base + ".*" + tempSuffix }

// tempBase returns the base name of the file whose temporary name is, and
// whether name is such a temporary at all.
func tempBase(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return "", false
	}
	if rest, ok = strings.CutSuffix(rest, tempSuffix); !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return rest[:i], true
}

// Write replaces the file name with data: it writes a temporary file in the
// same directory with mode perm, syncs it, renames it over name and syncs
// the directory. hook, if not nil, is called before each step ("write",
// "sync", "rename") and its error aborts the write; tests use it to simulate
// failures. On error the temporary file is removed and name is untouched.
//
// Once the rename succeeded the new content is in place and Write reports
// success even if the directory cannot be synced (some file systems do not
// support it); the rename is then durable at the file system's next commit.
func Write(name string, data []byte, perm fs.FileMode, hook func(step string) error) (err error) {
	step := hookSteps(hook)
	tmp, err := writeTemp(name, data, perm, step)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = step("rename"); err != nil {
		return err
	}
	if err = os.Rename(tmp, name); err != nil {
		return err
	}
	syncDir(filepath.Dir(name))
	return nil
}

// Create writes data to a new file name with mode perm, and never
// replaces an existing file: it writes a temporary file in the same
// directory, syncs it, hard-links it to name (which fails, matching
// fs.ErrExist, if name exists), removes the temporary and syncs the
// directory. hook is as for [Write], with the steps "write", "sync" and
// "link". On error nothing is left behind: no file at name (an existing one
// is untouched) and no temporary file.
//
// name appears only once its content is complete and synced, so a crash
// leaves either no file at name or the whole one (and possibly the
// temporary, which [RemoveTemps] removes), never a part of it. As with
// Write, success is reported once the link succeeded even if the directory
// cannot be synced. The directory's file system must support hard links
// (the Unix ones and NTFS do; FAT does not, and Create then fails, creating
// nothing).
func Create(name string, data []byte, perm fs.FileMode, hook func(step string) error) (err error) {
	step := hookSteps(hook)
	tmp, err := writeTemp(name, data, perm, step)
	if err != nil {
		return err
	}
	if err = step("link"); err == nil {
		err = os.Link(tmp, name)
	}
	if rerr := os.Remove(tmp); rerr != nil && err == nil {
		// A second copy of the data would stay under another name: undo,
		// so that the failure changes nothing.
		os.Remove(name)
		err = rerr
	}
	if err != nil {
		return err
	}
	// One directory sync makes both the link and the removal durable.
	syncDir(filepath.Dir(name))
	return nil
}

// hookSteps returns the step function of Write and Create: hook, or
// nothing when hook is nil.
func hookSteps(hook func(step string) error) func(string) error {
	return func(s string) error {
		if hook == nil {
			return nil
		}
		return hook(s)
	}
}

// writeTemp writes data to a new temporary file for name, in its
// directory, with mode perm, syncs and closes it, and returns its path; the
// steps "write" and "sync" come before writing and syncing. On error
// nothing is left behind.
func writeTemp(name string, data []byte, perm fs.FileMode, step func(string) error) (path string, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), tempPattern(filepath.Base(name)))
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = step("write"); err != nil {
		return "", err
	}
	if err = tmp.Chmod(perm); err != nil {
		return "", err
	}
	if _, err = tmp.Write(data); err != nil {
		return "", err
	}
	if err = step("sync"); err != nil {
		return "", err
	}
	if err = tmp.Sync(); err != nil {
		return "", err
	}
	if err = tmp.Close(); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir syncs the directory dir, if the file system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// RemoveTemps removes from dir the temporary files that [Write] leaves when
// the process dies during a write (a crash, kill -9, a power loss): regular
// files named as Write names the temporary of a file whose base name owns
// accepts. Nothing else is touched: not other files, directories or
// symbolic links, not the temporaries of files owns rejects. A directory
// that does not exist holds none. A store calls it when it opens, so that
// temporaries do not pile up with every crash.
//
// It assumes that no other process is writing a file of dir at the same
// time: such a write would lose its temporary file and fail (changing
// nothing). The stores document that one process owns their files.
func RemoveTemps(dir string, owns func(base string) bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if base, ok := tempBase(e.Name()); !ok || !owns(base) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
