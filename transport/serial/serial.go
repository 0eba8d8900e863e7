package serial

import (
	"context"
	"fmt"
	"io"

	"github.com/securedeviceaccess/sda/transport"
)

// opener opens the serial port at path in raw mode, 8N1 without flow
// control, at rate bits per second, and discards input that was waiting.
type opener func(path string, rate int) (io.ReadWriteCloser, error)

// Open opens the serial port at path and sets it to raw mode: 8 data bits,
// no parity, one stop bit, no flow control, no echo, no line editing, no
// translation of bytes, no signals, and reads that return as soon as one
// byte has arrived. Input that was waiting before the call is discarded. A
// nil cfg means the zero Config.
//
// The path is a device such as /dev/ttyUSB0 or /dev/ttyACM0 on Linux,
// /dev/cu.usbserial-1410 on macOS (the cu. device: the tty. one waits for
// the modem's carrier), COM3 on Windows.
//
// The result is an io.ReadWriteCloser on every platform, so that code using
// it builds everywhere. On Linux it is an *os.File opened for non-blocking
// I/O on the runtime's poller: it has read and write deadlines, and
// [transport.NewStreamConn] uses them to interrupt a call whose context
// ends without closing the Conn (see [Dial]). Elsewhere it is a port of
// go.bug.st/serial, which has no deadlines: a stream Conn over it closes
// itself to interrupt a call. Use it with transport.NewStreamConn, or call
// [Dial].
//
// A rate that is not standard fails before the port is opened, with an
// error matching transport.ErrInvalidOptions. Other errors are
// *os.PathError values naming the port: a path that is not a serial port
// matches [ErrNotSerialPort] (and syscall.ENOTTY on Linux), a missing one
// fs.ErrNotExist, one that another program holds [ErrPortBusy] (Windows,
// macOS, the BSDs).
func Open(path string, cfg *Config) (io.ReadWriteCloser, error) {
	rate, err := cfg.rate()
	if err != nil {
		return nil, err
	}
	return openPort(path, rate)
}

// Dial opens the serial port at path as [Open] does and returns a stream
// Conn over it with the framing opts asks for (a nil opts means the SDA
// serial framing and a 64 KiB message limit; see transport.NewStreamConn).
// The Conn owns the port and closes it on Close.
//
// Options and rates that cannot be used, and a ctx that has already ended,
// fail before the port is touched. Opening a port does not wait for the
// line, so ctx is checked before and after opening rather than
// interrupting it (a ctx that ends meanwhile closes the port again); it is
// not kept.
//
// A call on the Conn whose context ends returns an error wrapping
// ctx.Err(). On Linux the port's deadlines interrupt it and the Conn stays
// usable when no byte of the frame had moved. Elsewhere the port has no
// deadlines, so an ended context closes the Conn, the only way to unblock
// a read there; redial after a cancelled Receive. The frame timeout of
// [transport.FrameReceiver] works on every platform (and closes the Conn on
// every platform, the stream being out of step).
func Dial(ctx context.Context, path string, cfg *Config, opts *transport.Options) (transport.Conn, error) {
	return dial(ctx, path, cfg, opts, openPort)
}

// dial is Dial with the port opened by open.
func dial(ctx context.Context, path string, cfg *Config, opts *transport.Options, open opener) (transport.Conn, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	rate, err := cfg.rate()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serial: dial %s: %w", path, err)
	}
	port, err := open(path, rate)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		port.Close()
		return nil, fmt.Errorf("serial: dial %s: %w", path, err)
	}
	c, err := transport.NewStreamConn(port, opts)
	if err != nil {
		port.Close()
		return nil, err
	}
	return c, nil
}
