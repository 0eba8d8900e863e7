package device_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

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
