package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/securedeviceaccess/sda/internal/ptytest"
)

// TestOpenSerialRawMode opens the slave of a pseudo-terminal, which starts
// in cooked mode (line editing, echo, CR/NL translation, signals, XON/XOFF),
// and checks that every byte value crosses it unchanged in both
// directions.
func TestOpenSerialRawMode(t *testing.T) {
	checkGoroutines(t)
	master, path := ptytest.Open(t)
	port, err := OpenSerial(path, &SerialConfig{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()

	var tio unix.Termios
	if err := ptytest.Ioctl(port, unix.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Oflag&unix.OPOST != 0 || tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Fatalf("not raw: lflag %#x oflag %#x cflag %#x", tio.Lflag, tio.Oflag, tio.Cflag)
	}
	if tio.Cflag&unix.CBAUD != unix.B9600 {
		t.Fatalf("speed code %#x, want B9600", tio.Cflag&unix.CBAUD)
	}

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// Device to port: ^C, ^D, ^S, CR, DEL and the rest arrive as sent.
	if _, err := master.Write(all); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(all))
	if _, err := io.ReadFull(port, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("port read %x, want every byte value in order", got)
	}
	// Port to device: no NL to CR NL, no echo of what was received.
	if _, err := port.Write(all); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(master, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("device read %x, want every byte value in order", got)
	}
}

// TestDialSerial runs SDA-framed messages across a pseudo-terminal and
// checks that a cancelled Receive leaves the Conn usable, which needs the
// port's read deadlines.
func TestDialSerial(t *testing.T) {
	checkGoroutines(t)
	master, path := ptytest.Open(t)
	c, err := DialSerial(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev, err := NewStreamConn(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	// dev owns master; the cleanup's second Close of master is harmless.
	defer dev.Close()

	msg := testMessage(3000, 5)
	roundTrip(t, c, dev, msg)
	roundTrip(t, dev, c, msg)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing on the line: %v, want the deadline", err)
	}
	roundTrip(t, dev, c, []byte("still in step"))
}

func TestOpenSerialErrors(t *testing.T) {
	if _, err := OpenSerial("/dev/null", &SerialConfig{BaudRate: 12345}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("unsupported rate: %v", err)
	}
	_, err := OpenSerial("/dev/null", nil)
	var pe *os.PathError
	if !errors.Is(err, syscall.ENOTTY) || !errors.As(err, &pe) {
		t.Errorf("not a terminal: %v, want ENOTTY in an *os.PathError", err)
	}
	if _, err := OpenSerial(filepath.Join(t.TempDir(), "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := DialSerial("/dev/null", nil, nil); !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("DialSerial of a non-terminal: %v", err)
	}
}
