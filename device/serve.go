package device

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// maxConsecutiveReceiveErrors bounds how many recoverable receive errors in
// a row Serve tolerates before giving up on a connection.
const maxConsecutiveReceiveErrors = 16

// DefaultMaxConnections bounds the connections ServeListener serves at
// once when its argument is zero.
const DefaultMaxConnections = 8

// Serve answers the requests arriving on conn, one at a time, until the
// peer closes the connection (Serve returns nil), ctx ends (ctx.Err()) or
// the connection fails (the error). It closes conn before returning.
//
// A message the transport refuses as too large is answered as
// [Agent.Process] answers an oversize request (type 255, status 2). A
// message lost to a transport integrity error (a checksum mismatch, a bad
// fragment, a reassembly timeout) gets no answer: the technician times out
// and retries with a fresh nonce. After 16 such errors in a row Serve gives
// up on the connection.
//
// The connection is one source of requests: it may hold at most
// Config.NonceQuota nonces, released when it closes, and when the
// transport tells the peer's address (transport.RemoteAddresser) its
// verification failures count against that address's throttle. On a Conn
// with the transport.FrameReceiver capability a request must arrive whole
// within Config.FrameTimeout of its first byte, and every response must
// leave within Config.FrameTimeout; Serve drops the connection otherwise
// and returns the error. Serve sets no idle timeout: it serves a link, such
// as a serial line, that nobody else waits for. Every drop is an audit
// event ([Drop]).
func (a *Agent) Serve(ctx context.Context, conn transport.Conn) error {
	return a.serve(ctx, conn, newSource(conn, a.nonceQuota), nil)
}

// serve is Serve for conn, the source src and, under ServeListener, the
// slot s (nil otherwise), which it leaves when it returns.
func (a *Agent) serve(ctx context.Context, conn transport.Conn, src *source, s *slot) error {
	a.conns.Add(1)
	defer a.conns.Add(-1)
	if s != nil {
		defer s.leave()
	}
	defer a.nonces.release(src)
	defer conn.Close()
	fr, _ := conn.(transport.FrameReceiver)
	var started func()
	if s != nil {
		started = s.busy
	}
	failures, requests := 0, 0
	drop := func(reason DropReason, err error) error {
		a.recordDrop(ctx, &Drop{Reason: reason, Err: err, Remote: src.remote, Requests: requests})
		return err
	}
	for {
		var msg []byte
		var err error
		if fr != nil {
			msg, err = fr.ReceiveFrame(ctx, a.frameTimeout, started)
		} else {
			msg, err = conn.Receive(ctx)
		}
		if s != nil {
			s.busy()
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case s != nil && s.dropped() != DropNone:
				// Closed by the table: idle too long, or evicted.
				reason := s.dropped()
				cause := ErrEvicted
				if reason == DropIdle {
					cause = ErrIdleTimeout
				}
				drop(reason, cause)
				return nil
			case errors.Is(err, io.EOF), errors.Is(err, transport.ErrClosed):
				return nil
			case errors.Is(err, transport.ErrFrameTimeout):
				return drop(DropFrameTimeout, err)
			case errors.Is(err, transport.ErrMessageTooLarge),
				errors.Is(err, transport.ErrChecksum),
				errors.Is(err, transport.ErrBadFragment),
				errors.Is(err, transport.ErrReassemblyTimeout):
				if failures++; failures > maxConsecutiveReceiveErrors {
					return drop(DropReceiveErrors, err)
				}
				if errors.Is(err, transport.ErrMessageTooLarge) {
					if err := a.send(ctx, conn, a.oversize(ctx, err, src)); err != nil {
						return a.sendFailed(ctx, err, drop)
					}
				}
				if s != nil {
					s.idle()
				}
				continue
			default:
				return err
			}
		}
		failures = 0
		resp, _ := a.handle(ctx, msg, src)
		requests++
		if err := a.send(ctx, conn, resp); err != nil {
			return a.sendFailed(ctx, err, drop)
		}
		if s != nil {
			s.idle()
		}
	}
}

// send sends a response, within the frame timeout: at once when the
// Conn can take it without waiting (transport.TrySender), so that no
// timer is set.
func (a *Agent) send(ctx context.Context, conn transport.Conn, resp []byte) error {
	if ts, ok := conn.(transport.TrySender); ok && ctx.Err() == nil {
		if sent, err := ts.TrySend(resp); sent || err != nil {
			return err
		}
	}
	if a.frameTimeout <= 0 {
		return conn.Send(ctx, resp)
	}
	ctx, cancel := context.WithTimeout(ctx, a.frameTimeout)
	defer cancel()
	return conn.Send(ctx, resp)
}

// sendFailed returns what serve returns when sending a response failed,
// recording a drop when the peer did not take it in time.
func (a *Agent) sendFailed(ctx context.Context, err error, drop func(DropReason, error) error) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return drop(DropSendTimeout, err)
	}
	return sendError(ctx, err)
}

func sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, transport.ErrClosed) {
		return nil
	}
	return err
}

// oversize records the refusal of a message the transport found too large
// and returns the response for it.
func (a *Agent) oversize(ctx context.Context, cause error, src *source) []byte {
	d := Outcome{Status: token.StatusInvalidRequest, Check: CheckSize, Remote: src.remote}
	d.Err = errors.Join(ErrMessageTooLarge, cause)
	a.record(ctx, &d)
	return wire.Response{Type: wire.TypeErrorResponse, Status: token.StatusInvalidRequest}.Encode()
}

// ServeListener accepts connections from l and serves each with
// [Agent.Serve] in its own goroutine, at most maxConns at once (zero means
// DefaultMaxConnections). It returns when ctx ends (ctx.Err()) or Accept
// fails (nil if the listener was closed, else the error), after closing l
// and waiting for every connection it started to finish; connections still
// open are ended by cancelling the context they are served with.
//
// Beyond what Serve does, ServeListener closes a connection idle (waiting
// for the first byte of a request; on a Conn without the
// transport.FrameReceiver capability, for the whole request) longer than
// Config.IdleTimeout, and
// keeps its connections from locking out newcomers: when a connection
// arrives and maxConns are served, it closes the connection idle longest,
// preferring one that holds no nonce; when none is idle, the oldest
// connection gives up its slot at its next idle moment (within twice the
// frame timeout and the time to process one request) and the newcomer waits
// for it, while further connections wait in the listener's backlog. Each
// connection may hold at most Config.NonceQuota nonces, lowered to
// MaxNonces/maxConns (at least 1) so that every connection served can hold
// one. Every drop is an audit event ([Drop]).
func (a *Agent) ServeListener(ctx context.Context, l transport.Listener, maxConns int) error {
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer l.Close()
	table := newConnTable(maxConns, a.idleTimeout)
	quota := max(1, min(a.nonceQuota, a.nonces.max/maxConns))
	for {
		conn, err := l.Accept(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, transport.ErrClosed):
				return nil
			}
			return err
		}
		s := &slot{conn: conn, src: newSource(conn, quota)}
		if err := table.admit(ctx, s); err != nil {
			conn.Close()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.serve(ctx, conn, s.src, s)
		}()
	}
}
