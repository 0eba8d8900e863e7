package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/testenv"
)

// frameReceiver asserts that c has the FrameReceiver capability.
func frameReceiver(t testing.TB, c Conn) FrameReceiver {
	t.Helper()
	fr, ok := c.(FrameReceiver)
	if !ok {
		t.Fatalf("%T does not implement FrameReceiver", c)
	}
	return fr
}

// receiveFrameAsync runs ReceiveFrame in the background, counting the calls
// of its started function.
func receiveFrameAsync(ctx context.Context, fr FrameReceiver, timeout time.Duration, starts *atomic.Int32) <-chan result {
	ch := make(chan result, 1)
	go func() {
		m, err := fr.ReceiveFrame(ctx, timeout, func() { starts.Add(1) })
		ch <- result{m, err}
	}()
	return ch
}

// A peer that starts a frame and stalls is cut off by the frame timeout; a
// stream Conn, out of step, closes itself.
func TestStreamFrameTimeout(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) io.ReadWriteCloser
	}{
		{"deadlines", func(c net.Conn) io.ReadWriteCloser { return c }},
		{"no deadlines", func(c net.Conn) io.ReadWriteCloser { return noDeadlines{c} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := net.Pipe()
			defer y.Close()
			c, err := NewStreamConn(tc.wrap(x), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var starts atomic.Int32
			// The outer deadline only turns a hang into a failure.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ch := receiveFrameAsync(ctx, frameReceiver(t, c), 20*time.Millisecond, &starts)
			if _, err := y.Write([]byte("mbed")); err != nil {
				t.Fatal(err)
			}
			r := <-ch
			if !errors.Is(r.err, ErrFrameTimeout) {
				t.Fatalf("ReceiveFrame of a stalled frame: %v, want ErrFrameTimeout", r.err)
			}
			if n := starts.Load(); n != 1 {
				t.Fatalf("started called %d times, want 1", n)
			}
			if _, err := c.Receive(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("Receive after a frame timeout: %v, want ErrClosed", err)
			}
		})
	}
}

// The frame timeout counts from the first byte of a frame: waiting for it
// is bounded only by the context, and a frame that arrives whole after a
// long wait is received.
func TestStreamFrameTimeoutStartsAtFirstByte(t *testing.T) {
	checkGoroutines(t)
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			a, b := streamPair(t, &Options{Framing: f})
			var starts atomic.Int32
			ctx := context.Background()
			ch := receiveFrameAsync(ctx, frameReceiver(t, b), 5*time.Millisecond, &starts)
			time.Sleep(50 * time.Millisecond) // ten frame timeouts without a byte
			if n := starts.Load(); n != 0 {
				t.Fatalf("started called %d times before any byte", n)
			}
			msg := testMessage(300, 3)
			if err := a.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if r := <-ch; r.err != nil || !bytes.Equal(r.msg, msg) {
				t.Fatalf("ReceiveFrame: %x, %v", r.msg, r.err)
			}
			if n := starts.Load(); n != 1 {
				t.Fatalf("started called %d times, want 1", n)
			}
			// The deadline of the frame does not outlive it.
			time.Sleep(20 * time.Millisecond)
			roundTrip(t, a, b, []byte("next"))
		})
	}
}

// A cancelled ReceiveFrame that had not started a frame leaves the Conn
// usable, as Receive does; a clean end of stream is io.EOF.
func TestStreamReceiveFrameCancelAndEOF(t *testing.T) {
	checkGoroutines(t)
	a, b := streamPair(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var starts atomic.Int32
	ch := receiveFrameAsync(ctx, frameReceiver(t, b), time.Minute, &starts)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled ReceiveFrame: %v", r.err)
	}
	roundTrip(t, a, b, []byte("still usable"))
	a.Close()
	if _, err := frameReceiver(t, b).ReceiveFrame(context.Background(), time.Minute, nil); !errors.Is(err, io.EOF) {
		t.Fatalf("ReceiveFrame at the end of the stream: %v, want io.EOF", err)
	}
	if starts.Load() != 0 {
		t.Fatal("started called without a byte")
	}
}

// On a fragmentation Conn the frame timeout tightens the reassembly
// timeout, and the Conn stays usable.
func TestFragmentReceiveFrameTimeout(t *testing.T) {
	checkGoroutines(t)
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, &FragmentOptions{ReassemblyTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkts := fragments(t, FragmentV2, 20, testMessage(40, 1), []byte("next"))
	sc.push(pkts[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var starts atomic.Int32
	r := <-receiveFrameAsync(ctx, frameReceiver(t, c), 20*time.Millisecond, &starts)
	if !errors.Is(r.err, ErrReassemblyTimeout) {
		t.Fatalf("ReceiveFrame of an incomplete message: %v, want ErrReassemblyTimeout", r.err)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("started called %d times, want 1", n)
	}
	sc.push(pkts[1:]...)
	if m, err := frameReceiver(t, c).ReceiveFrame(ctx, 20*time.Millisecond, func() { starts.Add(1) }); err != nil || string(m) != "next" {
		t.Fatalf("ReceiveFrame after a timeout: %q, %v", m, err)
	}
	if n := starts.Load(); n != 2 {
		t.Fatalf("started called %d times in all, want 2", n)
	}
}

// A Pipe delivers whole messages: started is called as one is taken.
func TestPipeReceiveFrame(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	if err := a.Send(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	var starts atomic.Int32
	if r := <-receiveFrameAsync(ctx, frameReceiver(t, b), time.Millisecond, &starts); r.err != nil || string(r.msg) != "hi" {
		t.Fatalf("ReceiveFrame: %q, %v", r.msg, r.err)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("started called %d times, want 1", n)
	}
}

// A TCP Conn tells its peer's address; a stream Conn over a stream without
// addresses says nil.
func TestRemoteAddr(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	l, err := Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		testenv.Missing(t, "no loopback TCP: %v", err)
	}
	defer l.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := <-accepted
	if c == nil {
		return
	}
	defer c.Close()
	ra, ok := c.(RemoteAddresser)
	if !ok {
		t.Fatalf("%T does not implement RemoteAddresser", c)
	}
	if got, want := ra.RemoteAddr().String(), nc.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %s, want %s", got, want)
	}
	x, y := io.Pipe()
	defer x.Close()
	s, err := NewStreamConn(struct {
		io.Reader
		io.WriteCloser
	}{x, y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a := s.(RemoteAddresser).RemoteAddr(); a != nil {
		t.Fatalf("RemoteAddr of a stream without addresses: %v", a)
	}
}
