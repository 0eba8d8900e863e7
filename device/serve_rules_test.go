package device_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/transport"
)

// A negative FrameTimeout or IdleTimeout means none: Serve and
// ServeListener answer without a deadline on the response.
func TestServeWithoutTimeouts(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.FrameTimeout, c.IdleTimeout = -1, -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tech, dev := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- w.agent.Serve(ctx, dev) }()
	nr := roundTrip(t, ctx, tech, wire.NonceRequest)
	if r := roundTrip(t, ctx, tech, w.request(nr.Nonce, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("Serve: %+v", r)
	}
	tech.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}

	c, err := transport.Dial(ctx, serveTCP(t, w, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nr = roundTrip(t, ctx, c, wire.NonceRequest)
	if r := roundTrip(t, ctx, c, w.request(nr.Nonce, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("ServeListener: %+v", r)
	}
}

// failingSendConn answers one nonce request and fails to send with err.
type failingSendConn struct {
	scriptConn
	err error
}

func (c *failingSendConn) Send(context.Context, []byte) error { return c.err }

// What Serve returns when a response cannot be sent: nil when the
// connection is closed (by either end), the serving context's error when
// it ended, and the transport's error otherwise; only a response the peer
// did not take in time is a drop.
func TestServeSendFailures(t *testing.T) {
	broken := errors.New("link down")
	for _, tc := range []struct {
		name     string
		err      error
		cancel   bool
		want     error // nil: Serve returns nil
		dropped  bool
		wantDrop device.DropReason
	}{
		{"peer closed", fmt.Errorf("send: %w", io.ErrClosedPipe), false, nil, false, 0},
		{"closed here", fmt.Errorf("send: %w", transport.ErrClosed), false, nil, false, 0},
		{"link failure", fmt.Errorf("send: %w", broken), false, broken, false, 0},
		{"serving ended", fmt.Errorf("send: %w", broken), true, context.Canceled, false, 0},
		{"response not taken in time", fmt.Errorf("send: %w", context.DeadlineExceeded), false, context.DeadlineExceeded, true, device.DropSendTimeout},
		{"deadline after the serving ended", fmt.Errorf("send: %w", context.DeadlineExceeded), true, context.Canceled, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drops []device.Drop
			w := newWorld(t, func(c *device.Config) { c.OnDrop = func(d device.Drop) { drops = append(drops, d) } })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			conn := &failingSendConn{scriptConn{script: []scriptStep{{msg: wire.NonceRequest}}}, tc.err}
			err := w.agent.Serve(ctx, conn)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Serve: %v, want %v", err, tc.want)
			}
			if tc.dropped != (len(drops) == 1) || len(drops) > 1 || tc.dropped && (drops[0].Reason != tc.wantDrop || drops[0].Requests != 1) {
				t.Fatalf("drops %+v", drops)
			}
			if n := w.agent.OutstandingNonces(); n != 0 {
				t.Fatalf("%d nonces outstanding after Serve returned", n)
			}
		})
	}
}

// remoteScriptConn is a scriptConn that tells its peer's address.
type remoteScriptConn struct {
	scriptConn
	remote net.Addr
}

func (c *remoteScriptConn) RemoteAddr() net.Addr { return c.remote }

// A drop is an audit event at Warn with its reason, the number of requests
// answered, the peer's address when known and the error.
func TestDropAuditEvent(t *testing.T) {
	garbage := make([]scriptStep, 17)
	for i := range garbage {
		garbage[i].err = transport.ErrChecksum
	}
	peer := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000}
	for _, tc := range []struct {
		name   string
		conn   transport.Conn
		remote any // the event's remote; nil: absent
	}{
		{"without an address", &scriptConn{script: append([]scriptStep{{msg: wire.NonceRequest}}, garbage...)}, nil},
		{"with an address", &remoteScriptConn{scriptConn{script: append([]scriptStep{{msg: wire.NonceRequest}}, garbage...)}, peer}, peer.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log auditLog
			var drops []device.Drop
			w := newWorld(t, func(c *device.Config) {
				c.Logger = log.logger(slog.LevelWarn)
				c.OnDrop = func(d device.Drop) { drops = append(drops, d) }
			})
			if err := w.agent.Serve(context.Background(), tc.conn); !errors.Is(err, transport.ErrChecksum) {
				t.Fatalf("Serve: %v", err)
			}
			events := log.events(t)
			if len(events) != 1 || len(drops) != 1 {
				t.Fatalf("events %v, drops %+v", events, drops)
			}
			e := events[0]
			if e["msg"] != "sda: connection dropped" || e["level"] != "WARN" || e["reason"] != "receive-errors" ||
				e["requests"] != float64(1) || e["error"] != transport.ErrChecksum.Error() || e["remote"] != tc.remote {
				t.Fatalf("event %v", e)
			}
			if d := drops[0]; d.Reason != device.DropReceiveErrors || d.Requests != 1 || tc.remote == nil && d.Remote != nil || tc.remote != nil && d.Remote != peer {
				t.Fatalf("drop %+v", d)
			}
		})
	}
}

// failingListener's Accept fails with err.
type failingListener struct{ err error }

func (l failingListener) Accept(context.Context) (transport.Conn, error) { return nil, l.err }
func (l failingListener) Close() error                                   { return nil }
func (l failingListener) Addr() net.Addr                                 { return &net.TCPAddr{} }

// ServeListener returns the listener's error when Accept fails while its
// context is alive, nil when the listener was closed, and the context's
// error once the context ended.
func TestServeListenerAcceptErrors(t *testing.T) {
	w := newWorld(t)
	broken := errors.New("accept failed")
	if err := w.agent.ServeListener(context.Background(), failingListener{broken}, 2); !errors.Is(err, broken) {
		t.Errorf("failing Accept: %v, want its error", err)
	}
	if err := w.agent.ServeListener(context.Background(), failingListener{transport.ErrClosed}, 2); err != nil {
		t.Errorf("closed listener: %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.agent.ServeListener(ctx, failingListener{broken}, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v, want context.Canceled", err)
	}
}
