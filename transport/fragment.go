package transport

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// NewFragmentConn returns a Conn that carries messages over a packet link
// such as BLE GATT, splitting each message into fragments that fit pc.MTU()
// and reassembling incoming fragments. The Conn owns pc and closes it on
// Close. A nil opts means the zero FragmentOptions. It fails when pc.MTU() is
// below [MinMTU] or opts is invalid.
//
// Every fragment header is checked against the packet that carries it and
// against the message being reassembled before a byte is copied; the
// reassembly buffer is allocated once per message, at the declared length,
// after checking it against the maximum message size.
//
// Errors and state: [ErrBadFragment], [ErrMessageTooLarge],
// [ErrReassemblyTimeout] (and, in the compat device format, the SDA serial
// frame errors [ErrBadMagic], [ErrChecksum], [ErrTruncated]) discard the
// partial message and leave the Conn usable. Late fragments of a discarded
// or finished message are dropped silently (in the compat formats, which
// carry no message id: every continuation until the next first fragment). A
// first fragment (in v2, other than a repeat of the message last delivered)
// starts a new message, silently replacing an unfinished one (its sender
// gave up on it).
//
// Context cancellation leaves the Conn usable: a Receive interrupted by its
// context keeps the partial message, and the next Receive continues it
// (within the reassembly timeout). A Send interrupted by its context leaves
// the peer with a partial message that its next first fragment replaces.
func NewFragmentConn(pc PacketConn, opts *FragmentOptions) (Conn, error) {
	var o FragmentOptions
	if opts != nil {
		o = *opts
	}
	mtu := pc.MTU()
	if mtu < MinMTU {
		return nil, fmt.Errorf("%w: MTU %d below the minimum of %d", ErrInvalidOptions, mtu, MinMTU)
	}
	if o.ReassemblyTimeout < 0 {
		return nil, fmt.Errorf("%w: negative ReassemblyTimeout", ErrInvalidOptions)
	}
	if o.ReassemblyTimeout == 0 {
		o.ReassemblyTimeout = DefaultReassemblyTimeout
	}
	var ceiling uint64
	switch o.Format {
	case FragmentV2:
		ceiling = math.MaxUint32
	case FragmentCompatTechnician:
		ceiling = uint64(math.MaxUint16 - sdaOverhead)
	case FragmentCompatDevice:
		ceiling = math.MaxUint16
	default:
		return nil, fmt.Errorf("%w: unknown fragment format %v", ErrInvalidOptions, o.Format)
	}
	limit, err := resolveMax(o.MaxMessageSize, ceiling)
	if err != nil {
		return nil, err
	}
	c := &fragConn{
		pc:      pc,
		format:  o.Format,
		mtu:     mtu,
		limit:   limit,
		timeout: o.ReassemblyTimeout,
		sendMu:  newGate(),
		recvMu:  newGate(),
		done:    make(chan struct{}),
	}
	c.asm = newReassembler(o.Format, limit)
	return c, nil
}

type fragConn struct {
	pc      PacketConn
	format  FragmentFormat
	mtu     int
	limit   int // bound on bare messages, both directions
	timeout time.Duration

	sendMu *gate
	seq    uint8  // guarded by sendMu: compat sequence number
	msgID  uint16 // guarded by sendMu: v2 message id
	pkt    []byte // guarded by sendMu

	recvMu   *gate
	asm      *reassembler // guarded by recvMu
	deadline time.Time    // guarded by recvMu: end of the current reassembly

	closed atomic.Bool
	done   chan struct{}
	once   sync.Once
}

var (
	_ Conn          = (*fragConn)(nil)
	_ FrameReceiver = (*fragConn)(nil)
)

// Send implements [Conn].
func (c *fragConn) Send(ctx context.Context, msg []byte) error {
	if len(msg) > c.limit {
		return &MessageTooLargeError{Size: uint64(len(msg)), Limit: c.limit}
	}
	if err := acquire(ctx, c.sendMu, c.done, &c.closed, "send"); err != nil {
		return err
	}
	defer c.sendMu.unlock()
	var err error
	if c.format == FragmentV2 {
		err = c.sendV2(ctx, msg)
	} else {
		err = c.sendCompat(ctx, msg)
	}
	if err != nil {
		if c.closed.Load() {
			return fmt.Errorf("transport: send: %w", ErrClosed)
		}
		return fmt.Errorf("transport: send: %w", err)
	}
	return nil
}

func (c *fragConn) sendV2(ctx context.Context, msg []byte) error {
	id := c.msgID
	c.msgID++
	firstRoom := c.mtu - v2FirstHeaderLen
	room := c.mtu - v2HeaderLen
	if n := len(msg) - firstRoom; n > 0 && (n+room-1)/room > math.MaxUint16 {
		return &MessageTooLargeError{Size: uint64(len(msg)), Limit: firstRoom + room*math.MaxUint16}
	}
	off := 0
	for idx := 0; ; idx++ {
		first := idx == 0
		n := room
		if first {
			n = firstRoom
		}
		n = min(n, len(msg)-off)
		last := off+n == len(msg)
		c.pkt = appendV2Header(c.pkt[:0], first, last, id, uint16(idx), len(msg))
		c.pkt = append(c.pkt, msg[off:off+n]...)
		if err := c.pc.SendPacket(ctx, c.pkt); err != nil {
			return err
		}
		off += n
		if last {
			return nil
		}
	}
}

func (c *fragConn) sendCompat(ctx context.Context, msg []byte) error {
	data := msg
	trail := 0
	if c.format == FragmentCompatTechnician {
		data = appendFrame(make([]byte, 0, len(msg)+sdaOverhead), FramingSDA, msg)
	} else {
		trail = 1
	}
	chunk := min(compatMaxChunk, c.mtu-compatHeaderLen-trail)
	off := 0
	for i := 1; ; i++ {
		n := min(chunk, len(data)-off)
		more := off+n < len(data)
		c.pkt = appendCompatHeader(c.pkt[:0], c.seq, more, i, n, len(data))
		c.pkt = append(c.pkt, data[off:off+n]...)
		if trail == 1 {
			c.pkt = append(c.pkt, 0)
		}
		if err := c.pc.SendPacket(ctx, c.pkt); err != nil {
			return err
		}
		c.seq++
		off += n
		if !more {
			return nil
		}
	}
}

// Receive implements [Conn].
func (c *fragConn) Receive(ctx context.Context) ([]byte, error) {
	return c.receive(ctx, 0, nil)
}

// ReceiveFrame implements [FrameReceiver]: a positive timeout shorter than
// the reassembly timeout replaces it for a message that starts during the
// call, and started is called at the first fragment of the message.
func (c *fragConn) ReceiveFrame(ctx context.Context, timeout time.Duration, started func()) ([]byte, error) {
	return c.receive(ctx, timeout, started)
}

func (c *fragConn) receive(ctx context.Context, timeout time.Duration, onStart func()) ([]byte, error) {
	if err := acquire(ctx, c.recvMu, c.done, &c.closed, "receive"); err != nil {
		return nil, err
	}
	defer c.recvMu.unlock()
	limit := c.timeout
	if timeout > 0 && timeout < limit {
		limit = timeout
	}
	if onStart != nil && c.asm.inProgress() {
		// A message an earlier call began (and its context interrupted).
		onStart()
		onStart = nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("transport: receive: %w", err)
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if c.asm.inProgress() {
			if !time.Now().Before(c.deadline) {
				c.asm.abandon()
				return nil, fmt.Errorf("transport: receive: %w", ErrReassemblyTimeout)
			}
			rctx, cancel = context.WithDeadline(ctx, c.deadline)
		}
		p, err := c.pc.ReceivePacket(rctx)
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, fmt.Errorf("transport: receive: %w", ctx.Err())
			case rctx.Err() != nil:
				c.asm.abandon()
				return nil, fmt.Errorf("transport: receive: %w", ErrReassemblyTimeout)
			case c.closed.Load():
				return nil, fmt.Errorf("transport: receive: %w", ErrClosed)
			}
			return nil, fmt.Errorf("transport: receive: %w", err)
		}
		wasIdle := !c.asm.inProgress()
		msg, err := c.asm.feed(p)
		if onStart != nil && (c.asm.inProgress() || msg != nil || err != nil) {
			onStart()
			onStart = nil
		}
		if err != nil {
			return nil, fmt.Errorf("transport: receive: %w", err)
		}
		if msg == nil {
			if wasIdle && c.asm.inProgress() {
				c.deadline = time.Now().Add(limit)
			}
			continue
		}
		if c.format == FragmentCompatDevice {
			msg, err = decodeSDAFrame(msg, c.limit)
			if err != nil {
				return nil, fmt.Errorf("transport: receive: %w", err)
			}
		}
		return msg, nil
	}
}

// Close implements [Conn].
func (c *fragConn) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.done)
		err = c.pc.Close()
	})
	return err
}
