package device_test

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

var filepathGlob = filepath.Glob

func TestV2NextNonceAndSignedResponse(t *testing.T) {
	deviceKey := newKey(t, "P-256")
	w := newWorld(t, func(c *device.Config) {
		c.NextNonce = true
		c.SigningKey = deviceKey
	})
	tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
	n := w.nonce()
	r, d := w.send(w.request(n, tok, w.pop, "read-data"))
	if r.Status != wire.StatusSuccess || r.NextNonce == 0 || r.NextNonce != d.NextNonce {
		t.Fatalf("response %+v", r)
	}
	signed, err := token.VerifyResponse(r.Signed, deviceKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if signed.Status != 0 || string(signed.Data) != "ok:read-data" || signed.Nonce != n || signed.Device != hvac {
		t.Fatalf("signed response %+v", signed)
	}
	// A session: each response's next nonce serves the next request.
	next := r.NextNonce
	for i := range 3 {
		r, _ := w.send(w.request(next, tok, w.pop, "configure"))
		if r.Status != wire.StatusSuccess || r.NextNonce == 0 {
			t.Fatalf("operation %d: %+v", i, r)
		}
		next = r.NextNonce
	}
	// A denied but authentic request is signed too, binding the denial.
	r, _ = w.send(w.request(next, tok, w.pop, "set-temperature", token.Int(1)))
	if r.Status != wire.StatusAccessDenied || r.Signed == nil || r.NextNonce == 0 {
		t.Fatalf("denied: %+v", r)
	}
	if s, err := token.VerifyResponse(r.Signed, deviceKey.Public()); err != nil || s.Status != uint32(wire.StatusAccessDenied) {
		t.Fatalf("denied signed: %+v %v", s, err)
	}
	// An unauthenticated request gets neither.
	r, _ = w.send(w.request(w.nonce(), tok, newKey(t, "P-256"), "read-data"))
	if r.Status != wire.StatusVerificationError || r.Signed != nil || r.NextNonce != 0 {
		t.Fatalf("forged: %+v", r)
	}
}

func TestTokenCache(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
	tok := w.token(nil)
	_, d := w.do(tok, "read-data")
	if !d.Allowed() || d.CachedToken {
		t.Fatalf("first use: %+v", d)
	}
	_, d = w.do(tok, "read-data")
	if !d.Allowed() || !d.CachedToken || d.Subject != "alice" {
		t.Fatalf("second use: %+v", d)
	}

	t.Run("PoP is still checked", func(t *testing.T) {
		r, d := w.send(w.request(w.nonce(), tok, newKey(t, "P-256"), "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
		if !d.CachedToken {
			t.Fatal("cache not used")
		}
	})
	t.Run("scope is still checked", func(t *testing.T) {
		r, d := w.do(tok, "set-temperature", token.Int(20))
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
	})
	t.Run("revocation is rechecked", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
		tok := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("read-data sda-revoke") })
		sum := sha256.Sum256(tok)
		if _, d := w.do(tok, "read-data"); !d.Allowed() {
			t.Fatal(d.Err)
		}
		if _, d := w.do(tok, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:]))); !d.Allowed() || !d.CachedToken {
			t.Fatalf("self-revocation: %+v", d)
		}
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	})
	t.Run("time is rechecked", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
		tok := w.token(func(c *token.Claims) { c.Expiry = testNow.Add(time.Minute) })
		w.do(tok, "read-data")
		if _, d := w.do(tok, "read-data"); !d.CachedToken {
			t.Fatal("not cached")
		}
		w.clock.Advance(time.Minute + device.DefaultLeeway + time.Second)
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
	})
	t.Run("anchor changes invalidate the cache", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
		tok := w.token(nil)
		w.do(tok, "read-data")
		if err := w.store.Revoke(w.anchor.Issuer, nil); err != nil {
			t.Fatal(err)
		}
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrAnchorRevoked)
	})
	t.Run("audience is checked before a token is cached", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
		other := w.token(func(c *token.Claims) { c.Audience = []string{"ep:hvac-2"} })
		for range 2 {
			r, d := w.do(other, "read-data")
			expect(t, r, d, wire.StatusVerificationError, device.CheckAudience, token.ErrWrongAudience)
			if d.CachedToken {
				t.Fatal("token for another device was cached")
			}
		}
	})
	t.Run("bounded", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
		toks := make([][]byte, 4)
		for i := range toks {
			toks[i] = w.token(func(c *token.Claims) { c.ID = []byte{byte(i)} })
			w.do(toks[i], "read-data")
		}
		if _, d := w.do(toks[0], "read-data"); d.CachedToken {
			t.Fatal("oldest entry survived beyond the bound")
		}
		if _, d := w.do(toks[3], "read-data"); !d.CachedToken {
			t.Fatal("newest entry evicted")
		}
	})
}

// A cache needs to notice anchor changes: with a store that cannot say
// when it changed, the agent does not cache.
type plainStore struct{ s *trust.MemoryStore }

func (p plainStore) Lookup(iss string, kid []byte) ([]trust.Anchor, error) {
	return p.s.Lookup(iss, kid)
}

// versionedStore is a custom store with the trust.Versioned capability.
type versionedStore struct {
	plainStore
	v func() uint64
}

func (s versionedStore) Version() uint64 { return s.v() }

var _ trust.Versioned = versionedStore{}

// TestTokenCacheVersionedCustomStore: a custom store that implements
// trust.Versioned gets the cache, and a change of its version drops it.
func TestTokenCacheVersionedCustomStore(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 4 })
	version := uint64(1)
	w.cfg.Anchors = versionedStore{plainStore{w.store}, func() uint64 { return version }}
	w.restart()
	tok := w.token(nil)
	for i, want := range []bool{false, true} {
		if _, d := w.do(tok, "read-data"); !d.Allowed() || d.CachedToken != want {
			t.Fatalf("request %d: cached %v, want %v (%v)", i, d.CachedToken, want, d.Err)
		}
	}
	version++
	if _, d := w.do(tok, "read-data"); !d.Allowed() || d.CachedToken {
		t.Fatalf("after a version change: cached %v (%v), want a full verification", d.CachedToken, d.Err)
	}
}

func TestTokenCacheNeedsAVersionedStore(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 4 })
	w.cfg.Anchors = plainStore{w.store}
	w.restart()
	tok := w.token(nil)
	for range 2 {
		if _, d := w.do(tok, "read-data"); !d.Allowed() || d.CachedToken {
			t.Fatalf("%+v", d)
		}
	}
}

// Key rotation: two anchors under one issuer name, told apart by kid.
func TestRotationOverlapWithKeyIDs(t *testing.T) {
	w := newWorld(t)
	newAnchorKey := newKey(t, "Ed25519")
	if err := w.store.Add(trust.Anchor{Issuer: w.anchor.Issuer, KeyID: []byte("2026"), Key: newAnchorKey.Public()}); err != nil {
		t.Fatal(err)
	}
	v2 := &token.IssueOptions{Profile: token.ProfileV2, KeyID: []byte("2026")}
	if _, d := w.do(w.tokenWith(newAnchorKey, v2, nil), "read-data"); !d.Allowed() {
		t.Fatalf("new key: %v", d.Err)
	}
	thumb, _ := token.Thumbprint(w.anchorKey.Public())
	if _, d := w.do(w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2, KeyID: thumb}, nil), "read-data"); !d.Allowed() {
		t.Fatalf("old key by thumbprint: %v", d.Err)
	}
	if _, d := w.do(w.token(nil), "read-data"); !d.Allowed() {
		t.Fatalf("old key without kid: %v", d.Err)
	}
	r, d := w.do(w.tokenWith(newAnchorKey, &token.IssueOptions{Profile: token.ProfileV2, KeyID: []byte("2027")}, nil), "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrUnknownAnchor)
}
