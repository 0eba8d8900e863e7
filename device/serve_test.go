package device_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/transport"
)

func roundTrip(t *testing.T, ctx context.Context, c transport.Conn, req []byte) wire.Response {
	t.Helper()
	if err := c.Send(ctx, req); err != nil {
		t.Fatal(err)
	}
	out, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.DecodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestServeOverPipe(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tech, dev := transport.Pipe()
	done := make(chan error, 1)
	go func() { done <- w.agent.Serve(ctx, dev) }()

	nr := roundTrip(t, ctx, tech, wire.NonceRequest)
	r := roundTrip(t, ctx, tech, w.request(nr.Nonce, w.token(nil), w.pop, "read-data"))
	if r.Status != wire.StatusSuccess || string(r.Data) != "ok:read-data" {
		t.Fatalf("%+v", r)
	}
	if r := roundTrip(t, ctx, tech, []byte{0xff}); r.Type != wire.TypeErrorResponse || r.Status != wire.StatusInvalidRequest {
		t.Fatalf("%+v", r)
	}
	tech.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after the peer closed: %v", err)
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	tech, dev := transport.Pipe()
	defer tech.Close()
	done := make(chan error, 1)
	go func() { done <- w.agent.Serve(ctx, dev) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

func TestServeListenerOverTCP(t *testing.T) {
	before := runtime.NumGoroutine()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := transport.Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		testenv.Missing(t, "no loopback TCP: %v", err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.agent.ServeListener(serveCtx, l, 2) }()

	for i := range 3 {
		c, err := transport.Dial(ctx, l.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		nr := roundTrip(t, ctx, c, wire.NonceRequest)
		if r := roundTrip(t, ctx, c, w.request(nr.Nonce, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("connection %d: %+v", i, r)
		}
		if i < 2 {
			c.Close()
		} else {
			defer c.Close() // left open: stopping the server must end it
		}
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ServeListener: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Fatalf("%d goroutines before, %d after", before, n)
	}
}

// trySendConn is a Conn with the transport.TrySender capability: try
// decides what TrySend does (nil: hand the message to the pipe at once).
// It counts the calls of Send and TrySend.
type trySendConn struct {
	transport.Conn
	pipe        transport.TrySender
	try         func(msg []byte) (bool, error)
	sends, trys atomic.Int32
}

func (c *trySendConn) Send(ctx context.Context, msg []byte) error {
	c.sends.Add(1)
	return c.Conn.Send(ctx, msg)
}

func (c *trySendConn) TrySend(msg []byte) (bool, error) {
	c.trys.Add(1)
	if c.try != nil {
		return c.try(msg)
	}
	return c.pipe.TrySend(msg)
}

// Serve hands a response to a Conn that can take it at once with TrySend,
// without Send and its timer; when TrySend would wait it sends with Send;
// when TrySend fails as Send would, Serve ends as after a failed Send.
func TestServeTrySend(t *testing.T) {
	for _, tc := range []struct {
		name        string
		try         func([]byte) (bool, error)
		sends, trys int32
	}{
		{"taken at once", nil, 0, 2},
		{"would wait", func([]byte) (bool, error) { return false, nil }, 2, 2},
		{"fails", func([]byte) (bool, error) { return false, io.ErrClosedPipe }, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tech, dev := transport.Pipe()
			defer tech.Close()
			conn := &trySendConn{Conn: dev, pipe: dev.(transport.TrySender), try: tc.try}
			done := make(chan error, 1)
			go func() { done <- w.agent.Serve(ctx, conn) }()
			if err := tech.Send(ctx, wire.NonceRequest); err != nil {
				t.Fatal(err)
			}
			if tc.trys == 1 {
				if err := <-done; err != nil {
					t.Fatalf("Serve after TrySend failed: %v", err)
				}
			} else {
				out, err := tech.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				nr, err := wire.DecodeResponse(out)
				if err != nil || nr.Status != wire.StatusSuccess {
					t.Fatalf("nonce response %+v, %v", nr, err)
				}
				if r := roundTrip(t, ctx, tech, w.request(nr.Nonce, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess || string(r.Data) != "ok:read-data" {
					t.Fatalf("%+v", r)
				}
				tech.Close()
				if err := <-done; err != nil {
					t.Fatalf("Serve after the peer closed: %v", err)
				}
			}
			if sends, trys := conn.sends.Load(), conn.trys.Load(); sends != tc.sends || trys != tc.trys {
				t.Errorf("Send called %d times, TrySend %d; want %d, %d", sends, trys, tc.sends, tc.trys)
			}
		})
	}
}
