// Package serial opens serial ports (USB serial adapters, USB CDC devices,
// UARTs) on Linux, Windows and macOS for the SDA transport, for technician
// tools and device agents that talk over a serial line: [Dial] returns a
// transport.Conn over the port with the SDA serial framing of the original
// tools; [Open] returns the raw port, set to raw mode, 8N1, no flow
// control, at a baud rate.
//
//	conn, err := serial.Dial(ctx, "/dev/ttyUSB0", &serial.Config{BaudRate: 115200}, nil)
//
// It is an adapter package of its own so that importers of package
// transport do not depend on go.bug.st/serial.
//
// # Platforms
//
// On Linux, Open sets the terminal up with termios itself and returns an
// *os.File opened for non-blocking I/O on the runtime's poller. Its read
// and write deadlines let a Conn interrupt a call whose context ends and
// stay usable when no byte of the frame had moved.
//
// On Windows, macOS, FreeBSD and OpenBSD, Open uses go.bug.st/serial (pure
// Go, no cgo). Its ports have no deadlines, so an ended context closes the
// Conn (see [Dial]), and on macOS and the BSDs a pending write is not
// interrupted by Close: it ends when the driver has taken the bytes. Paths
// are COM3 (or \\.\COM10) on Windows and /dev/cu.usbserial-XXXX on macOS.
// This package's tests run on Linux only: they run the go.bug.st/serial
// path there against pseudo-terminals, which covers its Unix code (shared
// with macOS and the BSDs, save ioctl numbers), but the Windows code has
// only been compiled, not run, by them.
//
// Elsewhere Open returns an error matching errors.ErrUnsupported; open the
// port yourself and pass it to transport.NewStreamConn.
//
// # Errors
//
// Test errors with errors.Is: transport.ErrInvalidOptions (a baud rate
// that is not standard, or stream options the Conn refuses; nothing was
// opened), and, in the *os.PathError values that name the port,
// [ErrNotSerialPort] (the path is not a serial port; it may still be used
// as a byte stream), [ErrPortBusy], fs.ErrNotExist and fs.ErrPermission.
//
// # Security considerations
//
// A serial line authenticates nothing: anyone with a cable on it can send
// and read frames. The SHA-256 of the SDA serial frame detects line noise,
// not tampering; messages are protected end to end by the COSE signatures
// of the layers above. Bound what a peer can cost with the stream Conn's
// MaxMessageSize (transport.Options) and, on a device, a frame timeout
// (transport.FrameReceiver).
//
// On Unix, go.bug.st/serial waits for input with select(2), whose
// descriptor sets end at 1024: a port whose descriptor is 1024 or more
// cannot be read (it fails with an error rather than the library's
// panic). A process with that many files open should open its port early.
// Open on Linux does not have this limit.
package serial
