package transport

import (
	"context"
	"net"
	"time"
)

// Conn is a message-oriented connection: each Send delivers one whole
// message and each Receive returns one whole message, whatever the framing
// underneath.
//
// The contract, in the spirit of net/http's RoundTripper:
//
//   - Send must not retain or modify msg after it returns; the caller may
//     reuse msg at once.
//   - Receive returns a slice that the caller owns: the Conn never touches it
//     again.
//   - One Send and one Receive may run concurrently with each other. Concurrent
//     calls of the same method are serialised, so messages never interleave.
//   - Close unblocks pending Send and Receive calls, which then return an error
//     matching [ErrClosed]; later calls return [ErrClosed] too.
//   - When ctx is cancelled or its deadline passes, a pending call returns an
//     error wrapping ctx.Err(). What state the Conn is left in depends on the
//     implementation and is documented there; in short, a stream Conn whose
//     frame was cut halfway closes itself, because it can no longer find the
//     start of the next frame.
//   - A message larger than the Conn's maximum message size is refused by
//     Send and, when a peer declares one, by Receive, with an error matching
//     [ErrMessageTooLarge].
//   - The payload is opaque: a Conn never interprets message contents.
type Conn interface {
	// Send transmits msg as one message.
	Send(ctx context.Context, msg []byte) error
	// Receive waits for the next message. It returns io.EOF (possibly
	// wrapped) when the peer has closed the connection cleanly between
	// messages.
	Receive(ctx context.Context) ([]byte, error)
	// Close closes the connection. The first call returns the error of
	// closing the underlying resource; later calls return nil.
	Close() error
}

// BufferReceiver is an optional capability of a [Conn]: receiving into a
// buffer the caller provides, so that a loop that handles one message at a
// time does not allocate a new slice for each. The stream Conns of this
// package implement it; use it through a type assertion:
//
//	if br, ok := conn.(transport.BufferReceiver); ok {
//		msg, err = br.ReceiveBuffer(ctx, buf[:0])
//	}
type BufferReceiver interface {
	// ReceiveBuffer is Receive, except that the message is read into buf's
	// backing array when its capacity suffices (a new slice is allocated
	// otherwise). The result aliases buf: the caller must be done with the
	// previous message before reusing buf.
	ReceiveBuffer(ctx context.Context, buf []byte) ([]byte, error)
}

// FrameReceiver is an optional capability of a [Conn]: receiving a message
// with a bound on the time it may take once it has begun, and learning when
// it began. A server uses it to tell a peer that sends nothing (idle) from
// one that sends slowly (a frame in progress), and to bound the second
// without bounding the first. The stream, fragmentation and pipe Conns of
// this package implement it; use it through a type assertion:
//
//	if fr, ok := conn.(transport.FrameReceiver); ok {
//		msg, err = fr.ReceiveFrame(ctx, 5*time.Second, nil)
//	}
type FrameReceiver interface {
	// ReceiveFrame is Receive, except that started, if not nil, is called
	// once, on the calling goroutine, as soon as the first byte (or first
	// fragment) of the message has arrived; and that, when timeout is
	// positive, the rest of the message must then arrive within timeout.
	// A stream Conn that runs out of time fails with an error matching
	// [ErrFrameTimeout] and closes itself, since its stream is out of step;
	// a fragmentation Conn fails with [ErrReassemblyTimeout] (timeout
	// tightens its reassembly timeout) and stays usable. Waiting for the
	// first byte is bounded by ctx only.
	ReceiveFrame(ctx context.Context, timeout time.Duration, started func()) ([]byte, error)
}

// TrySender is an optional capability of a [Conn]: sending a message only
// when that needs no wait for the peer. A caller that must keep receiving
// while a Send waits (on a link without buffering the peer may be blocked
// sending to it, and would never take the message) needs a second
// goroutine for Send; when TrySend succeeds it needs none, and a message
// costs no hand-over between goroutines. The pipe Conns of this package
// implement it; use it through a type assertion:
//
//	if ts, ok := conn.(transport.TrySender); ok {
//		if sent, err = ts.TrySend(msg); !sent && err == nil {
//			// fall back to Send
//		}
//	}
type TrySender interface {
	// TrySend sends msg as Send does when it can do so at once, and
	// reports whether it did. It returns false and a nil error, having
	// sent nothing, when Send would have to wait; and false with the error
	// Send would return when Send would fail at once (a closed Conn, a
	// message too large). Like Send, it does not retain msg.
	TrySend(msg []byte) (bool, error)
}

// RemoteAddresser is an optional capability of a [Conn]: the network
// address of its peer. Stream Conns implement it, returning the address of
// the underlying stream when it is a network connection (those of [Dial]
// and [Listen] are) and nil otherwise. A server uses it to tell sources
// apart; use it through a type assertion.
type RemoteAddresser interface {
	// RemoteAddr returns the peer's address, or nil when it is unknown.
	RemoteAddr() net.Addr
}

// Listener accepts incoming message connections.
//
// Accept may be called from several goroutines; the calls are serialised.
// Close unblocks a pending Accept, which then returns an error matching
// [ErrClosed].
type Listener interface {
	// Accept waits for the next connection. When ctx ends first, it returns
	// an error wrapping ctx.Err() and the Listener stays usable (unless the
	// underlying listener cannot be interrupted; see [NewListener]).
	Accept(ctx context.Context) (Conn, error)
	// Close stops listening. Connections already accepted stay open.
	Close() error
	// Addr returns the listener's network address.
	Addr() net.Addr
}

// PacketConn is a link that carries packets of bounded size, such as a BLE
// GATT characteristic (one write or notification per packet). It is the
// layer below [NewFragmentConn].
//
// The rules of [Conn] apply: SendPacket does not retain p, ReceivePacket
// returns a slice owned by the caller, one SendPacket may run concurrently
// with one ReceivePacket, Close unblocks both. In addition, a ReceivePacket
// interrupted by its context must not consume a packet, so that the next call
// returns it.
type PacketConn interface {
	// SendPacket transmits p as one packet. It fails without sending when
	// len(p) > MTU().
	SendPacket(ctx context.Context, p []byte) error
	// ReceivePacket waits for the next packet.
	ReceivePacket(ctx context.Context) ([]byte, error)
	// MTU returns the largest packet the link carries, in bytes. For BLE
	// this is the usable payload of a write or notification (ATT_MTU - 3).
	MTU() int
	// Close closes the link.
	Close() error
}
