package device_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// A flood of nonce requests cannot evict a nonce a technician holds: once
// every slot holds an unexpired nonce the device answers Busy.
func TestNonceFloodCannotEvictATechniciansNonce(t *testing.T) {
	w := newWorld(t)
	mine := w.nonce()
	for i := 1; i < device.DefaultMaxNonces; i++ {
		w.nonce() // the attacker
	}
	r, d := w.send(wire.NonceRequest)
	if r.Type != wire.TypeNonceResponse || r.Nonce != 0 {
		t.Fatalf("response %+v", r)
	}
	expect(t, r, d, wire.StatusBusy, device.CheckNonceIssue, device.ErrNoncesExhausted)
	if n := w.agent.OutstandingNonces(); n != device.DefaultMaxNonces {
		t.Fatalf("%d nonces outstanding", n)
	}
	if r, d := w.send(w.request(mine, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("the technician's nonce was lost: %v", d.Err)
	}
	// Using a nonce frees its slot; expiry frees the attacker's.
	w.nonce()
	if r, _ := w.send(wire.NonceRequest); r.Status != wire.StatusBusy {
		t.Fatalf("status %v", r.Status)
	}
	w.clock.Advance(device.DefaultNonceLifetime)
	w.nonce()
	if n := w.agent.OutstandingNonces(); n != 1 {
		t.Fatalf("%d nonces outstanding after expiry", n)
	}
}

func TestThrottleAfterRepeatedFailures(t *testing.T) {
	w := newWorld(t, func(c *device.Config) {
		c.Throttle = device.Throttle{Failures: 3, Window: time.Minute, Lockout: 2 * time.Minute}
	})
	held := w.nonce()
	thief := newKey(t, "P-256")
	for range 3 {
		w.send(w.request(w.nonce(), w.token(nil), thief, "read-data"))
	}
	r, d := w.send(wire.NonceRequest)
	expect(t, r, d, wire.StatusBusy, device.CheckNonceIssue, device.ErrThrottled)
	// A nonce issued before the lockout still works.
	if r, d := w.send(w.request(held, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("held nonce during lockout: %v", d.Err)
	}
	w.clock.Advance(2 * time.Minute)
	w.nonce()

	// Failures spread wider than the window do not lock the device.
	for range 4 {
		w.send(w.request(w.nonce(), w.token(nil), thief, "read-data"))
		w.clock.Advance(31 * time.Second)
	}
	w.nonce()

	// Malformed requests and access denials are not guesses and do not count.
	for range 5 {
		w.send(wire.EncodeOperationRequest([]byte{0x00}))
		w.do(w.token(nil), "set-temperature", token.Int(1))
	}
	w.nonce()
}

func TestThrottleDisabled(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.Throttle.Failures = -1 })
	n := w.nonce()
	for range 20 {
		r, d := w.send(w.request(n, w.token(nil), newKey(t, "P-256"), "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
	}
	w.nonce()
}

func TestTrustedClockCannotBeRolledBack(t *testing.T) {
	w := newWorld(t)
	if r, _ := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatal(r.Status)
	}
	if got, want := w.agent.TimeLowerBound(), testNow.Add(-time.Minute); !got.Equal(want) {
		t.Fatalf("lower bound %v, want %v", got, want)
	}
	// The clock jumps back a day: a token that expired an hour ago (by the
	// lower bound) is still rejected.
	w.clock.Advance(-24 * time.Hour)
	old := w.token(func(c *token.Claims) {
		c.IssuedAt, c.NotBefore, c.Expiry = testNow.Add(-3*time.Hour), testNow.Add(-3*time.Hour), testNow.Add(-time.Hour)
	})
	r, d := w.do(old, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
}

func TestClocklessLowerBoundPersistsAcrossRestarts(t *testing.T) {
	state, err := device.OpenFileState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(c *device.Config) {
		c.ClockMode = device.ClockLowerBound
		c.State = state
		c.Clock = (&fakeClock{t: time.Unix(0, 0)}).Now // uptime only
	})
	// No bound yet: the first token is accepted and the decision says so.
	r, d := w.do(w.token(nil), "read-data")
	if r.Status != wire.StatusSuccess || !d.TimeUnknown {
		t.Fatalf("bootstrap: %v %v unknown=%v", r.Status, d.Err, d.TimeUnknown)
	}
	bound := testNow.Add(-time.Minute)
	if !w.agent.TimeLowerBound().Equal(bound) {
		t.Fatalf("bound %v", w.agent.TimeLowerBound())
	}
	w.restart()
	if !w.agent.TimeLowerBound().Equal(bound) {
		t.Fatalf("bound after restart %v", w.agent.TimeLowerBound())
	}
	expired := w.token(func(c *token.Claims) {
		c.IssuedAt, c.NotBefore, c.Expiry = bound.Add(-2*time.Hour), bound.Add(-2*time.Hour), bound.Add(-device.DefaultLeeway-time.Second)
	})
	r, d = w.do(expired, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
	// nbf cannot be checked without a clock: a token valid from tomorrow
	// is accepted (documented trade-off), and its iat raises the bound.
	future := w.token(func(c *token.Claims) {
		c.IssuedAt, c.NotBefore, c.Expiry = testNow.Add(24*time.Hour), testNow.Add(24*time.Hour), testNow.Add(25*time.Hour)
	})
	if r, d := w.do(future, "read-data"); r.Status != wire.StatusSuccess || d.TimeUnknown {
		t.Fatalf("future token: %v %v", r.Status, d.Err)
	}
	r, d = w.do(w.token(nil), "read-data") // expired before the new bound
	expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
}

func TestClocklessStrictRejectsWhileTimeUnknown(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.ClockMode = device.ClockStrict })
	r, d := w.do(w.token(nil), "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckTime, device.ErrTimeUnknown)

	w = newWorld(t, func(c *device.Config) {
		c.ClockMode = device.ClockStrict
		c.MinTime = testNow.Add(-30 * 24 * time.Hour) // firmware build time
	})
	if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess || d.TimeUnknown {
		t.Fatalf("with MinTime: %v %v", r.Status, d.Err)
	}
}

func TestRevocationOperation(t *testing.T) {
	state := &device.MemoryState{}
	w := newWorld(t, func(c *device.Config) {
		c.State = state
		c.MaxRevocations = 2
	})
	admin := w.token(func(c *token.Claims) {
		c.Subject, c.ID = "admin", []byte{0xad}
		c.Scope, _ = token.ParseScope("sda-revoke read-data")
	})
	victim := w.token(func(c *token.Claims) { c.ID = nil })
	sum := sha256.Sum256(victim)

	// Not in scope: the built-in is guarded like any operation.
	r, d := w.do(victim, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:])))
	expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)

	// Bad arguments fail the operation and change nothing.
	for _, args := range [][]token.Arg{
		{token.Text("hash")},
		{token.Text("jti"), token.Text("00")},
		{token.Text("hash"), token.Text("abcd")},
		{token.Text("cti"), token.Text("not hex")},
		{token.Text("cti"), token.Text("ab"), token.Int(-5)},
	} {
		r, d := w.do(admin, device.RevokeOperation, args...)
		expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrOperationFailed)
	}
	if r, _ := w.do(victim, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatal("victim rejected before revocation")
	}
	if r, d := w.do(admin, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:]))); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke by hash: %v", d.Err)
	}
	r, d = w.do(victim, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)

	// Persisted: a restart keeps the list.
	w.restart()
	r, d = w.do(victim, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)

	// Bounded: the list holds 2; an entry whose token expired (until) is
	// dropped to make room, an unexpired one never is.
	if r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text("01"), token.Int(testNow.Add(-time.Hour).Unix())); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke cti 01: %v", d.Err)
	}
	if r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text("02")); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke cti 02 (dropping the expired entry): %v", d.Err)
	}
	r, d = w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text("03"))
	expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrRevocationListFull)
	r, d = w.do(victim, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
}

// failingState fails every Store, as a full or broken flash would.
type failingState struct{ device.MemoryState }

func (*failingState) Store(string, []byte) error { return errors.New("flash full") }

func TestRevocationIsNotHalfApplied(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.State = &failingState{} })
	admin := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke read-data") })
	r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text("c701"))
	expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrState)
	// Not persisted, so not applied either.
	if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("revocation applied without being persisted: %v", d.Err)
	}
}

func TestCorruptStateStopsTheDevice(t *testing.T) {
	for key, val := range map[string][]byte{
		"time-floor":  {1, 2, 3},
		"revocations": []byte(`{"cti":[{"id":"AA==","extra":1}]}`),
	} {
		st := &device.MemoryState{}
		st.Store(key, val)
		_, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, State: st})
		if !errors.Is(err, device.ErrState) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func TestFileState(t *testing.T) {
	dir := t.TempDir()
	s, err := device.OpenFileState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load("time-floor"); v != nil || err != nil {
		t.Fatalf("absent key: %v %v", v, err)
	}
	for _, v := range [][]byte{[]byte("one"), []byte("two")} {
		if err := s.Store("time-floor", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load("time-floor"); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("load %q %v", got, err)
		}
	}
	for _, bad := range []string{"", "../x", "A", "a/b"} {
		if err := s.Store(bad, nil); !errors.Is(err, device.ErrState) {
			t.Errorf("key %q: %v", bad, err)
		}
	}
	s2, _ := device.OpenFileState(dir)
	if got, _ := s2.Load("time-floor"); string(got) != "two" {
		t.Fatalf("reopened: %q", got)
	}
	entries, _ := filepathGlob(dir + "/.*")
	if len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestThrottleFailuresBounded(t *testing.T) {
	_, err := device.New(device.Config{
		Identity: token.Identity{Endpoint: "hvac-1"},
		Anchors:  newWorld(t).store,
		Throttle: device.Throttle{Failures: device.MaxThrottleFailures + 1},
	})
	if !errors.Is(err, device.ErrConfig) {
		t.Fatalf("New with Throttle.Failures over the bound: %v, want ErrConfig", err)
	}
}
