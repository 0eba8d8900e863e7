//go:build !linux && (windows || darwin || freebsd || openbsd)

package serial

import "io"

// openPort opens a port through go.bug.st/serial. The tests of this
// package run on Linux, where they run openPortable against
// pseudo-terminals: that covers go.bug.st/serial's Unix code (macOS, the
// BSDs), not its Windows code, which has not been run by them.
func openPort(path string, rate int) (io.ReadWriteCloser, error) {
	return openPortable(path, rate)
}
