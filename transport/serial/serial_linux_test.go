package serial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/securedeviceaccess/sda/internal/ptytest"
	"github.com/securedeviceaccess/sda/transport"
)

// implementations are the two ways of opening a port, both of which run on
// Linux against pseudo-terminals: Open's own (termios, deadlines through
// the runtime's poller) and the one Open uses on Windows, macOS and the
// BSDs (go.bug.st/serial). On Linux go.bug.st/serial runs the same Unix
// code as on macOS and the BSDs (its serial_unix.go, with other ioctl
// numbers), so these tests cover that path as far as this machine can;
// its Windows code cannot run here.
var implementations = []struct {
	name    string
	open    opener
	waiting string // in the stack of a goroutine whose Read waits for the line
}{
	{"termios", openTermios, "internal/poll.runtime_pollWait"},
	{"go.bug.st", openPortable, "go.bug.st/serial/unixutils.Select"},
}

// TestOpenRawMode opens the slave of a pseudo-terminal, which starts in
// cooked mode (line editing, echo, CR/NL translation, signals, XON/XOFF),
// and checks that the port is set to raw mode, 8N1 without flow control,
// at the rate asked for, and that every byte value crosses it unchanged in
// both directions.
func TestOpenRawMode(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			checkGoroutines(t)
			master, path := ptytest.Open(t)
			port, err := impl.open(path, 9600)
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			checkRaw(t, path, unix.B9600)
			checkBytesCross(t, port, master)
		})
	}
}

// TestOpenFile checks that Open returns the *os.File on Linux, whose
// deadlines the stream Conn uses.
func TestOpenFile(t *testing.T) {
	_, path := ptytest.Open(t)
	port, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if _, ok := port.(*os.File); !ok {
		t.Fatalf("Open returned a %T, want an *os.File", port)
	}
	checkRaw(t, path, unix.B115200)
}

// TestOpenDiscardsPendingInput checks that bytes waiting on the line
// before the port was opened are not read as the start of the first frame.
func TestOpenDiscardsPendingInput(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			checkGoroutines(t)
			master, path := ptytest.Open(t)
			// Raw mode first, so that the waiting bytes are not held back
			// as an unfinished line.
			port, err := impl.open(path, DefaultBaudRate)
			if err != nil {
				t.Fatal(err)
			}
			port.Close()
			if _, err := master.Write([]byte("stale")); err != nil {
				t.Fatal(err)
			}
			c, dev := dialPair(t, master, path, impl.open)
			roundTrip(t, dev, c, []byte("fresh"))
		})
	}
}

// TestOpenClose checks the port's Close: it unblocks a pending Read, which
// reports fs.ErrClosed, as do a later Write and a second Close.
func TestOpenClose(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			checkGoroutines(t)
			_, path := ptytest.Open(t)
			port, err := impl.open(path, DefaultBaudRate)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := port.Read(make([]byte, 1))
				errc <- err
			}()
			waitFor(t, impl.waiting)
			if err := port.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Read interrupted by Close: %v, want fs.ErrClosed", err)
			}
			if _, err := port.Write([]byte{1}); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Write after Close: %v, want fs.ErrClosed", err)
			}
			if err := port.Close(); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("second Close: %v, want fs.ErrClosed", err)
			}
		})
	}
}

// TestOpenHangup checks that the far end going away (the master of the
// pseudo-terminal closed, as when a USB adapter is unplugged) ends a Read
// with an error rather than an empty read.
func TestOpenHangup(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			checkGoroutines(t)
			master, path := ptytest.Open(t)
			port, err := impl.open(path, DefaultBaudRate)
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			master.Close()
			if n, err := port.Read(make([]byte, 1)); err == nil {
				t.Fatalf("Read after hangup: %d bytes, no error", n)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			_, err := impl.open(os.DevNull, DefaultBaudRate)
			var pe *os.PathError
			if !errors.Is(err, ErrNotSerialPort) || !errors.As(err, &pe) || pe.Path != os.DevNull {
				t.Errorf("not a terminal: %v, want ErrNotSerialPort in an *os.PathError", err)
			}
			if _, err := impl.open(filepath.Join(t.TempDir(), "missing"), DefaultBaudRate); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing path: %v, want fs.ErrNotExist", err)
			}
		})
	}
	if _, err := Open(os.DevNull, &Config{BaudRate: 12345}); !errors.Is(err, transport.ErrInvalidOptions) {
		t.Errorf("unsupported rate: %v", err)
	}
	if _, err := Open(os.DevNull, nil); !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("not a terminal: %v, want ENOTTY too on Linux", err)
	}
	if _, err := Dial(context.Background(), os.DevNull, nil, nil); !errors.Is(err, ErrNotSerialPort) {
		t.Errorf("Dial of a non-terminal: %v", err)
	}
}

// TestLinuxSpeeds checks that every rate Config accepts has its termios
// code, so that no valid Config fails on Linux.
func TestLinuxSpeeds(t *testing.T) {
	for _, rate := range baudRates {
		if _, ok := linuxSpeeds[rate]; !ok {
			t.Errorf("rate %d has no termios code", rate)
		}
	}
	if len(linuxSpeeds) != len(baudRates) {
		t.Errorf("%d termios codes for %d rates", len(linuxSpeeds), len(baudRates))
	}
}

// TestDial runs SDA-framed messages across a pseudo-terminal and checks
// that a cancelled Receive leaves the Conn usable, which needs the port's
// read deadlines.
func TestDial(t *testing.T) {
	checkGoroutines(t)
	master, path := ptytest.Open(t)
	c, err := Dial(context.Background(), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkRaw(t, path, unix.B115200)
	dev, err := transport.NewStreamConn(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	// dev owns master; the cleanup's second Close of master is harmless.
	defer dev.Close()

	msg := testMessage(3000)
	roundTrip(t, c, dev, msg)
	roundTrip(t, dev, c, msg)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive with nothing on the line: %v, want the deadline", err)
	}
	roundTrip(t, dev, c, []byte("still in step"))
}

// TestDialPortable runs SDA-framed messages across a port opened through
// go.bug.st/serial and checks that a cancelled Receive returns the
// context's error and closes the Conn, the only way to unblock a read on a
// port without deadlines.
func TestDialPortable(t *testing.T) {
	checkGoroutines(t)
	master, path := ptytest.Open(t)
	reading := make(chan struct{}, 1)
	c, dev := dialPair(t, master, path, func(path string, rate int) (io.ReadWriteCloser, error) {
		port, err := openPortable(path, rate)
		if err != nil {
			return nil, err
		}
		return &readSignal{port, reading}, nil
	})
	checkRaw(t, path, unix.B115200)
	msg := testMessage(3000)
	roundTrip(t, c, dev, msg)
	roundTrip(t, dev, c, msg)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	<-reading // drain the signal of the round trips' reads
	go func() {
		_, err := c.Receive(ctx)
		errc <- err
	}()
	<-reading // the Receive reads the port: cancelling it now closes the port
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Receive: %v, want context.Canceled", err)
	}
	if _, err := c.Receive(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Receive after a cancelled one: %v, want ErrClosed", err)
	}
}

// TestDialFrameTimeout checks a server's bound on a frame begun and not
// finished: ReceiveFrame fails with ErrFrameTimeout, through the read
// deadline on Linux and by closing the port on the others.
func TestDialFrameTimeout(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			checkGoroutines(t)
			master, path := ptytest.Open(t)
			c, _ := dialPair(t, master, path, impl.open)
			fr, ok := c.(transport.FrameReceiver)
			if !ok {
				t.Fatalf("the Conn (%T) is not a FrameReceiver", c)
			}
			if _, err := master.Write([]byte("mbed")); err != nil { // a frame's first bytes, and no more
				t.Fatal(err)
			}
			started := false
			_, err := fr.ReceiveFrame(context.Background(), 50*time.Millisecond, func() { started = true })
			if !errors.Is(err, transport.ErrFrameTimeout) || !started {
				t.Fatalf("ReceiveFrame of a frame cut short: %v (started %v), want ErrFrameTimeout", err, started)
			}
		})
	}
}

// TestDialRefusesBeforeOpening checks that options the stream Conn refuses,
// a rate Config refuses and a context that has ended fail before the port
// is touched: the terminal keeps its cooked mode.
func TestDialRefusesBeforeOpening(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		cfg  *Config
		opts *transport.Options
		want error
	}{
		{"options", context.Background(), nil, &transport.Options{MaxMessageSize: -1}, transport.ErrInvalidOptions},
		{"rate", context.Background(), &Config{BaudRate: 12345}, nil, transport.ErrInvalidOptions},
		{"context", done, nil, nil, context.Canceled},
	}
	for _, impl := range implementations {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) {
				_, path := ptytest.Open(t)
				c, err := dial(tt.ctx, path, tt.cfg, tt.opts, impl.open)
				if !errors.Is(err, tt.want) {
					if c != nil {
						c.Close()
					}
					t.Fatalf("Dial: %v, want %v", err, tt.want)
				}
				checkCooked(t, path)
			})
		}
	}
}

// TestPortableHighDescriptor checks a limit of go.bug.st/serial's Unix
// reads, which wait with select(2) on a fixed set of 1024 descriptors: a
// port whose descriptor is 1024 or more would make its Read panic. The port
// reports errDescriptor instead; writes are unaffected.
func TestPortableHighDescriptor(t *testing.T) {
	checkGoroutines(t)
	master, path := ptytest.Open(t)
	// Take the descriptors up to 1100, so that the port's is above.
	var fill []*os.File
	defer func() {
		for _, f := range fill {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Skipf("cannot open enough descriptors: %v", err)
		}
		fill = append(fill, f)
		if f.Fd() >= 1100 {
			break
		}
	}
	port, err := openPortable(path, DefaultBaudRate)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if _, err := master.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := port.Read(make([]byte, 1)); !errors.Is(err, errDescriptor) {
		t.Fatalf("Read on a descriptor above 1024: %v, want errDescriptor", err)
	}
	if _, err := port.Write([]byte{1}); err != nil {
		t.Fatalf("Write on a descriptor above 1024: %v", err)
	}
}

// dialPair dials path through open and returns the Conn and a stream Conn
// over master standing for the device; both close with the test.
func dialPair(t testing.TB, master *os.File, path string, open opener) (c, dev transport.Conn) {
	t.Helper()
	c, err := dial(context.Background(), path, nil, nil, open)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dev, err = transport.NewStreamConn(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	// dev owns master; ptytest's second Close of master is harmless.
	t.Cleanup(func() { dev.Close() })
	return c, dev
}

// waitFor waits until a goroutine's stack shows function, for a bounded
// time (it asserts nothing about time).
func waitFor(t testing.TB, function string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 3000 {
		if bytes.Contains(buf[:runtime.Stack(buf, true)], []byte(function)) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no goroutine in %s after 30 s", function)
}

// readSignal is a port that signals on reading when a Read begins, if
// nobody has taken the previous signal.
type readSignal struct {
	io.ReadWriteCloser
	reading chan struct{}
}

func (r *readSignal) Read(p []byte) (int, error) {
	select {
	case r.reading <- struct{}{}:
	default:
	}
	return r.ReadWriteCloser.Read(p)
}

// testMessage returns n bytes of a recognisable pattern.
func testMessage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}
