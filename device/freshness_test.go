package device_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// cnonceToken issues a v2 token whose cnonce is n.
func (w *world) cnonceToken(n uint64, edit func(*token.Claims)) []byte {
	w.t.Helper()
	return w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) {
		c.CNonce = binary.BigEndian.AppendUint64(nil, n)
		if edit != nil {
			edit(c)
		}
	})
}

func TestFreshnessRecentUpdate(t *testing.T) {
	w := newWorld(t, statusUpdates, func(c *device.Config) { c.Freshness = device.Freshness{MaxStatusAge: 10 * time.Minute} })
	tok := w.token(nil)
	r, d := w.do(tok, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrNotFresh)
	var fe *device.FreshnessError
	if !errors.As(d.Err, &fe) || fe.Requirement != "device" || !errors.Is(d.Err, device.ErrStatusTooOld) || fe.CNonce != nil {
		t.Fatalf("freshness error %#v", d.Err)
	}
	if r, d := w.doCarry(tok, w.status(nil), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("with an update carried: %v", d.Err)
	}
	w.clock.Advance(10 * time.Minute)
	if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("update 10 minutes old: %v", d.Err)
	}
	w.clock.Advance(time.Second)
	r, d = w.do(tok, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrStatusTooOld)
	t.Run("another issuer's update does not count", func(t *testing.T) {
		w := newWorld(t, statusUpdates, func(c *device.Config) {
			c.IssuerFreshness = map[string]device.Freshness{"someone-else": {MaxStatusAge: time.Minute}}
		})
		// No requirement for the world's issuer.
		if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("issuer without a requirement: %v", d.Err)
		}
	})
}

func TestFreshnessPerOperation(t *testing.T) {
	reg := &device.Registry{}
	ok := device.HandlerFunc(func(context.Context, *device.Call) ([]byte, error) { return []byte("ok"), nil })
	if err := reg.Register("read-data", ok); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterFresh("configure", ok, device.Freshness{CNonce: true}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterFresh("c", ok, device.Freshness{MaxStatusAge: -1}); !errors.Is(err, device.ErrConfig) {
		t.Errorf("negative age: %v", err)
	}
	if err := reg.RegisterFresh("configure", ok, device.Freshness{}); !errors.Is(err, device.ErrConfig) {
		t.Errorf("registered twice: %v", err)
	}
	w := newWorld(t, func(c *device.Config) { c.Operations = reg })
	tok := w.token(nil)
	if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("operation without a requirement: %v", d.Err)
	}
	r, d := w.do(tok, "configure")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)
	var fe *device.FreshnessError
	if !errors.As(d.Err, &fe) || fe.Requirement != "operation" || fe.Status != nil {
		t.Fatalf("freshness error %#v", d.Err)
	}
}

func TestFreshnessCNonce(t *testing.T) {
	fresh := func(c *device.Config) { c.Freshness = device.Freshness{CNonce: true} }
	t.Run("accepted and remembered", func(t *testing.T) {
		w := newWorld(t, fresh)
		n := w.nonce()
		tok := w.cnonceToken(n, nil)
		if r, d := w.send(w.request(n, tok, w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("cnonce equal to the request's nonce: %v", d.Err)
		}
		// The session's next request, with a new nonce, passes: the token is
		// remembered as fresh.
		if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("next request: %v", d.Err)
		}
		// Not after a restart: the memory is gone and the cnonce is used.
		w.restart()
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)
	})
	t.Run("reused in another token", func(t *testing.T) {
		w := newWorld(t, fresh)
		n := w.nonce()
		if r, d := w.send(w.request(n, w.cnonceToken(n, nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("first: %v", d.Err)
		}
		second := w.cnonceToken(n, func(c *token.Claims) { c.ID = []byte{2} })
		r, d := w.do(second, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)
		// Nor with the nonce itself again: it is consumed.
		r, d = w.send(w.request(n, second, w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceReplayed)
	})
	t.Run("foreign", func(t *testing.T) {
		w := newWorld(t, fresh)
		other := newWorld(t)
		foreign := other.nonce()
		r, d := w.do(w.cnonceToken(foreign, nil), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)
	})
	t.Run("v1 token", func(t *testing.T) {
		w := newWorld(t, fresh)
		r, d := w.do(w.token(nil), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)
	})
	t.Run("either way suffices", func(t *testing.T) {
		w := newWorld(t, statusUpdates, func(c *device.Config) {
			c.Freshness = device.Freshness{CNonce: true, MaxStatusAge: time.Minute}
		})
		if r, d := w.doCarry(w.token(nil), w.status(nil), "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("recent update, no cnonce: %v", d.Err)
		}
		w.clock.Advance(2 * time.Minute)
		n := w.nonce()
		if r, d := w.send(w.request(n, w.cnonceToken(n, nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("old update, cnonce: %v", d.Err)
		}
		r, d := w.do(w.token(nil), "read-data")
		var fe *device.FreshnessError
		if !errors.As(d.Err, &fe) || !errors.Is(fe.Status, device.ErrStatusTooOld) || !errors.Is(fe.CNonce, device.ErrCNonce) || r.Status != wire.StatusVerificationError {
			t.Fatalf("neither way: %v", d.Err)
		}
	})
	t.Run("config", func(t *testing.T) {
		w := newWorld(t)
		w.cfg.Freshness = device.Freshness{MaxStatusAge: -time.Second}
		if _, err := device.New(w.cfg); !errors.Is(err, device.ErrConfig) {
			t.Errorf("negative MaxStatusAge: %v", err)
		}
	})
}
