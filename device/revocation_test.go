package device_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
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

// a3Issuer is the issuer of the tokens laid out as RFC 8392 appendix A.3.
const a3Issuer = "coap://as.example.com"

// a3Kid is the kid of RFC 8392 appendix A.3.
var a3Kid = []byte("AsymmetricECDSA256")

// a3Token returns a token of the given profile signed by the world's anchor
// key and laid out as RFC 8392 appendix A.3 and several COSE libraries lay
// out tokens: kid in the unprotected header, no cti:
// 61(18([h'A10126', {4: kid}, payload, signature])). It also returns the
// payload. The world's store must hold an anchor for a3Issuer.
func (w *world) a3Token(p token.Profile) (tok, payload []byte) {
	w.t.Helper()
	issued := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: p}, func(c *token.Claims) {
		c.Issuer, c.ID = a3Issuer, nil
	})
	items, err := codec.ReadArray(issued[3:], nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if payload, err = codec.ReadBytes(items[2]); err != nil {
		w.t.Fatal(err)
	}
	unprotected := appendBstr([]byte{0xa1, 0x04}, a3Kid)
	return rawSign1(w.t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x26}, unprotected, payload, w.anchorKey.(*ecdsa.PrivateKey)), payload
}

// a3Variants returns what the holder of an A.3 token (see a3Token) can send
// instead of it and still have it verify: each part the signature does
// not cover changed, and all of them at once.
func a3Variants(t *testing.T, tok []byte) map[string][]byte {
	t.Helper()
	head := appendBstr([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x04}, a3Kid)
	if !bytes.HasPrefix(tok, head) {
		t.Fatalf("not an A.3 layout: %x", tok)
	}
	rest := tok[len(head):] // payload, signature
	highS := func(b []byte) []byte {
		b = bytes.Clone(b)
		sig := b[len(b)-32:]
		new(big.Int).Sub(elliptic.P256().Params().N, new(big.Int).SetBytes(sig)).FillBytes(sig)
		return b
	}
	noKid := append([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}, rest...)
	// {4: kid, 99: 0}: a label nobody reads, after the kid.
	extra := append(appendBstr([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa2, 0x04}, a3Kid), 0x18, 0x63, 0x00)
	extra = append(extra, rest...)
	// Tag 61 stripped, no kid, another label, the other s.
	all := highS(append([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x18, 0x63, 0x00}, rest...))
	return map[string][]byte{
		"as issued":         tok,
		"tag 61 stripped":   bytes.Clone(tok[2:]),
		"high s":            highS(tok),
		"kid removed":       noKid,
		"unprotected label": extra,
		"all at once":       all,
	}
}

// toBeSignedHash is the SHA-256 of the COSE ToBeSigned of an ES256 token
// with protected header h'A10126' (RFC 9052 section 4.4), computed here by
// hand:
//
//	["Signature1", h'A10126', h'', payload]
func toBeSignedHash(payload []byte) [32]byte {
	tbs := append([]byte{0x84, 0x6a}, "Signature1"...)
	tbs = append(tbs, 0x43, 0xa1, 0x01, 0x26, 0x40)
	return sha256.Sum256(appendBstr(tbs, payload))
}

// A token from another issuer, laid out as RFC 8392 A.3 (kid in the
// unprotected header, no cti), revoked by its revocation hash stays
// revoked whatever its holder changes outside what the signature covers:
// the tag 61, the s of the ECDSA signature, the kid, the unprotected
// labels. Also when the token was in the verified-token cache.
func TestRevocationHashCoversEveryLayout(t *testing.T) {
	for _, p := range []token.Profile{token.ProfileV1, token.ProfileV2} {
		for _, cache := range []int{0, 4} {
			t.Run(fmt.Sprintf("%v cache %d", p, cache), func(t *testing.T) {
				w := newWorld(t, func(c *device.Config) { c.TokenCacheSize, c.Throttle.Failures = cache, -1 })
				if err := w.store.Add(trust.Anchor{Issuer: a3Issuer, KeyID: a3Kid, Key: w.anchorKey.Public()}); err != nil {
					t.Fatal(err)
				}
				admin := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke read-data") })
				victim, payload := w.a3Token(p)
				variants := a3Variants(t, victim)
				for name, v := range variants {
					if r, d := w.do(v, "read-data"); r.Status != wire.StatusSuccess {
						t.Fatalf("%s: not accepted before the revocation: %v", name, d.Err)
					}
				}
				sum := toBeSignedHash(payload)
				if r, d := w.do(admin, device.RevokeOperation, token.Text("hash"), token.Text(hex.EncodeToString(sum[:]))); r.Status != wire.StatusSuccess {
					t.Fatalf("revoke by hash: %v", d.Err)
				}
				for name, v := range variants {
					r, d := w.do(v, "read-data")
					if r.Status != wire.StatusVerificationError {
						t.Errorf("%s: the revoked token is accepted", name)
						continue
					}
					expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
				}
			})
		}
	}
}
