package device_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// TestStats: the agent's gauges follow its nonces, its throttled sources
// and its served connections.
func TestStats(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.Throttle = device.Throttle{Failures: 2}; c.MaxNonces = 8 })
	want := func(s device.Stats) {
		t.Helper()
		if got := w.agent.Stats(); got != s {
			t.Fatalf("Stats = %+v, want %+v", got, s)
		}
	}
	want(device.Stats{MaxNonces: 8})
	w.nonce()
	w.nonce()
	want(device.Stats{NoncesOutstanding: 2, MaxNonces: 8})

	// Two requests whose token signature fails lock the device-wide
	// source out; their nonces stay outstanding (the nonce is checked
	// after the signatures).
	forged := w.tokenWith(newKey(t, "P-256"), nil, nil)
	for range 2 {
		r, d := w.send(w.request(w.nonce(), forged, w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrSignature)
	}
	want(device.Stats{NoncesOutstanding: 4, MaxNonces: 8, SourcesLockedOut: 1})
	if _, d := w.send(wire.NonceRequest); !errors.Is(d.Err, device.ErrThrottled) {
		t.Fatalf("nonce request while locked out: %v", d.Err)
	}
	w.clock.Advance(device.DefaultThrottleLockout)
	want(device.Stats{NoncesOutstanding: 4, MaxNonces: 8})

	// A served connection counts while Serve runs.
	tech, dev := transport.Pipe()
	done := make(chan error, 1)
	go func() { done <- w.agent.Serve(context.Background(), dev) }()
	ctx := context.Background()
	if err := tech.Send(ctx, wire.NonceRequest); err != nil {
		t.Fatal(err)
	}
	if _, err := tech.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.agent.Stats(); got.Connections != 1 || got.NoncesOutstanding != 5 {
		t.Errorf("Stats while serving = %+v, want 1 connection and 5 nonces", got)
	}
	tech.Close()
	if err := <-done; err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("Serve: %v", err)
	}
	if got := w.agent.Stats(); got.Connections != 0 || got.NoncesOutstanding != 4 {
		t.Errorf("Stats after the connection closed = %+v, want no connection and the 4 nonces of Handle (the connection's released)", got)
	}
}
