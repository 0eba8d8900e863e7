//go:build linux || windows || darwin || freebsd || openbsd

package serial

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync/atomic"

	bugst "go.bug.st/serial"
)

// This file adapts go.bug.st/serial, which opens ports on Windows, macOS
// and the BSDs. It is built on Linux too, where only the tests use it (Open
// uses termios there): go.bug.st/serial's Unix code is the same on Linux
// as on macOS and the BSDs, so the tests run it against pseudo-terminals.
// Its Windows code cannot be run by these tests.

// probeRate is the rate a port is first opened at: every serial port
// driver takes it, so that a failure to open at it means that the path is
// not a serial port rather than that the driver refused a rate.
const probeRate = 9600

// modeAt returns the settings go.bug.st/serial applies for a line of rate
// bits per second: 8N1, with DTR and RTS left as the driver sets them on
// opening (asserted). Its Open turns flow control off (RTS/CTS, DSR/DTR,
// XON/XOFF) and sets raw mode on Unix.
func modeAt(rate int) *bugst.Mode {
	return &bugst.Mode{BaudRate: rate, DataBits: 8, Parity: bugst.NoParity, StopBits: bugst.OneStopBit}
}

// openPortable opens the port at path through go.bug.st/serial, in raw
// mode, 8N1 without flow control, at rate, and discards pending input.
func openPortable(path string, rate int) (io.ReadWriteCloser, error) {
	p, err := bugst.Open(path, modeAt(probeRate))
	if err != nil {
		return nil, openError(path, err)
	}
	if rate != probeRate {
		if err := p.SetMode(modeAt(rate)); err != nil {
			p.Close()
			return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("the driver refused %d baud: %w", rate, err)}
		}
	}
	if err := p.ResetInputBuffer(); err != nil {
		p.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("discarding pending input: %w", err)}
	}
	return &port{path: path, p: p}, nil
}

// port is a go.bug.st/serial port with the errors of an *os.File: a call
// on a closed port, or one that Close interrupted, fails with fs.ErrClosed;
// a line that hung up reads io.EOF; other errors are *os.PathError values.
// It has no deadlines (go.bug.st/serial's read timeout makes a Read return
// nothing, which a buffered reader takes for a stuck stream), so a stream
// Conn over it closes it to interrupt a call.
//
// Close unblocks a pending Read. A pending Write is not interrupted on
// Unix, where go.bug.st/serial writes in blocking mode: it ends when the
// driver has taken the bytes, which without flow control takes the time
// the bytes need on the line (a USB CDC device that stops reading can hold
// it longer). On Windows, closing the handle cancels a pending Write.
type port struct {
	path   string
	p      bugst.Port
	closed atomic.Bool
}

var _ io.ReadWriteCloser = (*port)(nil)

// Read implements io.Reader.
func (p *port) Read(b []byte) (n int, err error) {
	if p.closed.Load() {
		return 0, p.error("read", fs.ErrClosed)
	}
	defer func() {
		// go.bug.st/serial's Unix Read waits with select(2) on a fixed set
		// of 1024 descriptors, and indexes it out of range for a port
		// whose descriptor is 1024 or more, before waiting or reading:
		// report that as an error. Its read lock is released by its own
		// deferred call; other panics go on.
		if r := recover(); r != nil {
			re, ok := r.(runtime.Error)
			if !ok {
				panic(r)
			}
			n, err = 0, p.error("read", fmt.Errorf("%w: %v", errDescriptor, re))
		}
	}()
	n, err = p.p.Read(b)
	if err != nil {
		err = p.ioError("read", err)
	}
	return n, err
}

// Write implements io.Writer.
func (p *port) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, p.error("write", fs.ErrClosed)
	}
	n, err := p.p.Write(b)
	if err != nil {
		err = p.ioError("write", err)
	}
	return n, err
}

// Close closes the port. A second Close fails with fs.ErrClosed.
func (p *port) Close() error {
	if p.closed.Swap(true) {
		return p.error("close", fs.ErrClosed)
	}
	if err := p.p.Close(); err != nil {
		return p.error("close", err)
	}
	return nil
}

// ioError describes err, returned by go.bug.st/serial's Read or Write.
func (p *port) ioError(op string, err error) error {
	if p.closed.Load() {
		return p.error(op, fs.ErrClosed)
	}
	var pe *bugst.PortError
	if errors.As(err, &pe) && pe.Code() == bugst.PortClosed {
		// Not closed here: the line hung up (a USB adapter unplugged,
		// for one), as a read of nothing tells on Unix.
		return io.EOF
	}
	return p.error(op, err)
}

func (p *port) error(op string, err error) error {
	return &os.PathError{Op: op, Path: p.path, Err: err}
}

// openError describes err, a failure of go.bug.st/serial to open path,
// with the sentinel of its kind when it has one.
func openError(path string, err error) error {
	var pe *bugst.PortError
	if errors.As(err, &pe) {
		return portError(path, pe.Code(), err)
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// portError describes a go.bug.st/serial failure of the given code to open
// path; cause describes it in the library's words.
func portError(path string, code bugst.PortErrorCode, cause error) error {
	var kind error
	switch code {
	case bugst.PortNotFound:
		kind = fs.ErrNotExist
	case bugst.PermissionDenied:
		kind = fs.ErrPermission
	case bugst.PortBusy:
		kind = ErrPortBusy
	case bugst.InvalidSerialPort:
		kind = ErrNotSerialPort
	default:
		return &os.PathError{Op: "open", Path: path, Err: cause}
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%v)", kind, cause)}
}
