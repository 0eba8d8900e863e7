package serial

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/securedeviceaccess/sda/internal/ptytest"
	"github.com/securedeviceaccess/sda/transport"
)

// checkGoroutines fails the test if it leaves goroutines behind. Call it
// first, so that its cleanup runs after all others.
func checkGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Goroutines that are ending may take a moment to exit (this bounds
		// the wait; it asserts nothing about time).
		n := runtime.NumGoroutine()
		for i := 0; i < 500 && n > before; i++ {
			time.Sleep(10 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// roundTrip sends msg from a and checks that b receives it intact.
func roundTrip(t testing.TB, a, b transport.Conn, msg []byte) {
	t.Helper()
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- a.Send(ctx, msg) }()
	got, err := b.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("received %d bytes, sent %d, or different bytes", len(got), len(msg))
	}
}

// allBytes returns every byte value once, in order.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// termios returns the settings of the terminal at path, through a file of
// its own.
func termios(t testing.TB, path string) unix.Termios {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tio unix.Termios
	if err := ptytest.Ioctl(f, unix.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return tio
}

// checkRaw fails the test unless the terminal at path is in raw mode, 8N1
// without flow control, at the line speed whose termios code is speed.
func checkRaw(t testing.TB, path string, speed uint32) {
	t.Helper()
	tio := termios(t, path)
	switch {
	case tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG|unix.IEXTEN) != 0,
		tio.Oflag&unix.OPOST != 0,
		tio.Iflag&(unix.IXON|unix.IXOFF|unix.ICRNL|unix.ISTRIP) != 0,
		tio.Cflag&(unix.CSIZE|unix.PARENB|unix.CSTOPB|unix.CRTSCTS) != unix.CS8:
		t.Fatalf("not raw 8N1: iflag %#x lflag %#x oflag %#x cflag %#x", tio.Iflag, tio.Lflag, tio.Oflag, tio.Cflag)
	case tio.Cflag&unix.CBAUD != speed:
		t.Fatalf("speed code %#x, want %#x", tio.Cflag&unix.CBAUD, speed)
	}
}

// checkCooked fails the test unless the terminal at path still has its
// default line editing: nothing set it to raw mode.
func checkCooked(t testing.TB, path string) {
	t.Helper()
	if tio := termios(t, path); tio.Lflag&unix.ICANON == 0 {
		t.Fatalf("the terminal was set to raw mode (lflag %#x)", tio.Lflag)
	}
}

// checkBytesCross checks that every byte value crosses the line between
// port and master unchanged in both directions: a terminal in cooked mode
// would turn CR into NL, echo, and act on ^C, ^D, ^S.
func checkBytesCross(t testing.TB, port io.ReadWriter, master *os.File) {
	t.Helper()
	all := allBytes()
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
