package device_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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
