package device_test

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// reencodings returns encodings of tok (a v1 token as token.Issue makes
// it: 61(18([h'A10126', {}, payload, r||s]))) that carry the same signed
// content and so verify just as well: what the holder of a revoked token can
// send instead of the bytes the issuer made.
func reencodings(t *testing.T, tok []byte) map[string][]byte {
	t.Helper()
	if !bytes.HasPrefix(tok, []byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}) {
		t.Fatalf("unexpected token layout %x", tok[:9])
	}
	// Tag 61 stripped: 18(COSE_Sign1) is accepted too.
	stripped := bytes.Clone(tok[2:])
	// An unprotected header label nobody reads.
	extraHeader := append(bytes.Clone(tok[:8]), 0xa1, 0x18, 0x63, 0x00)
	extraHeader = append(extraHeader, tok[9:]...)
	// The other ECDSA signature for the same r: (r, n-s).
	highS := bytes.Clone(tok)
	sig := highS[len(highS)-32:]
	s := new(big.Int).SetBytes(sig)
	new(big.Int).Sub(elliptic.P256().Params().N, s).FillBytes(sig)
	return map[string][]byte{"tag 61 stripped": stripped, "unprotected label": extraHeader, "n-s": highS}
}

func TestRevokedHashSurvivesNoReencoding(t *testing.T) {
	w := newWorld(t)
	admin := w.token(func(c *token.Claims) {
		c.Subject, c.ID = "admin", []byte{0xad}
		c.Scope, _ = token.ParseScope("sda-revoke read-data")
	})
	victim := w.token(func(c *token.Claims) { c.ID = nil })
	variants := reencodings(t, victim)
	for name, v := range variants {
		if r, d := w.do(v, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("%s: not accepted before the revocation: %v", name, d.Err)
		}
	}
	sum := sha256.Sum256(victim)
	if r, d := w.do(admin, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:]))); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke by hash: %v", d.Err)
	}
	r, d := w.do(victim, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	for name, v := range variants {
		r, d := w.do(v, "read-data")
		if r.Status != wire.StatusVerificationError {
			t.Errorf("%s: the revoked token is accepted re-encoded", name)
			continue
		}
		expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	}

	// Revoking a re-encoding the device saw revokes the token as issued.
	w = newWorld(t)
	admin = w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke read-data") })
	victim = w.token(func(c *token.Claims) { c.ID = nil })
	sum = sha256.Sum256(reencodings(t, victim)["tag 61 stripped"])
	if r, d := w.do(admin, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:]))); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke by hash: %v", d.Err)
	}
	r, d = w.do(victim, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
}

// A revoked token is not a verified one: it must not move the device's
// lower bound of time. Here the token was revoked because its issuer's clock
// ran a month ahead; used anyway, it must not make every current token look
// expired to a clockless device.
func TestRevokedTokenDoesNotMoveTheClock(t *testing.T) {
	w := newWorld(t, func(c *device.Config) {
		c.ClockMode = device.ClockLowerBound
		c.MinTime = testNow.Add(-time.Hour)
	})
	admin := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke read-data") })
	bad := w.token(func(c *token.Claims) {
		c.ID = []byte("from-the-future")
		c.IssuedAt, c.NotBefore = testNow.Add(30*24*time.Hour), testNow.Add(30*24*time.Hour)
		c.Expiry = testNow.Add(31 * 24 * time.Hour)
	})
	if r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text(hex.EncodeToString([]byte("from-the-future")))); r.Status != wire.StatusSuccess {
		t.Fatalf("revoke: %v", d.Err)
	}
	bound := w.agent.TimeLowerBound()
	r, d := w.do(bad, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	if got := w.agent.TimeLowerBound(); !got.Equal(bound) {
		t.Fatalf("a revoked token moved the lower bound of time from %v to %v", bound, got)
	}
	if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("a current token is rejected after a revoked one was tried: %v", d.Err)
	}
}
