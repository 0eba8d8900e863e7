package serial

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openPort opens a port on Linux with termios, keeping the deadlines of
// the runtime's poller (go.bug.st/serial blocks in select(2) instead).
func openPort(path string, rate int) (io.ReadWriteCloser, error) {
	return openTermios(path, rate)
}

// linuxSpeeds maps the rates of baudRates to their termios codes.
var linuxSpeeds = map[int]uint32{
	50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134, 150: unix.B150,
	200: unix.B200, 300: unix.B300, 600: unix.B600, 1200: unix.B1200,
	1800: unix.B1800, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800,
	500000: unix.B500000, 576000: unix.B576000, 921600: unix.B921600,
	1000000: unix.B1000000, 1152000: unix.B1152000, 1500000: unix.B1500000,
	2000000: unix.B2000000, 2500000: unix.B2500000, 3000000: unix.B3000000,
	3500000: unix.B3500000, 4000000: unix.B4000000,
}

// openTermios opens the terminal at path for non-blocking I/O and sets it
// to raw mode at rate. The result is an *os.File.
func openTermios(path string, rate int) (io.ReadWriteCloser, error) {
	speed, ok := linuxSpeeds[rate]
	if !ok { // Config.rate checked it; this is a second line of defence
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("no termios code for %d baud", rate)}
	}
	// O_NOCTTY: the port does not become the process's controlling
	// terminal; O_NONBLOCK: open does not wait for a modem's carrier. The
	// os package registers the file with the runtime's poller, so read
	// and write deadlines work on it.
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := setRaw(f, speed); err != nil {
		f.Close()
		if errors.Is(err, unix.ENOTTY) {
			err = fmt.Errorf("%w (%w)", ErrNotSerialPort, err)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return f, nil
}

// setRaw puts the terminal f in raw mode at speed, as cfmakeraw(3) does,
// and discards pending input.
func setRaw(f *os.File, speed uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	// Control, not f.Fd(), which would put the file in blocking mode.
	if err := rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			opErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR |
			unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
		t.Ispeed, t.Ospeed = speed, speed
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		opErr = unix.IoctlSetTermios(int(fd), unix.TCSETSF, t)
	}); err != nil {
		return err
	}
	return opErr
}
