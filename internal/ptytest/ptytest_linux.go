package ptytest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/securedeviceaccess/sda/internal/testenv"
)

// Open returns the master of a new pseudo-terminal and the path of its
// slave. The slave is left in its default (cooked) mode; a slave file is
// kept open until the test ends, so that the terminal lives as long as the
// test even when the code under test closes its own file. A machine without
// pseudo-terminals skips the test (fails it in CI: testenv.Missing).
func Open(t testing.TB) (master *os.File, slavePath string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if err := Ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		testenv.Missing(t, "unlockpt: %v", err)
	}
	var n uint32
	if err := Ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		testenv.Missing(t, "ptsname: %v", err)
	}
	slavePath = fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testenv.Missing(t, "open %s: %v", slavePath, err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slavePath
}

// Ioctl runs an ioctl on f without switching it to blocking mode (as
// f.Fd() would), so that deadlines keep working on it.
func Ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
