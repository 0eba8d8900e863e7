package device

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/securedeviceaccess/sda/internal/wire"
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
func (a *Agent) Serve(ctx context.Context, conn transport.Conn) error {
	defer conn.Close()
	failures := 0
	for {
		msg, err := conn.Receive(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, io.EOF), errors.Is(err, transport.ErrClosed):
				return nil
			case errors.Is(err, transport.ErrMessageTooLarge),
				errors.Is(err, transport.ErrChecksum),
				errors.Is(err, transport.ErrBadFragment),
				errors.Is(err, transport.ErrReassemblyTimeout):
				if failures++; failures > maxConsecutiveReceiveErrors {
					return err
				}
				if errors.Is(err, transport.ErrMessageTooLarge) {
					if err := conn.Send(ctx, a.oversize(ctx, err)); err != nil {
						return sendError(ctx, err)
					}
				}
				continue
			default:
				return err
			}
		}
		failures = 0
		if err := conn.Send(ctx, a.Process(ctx, msg)); err != nil {
			return sendError(ctx, err)
		}
	}
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
func (a *Agent) oversize(ctx context.Context, cause error) []byte {
	d := Decision{Status: StatusInvalidRequest, Check: CheckSize}
	d.Err = errors.Join(ErrMessageTooLarge, cause)
	a.record(ctx, &d)
	return wire.Response{Type: wire.TypeErrorResponse, Status: StatusInvalidRequest}.Encode()
}

// ServeListener accepts connections from l and serves each with
// [Agent.Serve] in its own goroutine, at most maxConns at once (zero means
// DefaultMaxConnections; further connections wait in the listener's
// backlog). It returns when ctx ends (ctx.Err()) or Accept fails (nil if
// the listener was closed, else the error), after closing l and waiting
// for every connection it started to finish; connections still open are
// ended by cancelling the context they are served with.
func (a *Agent) ServeListener(ctx context.Context, l transport.Listener, maxConns int) error {
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer l.Close()
	slots := make(chan struct{}, maxConns)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		conn, err := l.Accept(ctx)
		if err != nil {
			<-slots
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, transport.ErrClosed):
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			_ = a.Serve(ctx, conn)
		}()
	}
}
