package transport

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// smallFrame is the largest message a stream Conn copies into one buffer
// to send its frame with a single Write; larger messages are written as
// header, message and checksum without copying the message. One Write per
// frame matters on kernel streams (a pipe, a serial port, TCP with Nagle's
// algorithm off): over a kernel pipe, 16,000-byte messages framed in one
// Write moved about 1.2 times as fast as in two (BenchmarkFramingVsCopy),
// since the copy costs less than the second system call. On net.Pipe,
// where a Write is a rendezvous with the reader rather than a system call,
// the single Write was 20-30% slower at that size (both measured with the
// 4 KiB read buffer of the time).
const smallFrame = 32 << 10

// Bounds of a stream Conn's read buffer, which is sized to hold a whole
// frame of the largest message the Conn accepts, within these bounds. A
// buffer that holds a whole frame lets one Read take a frame (and often the
// start of the next); over a kernel pipe, 16,000-byte messages moved about
// 1.1 times as fast with a 32 KiB buffer as with 4 KiB, and over net.Pipe
// about 1.15 times (BenchmarkFramingVsCopy).
const (
	minReadBuffer = 4 << 10
	maxReadBuffer = 32 << 10
)

// readBufferSize returns the read buffer size for a message limit.
func readBufferSize(limit int) int {
	if limit >= maxReadBuffer {
		return maxReadBuffer
	}
	return max(limit+sdaOverhead, minReadBuffer)
}

// NewStreamConn returns a Conn that frames messages over a byte stream such
// as a serial port, a USB CDC device, a TCP connection or a net.Pipe. The
// Conn owns rwc and closes it on Close. A nil opts means the zero Options.
//
// Context cancellation: if rwc has SetReadDeadline and SetWriteDeadline
// methods that work (net.Conn, and *os.File on pollable files such as
// terminals opened for non-blocking I/O), a cancelled call is interrupted
// through the deadline. If no byte of the frame had moved yet, the Conn
// stays usable; if the frame was cut halfway, the Conn closes itself. If rwc
// has no working deadlines, cancelling a pending call closes the Conn, which
// is the only way to unblock a Read or Write.
//
// Memory: a Conn keeps a read buffer big enough for a frame of the largest
// message it accepts, from 4 KiB to 32 KiB (32 KiB with the default
// 64 KiB limit), and a write buffer that grows to the largest frame of up
// to 32 KiB that it has sent.
//
// Errors: [ErrChecksum] discards the message and leaves the Conn usable.
// [ErrBadMagic], [ErrMessageTooLarge] from a peer, [ErrTruncated],
// [ErrFrameTimeout] and I/O errors leave the stream out of step, so the Conn
// closes itself and later calls return [ErrClosed]. A clean end of stream
// between frames returns io.EOF.
//
// The Conn implements [BufferReceiver], [FrameReceiver] (the frame timeout
// works through the read deadline, or by closing the Conn when rwc has
// none) and [RemoteAddresser] (the address of rwc when it has a
// RemoteAddr method, as a net.Conn does).
func NewStreamConn(rwc io.ReadWriteCloser, opts *Options) (Conn, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return newStreamConn(rwc, o), nil
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

type streamConn struct {
	rwc     io.ReadWriteCloser
	framing Framing
	limit   int

	rd readDeadliner  // nil when reads cannot be interrupted by a deadline
	wd writeDeadliner // nil when writes cannot be interrupted by a deadline

	recvMu  *gate
	br      *bufio.Reader // guarded by recvMu
	scratch frameScratch  // guarded by recvMu
	rDirty  bool          // guarded by recvMu: read deadline set in the past

	sendMu *gate
	wbuf   []byte            // guarded by sendMu
	wsum   [sha256.Size]byte // guarded by sendMu
	wsha   hash.Hash         // guarded by sendMu; made on first use
	wDirty bool              // guarded by sendMu: write deadline set in the past

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ Conn            = (*streamConn)(nil)
	_ BufferReceiver  = (*streamConn)(nil)
	_ FrameReceiver   = (*streamConn)(nil)
	_ RemoteAddresser = (*streamConn)(nil)
)

func newStreamConn(rwc io.ReadWriteCloser, o Options) *streamConn {
	c := &streamConn{
		rwc:     rwc,
		framing: o.Framing,
		limit:   o.MaxMessageSize,
		recvMu:  newGate(),
		sendMu:  newGate(),
		done:    make(chan struct{}),
		br:      bufio.NewReaderSize(rwc, readBufferSize(o.MaxMessageSize)),
	}
	if d, ok := rwc.(readDeadliner); ok && d.SetReadDeadline(time.Time{}) == nil {
		c.rd = d
	}
	if d, ok := rwc.(writeDeadliner); ok && d.SetWriteDeadline(time.Time{}) == nil {
		c.wd = d
	}
	return c
}

// watch arranges for ctx to interrupt the I/O that follows, through
// setDeadline when it is not nil and by closing the Conn otherwise. The
// returned function undoes the arrangement and reports whether ctx fired;
// when it did, its effect is complete before the function returns.
func (c *streamConn) watch(ctx context.Context, setDeadline func(time.Time) error) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	fired := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(fired)
		if setDeadline != nil {
			_ = setDeadline(time.Unix(1, 0))
		} else {
			_ = c.Close()
		}
	})
	return func() bool {
		if cancel() {
			return false
		}
		<-fired
		return true
	}
}

// Receive implements [Conn].
func (c *streamConn) Receive(ctx context.Context) ([]byte, error) {
	return c.receive(ctx, nil, 0, nil)
}

// ReceiveBuffer implements [BufferReceiver].
func (c *streamConn) ReceiveBuffer(ctx context.Context, buf []byte) ([]byte, error) {
	return c.receive(ctx, buf, 0, nil)
}

// ReceiveFrame implements [FrameReceiver].
func (c *streamConn) ReceiveFrame(ctx context.Context, timeout time.Duration, started func()) ([]byte, error) {
	return c.receive(ctx, nil, timeout, started)
}

// RemoteAddr implements [RemoteAddresser].
func (c *streamConn) RemoteAddr() net.Addr {
	if a, ok := c.rwc.(interface{ RemoteAddr() net.Addr }); ok {
		return a.RemoteAddr()
	}
	return nil
}

// receive reads one frame into buf (see ReceiveBuffer). When timeout is
// positive the frame must be complete within timeout of its first byte;
// onStart, if not nil, is called when that byte has arrived.
func (c *streamConn) receive(ctx context.Context, buf []byte, timeout time.Duration, onStart func()) ([]byte, error) {
	if err := acquire(ctx, c.recvMu, c.done, &c.closed, "receive"); err != nil {
		return nil, err
	}
	defer c.recvMu.unlock()

	var setDeadline func(time.Time) error
	if c.rd != nil {
		if ctx.Done() != nil { // a method value allocates: only when needed
			setDeadline = c.rd.SetReadDeadline
		}
		if c.rDirty {
			if err := c.rd.SetReadDeadline(time.Time{}); err != nil {
				return nil, c.fail("receive", err)
			}
			c.rDirty = false
		}
	}
	stop := c.watch(ctx, setDeadline)
	var (
		msg     []byte
		started bool
		err     error
		frame   frameLimit
	)
	if timeout > 0 || onStart != nil {
		// Wait for the first byte without a bound but ctx's.
		_, err = c.br.Peek(1)
		if err == nil {
			if onStart != nil {
				onStart()
			}
			if timeout > 0 {
				err = frame.start(ctx, c, timeout)
			}
		}
	}
	if err == nil {
		msg, started, err = c.scratch.readFrame(c.br, c.framing, c.limit, buf)
	}
	expired := frame.stop(err)
	if stop() {
		c.rDirty = true
		if err != nil {
			return nil, c.interrupted("receive", ctx, started || c.rd == nil)
		}
	}
	switch {
	case err == nil:
		return msg, nil
	case expired:
		_ = c.Close()
		return nil, fmt.Errorf("transport: receive: %w", ErrFrameTimeout)
	case errors.Is(err, ErrChecksum):
		return nil, fmt.Errorf("transport: receive: %w", err)
	case errors.Is(err, io.EOF) && !started:
		return nil, io.EOF
	}
	return nil, c.fail("receive", err)
}

// frameLimit bounds the time the rest of a frame may take, through the
// read deadline when the stream has one and by closing the Conn otherwise.
type frameLimit struct {
	c     *streamConn
	timer *time.Timer // without read deadlines: closes the Conn
}

// start arms the limit, timeout from now.
func (f *frameLimit) start(ctx context.Context, c *streamConn, timeout time.Duration) error {
	f.c = c
	if c.rd == nil {
		f.timer = time.AfterFunc(timeout, func() { _ = c.Close() })
		return nil
	}
	c.rDirty = true
	if err := c.rd.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	// A cancellation that set a past deadline before the line above must
	// not be undone by it; one that comes later sets its own.
	if ctx.Err() != nil {
		return c.rd.SetReadDeadline(time.Unix(1, 0))
	}
	return nil
}

// stop disarms the limit and reports whether it cut the frame short, given
// the error of reading it.
func (f *frameLimit) stop(err error) bool {
	switch {
	case f.c == nil:
		return false
	case f.timer != nil:
		return !f.timer.Stop() && err != nil
	}
	return err != nil && errors.Is(err, os.ErrDeadlineExceeded)
}

// Send implements [Conn].
func (c *streamConn) Send(ctx context.Context, msg []byte) error {
	if len(msg) > c.limit {
		return &MessageTooLargeError{Size: uint64(len(msg)), Limit: c.limit}
	}
	if err := acquire(ctx, c.sendMu, c.done, &c.closed, "send"); err != nil {
		return err
	}
	defer c.sendMu.unlock()

	var setDeadline func(time.Time) error
	if c.wd != nil {
		if ctx.Done() != nil { // a method value allocates: only when needed
			setDeadline = c.wd.SetWriteDeadline
		}
		if c.wDirty {
			if err := c.wd.SetWriteDeadline(time.Time{}); err != nil {
				return c.fail("send", err)
			}
			c.wDirty = false
		}
	}
	stop := c.watch(ctx, setDeadline)
	n, err := c.writeFrame(msg)
	if stop() {
		c.wDirty = true
		if err != nil {
			return c.interrupted("send", ctx, n > 0 || c.wd == nil)
		}
	}
	if err != nil {
		return c.fail("send", err)
	}
	return nil
}

// writeFrame writes one frame and returns how many bytes of it were written.
func (c *streamConn) writeFrame(msg []byte) (int64, error) {
	if len(msg) <= smallFrame {
		c.wbuf = appendFrame(c.wbuf[:0], c.framing, msg)
		return c.write(0, c.wbuf)
	}
	// Larger messages go out as header, body (and hash) without copying
	// the body. With SDA framing the body is hashed and written a piece at
	// a time, so that the peer hashes one piece while this end hashes the
	// next.
	c.wbuf = appendFrameHeader(c.wbuf[:0], c.framing, uint32(len(msg)))
	written, err := c.write(0, c.wbuf)
	if err != nil {
		return written, err
	}
	if c.framing != FramingSDA {
		return c.write(written, msg)
	}
	if c.wsha == nil {
		c.wsha = sha256.New()
	}
	c.wsha.Reset()
	for p := msg; len(p) > 0; {
		chunk := p[:min(len(p), hashChunk)]
		c.wsha.Write(chunk)
		if written, err = c.write(written, chunk); err != nil {
			return written, err
		}
		p = p[len(chunk):]
	}
	return c.write(written, c.wsha.Sum(c.wsum[:0]))
}

// write writes p whole to the stream and returns written plus the bytes of
// p written.
func (c *streamConn) write(written int64, p []byte) (int64, error) {
	n, err := c.rwc.Write(p)
	written += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return written, err
}

// interrupted builds the error of a call that ctx interrupted, closing the
// Conn when the stream is out of step.
func (c *streamConn) interrupted(op string, ctx context.Context, broken bool) error {
	if broken {
		_ = c.Close()
	}
	return fmt.Errorf("transport: %s: %w", op, ctx.Err())
}

// fail closes the Conn after an error that left the stream out of step.
func (c *streamConn) fail(op string, err error) error {
	if c.closed.Load() {
		return fmt.Errorf("transport: %s: %w", op, ErrClosed)
	}
	_ = c.Close()
	return fmt.Errorf("transport: %s: %w", op, err)
}

// Close implements [Conn].
func (c *streamConn) Close() error {
	err := error(nil)
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		c.closeErr = c.rwc.Close()
		err = c.closeErr
	})
	return err
}
