package device_test

import (
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// forgePoP sends a request with nonce n (which it does not consume) and
// the world's token, signed by a key that is not the token's cnf key: a
// failure that costs the device a signature verification.
func (w *world) forgePoP(n uint64) {
	w.t.Helper()
	r, d := w.send(w.request(n, w.token(nil), newKey(w.t, "P-256"), "read-data"))
	expect(w.t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
}

// throttled reports whether the device refuses a nonce for throttling; it
// fails the test on any other refusal.
func (w *world) throttled() bool {
	w.t.Helper()
	r, d := w.send(wire.NonceRequest)
	switch {
	case r.Status == wire.StatusSuccess:
		return false
	case r.Status == wire.StatusBusy && d.Check == device.CheckNonceIssue && errors.Is(d.Err, device.ErrThrottled):
		return true
	}
	w.t.Fatalf("nonce request: %v %v %v", r.Status, d.Check, d.Err)
	return false
}

// The zero Throttle is the documented default, not "off": 5 failures within
// a minute lock the source out for a minute; 4 do not.
func TestZeroThrottleIsTheDefault(t *testing.T) {
	w := newWorld(t) // cfg.Throttle is the zero value
	n := w.nonce()
	for range device.DefaultThrottleFailures - 1 {
		w.forgePoP(n)
		w.clock.Advance(time.Second)
	}
	if w.throttled() {
		t.Fatalf("throttled after %d failures, the limit is %d", device.DefaultThrottleFailures-1, device.DefaultThrottleFailures)
	}
	w.forgePoP(n)
	if !w.throttled() {
		t.Fatalf("not throttled after %d failures within the window", device.DefaultThrottleFailures)
	}
	// The lockout lasts DefaultThrottleLockout from the last failure.
	w.clock.Advance(device.DefaultThrottleLockout - time.Nanosecond)
	if !w.throttled() {
		t.Fatal("the lockout ended early")
	}
	w.clock.Advance(time.Nanosecond)
	if w.throttled() {
		t.Fatal("still throttled once the lockout is over")
	}
}

// Failures count toward the lockout only while the first and the last of
// Throttle.Failures are less than Throttle.Window apart.
func TestThrottleWindowBoundary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration // as configured; zero is the default
		span   time.Duration // from the first failure to the last
		locked bool
	}{
		{"default window, just inside", 0, device.DefaultThrottleWindow - time.Nanosecond, true},
		{"default window, exactly", 0, device.DefaultThrottleWindow, false},
		{"explicit window, just inside", 10 * time.Second, 10*time.Second - time.Nanosecond, true},
		{"explicit window, exactly", 10 * time.Second, 10 * time.Second, false},
		{"explicit window, wider spread", 10 * time.Second, 12 * time.Second, false},
		{"explicit wide window", 2 * time.Hour, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const failures = 3
			w := newWorld(t, func(c *device.Config) { c.Throttle = device.Throttle{Failures: failures, Window: tc.window} })
			n := w.nonce()
			for i := range failures {
				if i > 0 {
					w.clock.Advance(tc.span / (failures - 1))
				}
				w.forgePoP(n)
			}
			if got := w.throttled(); got != tc.locked {
				t.Fatalf("%d failures over %v with window %v: throttled %v, want %v", failures, tc.span, tc.window, got, tc.locked)
			}
		})
	}
}

// An explicit Throttle.Lockout is kept, not replaced by the default.
func TestThrottleLockoutIsConfigurable(t *testing.T) {
	for _, lockout := range []time.Duration{10 * time.Second, 3 * time.Minute} {
		w := newWorld(t, func(c *device.Config) { c.Throttle = device.Throttle{Failures: 1, Lockout: lockout} })
		w.forgePoP(w.nonce())
		w.clock.Advance(lockout - time.Nanosecond)
		if !w.throttled() {
			t.Fatalf("lockout %v ended early", lockout)
		}
		w.clock.Advance(time.Nanosecond)
		if w.throttled() {
			t.Fatalf("lockout %v: still throttled at its end", lockout)
		}
	}
}

// Which failures count: status 4 from the token signature check on (a
// forged token under a trusted issuer's name, a token for another device,
// an expired one, a forged proof of possession, a revoked token), not a
// token whose algorithm no anchor of the issuer pins (nothing was
// verified), nor a scope denial, nor a request naming an unknown issuer.
func TestThrottleCountsOnlyCostlyFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  func(w *world, n uint64) (wire.Response, device.Outcome)
		check device.Check
		count bool
	}{
		{"forged token signature", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(n, w.tokenWith(newKey(w.t, "P-256"), nil, nil), w.pop, "read-data"))
		}, device.CheckTokenSignature, true},
		{"token for another device", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(n, w.token(func(c *token.Claims) { c.Audience = []string{"ep:hvac-2"} }), w.pop, "read-data"))
		}, device.CheckAudience, true},
		{"expired token", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(n, w.token(func(c *token.Claims) { c.Expiry = testNow.Add(-time.Hour) }), w.pop, "read-data"))
		}, device.CheckTime, true},
		{"forged proof of possession", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(n, w.token(nil), newKey(w.t, "P-256"), "read-data"))
		}, device.CheckProofOfPossession, true},
		{"algorithm no anchor pins", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(n, w.tokenWith(newKey(w.t, "P-384"), &token.IssueOptions{Profile: token.ProfileV2}, nil), w.pop, "read-data"))
		}, device.CheckTokenSignature, false},
		{"unknown issuer", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.madeUpIssuerRequest())
		}, device.CheckAnchor, false},
		{"scope denial", func(w *world, n uint64) (wire.Response, device.Outcome) {
			return w.send(w.request(w.nonce(), w.token(nil), w.pop, "set-temperature"))
		}, device.CheckScope, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, func(c *device.Config) { c.Throttle.Failures = 2 })
			n := w.nonce()
			for range 2 {
				_, d := tc.send(w, n)
				if d.Check != tc.check {
					t.Fatalf("check %v (%v), want %v", d.Check, d.Err, tc.check)
				}
			}
			if got := w.throttled(); got != tc.count {
				t.Fatalf("throttled after two of them: %v, want %v", got, tc.count)
			}
		})
	}
}

// The throttle's window is measured between failures, whatever the time
// since the device started: after 50 minutes of uptime, 5 failures within
// a minute still lock the source out.
func TestThrottleAfterLongUptime(t *testing.T) {
	w := newWorld(t)
	w.clock.Advance(50 * time.Minute) // the world's token is valid for an hour
	n := w.nonce()
	for range device.DefaultThrottleFailures {
		w.forgePoP(n)
		w.clock.Advance(time.Second)
	}
	if !w.throttled() {
		t.Fatalf("not throttled after %d failures within the window, 50 minutes after start", device.DefaultThrottleFailures)
	}
}
