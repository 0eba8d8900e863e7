package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Dial connects to address over TCP and returns a stream Conn framed as
// opts says (nil opts: SDA serial framing, 64 KiB limit). ctx bounds the
// connection attempt only; it is not kept.
func Dial(ctx context.Context, address string, opts *Options) (Conn, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("transport: dial: %w", err)
	}
	return newStreamConn(nc, o), nil
}

// Listen listens on the TCP address and returns a Listener whose
// connections are framed as opts says (nil opts: SDA serial framing, 64 KiB
// limit). ctx bounds setting up the listener only; it is not kept. Use
// "127.0.0.1:0" to listen on a free loopback port, then Addr to find it.
func Listen(ctx context.Context, address string, opts *Options) (Listener, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	return newListener(l, o), nil
}

// NewListener returns a Listener that accepts connections from l (a TLS
// listener, a Unix socket listener, ...) and frames them as opts says. The
// Listener owns l and closes it on Close.
//
// If l has a SetDeadline method (as *net.TCPListener and *net.UnixListener
// do), a cancelled Accept is interrupted through it and the Listener stays
// usable. Otherwise cancelling a pending Accept closes the Listener, the only
// way to unblock it.
func NewListener(l net.Listener, opts *Options) (Listener, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return newListener(l, o), nil
}

type deadliner interface{ SetDeadline(time.Time) error }

type listener struct {
	l     net.Listener
	opts  Options
	dl    deadliner // nil when Accept cannot be interrupted by a deadline
	sem   chan struct{}
	dirty bool // guarded by sem: deadline set in the past
	done  chan struct{}
	once  sync.Once
}

var _ Listener = (*listener)(nil)

func newListener(l net.Listener, o Options) *listener {
	ln := &listener{l: l, opts: o, sem: make(chan struct{}, 1), done: make(chan struct{})}
	if d, ok := l.(deadliner); ok {
		ln.dl = d
	}
	return ln
}

// Accept implements [Listener].
func (ln *listener) Accept(ctx context.Context) (Conn, error) {
	select {
	case ln.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: accept: %w", ctx.Err())
	case <-ln.done:
		return nil, fmt.Errorf("transport: accept: %w", ErrClosed)
	}
	defer func() { <-ln.sem }()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transport: accept: %w", err)
	}
	if ln.dl != nil && ln.dirty {
		if err := ln.dl.SetDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("transport: accept: %w", err)
		}
		ln.dirty = false
	}
	stop := func() bool { return false }
	if ctx.Done() != nil {
		fired := make(chan struct{})
		cancel := context.AfterFunc(ctx, func() {
			defer close(fired)
			if ln.dl != nil {
				_ = ln.dl.SetDeadline(time.Unix(1, 0))
			} else {
				_ = ln.Close()
			}
		})
		stop = func() bool {
			if cancel() {
				return false
			}
			<-fired
			return true
		}
	}
	nc, err := ln.l.Accept()
	if stop() {
		ln.dirty = true
		if err != nil {
			return nil, fmt.Errorf("transport: accept: %w", ctx.Err())
		}
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, fmt.Errorf("transport: accept: %w", ErrClosed)
		}
		return nil, fmt.Errorf("transport: accept: %w", err)
	}
	return newStreamConn(nc, ln.opts), nil
}

// Close implements [Listener].
func (ln *listener) Close() error {
	var err error
	ln.once.Do(func() {
		close(ln.done)
		err = ln.l.Close()
	})
	return err
}

// Addr implements [Listener].
func (ln *listener) Addr() net.Addr { return ln.l.Addr() }
