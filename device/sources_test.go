package device_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// madeUpIssuerRequest returns an operation request whose token names an
// issuer the device does not know, signed by a key of its own, with a
// nonce the device never issued: it costs the device no cryptography.
func (w *world) madeUpIssuerRequest() []byte {
	w.t.Helper()
	key := newKey(w.t, "P-256")
	tok := w.tokenWith(key, nil, func(c *token.Claims) { c.Issuer = "made-up-issuer"; c.Key = key.Public() })
	return w.request(0x5eed, tok, key, "read-data")
}

// Requests naming a made-up issuer cost the device no signature
// verification, so they do not count toward throttling: five of them do
// not lock anyone out.
func TestMadeUpIssuerDoesNotLockOut(t *testing.T) {
	w := newWorld(t)
	for range 2 * device.DefaultThrottleFailures {
		r, d := w.send(w.madeUpIssuerRequest())
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrUnknownAnchor)
	}
	if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("technician after requests naming a made-up issuer: %v %v", r.Status, d.Err)
	}
}

// serveTCP serves the world's agent on a loopback listener and returns its
// address; serving stops when the test ends.
func serveTCP(t *testing.T, w *world, maxConns int) string {
	t.Helper()
	l, err := transport.Listen(context.Background(), "127.0.0.1:0", nil)
	if err != nil {
		testenv.Missing(t, "no loopback TCP: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- w.agent.ServeListener(ctx, l, maxConns) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; !errors.Is(err, context.Canceled) {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return l.Addr().String()
}

// flood sends nonce requests, each followed by one of the forged
// operation requests (if any), over c as fast as the device answers, until
// ctx ends or c fails. It counts the rounds and the nonces the device
// granted.
func flood(ctx context.Context, c transport.Conn, forged [][]byte, rounds, granted *atomic.Int64) {
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		if err := c.Send(ctx, wire.NonceRequest); err != nil {
			return
		}
		b, err := c.Receive(ctx)
		if err != nil {
			return
		}
		if r, err := wire.DecodeResponse(b); err == nil && r.Status == wire.StatusSuccess {
			granted.Add(1)
		}
		if len(forged) > 0 {
			if err := c.Send(ctx, forged[i%len(forged)]); err != nil {
				return
			}
			if _, err := c.Receive(ctx); err != nil {
				return
			}
		}
		rounds.Add(1)
	}
}

// technicianCompletes has a technician dial addr (through dial) and try
// read-data up to three times with a client.Session; it fails the test
// unless one attempt succeeds.
func technicianCompletes(t *testing.T, ctx context.Context, w *world, dial func(context.Context) (transport.Conn, error)) {
	t.Helper()
	conn, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &client.Session{Conn: conn, Key: w.pop, Tokens: client.StaticToken(w.token(nil))}
	var errs []error
	for attempt := 1; attempt <= 3; attempt++ {
		res, err := s.Do(ctx, token.Operation{Name: "read-data"})
		if err == nil {
			if string(res.Data) != "ok:read-data" {
				t.Fatalf("data %q", res.Data)
			}
			t.Logf("technician done at attempt %d", attempt)
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("technician failed 3 attempts: %v", errors.Join(errs...))
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Requirement (hardening issue, item 3): with one connection flooding nonce
// requests and forged operations as fast as it can, a technician on
// another connection completes an operation within 3 attempts.
func TestFloodOnOneConnectionDoesNotStarveAnother(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forged func(w *world) [][]byte
	}{
		{"nonces", func(*world) [][]byte { return nil }},
		{"nonces and forgeries", func(w *world) [][]byte {
			return [][]byte{w.madeUpIssuerRequest(), wire.EncodeOperationRequest([]byte("not a signed request"))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			addr := serveTCP(t, w, 0)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dial := func(ctx context.Context) (transport.Conn, error) { return transport.Dial(ctx, addr, nil) }

			flooder, err := dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rounds, granted atomic.Int64
			floodCtx, stopFlood := context.WithCancel(ctx)
			flooding := make(chan struct{})
			go func() { defer close(flooding); flood(floodCtx, flooder, tc.forged(w), &rounds, &granted) }()
			defer func() { stopFlood(); <-flooding }()
			// Let the flood take what it can before the technician arrives.
			waitFor(t, ctx, "the flood", func() bool { return rounds.Load() >= 4*device.DefaultMaxNonces })

			// ServeListener's quota: the pool shared by its connection limit.
			// However many nonces the flooder is granted, it holds at most
			// that many at once: each new one replaces its own oldest.
			quota := max(1, device.DefaultMaxNonces/device.DefaultMaxConnections)
			if n := w.agent.OutstandingNonces(); n > quota {
				t.Fatalf("the flooder holds %d nonces, quota %d", n, quota)
			}
			technicianCompletes(t, ctx, w, dial)
			t.Logf("flooder: %d rounds, %d nonces granted", rounds.Load(), granted.Load())
			if n := w.agent.OutstandingNonces(); n > quota {
				t.Fatalf("%d nonces outstanding after the technician's operation, want at most the flooder's quota %d", n, quota)
			}
		})
	}
}

// Forgeries that cost the device signature verifications (a stolen token
// with a request its thief could not sign) throttle the address they come
// from, not the device: a technician at another address is served.
func TestForgeriesThrottleTheirSourceOnly(t *testing.T) {
	var throttled atomic.Int64
	w := newWorld(t, func(c *device.Config) {
		c.OnOutcome = func(d device.Outcome) {
			if errors.Is(d.Err, device.ErrThrottled) {
				throttled.Add(1)
			}
		}
	})
	addr := serveTCP(t, w, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The flooder dials from 127.0.0.2, another loopback address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		testenv.Missing(t, "cannot dial from 127.0.0.2: %v", err)
	}
	flooder, err := transport.NewStreamConn(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	thief := newKey(t, "P-256")
	forged := [][]byte{w.request(0x5eed, w.token(nil), thief, "read-data")}
	var rounds, granted atomic.Int64
	floodCtx, stopFlood := context.WithCancel(ctx)
	flooding := make(chan struct{})
	go func() { defer close(flooding); flood(floodCtx, flooder, forged, &rounds, &granted) }()
	defer func() { stopFlood(); <-flooding }()
	waitFor(t, ctx, "the flooder to be throttled", func() bool { return throttled.Load() > 0 })

	technicianCompletes(t, ctx, w, func(ctx context.Context) (transport.Conn, error) { return transport.Dial(ctx, addr, nil) })
	t.Logf("flooder: %d rounds, %d nonces granted, %d refusals for throttling", rounds.Load(), granted.Load(), throttled.Load())
}

// nonceOver asks for a nonce over c and returns the response.
func nonceOver(t *testing.T, ctx context.Context, c transport.Conn) wire.Response {
	t.Helper()
	return roundTrip(t, ctx, c, wire.NonceRequest)
}

// A connection holds at most its quota of nonces, so the others still get
// theirs: asking for one more gives up its own oldest, never another's. Its
// nonces are released when it closes.
func TestNonceQuotaPerConnection(t *testing.T) {
	var mu sync.Mutex
	var decisions []device.Outcome
	w := newWorld(t, func(c *device.Config) {
		c.NonceQuota = 3
		c.OnOutcome = func(d device.Outcome) { mu.Lock(); decisions = append(decisions, d); mu.Unlock() }
	})
	last := func() device.Outcome { mu.Lock(); defer mu.Unlock(); return decisions[len(decisions)-1] }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serve := func() (transport.Conn, <-chan error) {
		tech, dev := transport.Pipe()
		served := make(chan error, 1)
		go func() { served <- w.agent.Serve(ctx, dev) }()
		return tech, served
	}
	flooder, flooderServed := serve()
	var held []uint64
	for range 3 {
		r := nonceOver(t, ctx, flooder)
		if r.Status != wire.StatusSuccess {
			t.Fatalf("nonce within the quota: %v", r.Status)
		}
		held = append(held, r.Nonce)
	}
	r := nonceOver(t, ctx, flooder)
	if r.Status != wire.StatusSuccess {
		t.Fatalf("nonce beyond the quota: %v, want a fresh nonce in place of the oldest", r.Status)
	}
	held = append(held, r.Nonce)
	if n := w.agent.OutstandingNonces(); n != 3 {
		t.Fatalf("%d nonces outstanding, want the quota of 3", n)
	}
	if r := roundTrip(t, ctx, flooder, w.request(held[0], w.token(nil), w.pop, "read-data")); r.Status != wire.StatusVerificationError {
		t.Fatalf("request with the given-up oldest nonce: %v", r.Status)
	}
	if d := last(); !errors.Is(d.Err, device.ErrNonceReleased) || d.Check != device.CheckNonce {
		t.Fatalf("decision %v %v, want the nonce released", d.Check, d.Err)
	}

	tech, techServed := serve()
	defer func() { tech.Close(); <-techServed }()
	if r := nonceOver(t, ctx, tech); r.Status != wire.StatusSuccess {
		t.Fatalf("another connection's nonce: %v", r.Status)
	}
	// The others' nonces are never given up for a connection at its quota.
	for range 5 {
		if r := nonceOver(t, ctx, flooder); r.Status != wire.StatusSuccess {
			t.Fatalf("nonce beyond the quota: %v", r.Status)
		}
	}
	if n := w.agent.OutstandingNonces(); n != 4 {
		t.Fatalf("%d nonces outstanding, want 4", n)
	}
	flooder.Close()
	if err := <-flooderServed; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := w.agent.OutstandingNonces(); n != 1 {
		t.Fatalf("%d nonces outstanding after the connection closed, want 1", n)
	}
	r = roundTrip(t, ctx, tech, w.request(held[1], w.token(nil), w.pop, "read-data"))
	if d := last(); r.Status != wire.StatusVerificationError || !errors.Is(d.Err, device.ErrNonceReleased) {
		t.Fatalf("request with a released nonce: %v %v", r.Status, d.Err)
	}
}

// A technician that asks for a nonce again on the same connection (a retry
// after a timeout, a new session on a connection whose previous session
// holds a next nonce) is served at once under ServeListener's quota of 1.
func TestNonceRetryOnTheSameConnection(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := transport.Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- w.agent.ServeListener(ctx, ln, 0) }()
	defer func() { cancel(); <-served }()
	c, err := transport.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := nonceOver(t, ctx, c)
	second := nonceOver(t, ctx, c)
	if first.Status != wire.StatusSuccess || second.Status != wire.StatusSuccess {
		t.Fatalf("nonce, then a retry: %v, %v; want both served", first.Status, second.Status)
	}
	if r := roundTrip(t, ctx, c, w.request(second.Nonce, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("request with the retried nonce: %v", r.Status)
	}
}

// Process and Handle cannot tell senders apart: no quota but MaxNonces.
func TestProcessHasNoNonceQuota(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.NonceQuota = 1 })
	for range device.DefaultMaxNonces {
		w.nonce()
	}
}

func TestNonceQuotaConfig(t *testing.T) {
	_, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, NonceQuota: -1})
	if !errors.Is(err, device.ErrConfig) {
		t.Fatalf("New with a negative NonceQuota: %v, want ErrConfig", err)
	}
}
