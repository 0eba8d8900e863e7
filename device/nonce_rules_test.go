package device_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// Nonce 0 is never issued, so it is never accepted: not on a fresh device,
// not after nonces were used.
func TestNonceZeroIsNeverAccepted(t *testing.T) {
	w := newWorld(t)
	for range 2 {
		r, d := w.send(w.request(0, w.token(nil), w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceUnknown)
		if r, _ := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("a genuine request: %v", r.Status)
		}
	}
	if w.runs("read-data") != 2 {
		t.Fatalf("handler ran %d times, want 2", w.runs("read-data"))
	}
}

// A nonce is usable for Config.NonceLifetime: up to the last instant
// before it, not at it.
func TestNonceLifetimeBoundary(t *testing.T) {
	for _, life := range []time.Duration{0, 10 * time.Second} {
		w := newWorld(t, func(c *device.Config) { c.NonceLifetime = life })
		if life == 0 {
			life = device.DefaultNonceLifetime
		}
		n := w.nonce()
		w.clock.Advance(life - time.Nanosecond)
		if r, d := w.send(w.request(n, w.token(nil), w.pop, "read-data")); !d.Allowed() {
			t.Fatalf("lifetime %v: nonce used just before it expires: %v %v", life, r.Status, d.Err)
		}
		n = w.nonce()
		w.clock.Advance(life)
		r, d := w.send(w.request(n, w.token(nil), w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceExpired)
		if w.agent.OutstandingNonces() != 0 {
			t.Fatalf("lifetime %v: %d nonces outstanding", life, w.agent.OutstandingNonces())
		}
	}
}

// Exactly MaxNonces nonces may be outstanding, explicit or default; an
// expired one gives its slot back.
func TestMaxNoncesBoundary(t *testing.T) {
	for _, max := range []int{0, 1, 3} {
		w := newWorld(t, func(c *device.Config) { c.MaxNonces = max })
		if max == 0 {
			max = device.DefaultMaxNonces
		}
		for range max {
			w.nonce()
		}
		r, d := w.send(wire.NonceRequest)
		expect(t, r, d, wire.StatusBusy, device.CheckNonceIssue, device.ErrNoncesExhausted)
		w.clock.Advance(device.DefaultNonceLifetime)
		w.nonce()
	}
}

// zeroThenRand reads zeros for its first zeros reads of 8 bytes, then
// counts up from 1.
type zeroThenRand struct {
	zeros int
	next  byte
}

func (r *zeroThenRand) Read(p []byte) (int, error) {
	clear(p)
	if r.zeros > 0 {
		r.zeros--
		return len(p), nil
	}
	r.next++
	p[len(p)-1] = r.next
	return len(p), nil
}

// failingRand fails every read.
type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("entropy source broken") }

// Nonces are never 0 and never repeat one outstanding; a random source
// that keeps repeating itself or fails is an internal error, not a
// predictable nonce.
func TestNonceRandomness(t *testing.T) {
	t.Run("zero is skipped", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.Rand = &zeroThenRand{zeros: 7} })
		if n := w.nonce(); n != 1 {
			t.Fatalf("nonce %d, want 1 (the first value after the zeros)", n)
		}
	})
	t.Run("only zeros", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.Rand = &zeroThenRand{zeros: 1 << 30} })
		r, d := w.send(wire.NonceRequest)
		expect(t, r, d, wire.StatusInternalError, device.CheckNonceIssue, device.ErrInternal)
	})
	t.Run("a repeating source", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.Rand = bytes.NewReader(bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0, 5}, 9)) })
		if n := w.nonce(); n != 5 {
			t.Fatalf("nonce %d", n)
		}
		r, d := w.send(wire.NonceRequest) // 5 is outstanding: 8 more 5s do not make a nonce
		expect(t, r, d, wire.StatusInternalError, device.CheckNonceIssue, device.ErrInternal)
	})
	t.Run("a used value is not issued again", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) {
			c.Rand = io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{0, 0, 0, 0, 0, 0, 0, 5}, 8)), &zeroThenRand{next: 5})
		})
		n := w.nonce()
		if r, d := w.send(w.request(n, w.token(nil), w.pop, "read-data")); !d.Allowed() {
			t.Fatalf("%v %v", r.Status, d.Err)
		}
		if n := w.nonce(); n != 6 {
			t.Fatalf("nonce %d, want 6: the used 5 is skipped", n)
		}
	})
	t.Run("a failing source", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.Rand = failingRand{} })
		r, d := w.send(wire.NonceRequest)
		expect(t, r, d, wire.StatusInternalError, device.CheckNonceIssue, device.ErrInternal)
	})
}

// A request whose proof of possession verified but whose nonce did not
// gets no next nonce (v2): only authentic and fresh requests do.
func TestNextNonceOnlyForFreshRequests(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.NextNonce = true })
	tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
	req := w.request(w.nonce(), tok, w.pop, "read-data")
	r, d := w.send(req)
	if !d.Allowed() || r.NextNonce == 0 {
		t.Fatalf("first use: %+v %v", r, d.Err)
	}
	r, d = w.send(req)
	expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceReplayed)
	if r.NextNonce != 0 || d.NextNonce != 0 {
		t.Fatalf("a replay got a next nonce: %d", r.NextNonce)
	}
	// A throttled source gets none either.
	w = newWorld(t, func(c *device.Config) { c.NextNonce = true; c.Throttle.Failures = 1 })
	n := w.nonce()
	w.forgePoP(w.nonce())
	tok = w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
	r, d = w.send(w.request(n, tok, w.pop, "read-data"))
	if !d.Allowed() || r.NextNonce != 0 {
		t.Fatalf("throttled source: %+v %v, want success without a next nonce", r, d.Err)
	}
}

// A connection's quota counts the nonces it holds now: a nonce it used or
// that expired frees its place, so asking for another does not give up
// one it still holds.
func TestNonceQuotaCountsHeldNonces(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.NonceQuota = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tech, dev := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- w.agent.Serve(ctx, dev) }()
	defer func() { tech.Close(); <-served }()
	nonce := func() uint64 {
		t.Helper()
		r := nonceOver(t, ctx, tech)
		if r.Status != wire.StatusSuccess {
			t.Fatalf("nonce: %v", r.Status)
		}
		return r.Nonce
	}
	use := func(n uint64) {
		t.Helper()
		if r := roundTrip(t, ctx, tech, w.request(n, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("request with a held nonce: %v", r.Status)
		}
	}
	// Used: n1 frees its place, n2 is kept when n3 is asked for.
	n1, n2 := nonce(), nonce()
	use(n1)
	n3 := nonce()
	use(n2)
	// Expired: n3 and n4 free their places, n5 is kept when n6 is asked for.
	nonce() // n4
	w.clock.Advance(device.DefaultNonceLifetime)
	n5 := nonce()
	n6 := nonce()
	use(n5)
	use(n6)
	r := roundTrip(t, ctx, tech, w.request(n3, w.token(nil), w.pop, "read-data"))
	if r.Status != wire.StatusVerificationError {
		t.Fatalf("request with an expired nonce: %v", r.Status)
	}
}
