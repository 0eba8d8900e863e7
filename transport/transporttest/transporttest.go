package transporttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/transport"
)

// DefaultDelay is how long a delayed message waits when [Faults.DelayTime]
// is zero.
const DefaultDelay = 10 * time.Millisecond

// Faults says which faults to inject into one direction, as probabilities
// per message (or packet) between 0 and 1. At most one of Drop and the
// others applies: a dropped message gets no other fault.
type Faults struct {
	// Drop loses the message.
	Drop float64
	// Duplicate delivers the message twice.
	Duplicate float64
	// Corrupt flips one bit of the message.
	Corrupt float64
	// Truncate cuts the message to a shorter length (possibly zero).
	Truncate float64
	// Reorder holds the message back and delivers it after the next message
	// that passes. If no message follows, it is lost.
	Reorder float64
	// Delay makes the message wait DelayTime before going on. The wait
	// ends early, with an error, if the call's context ends.
	Delay float64
	// DelayTime is the delay of a delayed message; zero means DefaultDelay.
	DelayTime time.Duration

	// Skip lets the first Skip messages through untouched.
	Skip int
	// Max bounds the number of faults injected in this direction; zero
	// means no bound.
	Max int
}

// Config configures a fault-injecting wrapper.
type Config struct {
	// Seed seeds the generator of each direction.
	Seed uint64
	// Send applies to what the wrapper sends.
	Send Faults
	// Receive applies to what the wrapper receives.
	Receive Faults
}

// Counts counts the faults injected into one direction.
type Counts struct {
	Messages  int // messages (or packets) that went through the injector
	Drop      int
	Duplicate int
	Corrupt   int
	Truncate  int
	Reorder   int
	Delay     int
}

// Faults returns the total number of faults injected.
func (c Counts) Faults() int {
	return c.Drop + c.Duplicate + c.Corrupt + c.Truncate + c.Reorder + c.Delay
}

// Stats counts the faults injected by a wrapper, per direction.
type Stats struct {
	Send    Counts
	Receive Counts
}

// Conn wraps a [transport.Conn] and injects faults into its messages. It
// implements transport.Conn with the same concurrency rules: one Send may run
// concurrently with one Receive.
type Conn struct {
	inner transport.Conn
	send  *direction
	recv  *direction
}

var (
	_ transport.Conn            = (*Conn)(nil)
	_ transport.FrameReceiver   = (*Conn)(nil)
	_ transport.RemoteAddresser = (*Conn)(nil)
)

// NewConn returns c wrapped in a fault injector configured by cfg.
func NewConn(c transport.Conn, cfg Config) *Conn {
	return &Conn{inner: c, send: newDirection(cfg.Seed, 1, cfg.Send), recv: newDirection(cfg.Seed, 2, cfg.Receive)}
}

// Send implements transport.Conn, injecting the send faults.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	return c.send.send(ctx, msg, c.inner.Send)
}

// Receive implements transport.Conn, injecting the receive faults.
func (c *Conn) Receive(ctx context.Context) ([]byte, error) {
	return c.recv.receive(ctx, c.inner.Receive)
}

// ReceiveFrame implements transport.FrameReceiver, injecting the receive
// faults, so that a server keeps its frame timeouts over a faulty link. The
// timeout and the start of each frame reach the wrapped Conn when it has
// the capability; otherwise started is called once a message has arrived.
// started is called once per message returned, however many messages the
// injector drops before it.
func (c *Conn) ReceiveFrame(ctx context.Context, timeout time.Duration, started func()) ([]byte, error) {
	called := false
	once := func() {
		if !called && started != nil {
			called = true
			started()
		}
	}
	fr, ok := c.inner.(transport.FrameReceiver)
	m, err := c.recv.receive(ctx, func(ctx context.Context) ([]byte, error) {
		if ok {
			return fr.ReceiveFrame(ctx, timeout, once)
		}
		return c.inner.Receive(ctx)
	})
	if err == nil {
		once() // a message held back earlier, or one of a Conn without the capability
	}
	return m, err
}

// RemoteAddr implements transport.RemoteAddresser: the wrapped Conn's peer
// address, or nil when it does not tell it.
func (c *Conn) RemoteAddr() net.Addr {
	if ra, ok := c.inner.(transport.RemoteAddresser); ok {
		return ra.RemoteAddr()
	}
	return nil
}

// Close closes the wrapped Conn. Messages held back for reordering are lost.
func (c *Conn) Close() error { return c.inner.Close() }

// Stats returns the faults injected so far.
func (c *Conn) Stats() Stats { return Stats{Send: c.send.counts(), Receive: c.recv.counts()} }

// PacketConn wraps a [transport.PacketConn] and injects faults into its
// packets, as [Conn] does for messages. A truncated or corrupted packet
// still fits the MTU.
type PacketConn struct {
	inner transport.PacketConn
	send  *direction
	recv  *direction
}

var _ transport.PacketConn = (*PacketConn)(nil)

// NewPacketConn returns pc wrapped in a fault injector configured by cfg.
func NewPacketConn(pc transport.PacketConn, cfg Config) *PacketConn {
	return &PacketConn{inner: pc, send: newDirection(cfg.Seed, 1, cfg.Send), recv: newDirection(cfg.Seed, 2, cfg.Receive)}
}

// SendPacket implements transport.PacketConn, injecting the send faults.
func (c *PacketConn) SendPacket(ctx context.Context, p []byte) error {
	return c.send.send(ctx, p, c.inner.SendPacket)
}

// ReceivePacket implements transport.PacketConn, injecting the receive
// faults.
func (c *PacketConn) ReceivePacket(ctx context.Context) ([]byte, error) {
	return c.recv.receive(ctx, c.inner.ReceivePacket)
}

// MTU returns the MTU of the wrapped PacketConn.
func (c *PacketConn) MTU() int { return c.inner.MTU() }

// Close closes the wrapped PacketConn. Packets held back for reordering are
// lost.
func (c *PacketConn) Close() error { return c.inner.Close() }

// Stats returns the faults injected so far.
func (c *PacketConn) Stats() Stats { return Stats{Send: c.send.counts(), Receive: c.recv.counts()} }

// direction is the injector of one direction.
type direction struct {
	faults Faults
	sem    chan struct{} // serialises calls; guards held and pending

	held    []byte   // a message held back for reordering
	pending [][]byte // receive side: messages to return before reading more

	mu  sync.Mutex // guards rng and n
	rng *rand.Rand
	n   Counts
}

func newDirection(seed, stream uint64, f Faults) *direction {
	if f.DelayTime <= 0 {
		f.DelayTime = DefaultDelay
	}
	return &direction{faults: f, sem: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(seed, stream))}
}

func (d *direction) counts() Counts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// verdict is what happens to one message.
type verdict struct {
	drop, duplicate, reorder, delay bool
}

// decide draws the faults for msg and returns the message to deliver (a
// mutated copy when corrupted or truncated; otherwise msg itself). Reorder
// is only drawn when no message is held already.
func (d *direction) decide(msg []byte) ([]byte, verdict) {
	canHold := d.held == nil
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n.Messages++
	var v verdict
	if d.n.Messages <= d.faults.Skip {
		return msg, v
	}
	f := &d.faults
	budget := func() bool { return f.Max <= 0 || d.n.Faults() < f.Max }
	// Draw every value for every message, so that the stream of draws (and
	// hence later faults) does not depend on which faults were allowed.
	pDrop, pDup, pCorrupt, pTrunc, pReorder, pDelay := d.rng.Float64(), d.rng.Float64(), d.rng.Float64(), d.rng.Float64(), d.rng.Float64(), d.rng.Float64()
	pos := d.rng.Uint64()
	if pDrop < f.Drop && budget() {
		d.n.Drop++
		v.drop = true
		return nil, v
	}
	if pCorrupt < f.Corrupt && len(msg) > 0 && budget() {
		d.n.Corrupt++
		bit := pos % uint64(len(msg)*8)
		msg = append([]byte(nil), msg...)
		msg[bit/8] ^= 1 << (bit % 8)
	}
	if pTrunc < f.Truncate && len(msg) > 0 && budget() {
		d.n.Truncate++
		msg = append([]byte(nil), msg[:(pos>>32)%uint64(len(msg))]...)
	}
	if pDup < f.Duplicate && budget() {
		d.n.Duplicate++
		v.duplicate = true
	}
	if pReorder < f.Reorder && canHold && budget() {
		d.n.Reorder++
		v.reorder = true
	}
	if pDelay < f.Delay && budget() {
		d.n.Delay++
		v.delay = true
	}
	return msg, v
}

func (d *direction) acquire(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transporttest: %w", ctx.Err())
	}
}

func (d *direction) sleep(ctx context.Context) error {
	t := time.NewTimer(d.faults.DelayTime)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transporttest: delay: %w", ctx.Err())
	}
}

func (d *direction) send(ctx context.Context, msg []byte, send func(context.Context, []byte) error) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-d.sem }()
	m, v := d.decide(msg)
	if v.drop {
		return nil
	}
	if v.delay {
		if err := d.sleep(ctx); err != nil {
			return err
		}
	}
	if v.reorder {
		d.held = append([]byte(nil), m...) // msg must not be retained
		return nil
	}
	out := [][]byte{m}
	if v.duplicate {
		out = append(out, m)
	}
	if d.held != nil {
		out = append(out, d.held)
		d.held = nil
	}
	for _, b := range out {
		if err := send(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (d *direction) receive(ctx context.Context, receive func(context.Context) ([]byte, error)) ([]byte, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-d.sem }()
	for {
		if len(d.pending) > 0 {
			m := d.pending[0]
			d.pending = d.pending[1:]
			return m, nil
		}
		raw, err := receive(ctx)
		if err != nil {
			return nil, err
		}
		m, v := d.decide(raw)
		if v.drop {
			continue
		}
		if v.reorder {
			d.held = m
			continue
		}
		if v.duplicate {
			d.pending = append(d.pending, append([]byte(nil), m...))
		}
		if d.held != nil {
			d.pending = append(d.pending, d.held)
			d.held = nil
		}
		if v.delay {
			if err := d.sleep(ctx); err != nil {
				// Keep the message for the next call rather than lose it.
				d.pending = append([][]byte{m}, d.pending...)
				return nil, err
			}
		}
		return m, nil
	}
}
