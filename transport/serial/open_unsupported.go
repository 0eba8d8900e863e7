//go:build !(linux || windows || darwin || freebsd || openbsd)

package serial

import (
	"errors"
	"io"
	"os"
)

// openPort fails: go.bug.st/serial does not support this platform. Open
// the port yourself, set it to raw mode, and pass it to
// transport.NewStreamConn.
func openPort(path string, rate int) (io.ReadWriteCloser, error) {
	return nil, &os.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}
