package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

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
	step := func(s string) error {
		if hook == nil {
			return nil
		}
		return hook(s)
	}
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = step("write"); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = step("sync"); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = step("rename"); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
