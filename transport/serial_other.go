//go:build !linux

package transport

import (
	"errors"
	"fmt"
	"os"
)

// OpenSerial opens a serial port in raw mode. It is implemented on Linux
// only; here it returns an error matching errors.ErrUnsupported. Open the
// port yourself, set it to raw mode, and pass it to [NewStreamConn].
func OpenSerial(path string, cfg *SerialConfig) (*os.File, error) {
	return nil, fmt.Errorf("transport: opening serial port %s: %w", path, errors.ErrUnsupported)
}
