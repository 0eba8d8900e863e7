package transport

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// pipeBuffer is how many messages each direction of a Pipe buffers.
const pipeBuffer = 8

// packetPipeBuffer is how many packets each direction of a PacketPipe
// buffers.
const packetPipeBuffer = 64

// Pipe returns the two ends of an in-memory message connection. What one
// end sends, the other receives, in order and intact.
//
// Each direction buffers up to 8 messages; Send blocks while the buffer is
// full. Send copies msg. Messages are limited to [DefaultMaxMessageSize].
// Cancelling a call leaves the Conn usable and loses no message. After one
// end is closed, the other end receives the buffered messages, then io.EOF,
// and its Send fails with io.ErrClosedPipe.
func Pipe() (Conn, Conn) {
	a, b := newPipePair(pipeBuffer, DefaultMaxMessageSize)
	return a, b
}

// PacketPipe returns the two ends of an in-memory packet link with the
// given MTU, for tests and simulations of BLE-like links. Values of mtu
// below [MinMTU] are raised to MinMTU. Each direction buffers up to 64
// packets. Otherwise it behaves like [Pipe].
func PacketPipe(mtu int) (PacketConn, PacketConn) {
	mtu = max(mtu, MinMTU)
	a, b := newPipePair(packetPipeBuffer, mtu)
	return &packetPipe{a}, &packetPipe{b}
}

// pipeState is the shared closing state of one end.
type pipeState struct {
	once sync.Once
	done chan struct{}
}

func (s *pipeState) close() bool {
	closed := false
	s.once.Do(func() { close(s.done); closed = true })
	return closed
}

type pipeEnd struct {
	in     <-chan []byte
	out    chan<- []byte
	local  *pipeState
	remote *pipeState
	limit  int
}

var (
	_ Conn          = (*pipeEnd)(nil)
	_ FrameReceiver = (*pipeEnd)(nil)
	_ TrySender     = (*pipeEnd)(nil)
)

func newPipePair(buffer, limit int) (*pipeEnd, *pipeEnd) {
	ab := make(chan []byte, buffer)
	ba := make(chan []byte, buffer)
	sa := &pipeState{done: make(chan struct{})}
	sb := &pipeState{done: make(chan struct{})}
	a := &pipeEnd{in: ba, out: ab, local: sa, remote: sb, limit: limit}
	b := &pipeEnd{in: ab, out: ba, local: sb, remote: sa, limit: limit}
	return a, b
}

// Send implements [Conn].
func (p *pipeEnd) Send(ctx context.Context, msg []byte) error {
	if err := p.sendable(msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("transport: send: %w", err)
	}
	cp := append(make([]byte, 0, len(msg)), msg...)
	select {
	case p.out <- cp:
		return nil
	case <-p.local.done:
		return fmt.Errorf("transport: send: %w", ErrClosed)
	case <-p.remote.done:
		return fmt.Errorf("transport: send: %w", io.ErrClosedPipe)
	case <-ctx.Done():
		return fmt.Errorf("transport: send: %w", ctx.Err())
	}
}

// sendable returns the error Send returns at once for msg: too large, or
// an end closed.
func (p *pipeEnd) sendable(msg []byte) error {
	if len(msg) > p.limit {
		return &MessageTooLargeError{Size: uint64(len(msg)), Limit: p.limit}
	}
	select {
	case <-p.local.done:
		return fmt.Errorf("transport: send: %w", ErrClosed)
	case <-p.remote.done:
		return fmt.Errorf("transport: send: %w", io.ErrClosedPipe)
	default:
	}
	return nil
}

// TrySend implements [TrySender]: it sends when the direction's buffer
// has room.
func (p *pipeEnd) TrySend(msg []byte) (bool, error) {
	if err := p.sendable(msg); err != nil {
		return false, err
	}
	if len(p.out) == cap(p.out) {
		return false, nil // full: no copy made
	}
	select {
	case p.out <- append(make([]byte, 0, len(msg)), msg...):
		return true, nil
	default:
		return false, nil
	}
}

// Receive implements [Conn].
func (p *pipeEnd) Receive(ctx context.Context) ([]byte, error) {
	select {
	case <-p.local.done:
		return nil, fmt.Errorf("transport: receive: %w", ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transport: receive: %w", err)
	}
	select {
	case m := <-p.in:
		return m, nil
	case <-p.local.done:
		return nil, fmt.Errorf("transport: receive: %w", ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: receive: %w", ctx.Err())
	case <-p.remote.done:
		// Deliver what the peer sent before closing.
		select {
		case m := <-p.in:
			return m, nil
		default:
			return nil, io.EOF
		}
	}
}

// ReceiveFrame implements [FrameReceiver]. Messages cross a Pipe whole:
// started is called as one is taken, and timeout has nothing to bound.
func (p *pipeEnd) ReceiveFrame(ctx context.Context, _ time.Duration, started func()) ([]byte, error) {
	m, err := p.Receive(ctx)
	if err == nil && started != nil {
		started()
	}
	return m, err
}

// Close implements [Conn].
func (p *pipeEnd) Close() error {
	p.local.close()
	return nil
}

type packetPipe struct{ p *pipeEnd }

var _ PacketConn = (*packetPipe)(nil)

// SendPacket implements [PacketConn].
func (pp *packetPipe) SendPacket(ctx context.Context, b []byte) error {
	return pp.p.Send(ctx, b)
}

// ReceivePacket implements [PacketConn].
func (pp *packetPipe) ReceivePacket(ctx context.Context) ([]byte, error) {
	return pp.p.Receive(ctx)
}

// MTU implements [PacketConn].
func (pp *packetPipe) MTU() int { return pp.p.limit }

// Close implements [PacketConn].
func (pp *packetPipe) Close() error { return pp.p.Close() }
