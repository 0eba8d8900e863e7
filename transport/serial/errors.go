package serial

import "errors"

// Errors returned by this package, besides those of the file system
// (fs.ErrNotExist, fs.ErrPermission) and transport.ErrInvalidOptions for an
// unsupported baud rate. Test for them with errors.Is; opening errors are
// *os.PathError values naming the port.
var (
	// ErrNotSerialPort reports a path that names something other than a
	// serial port: a regular file, a pipe, a device that is not a terminal
	// (Unix) or not a communications device (Windows). A caller may still
	// use such a path as a plain byte stream with transport.NewStreamConn.
	// On Linux the error matches syscall.ENOTTY too.
	ErrNotSerialPort = errors.New("serial: not a serial port")

	// ErrPortBusy reports a port that another program holds. Windows opens
	// serial ports exclusively (and answers "access denied" for a port in
	// use, which this error stands for), and go.bug.st/serial asks for
	// exclusive use on macOS and the BSDs (TIOCEXCL, which the superuser
	// bypasses). On Linux, Open neither asks for nor reports exclusive use.
	ErrPortBusy = errors.New("serial: port in use by another program")
)

// errDescriptor reports a read that go.bug.st/serial cannot wait for on
// Unix: it waits with select(2), whose descriptor sets stop at 1024.
var errDescriptor = errors.New("serial: the port's descriptor is too high to wait for with select(2) (1024 or more); open the port before other files, or use fewer")
