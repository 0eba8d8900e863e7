package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var framings = []Framing{FramingSDA, FramingLength}

// streamPair returns two stream Conns over a net.Pipe.
func streamPair(t testing.TB, o *Options) (Conn, Conn) {
	t.Helper()
	x, y := net.Pipe()
	a, err := NewStreamConn(x, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStreamConn(y, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// rawPair returns a stream Conn and the raw other end of its net.Pipe.
func rawPair(t testing.TB, o *Options) (Conn, net.Conn) {
	t.Helper()
	x, y := net.Pipe()
	c, err := NewStreamConn(x, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); y.Close() })
	return c, y
}

// writeAsync writes b to w in the background; the returned channel yields
// the error once the other side has read it all.
func writeAsync(w io.Writer, b []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := w.Write(b)
		ch <- err
	}()
	return ch
}

func TestStreamRoundTrip(t *testing.T) {
	checkGoroutines(t)
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			a, b := streamPair(t, &Options{Framing: f})
			for _, n := range []int{0, 1, 255, smallFrame, smallFrame + 1, DefaultMaxMessageSize} {
				roundTrip(t, a, b, testMessage(n, byte(n)))
				roundTrip(t, b, a, testMessage(n, byte(n+1)))
			}
		})
	}
}

// TestStreamWireFormat pins both frame formats byte for byte.
func TestStreamWireFormat(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		msg     string
		want    string
	}{
		{FramingSDA, "hi", "" +
			"6d62656464626170" + // "mbeddbap"
			"00000002" + // length, uint32 big-endian
			"6869" + // message
			"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"}, // SHA-256("hi")
		{FramingSDA, "", "" +
			"6d62656464626170" +
			"00000000" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, // SHA-256("")
		{FramingLength, "hi", "" +
			"00000002" + // length, uint32 big-endian
			"6869"},
	} {
		t.Run(tc.framing.String()+"/"+tc.msg, func(t *testing.T) {
			want, err := hex.DecodeString(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			c, raw := rawPair(t, &Options{Framing: tc.framing})
			errc := make(chan error, 1)
			go func() { errc <- c.Send(context.Background(), []byte(tc.msg)) }()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(raw, got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame\n got %x\nwant %x", got, want)
			}
			// And the reader accepts exactly these bytes.
			w := writeAsync(raw, want)
			m, err := c.Receive(context.Background())
			if err != nil || string(m) != tc.msg {
				t.Fatalf("Receive: %q, %v", m, err)
			}
			if err := <-w; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStreamBadInput(t *testing.T) {
	sdaHello := appendFrame(nil, FramingSDA, []byte("hello"))
	badSum := bytes.Clone(sdaHello)
	badSum[len(badSum)-1] ^= 1
	badMagic := bytes.Clone(sdaHello)
	badMagic[0] = 'M'
	// A message over hashChunk is read and hashed in pieces.
	sdaLarge := appendFrame(nil, FramingSDA, testMessage(2*hashChunk+5, 1))
	badLarge := bytes.Clone(sdaLarge)
	badLarge[sdaHeaderLen+hashChunk+3] ^= 0x80
	for _, tc := range []struct {
		name    string
		framing Framing
		input   []byte
		want    error
		usable  bool // the Conn survives the error
	}{
		{"sda/bad magic", FramingSDA, badMagic, ErrBadMagic, false},
		{"sda/bad checksum", FramingSDA, badSum, ErrChecksum, true},
		{"sda/bad checksum, large", FramingSDA, badLarge, ErrChecksum, true},
		{"sda/truncated large message", FramingSDA, sdaLarge[:sdaHeaderLen+hashChunk+7], ErrTruncated, false},
		{"sda/huge length", FramingSDA, []byte("mbeddbap\xff\xff\xff\xff"), ErrMessageTooLarge, false},
		{"sda/limit+1", FramingSDA, []byte("mbeddbap\x00\x01\x00\x01"), ErrMessageTooLarge, false},
		{"sda/truncated header", FramingSDA, []byte("mbedd"), ErrTruncated, false},
		{"sda/truncated message", FramingSDA, sdaHello[:14], ErrTruncated, false},
		{"sda/truncated checksum", FramingSDA, sdaHello[:len(sdaHello)-1], ErrTruncated, false},
		{"length/huge length", FramingLength, []byte{0xff, 0xff, 0xff, 0xff}, ErrMessageTooLarge, false},
		{"length/truncated header", FramingLength, []byte{0, 0}, ErrTruncated, false},
		{"length/truncated message", FramingLength, []byte{0, 0, 0, 5, 'h', 'i'}, ErrTruncated, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			c, raw := rawPair(t, &Options{Framing: tc.framing})
			go func() {
				raw.Write(tc.input)
				if !tc.usable {
					raw.Close() // end of stream after the input
				}
			}()
			_, err := c.Receive(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Receive: %v, want %v", err, tc.want)
			}
			if errors.Is(tc.want, ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncation error %v does not match io.ErrUnexpectedEOF", err)
			}
			if !tc.usable {
				if _, err := c.Receive(context.Background()); !errors.Is(err, ErrClosed) {
					t.Fatalf("Receive after a fatal error: %v, want ErrClosed", err)
				}
				return
			}
			// The stream is still in step: the next frame arrives.
			w := writeAsync(raw, appendFrame(nil, tc.framing, []byte("next")))
			m, err := c.Receive(context.Background())
			if err != nil || string(m) != "next" {
				t.Fatalf("Receive after the error: %q, %v", m, err)
			}
			<-w
		})
	}
}

// TestStreamNoAllocationOfDeclaredSize checks that a peer declaring a huge
// message does not make the reader allocate it.
func TestStreamNoAllocationOfDeclaredSize(t *testing.T) {
	for _, f := range framings {
		frame := appendFrameHeader(nil, f, 1<<31)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := readFrame(bytes.NewReader(frame), f, 1<<20, nil)
		runtime.ReadMemStats(&after)
		var tl *MessageTooLargeError
		if !errors.As(err, &tl) || tl.Size != 1<<31 || tl.Limit != 1<<20 {
			t.Fatalf("%v: %v", f, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Fatalf("%v: rejecting a declared 2 GiB frame allocated %d bytes", f, d)
		}
	}
}

func TestStreamEOF(t *testing.T) {
	c, raw := rawPair(t, nil)
	raw.Close()
	if _, err := c.Receive(context.Background()); err != io.EOF {
		t.Fatalf("Receive at a clean end of stream: %v, want io.EOF", err)
	}
}

func TestStreamSendTooLarge(t *testing.T) {
	a, b := streamPair(t, &Options{MaxMessageSize: 100})
	err := a.Send(context.Background(), make([]byte, 101))
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send of 101 bytes with a limit of 100: %v", err)
	}
	roundTrip(t, a, b, make([]byte, 100)) // still usable
}

func TestStreamOptions(t *testing.T) {
	x, y := net.Pipe()
	defer x.Close()
	defer y.Close()
	for _, o := range []*Options{{Framing: 7}, {MaxMessageSize: -1}} {
		if _, err := NewStreamConn(x, o); err == nil {
			t.Errorf("NewStreamConn(%+v) succeeded", *o)
		}
		if _, err := Dial(context.Background(), "127.0.0.1:1", o); err == nil || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Dial(%+v): %v", *o, err)
		}
	}
}

// TestOptionsValidate checks that Validate refuses exactly the options the
// stream Conns refuse, so that an adapter can check them before it opens its
// link.
func TestOptionsValidate(t *testing.T) {
	for _, o := range []*Options{nil, {}, {Framing: FramingLength}, {MaxMessageSize: 1}, {MaxMessageSize: 1 << 30}} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", o, err)
		}
	}
	for _, o := range []*Options{{Framing: FramingLength + 1}, {MaxMessageSize: -1}} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Validate(%+v): %v, want ErrInvalidOptions", *o, err)
		}
	}
}

func TestStreamCancelBeforeFrame(t *testing.T) {
	checkGoroutines(t)
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			a, b := streamPair(t, &Options{Framing: f})
			ctx, cancel := context.WithCancel(context.Background())
			ch := receiveAsync(ctx, b)
			cancel()
			if r := <-ch; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled Receive: %v", r.err)
			}
			// No byte of a frame had moved: the Conn is usable.
			roundTrip(t, a, b, []byte("after cancel"))
			roundTrip(t, b, a, []byte("other way"))
		})
	}
}

func TestStreamCancelMidFrame(t *testing.T) {
	checkGoroutines(t)
	c, raw := rawPair(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ch := receiveAsync(ctx, c)
	// The reader consumes half a header, then the context ends.
	if err := <-writeAsync(raw, []byte("mbedd")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Receive cancelled mid-frame: %v", r.err)
	}
	if _, err := c.Receive(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after a cut frame: %v, want ErrClosed", err)
	}
}

func TestStreamDeadlineMidSend(t *testing.T) {
	checkGoroutines(t)
	c, raw := rawPair(t, &Options{Framing: FramingLength})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Send(ctx, make([]byte, 1000)) }()
	// Read part of the frame, then give up on the rest.
	if _, err := io.ReadFull(raw, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send cancelled mid-frame: %v", err)
	}
	if err := c.Send(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after a cut frame: %v, want ErrClosed", err)
	}
}

// noDeadlines hides the deadline methods of a net.Conn, like a serial port
// driver without them.
type noDeadlines struct{ io.ReadWriteCloser }

func TestStreamCancelWithoutDeadlines(t *testing.T) {
	checkGoroutines(t)
	x, y := net.Pipe()
	defer y.Close()
	c, err := NewStreamConn(noDeadlines{x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := receiveAsync(ctx, c)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Receive: %v", r.err)
	}
	// Without deadlines, cancellation may close the Conn (if it interrupted
	// the read) or not (if it came first); if it closed it, the underlying
	// stream is closed too.
	if err := c.Send(ctx, nil); !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
		t.Fatalf("Send with a cancelled context: %v", err)
	}
	c.Close()
	if _, err := x.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("underlying stream after Close: %v", err)
	}
}

func TestStreamCloseUnblocks(t *testing.T) {
	checkGoroutines(t)
	c, raw := rawPair(t, nil)
	ch := receiveAsync(context.Background(), c)
	errc := make(chan error, 1)
	go func() { errc <- c.Send(context.Background(), []byte("nobody reads this")) }()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Receive interrupted by Close: %v", r.err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Send interrupted by Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after Close: %v, want io.EOF", err)
	}
}

// TestStreamConcurrentSends checks that concurrent Sends never interleave
// their frames, while a Receive runs concurrently.
func TestStreamConcurrentSends(t *testing.T) {
	checkGoroutines(t)
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			a, b := streamPair(t, &Options{Framing: f})
			const senders, each = 4, 25
			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						n := 1 + (s*each+i)*397%(2*smallFrame)
						msg := bytes.Repeat([]byte{byte(s)}, n)
						if err := a.Send(context.Background(), msg); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for range senders * each {
				m, err := b.Receive(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if strings.Trim(string(m), string(m[:1])) != "" {
					t.Fatalf("interleaved message of %d bytes", len(m))
				}
			}
			wg.Wait()
		})
	}
}

// TestReceiveBuffer: a stream Conn reads into the caller's buffer when it
// is large enough, and allocates otherwise; in both cases the message is
// intact and a Receive without a buffer allocates a fresh one.
func TestReceiveBuffer(t *testing.T) {
	for _, f := range []Framing{FramingSDA, FramingLength} {
		x, y := net.Pipe()
		src, _ := NewStreamConn(x, &Options{Framing: f})
		dst, _ := NewStreamConn(y, &Options{Framing: f})
		br, ok := dst.(BufferReceiver)
		if !ok {
			t.Fatalf("%v stream Conn is not a BufferReceiver", f)
		}
		ctx := context.Background()
		go func() {
			for _, m := range []string{"hello", "a longer message than the buffer", "bye"} {
				if err := src.Send(ctx, []byte(m)); err != nil {
					return
				}
			}
		}()
		buf := make([]byte, 0, 16)
		m, err := br.ReceiveBuffer(ctx, buf)
		if err != nil || string(m) != "hello" || &m[0] != &buf[:1][0] {
			t.Fatalf("%v: ReceiveBuffer = %q, %v (reused buffer: %v)", f, m, err, err == nil && &m[0] == &buf[:1][0])
		}
		m, err = br.ReceiveBuffer(ctx, buf)
		if err != nil || string(m) != "a longer message than the buffer" || &m[0] == &buf[:1][0] {
			t.Fatalf("%v: ReceiveBuffer of a longer message = %q, %v", f, m, err)
		}
		m, err = dst.Receive(ctx)
		if err != nil || string(m) != "bye" {
			t.Fatalf("%v: Receive = %q, %v", f, m, err)
		}
		src.Close()
		dst.Close()
	}
}

func TestStreamReadBufferSize(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{
		{1, minReadBuffer},
		{2048, minReadBuffer},
		{10000, 10000 + sdaOverhead},
		{maxReadBuffer - sdaOverhead, maxReadBuffer},
		{maxReadBuffer, maxReadBuffer},
		{DefaultMaxMessageSize, maxReadBuffer},
		{1 << 30, maxReadBuffer},
	} {
		if got := readBufferSize(tc.limit); got != tc.want {
			t.Errorf("readBufferSize(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
	x, y := net.Pipe()
	defer y.Close()
	c, err := NewStreamConn(x, &Options{MaxMessageSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.(*streamConn).br.Size(); got != minReadBuffer {
		t.Fatalf("read buffer of a Conn limited to 2048 bytes: %d, want %d", got, minReadBuffer)
	}
}
