package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

func TestValidRequestRunsItsHandler(t *testing.T) {
	w := newWorld(t)
	r, d := w.do(w.token(nil), "read-data", token.Int(7), token.Text("zone-a"))
	if r.Type != wire.TypeOperationResponse || r.Status != wire.StatusSuccess || string(r.Data) != "ok:read-data" {
		t.Fatalf("response %+v, decision %+v", r, d)
	}
	if !d.Allowed() || d.Check != device.CheckNone || d.Subject != "alice" || d.Issuer != w.anchor.Issuer || d.Operation != "read-data" {
		t.Fatalf("decision %+v", d)
	}
	if w.runs("read-data") != 1 {
		t.Fatalf("handler ran %d times", w.runs("read-data"))
	}
	call := w.calls[0]
	if n, _ := call.Operation.Args[0].Int(); n != 7 || call.Subject != "alice" || call.Device != hvac || string(call.TokenID) != "\xc7\x01" || call.Nonce != d.Nonce {
		t.Fatalf("call %+v", call)
	}
	if r.NextNonce != 0 || r.Signed != nil {
		t.Fatal("v1 agent sent v2 keys")
	}
}

// Each attack is rejected for its own reason, and never runs a handler.
func TestAttacksAreRejectedForTheirOwnReason(t *testing.T) {
	t.Run("wrong audience", func(t *testing.T) {
		w := newWorld(t)
		r, d := w.do(w.token(func(c *token.Claims) { c.Audience = []string{"ep:hvac-2", "id:ffffffffffffffffffffffffffffffff"} }), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAudience, token.ErrWrongAudience)
	})
	t.Run("audience names the device by a prefix of its name", func(t *testing.T) {
		w := newWorld(t)
		r, d := w.do(w.token(func(c *token.Claims) { c.Audience = []string{"ep:hvac-"} }), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAudience, token.ErrWrongAudience)
	})
	t.Run("expired", func(t *testing.T) {
		w := newWorld(t)
		r, d := w.do(w.token(func(c *token.Claims) { c.Expiry = testNow.Add(-device.DefaultLeeway - time.Second) }), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
	})
	t.Run("not yet valid", func(t *testing.T) {
		w := newWorld(t)
		r, d := w.do(w.token(func(c *token.Claims) { c.NotBefore = testNow.Add(device.DefaultLeeway + time.Second) }), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrNotYetValid)
	})
	t.Run("unknown anchor", func(t *testing.T) {
		w := newWorld(t)
		stranger := newKey(t, "P-256")
		name, _ := token.AnchorName(stranger.Public())
		r, d := w.do(w.tokenWith(stranger, nil, func(c *token.Claims) { c.Issuer = name }), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrUnknownAnchor)
	})
	t.Run("anchor constraint exceeded", func(t *testing.T) {
		w := newWorld(t)
		limited := *w.anchor
		limited.Constraints = trust.Constraints{Operations: []string{"read-data"}, MaxLifetime: 2 * time.Hour}
		w.store.Remove(w.anchor.Issuer, nil)
		if err := w.store.Add(limited); err != nil {
			t.Fatal(err)
		}
		r, d := w.do(w.token(nil), "read-data") // the token grants "configure" too
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchorConstraints, device.ErrAnchorConstraint)
		var ce *trust.ConstraintError
		if !errors.As(d.Err, &ce) || ce.Constraint != "operations" {
			t.Fatalf("constraint error %v", d.Err)
		}
		long := w.token(func(c *token.Claims) {
			c.Scope, _ = token.ParseScope("read-data")
			c.Expiry = testNow.Add(3 * time.Hour)
		})
		r, d = w.do(long, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchorConstraints, device.ErrAnchorConstraint)
		if !errors.As(d.Err, &ce) || ce.Constraint != "lifetime" {
			t.Fatalf("constraint error %v", d.Err)
		}
	})
	t.Run("right issuer name but another key", func(t *testing.T) {
		w := newWorld(t)
		impostor := newKey(t, "P-256")
		r, d := w.do(w.tokenWith(impostor, nil, nil), "read-data") // iss is the real anchor's name
		expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrSignature)
	})
	t.Run("PoP signed by another key", func(t *testing.T) {
		w := newWorld(t)
		thief := newKey(t, "P-256")
		r, d := w.send(w.request(w.nonce(), w.token(nil), thief, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
	})
	t.Run("replayed nonce", func(t *testing.T) {
		w := newWorld(t)
		req := w.request(w.nonce(), w.token(nil), w.pop, "read-data")
		if r, _ := w.send(req); r.Status != wire.StatusSuccess {
			t.Fatalf("first request: %v", r.Status)
		}
		r, d := w.send(req)
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceReplayed)
		if w.runs("read-data") != 1 {
			t.Fatalf("handler ran %d times", w.runs("read-data"))
		}
	})
	t.Run("another device's nonce", func(t *testing.T) {
		w, other := newWorld(t), newWorld(t)
		other.pop, other.anchorKey, other.anchor = w.pop, w.anchorKey, w.anchor
		r, d := w.send(w.request(other.nonce(), w.token(nil), w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceUnknown)
	})
	t.Run("expired nonce", func(t *testing.T) {
		w := newWorld(t)
		n := w.nonce()
		w.clock.Advance(device.DefaultNonceLifetime)
		r, d := w.send(w.request(n, w.token(nil), w.pop, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckNonce, device.ErrNonceExpired)
	})
	t.Run("forged request leaves the nonce usable", func(t *testing.T) {
		w := newWorld(t)
		n := w.nonce()
		r, d := w.send(w.request(n, w.token(nil), newKey(t, "P-256"), "configure"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
		r, d = w.send(w.request(n, w.tokenWith(newKey(t, "P-256"), nil, nil), w.pop, "configure"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrSignature)
		r, d = w.send(w.request(n, w.token(nil), w.pop, "configure"))
		if r.Status != wire.StatusSuccess || !d.Allowed() {
			t.Fatalf("genuine request after forgeries: %v %v", r.Status, d.Err)
		}
	})
	t.Run("operation not in scope", func(t *testing.T) {
		w := newWorld(t)
		r, d := w.do(w.token(nil), "set-temperature", token.Int(20))
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
	})
	t.Run("prefix lookalike", func(t *testing.T) {
		w := newWorld(t)
		short := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("c read-data") })
		r, d := w.do(short, "configure")
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
		r, d = w.do(w.token(nil), "c") // "configure" does not grant "c"
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
		if w.runs("c")+w.runs("configure") != 0 {
			t.Fatal("a lookalike ran a handler")
		}
	})
	t.Run("argument outside its constraint", func(t *testing.T) {
		w := newWorld(t)
		sc, err := token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
		if err != nil {
			t.Fatal(err)
		}
		tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) { c.Scope = sc })
		r, d := w.do(tok, "set-temperature", token.Int(30))
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
		var se *token.ScopeError
		if !errors.As(d.Err, &se) || se.Arg != 0 {
			t.Fatalf("scope error %v", d.Err)
		}
		if r, _ := w.do(tok, "set-temperature", token.Int(21)); r.Status != wire.StatusSuccess {
			t.Fatalf("in-range argument: %v", r.Status)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		w := newWorld(t)
		admin := w.token(func(c *token.Claims) {
			c.Subject, c.ID = "admin", []byte{0xad}
			c.Scope, _ = token.ParseScope("sda-revoke")
		})
		victim := w.token(nil) // cti c701
		if r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text("c701")); r.Status != wire.StatusSuccess {
			t.Fatalf("revoke: %v %v", r.Status, d.Err)
		}
		r, d := w.do(victim, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	})
	t.Run("oversize message", func(t *testing.T) {
		w := newWorld(t)
		big := w.request(w.nonce(), w.token(nil), w.pop, "read-data", token.Text(string(make([]byte, 1000))), token.Text(string(make([]byte, 1000))))
		r, d := w.send(big)
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
		if r.Type != wire.TypeErrorResponse {
			t.Fatalf("type %d", r.Type)
		}
	})
	t.Run("trailing bytes", func(t *testing.T) {
		w := newWorld(t)
		req := w.request(w.nonce(), w.token(nil), w.pop, "read-data")
		r, d := w.send(append(req, 0x00))
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckEnvelope, token.ErrMalformed)
		if r.Type != wire.TypeOperationResponse { // it starts as [3, ...]: answered as the reference answers those
			t.Fatalf("type %d", r.Type)
		}
		signed, _ := token.SignRequest(&token.Request{Nonce: w.nonce(), Operation: token.Operation{Name: "read-data"}, Token: w.token(nil)}, w.pop, nil)
		r, d = w.send(wire.EncodeOperationRequest(append(signed, 0x00)))
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		r, d = w.do(append(w.token(nil), 0x00), "read-data")
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
	})
	t.Run("duplicate map keys", func(t *testing.T) {
		w := newWorld(t)
		key := w.anchorKey.(*ecdsa.PrivateKey)
		pop := w.pop.Public().(*ecdsa.PublicKey)
		// aud twice: the second would grant another device.
		claims := v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, appendTstr([]byte{0x03, 0x81}, "ep:hvac-9"))
		tok := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x26}, []byte{0xa0}, claims, key)
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		// The same claims without the duplicate are accepted: the test
		// above failed for the duplicate alone.
		good := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x26}, []byte{0xa0},
			v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, nil), key)
		if r, d := w.do(good, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("hand-built token: %v %v", r.Status, d.Err)
		}
	})
	t.Run("wrong or missing tags", func(t *testing.T) {
		w := newWorld(t)
		tok := w.token(nil) // d8 3d d2 ...
		if r, d := w.do(tok[2:], "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("tag 18 alone (deployed devices accept it): %v %v", r.Status, d.Err)
		}
		r, d := w.do(tok[3:], "read-data") // untagged
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		r, d = w.do(append([]byte{0xd8, 0x3d}, tok[3:]...), "read-data") // 61 without 18
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		signed, _ := token.SignRequest(&token.Request{Nonce: w.nonce(), Operation: token.Operation{Name: "read-data"}, Token: tok}, w.pop, nil)
		r, d = w.send(wire.EncodeOperationRequest(signed[1:])) // request without tag 18
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		r, d = w.send(wire.EncodeOperationRequest(append([]byte{0xd8, 0x3d}, signed...))) // request tagged 61(18(
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
	})
	t.Run("alg only in the unprotected header", func(t *testing.T) {
		w := newWorld(t)
		pop := w.pop.Public().(*ecdsa.PublicKey)
		claims := v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, nil)
		tok := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, nil, []byte{0xa1, 0x01, 0x26}, claims, w.anchorKey.(*ecdsa.PrivateKey))
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
	})
	t.Run("alg not matching the anchor", func(t *testing.T) {
		w := newWorld(t)
		// Signed with a P-384 key, ES384 in the protected header, iss naming
		// the P-256 anchor: the anchor pins ES256, the message cannot choose.
		tok := w.tokenWith(newKey(t, "P-384"), &token.IssueOptions{Profile: token.ProfileV2}, nil)
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrAlgorithmMismatch)
		// A token claiming ES384 but signed with ES256 bytes by the anchor.
		pop := w.pop.Public().(*ecdsa.PublicKey)
		claims := v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, nil)
		tok = rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x38, 0x22}, []byte{0xa0}, claims, w.anchorKey.(*ecdsa.PrivateKey))
		r, d = w.do(tok, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrAlgorithmMismatch)
	})
	t.Run("unknown crit label", func(t *testing.T) {
		w := newWorld(t)
		pop := w.pop.Public().(*ecdsa.PublicKey)
		claims := v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, nil)
		// {1: -7, 2: [99], 99: 0}
		protected := []byte{0xa3, 0x01, 0x26, 0x02, 0x81, 0x18, 0x63, 0x18, 0x63, 0x00}
		tok := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, protected, []byte{0xa0}, claims, w.anchorKey.(*ecdsa.PrivateKey))
		r, d := w.do(tok, "read-data")
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrCritical)
	})
	t.Run("CWT forms the SDK does not support", func(t *testing.T) {
		w := newWorld(t)
		pop := w.pop.Public().(*ecdsa.PublicKey)
		claims := v1Claims(w.anchor.Issuer, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Unix(), "read-data", pop, nil)
		// 61(17([h'A10105', {}, claims, tag])): MACed with HMAC 256/256.
		mac0 := append([]byte{0xd8, 0x3d, 0xd1, 0x84, 0x43, 0xa1, 0x01, 0x05, 0xa0}, appendBstr(nil, claims)...)
		mac0 = appendBstr(mac0, make([]byte, 32))
		// 16([h'A1010A', {}, ciphertext]): encrypted with AES-CCM-16-64-128.
		encrypt0 := append([]byte{0xd0, 0x83, 0x43, 0xa1, 0x01, 0x0a, 0xa0}, appendBstr(nil, make([]byte, len(claims)+8))...)
		// A COSE_Sign1 by the anchor whose payload is a valid token.
		nested := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x26}, []byte{0xa0}, w.token(nil), w.anchorKey.(*ecdsa.PrivateKey))
		for name, tok := range map[string][]byte{"COSE_Mac0": mac0, "COSE_Encrypt0": encrypt0, "nested CWT": nested} {
			t.Run(name, func(t *testing.T) {
				r, d := w.do(tok, "read-data")
				expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrUnsupportedForm)
			})
		}
		if w.runs("read-data") != 0 {
			t.Fatal("a handler ran")
		}
	})
	t.Run("small-order PoP key: a stolen token as a bearer token", func(t *testing.T) {
		w := newWorld(t)
		// A v2 token, built byte by byte and signed by the device's real
		// anchor, whose cnf is the Ed25519 identity point: with it, the
		// signature R = identity, S = 0 verifies over any message.
		identity := append([]byte{0x01}, make([]byte, 31)...)
		claims := []byte{0xa6}
		claims = appendTstr(append(claims, 0x01), w.anchor.Issuer)
		claims = appendTstr(append(claims, 0x03, 0x81), "ep:hvac-1")
		claims = appendUint(append(claims, 0x04), uint64(testNow.Add(time.Hour).Unix()))
		claims = appendUint(append(claims, 0x05), uint64(testNow.Unix()))
		claims = append(claims, 0x08, 0xa1, 0x01, 0xa3, 0x01, 0x01, 0x20, 0x06, 0x21) // cnf {1: {1: 1, -1: 6, -2: x}}
		claims = appendBstr(claims, identity)
		claims = appendTstr(append(claims, 0x09), "read-data")
		tok := rawSign1(t, []byte{0xd8, 0x3d, 0xd2}, []byte{0xa1, 0x01, 0x26}, []byte{0xa0}, claims, w.anchorKey.(*ecdsa.PrivateKey))
		// 18([h'A10127', {}, [nonce, [1, "read-data", []], token], identity || 0^32])
		payload := appendUint([]byte{0x83}, w.nonce())
		payload = appendBstr(append(appendTstr(append(payload, 0x83, 0x01), "read-data"), 0x80), tok)
		forged := appendBstr([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0}, payload)
		forged = appendBstr(forged, append(identity, make([]byte, 32)...))
		r, d := w.send(wire.EncodeOperationRequest(forged))
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrWeakKey)
		if w.runs("read-data") != 0 {
			t.Fatal("the forged request ran its handler")
		}
	})
	t.Run("retired anchor, token issued after the retirement", func(t *testing.T) {
		w := newWorld(t)
		if err := w.store.Retire(w.anchor.Issuer, nil, testNow.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		r, d := w.do(w.token(nil), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchorConstraints, device.ErrAnchorConstraint)
	})
	t.Run("revoked anchor", func(t *testing.T) {
		w := newWorld(t)
		if err := w.store.Revoke(w.anchor.Issuer, nil); err != nil {
			t.Fatal(err)
		}
		r, d := w.do(w.token(nil), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrAnchorRevoked)
	})
	t.Run("v1 token on a v2-only device", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.RejectV1 = true })
		r, d := w.do(w.token(nil), "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckProfile, device.ErrProfile)
		tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
		if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("v2 token: %v %v", r.Status, d.Err)
		}
	})
	t.Run("unparseable envelope", func(t *testing.T) {
		w := newWorld(t)
		for _, b := range [][]byte{nil, {0x81}, {0x82, 0x01, 0x01}, {0x81, 0x02}, {0x9f, 0x01, 0xff}, {0xa0}} {
			r, d := w.send(b)
			expect(t, r, d, wire.StatusInvalidRequest, device.CheckEnvelope, token.ErrMalformed)
			if r.Type != wire.TypeErrorResponse {
				t.Fatalf("%x: type %d", b, r.Type)
			}
		}
	})
	t.Run("malformed bundle leaves the nonce untouched", func(t *testing.T) {
		w := newWorld(t)
		n := w.nonce()
		r, d := w.send(wire.EncodeOperationRequest([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}))
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		if r, _ := w.send(w.request(n, w.token(nil), w.pop, "read-data")); r.Status != wire.StatusSuccess {
			t.Fatalf("nonce lost to a malformed request: %v", r.Status)
		}
	})
	// Delegation (v2): a chain is only as good as every link of it
	// (TestDelegationRefusals has every rule).
	t.Run("delegated: link signed by a key that is not its parent's", func(t *testing.T) {
		w := newWorld(t)
		thief := newKey(t, "P-256")
		tok := w.delegable(1, nil, nil)
		_, rh := w.parent(tok)
		dt := w.chainOf(tok, w.link(&token.Link{Key: thief.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, thief))
		r, d := w.doDelegated(dt, thief, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrLinkSignature)
	})
	t.Run("delegated: link widening the scope", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		tok := w.delegable(1, nil, nil)
		_, rh := w.parent(tok)
		wide, _ := token.ParseScope("read-data configure set-temperature")
		dt := w.chainOf(tok, w.link(&token.Link{Key: bob.Public(), Scope: wide, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		r, d := w.doDelegated(dt, bob, "set-temperature", token.Int(20))
		expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrNotNarrower)
	})
	t.Run("delegated: chain moved below another token", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		small := w.delegable(1, []string{"read-data"}, func(c *token.Claims) { c.Scope, _ = token.ParseScope("read-data") })
		big := w.delegable(1, nil, func(c *token.Claims) { c.ID = []byte{0xc7, 0x02} })
		d1, _ := token.ParseDelegatedToken(w.delegate(small, w.pop, bob, "read-data", nil))
		r, d := w.doDelegated((&token.DelegatedToken{Token: big, Chain: d1.Chain}).Bytes(), bob, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrLinkSignature)
	})
	t.Run("delegated: the delegator signs with the delegate's chain", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		r, d := w.doDelegated(dt, w.pop, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
	})
	t.Run("delegated: a v1 token with a chain", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		tok := w.token(nil)
		_, rh := w.parent(tok)
		dt := w.chainOf(tok, w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		r, d := w.doDelegated(dt, bob, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrNotDelegable)
	})
	if testing.Verbose() {
		t.Log("every attack rejected at its own check")
	}
}

func TestOperationOutcomes(t *testing.T) {
	boom := errors.New("compressor jammed")
	w := newWorld(t, func(c *device.Config) {
		c.MaxResponseSize = 64
		c.Operations.RegisterFunc("fail", func(context.Context, *device.Call) ([]byte, error) { return nil, boom })
		c.Operations.RegisterFunc("panic", func(context.Context, *device.Call) ([]byte, error) { panic("bug") })
		c.Operations.RegisterFunc("chatty", func(context.Context, *device.Call) ([]byte, error) { return make([]byte, 100), nil })
	})
	tok := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("fail panic chatty missing") })

	r, d := w.do(tok, "fail")
	expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrOperationFailed)
	if !errors.Is(d.Err, boom) {
		t.Fatalf("handler error lost: %v", d.Err)
	}
	r, d = w.do(tok, "panic")
	expect(t, r, d, wire.StatusInternalError, device.CheckOperation, device.ErrHandlerPanic)
	r, d = w.do(tok, "missing")
	expect(t, r, d, wire.StatusError, device.CheckOperation, device.ErrUnknownOperation)
	r, d = w.do(tok, "chatty")
	expect(t, r, d, wire.StatusResponseTooSmall, device.CheckResponse, device.ErrResponseTooLarge)
}

// panicStore fails the way a buggy anchor store might.
type panicStore struct{}

func (panicStore) Lookup(string, []byte) ([]trust.Anchor, error) { panic("store bug") }

func TestProcessRecoversFromPanics(t *testing.T) {
	w := newWorld(t, func(c *device.Config) {
		c.Anchors = panicStore{}
		c.OnOutcome = func(device.Outcome) { panic("hook bug") }
	})
	r, d := w.do(w.token(nil), "read-data")
	expect(t, r, d, wire.StatusInternalError, device.CheckInternal, device.ErrInternal)
	if r.Type != wire.TypeOperationResponse {
		t.Fatalf("type %d", r.Type)
	}
}

func TestRegistryRules(t *testing.T) {
	var reg device.Registry
	h := device.HandlerFunc(func(context.Context, *device.Call) ([]byte, error) { return nil, nil })
	for _, name := range []string{"", "1abc", "has space", device.RevokeOperation, "sda-anything"} {
		if err := reg.Register(name, h); !errors.Is(err, device.ErrConfig) {
			t.Errorf("Register(%q) = %v", name, err)
		}
	}
	if err := reg.Register("ok", h); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register("ok", h); !errors.Is(err, device.ErrConfig) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := reg.Register("nil", nil); !errors.Is(err, device.ErrConfig) {
		t.Fatalf("nil handler: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := &trust.MemoryStore{}
	for name, cfg := range map[string]device.Config{
		"no identity":    {Anchors: store},
		"bad device id":  {Identity: token.Identity{DeviceID: "xyz"}, Anchors: store},
		"no anchors":     {Identity: hvac},
		"too many nonce": {Identity: hvac, Anchors: store, MaxNonces: device.MaxMaxNonces + 1},
		"huge cache":     {Identity: hvac, Anchors: store, TokenCacheSize: device.MaxTokenCacheSize + 1},
		"clock mode":     {Identity: hvac, Anchors: store, ClockMode: 9},
	} {
		if _, err := device.New(cfg); !errors.Is(err, device.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A response-signing key whose public half is a point of small order
	// (a hand-built key: the seed's public key is replaced by the
	// identity) would let anyone forge the device's signed responses.
	weak := append(ed25519.NewKeyFromSeed(make([]byte, 32))[:32:32], append([]byte{1}, make([]byte, 31)...)...)
	_, err := device.New(device.Config{Identity: hvac, Anchors: store, SigningKey: ed25519.PrivateKey(weak)})
	if !errors.Is(err, device.ErrConfig) || !errors.Is(err, token.ErrWeakKey) {
		t.Errorf("weak signing key: %v, want ErrConfig and token.ErrWeakKey", err)
	}
}

// rawStore is a trust.Store that returns its anchors as they are, without
// the validation trust's stores make.
type rawStore []trust.Anchor

func (s rawStore) Lookup(string, []byte) ([]trust.Anchor, error) { return s, nil }

// An anchor whose key is not a point of its curve pins no algorithm: the
// device does not try it, and when no other anchor of the issuer pins the
// token's algorithm the token is refused for a mismatch (which nothing was
// verified for and does not count toward throttling), not for its
// signature.
func TestAnchorKeyOffCurve(t *testing.T) {
	//lint:ignore SA1019 building a key off its curve, which the supported ways refuse
	off := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	other := newKey(t, "P-256").Public()
	for _, tc := range []struct {
		name    string
		anchors func(good, bad trust.Anchor) rawStore
		want    error
	}{
		{"alone", func(_, bad trust.Anchor) rawStore { return rawStore{bad} }, token.ErrAlgorithmMismatch},
		{"before the anchor", func(good, bad trust.Anchor) rawStore { return rawStore{bad, good} }, nil},
		{"after another key", func(good, bad trust.Anchor) rawStore {
			return rawStore{{Issuer: good.Issuer, Key: other}, bad}
		}, token.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, func(c *device.Config) { c.Throttle.Failures = 1 })
			w.cfg.Anchors = tc.anchors(*w.anchor, trust.Anchor{Issuer: w.anchor.Issuer, Key: off})
			w.restart()
			r, d := w.do(w.token(nil), "read-data")
			if tc.want == nil {
				if r.Status != wire.StatusSuccess || !d.Allowed() {
					t.Fatalf("response %+v, decision %+v", r, d)
				}
				return
			}
			expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, tc.want)
			// One costly failure locks the source out; a mismatch is not one.
			if nr, _ := w.send(wire.NonceRequest); (nr.Status == wire.StatusSuccess) != errors.Is(tc.want, token.ErrAlgorithmMismatch) {
				t.Errorf("nonce request after the refusal: status %v", nr.Status)
			}
		})
	}
}
