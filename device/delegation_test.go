package device_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// delegable issues a v2 token for the world's technician (alice, scope
// "read-data configure") that may be delegated depth links deep, passing
// on ops (nil: every operation of its scope), after edit changes it.
func (w *world) delegable(depth int, ops []string, edit func(*token.Claims)) []byte {
	w.t.Helper()
	return w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) {
		c.Delegation = &token.Delegation{Depth: depth, Operations: ops}
		if edit != nil {
			edit(c)
		}
	})
}

// delegate adds a link to holder (a token, or a delegated token) signed
// with key, passing scope on to the key to for the next hour, and returns
// the delegated token.
func (w *world) delegate(holder []byte, key crypto.Signer, to crypto.Signer, scope string, edit func(*token.DelegationSpec)) []byte {
	w.t.Helper()
	sc, err := token.ParseScope(scope)
	if err != nil {
		w.t.Fatal(err)
	}
	spec := &token.DelegationSpec{To: to.Public(), Scope: sc, Expiry: testNow.Add(time.Hour), Subject: "bob"}
	if edit != nil {
		edit(spec)
	}
	dt, err := token.Delegate(holder, key, spec)
	if err != nil {
		w.t.Fatalf("Delegate: %v", err)
	}
	return dt
}

// parent returns the claims and revocation hash of a token the world's
// anchor signed, as a device verifies them.
func (w *world) parent(tok []byte) (*token.Claims, [32]byte) {
	w.t.Helper()
	parsed, err := token.Parse(tok)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := parsed.Verify(w.anchor.Key)
	if err != nil {
		w.t.Fatal(err)
	}
	return c, parsed.RevocationHash()
}

// link signs one link below the parent hash with key, checking only its
// encoding: for links Delegate refuses to make.
func (w *world) link(l *token.Link, parentHash [32]byte, key crypto.Signer) []byte {
	w.t.Helper()
	b, err := token.SignLink(l, parentHash, key, nil)
	if err != nil {
		w.t.Fatalf("SignLink: %v", err)
	}
	return b
}

// chainOf returns the delegated token of tok with the encoded links.
func (w *world) chainOf(tok []byte, links ...[]byte) []byte {
	w.t.Helper()
	c, err := token.NewChain(links...)
	if err != nil {
		w.t.Fatalf("NewChain: %v", err)
	}
	return (&token.DelegatedToken{Token: tok, Chain: c}).Bytes()
}

// delegatedRequest returns the envelope of an operation request with the
// delegated token dt (its token and its chain) signed with pop.
func (w *world) delegatedRequest(nonce uint64, dt []byte, pop crypto.Signer, name string, args ...token.Arg) []byte {
	w.t.Helper()
	d, err := token.ParseDelegatedToken(dt)
	if err != nil {
		w.t.Fatalf("ParseDelegatedToken: %v", err)
	}
	signed, err := token.SignRequest(&token.Request{Nonce: nonce, Operation: token.Operation{Name: name, Args: args}, Token: d.Token, Chain: d.Chain.Bytes()}, pop, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return wire.EncodeOperationRequest(signed)
}

// doDelegated runs a whole exchange with the delegated token dt, the
// request signed with pop.
func (w *world) doDelegated(dt []byte, pop crypto.Signer, name string, args ...token.Arg) (wire.Response, device.Outcome) {
	w.t.Helper()
	return w.send(w.delegatedRequest(w.nonce(), dt, pop, name, args...))
}

// thumb returns the RFC 9679 thumbprint of k's public key.
func thumb(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	tp, err := token.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// expectChain requires d to name the delegates keys, in order, with the
// link hashes of the verified chain of dt.
func (w *world) expectChain(chain []device.ChainLink, dt []byte, keys ...crypto.Signer) {
	w.t.Helper()
	d, err := token.ParseDelegatedToken(dt)
	if err != nil {
		w.t.Fatal(err)
	}
	c, rh := w.parent(d.Token)
	vc, err := d.Chain.Verify(c, rh)
	if err != nil {
		w.t.Fatalf("chain does not verify: %v", err)
	}
	if len(chain) != len(keys) || len(vc.Links) != len(keys) {
		w.t.Fatalf("chain of %d links, want %d", len(chain), len(keys))
	}
	for i, k := range keys {
		if !token.EqualKeys(chain[i].Key, k.Public()) || !bytes.Equal(chain[i].Thumbprint(), thumb(w.t, k)) || chain[i].Hash != vc.Links[i].Hash || chain[i].Subject != vc.Links[i].Subject {
			w.t.Fatalf("link %d: %x %q %x, want %x %q %x", i, chain[i].Thumbprint(), chain[i].Subject, chain[i].Hash, thumb(w.t, k), vc.Links[i].Subject, vc.Links[i].Hash)
		}
	}
}

// A delegated request runs with the effective scope of the end of the
// chain, signed by the last key; the handler and the outcome name the
// chain.
func TestDelegatedRequest(t *testing.T) {
	t.Run("one link", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		r, d := w.doDelegated(dt, bob, "read-data")
		if r.Status != wire.StatusSuccess || !d.Allowed() || string(r.Data) != "ok:read-data" {
			t.Fatalf("status %v: %v %v", r.Status, d.Check, d.Err)
		}
		w.expectChain(d.Chain, dt, bob)
		if !bytes.Equal(d.KeyThumbprint(), thumb(t, w.pop)) || d.Subject != "alice" {
			t.Fatalf("outcome names key %x subject %q, want the token's", d.KeyThumbprint(), d.Subject)
		}
		call := w.calls[0]
		w.expectChain(call.Chain, dt, bob)
		if !call.Delegated() || call.Subject != "alice" || call.Scope.String() != "read-data" {
			t.Fatalf("call: delegated %v subject %q scope %q", call.Delegated(), call.Subject, call.Scope.String())
		}
	})
	t.Run("two links, Ed25519 and P-384 delegates", func(t *testing.T) {
		w := newWorld(t)
		bob, carol := newKey(t, "Ed25519"), newKey(t, "P-384")
		dt := w.delegate(w.delegable(2, nil, nil), w.pop, bob, "read-data configure", func(s *token.DelegationSpec) { s.Depth = 1 })
		dt = w.delegate(dt, bob, carol, "read-data", func(s *token.DelegationSpec) { s.Subject = "carol" })
		r, d := w.doDelegated(dt, carol, "read-data")
		if r.Status != wire.StatusSuccess || !d.Allowed() {
			t.Fatalf("status %v: %v %v", r.Status, d.Check, d.Err)
		}
		w.expectChain(d.Chain, dt, bob, carol)
		if d.Chain[1].Subject != "carol" {
			t.Fatalf("subjects %q %q", d.Chain[0].Subject, d.Chain[1].Subject)
		}
	})
	t.Run("an operation outside the link's scope", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		r, d := w.doDelegated(dt, bob, "configure") // the token grants it, the link does not
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
		w.expectChain(d.Chain, dt, bob)
		if w.runs("configure") != 0 {
			t.Fatal("the handler ran")
		}
	})
	t.Run("argument outside the link's constraint", func(t *testing.T) {
		w := newWorld(t)
		bob := newKey(t, "P-256")
		tok := w.delegable(1, nil, func(c *token.Claims) {
			c.Scope, _ = token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
		})
		narrow, err := token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 20, 22)}})
		if err != nil {
			t.Fatal(err)
		}
		dt, err := token.Delegate(tok, w.pop, &token.DelegationSpec{To: bob.Public(), Scope: narrow, Expiry: testNow.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if r, d := w.doDelegated(dt, bob, "set-temperature", token.Int(21)); r.Status != wire.StatusSuccess {
			t.Fatalf("in the link's range: %v %v", d.Check, d.Err)
		}
		r, d := w.doDelegated(dt, bob, "set-temperature", token.Int(25)) // the token allows it
		expect(t, r, d, wire.StatusAccessDenied, device.CheckScope, token.ErrOutOfScope)
	})
	t.Run("a request without the chain is the delegator's", func(t *testing.T) {
		w := newWorld(t)
		tok := w.delegable(1, nil, nil)
		if r, d := w.do(tok, "configure"); r.Status != wire.StatusSuccess || d.Chain != nil || d.KeyThumbprint() != nil {
			t.Fatalf("the token alone: %v %v chain %v", d.Check, d.Err, d.Chain)
		}
		if w.calls[0].Delegated() || w.calls[0].Chain != nil {
			t.Fatal("call says delegated")
		}
	})
}

// Every refusal of a chain is the delegation check's (status 4), with the
// token package's typed reason, and runs no handler.
func TestDelegationRefusals(t *testing.T) {
	bob, carol := newKey(t, "P-256"), newKey(t, "P-256")
	for _, tc := range []struct {
		name   string
		build  func(w *world) []byte // the delegated token
		signer string                // signs the request: "pop" (the token's key), "bob"; "": carol
		field  string                // DelegationError.Field, "" for any
		reason error
	}{
		{"link signed by another key", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, bob))
		}, "", "", token.ErrLinkSignature},
		{"link widening the scope", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			sc, _ := token.ParseScope("read-data set-temperature")
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Scope: sc, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "scope", token.ErrNotNarrower},
		{"link widening an argument constraint", func(w *world) []byte {
			tok := w.delegable(1, nil, func(c *token.Claims) {
				c.Scope, _ = token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
			})
			_, rh := w.parent(tok)
			sc, _ := token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 10, 28)}})
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Scope: sc, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "scope", token.ErrNotNarrower},
		{"link selecting a permission the token does not have", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 0b100, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "scope", token.ErrNotNarrower},
		{"link passing on an operation the token may not pass on", func(w *world) []byte {
			tok := w.delegable(1, []string{"read-data"}, nil)
			_, rh := w.parent(tok)
			sc, _ := token.ParseScope("configure")
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Scope: sc, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "scope", token.ErrNotDelegable},
		{"link outliving the token", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(2 * time.Hour)}, rh, w.pop))
		}, "", "exp", token.ErrNotNarrower},
		{"link starting before the token", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), NotBefore: testNow.Add(-time.Hour)}, rh, w.pop))
		}, "", "nbf", token.ErrNotNarrower},
		{"link widening the audience", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Audience: []string{"ep:hvac-1", "ep:hvac-2"}}, rh, w.pop))
		}, "", "aud", token.ErrNotNarrower},
		{"chain longer than the token's depth", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			_, rh := w.parent(tok)
			l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop)
			return w.chainOf(tok, l1, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, linkHash(w, tok, l1), bob))
		}, "", "", token.ErrDelegationDepth},
		{"link below a link of depth 0", func(w *world) []byte {
			tok := w.delegable(2, nil, nil)
			_, rh := w.parent(tok)
			l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop)
			return w.chainOf(tok, l1, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, linkHash(w, tok, l1), bob))
		}, "", "", token.ErrDelegationDepth},
		{"link delegating back to the token's key", func(w *world) []byte {
			tok := w.delegable(2, nil, nil)
			_, rh := w.parent(tok)
			l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Depth: 1}, rh, w.pop)
			return w.chainOf(tok, l1, w.link(&token.Link{Key: w.pop.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, linkHash(w, tok, l1), bob))
		}, "pop", "", token.ErrDelegationLoop},
		{"links reordered", func(w *world) []byte {
			tok := w.delegable(2, nil, nil)
			_, rh := w.parent(tok)
			l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Depth: 1}, rh, w.pop)
			l2 := w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, linkHash(w, tok, l1), bob)
			return w.chainOf(tok, l2, l1)
		}, "", "", token.ErrLinkSignature},
		{"link duplicated", func(w *world) []byte {
			tok := w.delegable(2, nil, nil)
			_, rh := w.parent(tok)
			l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Depth: 1}, rh, w.pop)
			// Cheap checks first: a copy of a link below itself always
			// fails the depth rule (its depth cannot be below its own),
			// before its key (a loop) and its signature are looked at.
			return w.chainOf(tok, l1, l1)
		}, "bob", "depth", token.ErrDelegationDepth},
		{"chain presented with another token of the same holder", func(w *world) []byte {
			tok := w.delegable(1, nil, nil)
			dt := w.delegate(tok, w.pop, carol, "read-data", nil)
			d, err := token.ParseDelegatedToken(dt)
			if err != nil {
				w.t.Fatal(err)
			}
			other := w.delegable(1, nil, func(c *token.Claims) { c.ID = []byte{0xc7, 0x02} })
			return (&token.DelegatedToken{Token: other, Chain: d.Chain}).Bytes()
		}, "", "", token.ErrLinkSignature},
		{"token without a delegation claim", func(w *world) []byte {
			tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "", token.ErrNotDelegable},
		{"v1 token with a chain", func(w *world) []byte {
			tok := w.token(nil)
			_, rh := w.parent(tok)
			return w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop))
		}, "", "", token.ErrNotDelegable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			signer := map[string]crypto.Signer{"": carol, "bob": bob, "pop": w.pop}[tc.signer]
			dt := tc.build(w)
			r, d := w.doDelegated(dt, signer, "read-data")
			expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, tc.reason)
			if !errors.Is(d.Err, token.ErrDelegation) {
				t.Errorf("reason %v does not match token.ErrDelegation", d.Err)
			}
			var de *token.DelegationError
			if !errors.As(d.Err, &de) {
				t.Fatalf("reason %v is no *token.DelegationError", d.Err)
			}
			if tc.field != "" && de.Field != tc.field {
				t.Errorf("field %q, want %q", de.Field, tc.field)
			}
			if d.Operation != "" || w.runs("read-data") != 0 || d.Chain != nil {
				t.Fatalf("refused chain: operation %q ran %d times, chain %v", d.Operation, w.runs("read-data"), d.Chain)
			}
		})
	}
}

// linkHash returns the hash of the first link l below tok, as a device
// computes it on verification.
func linkHash(w *world, tok, l []byte) [32]byte {
	w.t.Helper()
	c, rh := w.parent(tok)
	ch, err := token.NewChain(l)
	if err != nil {
		w.t.Fatal(err)
	}
	vc, err := ch.Verify(c, rh)
	if err != nil {
		w.t.Fatalf("link does not verify: %v", err)
	}
	return vc.Links[0].Hash
}

// The request of a delegated token is signed by the last key of its
// chain: the token's key and earlier delegates cannot use the chain.
func TestDelegatedRequestSignedByAnEarlierKey(t *testing.T) {
	w := newWorld(t)
	bob, carol := newKey(t, "P-256"), newKey(t, "P-256")
	dt := w.delegate(w.delegable(2, nil, nil), w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.Depth = 1 })
	dt = w.delegate(dt, bob, carol, "read-data", nil)
	for name, k := range map[string]crypto.Signer{"the token's key": w.pop, "the first delegate's": bob, "a stranger's": newKey(t, "P-256")} {
		t.Run(name, func(t *testing.T) {
			r, d := w.doDelegated(dt, k, "read-data")
			expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
			w.expectChain(d.Chain, dt, bob, carol) // the audit names the chain presented
		})
	}
	if r, d := w.doDelegated(dt, carol, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("the last key: %v %v", d.Check, d.Err)
	}
}

// A bundle whose fourth element is not a chain is malformed (status 2),
// and consumes no nonce.
func TestMalformedChain(t *testing.T) {
	w := newWorld(t)
	tok := w.delegable(1, nil, nil)
	_, rh := w.parent(tok)
	link := w.link(&token.Link{Key: newKey(t, "P-256").Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, w.pop)
	five := []byte{0x80 + token.MaxDelegationDepth + 1}
	for range token.MaxDelegationDepth + 1 {
		five = append(five, link...)
	}
	n := w.nonce()
	for name, chain := range map[string][]byte{
		"empty array":                      {0x80},
		"not an array":                     {0x40},
		"a link that is not":               {0x81, 0x80},
		"a link in a byte string":          append([]byte{0x81, 0x58, byte(len(link))}, link...),
		"more links than any token allows": five,
	} {
		t.Run(name, func(t *testing.T) {
			payload := appendUint([]byte{0x84}, n)
			payload = appendBstr(append(appendTstr(append(payload, 0x83, 0x01), "read-data"), 0x80), tok)
			payload = append(payload, chain...)
			signed := rawSign1(t, []byte{0xd2}, []byte{0xa1, 0x01, 0x26}, []byte{0xa0}, payload, w.pop.(*ecdsa.PrivateKey))
			r, d := w.send(wire.EncodeOperationRequest(signed))
			expect(t, r, d, wire.StatusInvalidRequest, device.CheckParse, token.ErrMalformed)
		})
	}
	// The link alone is well formed: the chain gets past parsing (and is
	// refused later, its delegate not having signed the request).
	r, d := w.send(w.delegatedRequest(n, w.chainOf(tok, link), w.pop, "read-data"))
	expect(t, r, d, wire.StatusVerificationError, device.CheckProofOfPossession, token.ErrSignature)
	if r, d := w.send(w.request(n, tok, w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("nonce lost to malformed chains: %v %v", d.Check, d.Err)
	}
}

// Revocation applies to the whole chain: the token (by cti, by hash, by a
// status update, by a subject cut-off) revokes every chain below it, a
// link's hash revokes that link and every link below it.
func TestDelegationRevocation(t *testing.T) {
	bob, carol := newKey(t, "P-256"), newKey(t, "P-256")
	// chain returns a token of depth 2 delegated to bob and on to carol,
	// the same token with the first link alone, and the hashes of the two
	// links.
	chain := func(w *world) (dt, one []byte, tok []byte, hashes [2][32]byte) {
		tok = w.delegable(2, nil, func(c *token.Claims) { c.ID = []byte{0xde, 0x1e} })
		_, rh := w.parent(tok)
		l1 := w.link(&token.Link{Key: bob.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Depth: 1, Subject: "bob"}, rh, w.pop)
		h1 := linkHash(w, tok, l1)
		l2 := w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Subject: "carol"}, h1, bob)
		dt = w.chainOf(tok, l1, l2)
		d, _ := token.ParseDelegatedToken(dt)
		c, _ := w.parent(tok)
		vc, err := d.Chain.Verify(c, rh)
		if err != nil {
			w.t.Fatal(err)
		}
		return dt, w.chainOf(tok, l1), tok, [2][32]byte{vc.Links[0].Hash, vc.Links[1].Hash}
	}
	t.Run("list", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			id   func(tok []byte, links [2][32]byte) (kind string, id []byte)
		}{
			{"token by cti", func([]byte, [2][32]byte) (string, []byte) { return "cti", []byte{0xde, 0x1e} }},
			{"token by revocation hash", func(tok []byte, _ [2][32]byte) (string, []byte) {
				p, _ := token.Parse(tok)
				h := p.RevocationHash()
				return "hash", h[:]
			}},
			{"first link", func(_ []byte, l [2][32]byte) (string, []byte) { return "hash", l[0][:] }},
			{"second link", func(_ []byte, l [2][32]byte) (string, []byte) { return "hash", l[1][:] }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t)
				dt, one, tok, links := chain(w)
				if r, d := w.doDelegated(dt, carol, "read-data"); r.Status != wire.StatusSuccess {
					t.Fatalf("before the revocation: %v %v", d.Check, d.Err)
				}
				kind, id := tc.id(tok, links)
				w.mustRevoke(w.admin(), kind, id, 0)
				r, d := w.doDelegated(dt, carol, "read-data")
				expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
				// The first link alone: revoked unless only the second link is.
				r, d = w.doDelegated(one, bob, "read-data")
				if tc.name == "second link" {
					if r.Status != wire.StatusSuccess {
						t.Fatalf("the first link alone: %v %v", d.Check, d.Err)
					}
				} else {
					expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
				}
			})
		}
	})
	t.Run("status update", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			edit  func(u *token.StatusUpdate, tok []byte, links [2][32]byte)
			entry string
			link  int
		}{
			{"token id", func(u *token.StatusUpdate, _ []byte, _ [2][32]byte) { u.TokenIDs = [][]byte{{0xde, 0x1e}} }, token.EntryTokenID, 0},
			{"subject cut-off of the token's subject", func(u *token.StatusUpdate, _ []byte, _ [2][32]byte) {
				u.Subjects = []token.SubjectCutoff{{Subject: "alice", Before: testNow}}
			}, token.EntrySubjectCutoff, 0},
			{"first link's hash", func(u *token.StatusUpdate, _ []byte, l [2][32]byte) { u.Hashes = [][32]byte{l[0]} }, token.EntryTokenHash, 1},
			{"second link's hash", func(u *token.StatusUpdate, _ []byte, l [2][32]byte) { u.Hashes = [][32]byte{l[1]} }, token.EntryTokenHash, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t)
				dt, _, tok, links := chain(w)
				w.install(w.status(func(u *token.StatusUpdate) { tc.edit(u, tok, links) }))
				r, d := w.doDelegated(dt, carol, "read-data")
				expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
				var re *device.RevocationError
				if !errors.As(d.Err, &re) || re.Entry != tc.entry || re.Link != tc.link {
					t.Fatalf("revocation error %#v, want entry %q link %d", d.Err, tc.entry, tc.link)
				}
			})
		}
	})
	t.Run("a subject cut-off does not apply to a link's subject", func(t *testing.T) {
		w := newWorld(t)
		dt, _, _, _ := chain(w)
		w.install(w.status(func(u *token.StatusUpdate) { u.Subjects = []token.SubjectCutoff{{Subject: "bob", Before: testNow}} }))
		if r, d := w.doDelegated(dt, carol, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("link subjects are the delegator's say-so: %v %v", d.Check, d.Err)
		}
	})
}

// A cached token gets its chain verified on every request.
func TestDelegationWithCachedToken(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 4 })
	bob, carol := newKey(t, "P-256"), newKey(t, "P-256")
	tok := w.delegable(1, nil, nil)
	if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("%v %v", d.Check, d.Err)
	}
	dt := w.delegate(tok, w.pop, bob, "read-data", nil)
	r, d := w.doDelegated(dt, bob, "read-data")
	if r.Status != wire.StatusSuccess || !d.CachedToken {
		t.Fatalf("delegated with the cached token: %v %v cached %v", d.Check, d.Err, d.CachedToken)
	}
	_, rh := w.parent(tok)
	forged := w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, bob))
	r, d = w.doDelegated(forged, carol, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrLinkSignature)
	if !d.CachedToken {
		t.Fatal("the token did not come from the cache")
	}
}

// The chain narrows audience and time: the device checks its own name and
// its clock against the end of the chain.
func TestDelegationEffectiveAudienceAndTime(t *testing.T) {
	bob := newKey(t, "P-256")
	t.Run("audience", func(t *testing.T) {
		w := newWorld(t)
		tok := w.delegable(1, nil, func(c *token.Claims) { c.Audience = []string{"ep:hvac-1", "ep:hvac-2"} })
		dt := w.delegate(tok, w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.Audience = []string{"ep:hvac-2"} })
		r, d := w.doDelegated(dt, bob, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckAudience, token.ErrWrongAudience)
	})
	t.Run("expiry", func(t *testing.T) {
		w := newWorld(t)
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.Expiry = testNow.Add(10 * time.Minute) })
		if r, d := w.doDelegated(dt, bob, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("%v %v", d.Check, d.Err)
		}
		w.clock.Advance(10*time.Minute + device.DefaultLeeway + time.Second) // the token is valid for the hour
		r, d := w.doDelegated(dt, bob, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
	})
	t.Run("not before", func(t *testing.T) {
		w := newWorld(t)
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.NotBefore = testNow.Add(device.DefaultLeeway + time.Minute) })
		r, d := w.doDelegated(dt, bob, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrNotYetValid)
	})
	t.Run("a link's times do not move the lower bound of time", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.ClockMode = device.ClockLowerBound })
		tok := w.delegable(1, nil, func(c *token.Claims) { c.IssuedAt = time.Time{} }) // nbf testNow-1m
		dt := w.delegate(tok, w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.NotBefore = testNow.Add(30 * time.Minute) })
		if r, d := w.doDelegated(dt, bob, "read-data"); r.Status != wire.StatusSuccess {
			t.Fatalf("%v %v", d.Check, d.Err)
		}
		if got, want := w.agent.TimeLowerBound(), testNow.Add(-time.Minute); !got.Equal(want) {
			t.Fatalf("lower bound %v, want the token's nbf %v", got, want)
		}
	})
}

// A delegated token cannot prove freshness by cnonce, not even when its
// delegator proved the token fresh in this run; a recent status update
// does prove it.
func TestDelegationFreshness(t *testing.T) {
	bob := newKey(t, "P-256")
	w := newWorld(t, statusUpdates, func(c *device.Config) { c.Freshness = device.Freshness{CNonce: true} })
	n := w.nonce()
	tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) {
		c.Delegation = &token.Delegation{Depth: 1}
		c.CNonce = []byte{byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	})
	if r, d := w.send(w.request(n, tok, w.pop, "read-data")); r.Status != wire.StatusSuccess {
		t.Fatalf("the delegator's fresh token: %v %v", d.Check, d.Err)
	}
	dt := w.delegate(tok, w.pop, bob, "read-data", nil)
	r, d := w.doDelegated(dt, bob, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrCNonce)

	w2 := newWorld(t, statusUpdates, func(c *device.Config) { c.Freshness = device.Freshness{MaxStatusAge: time.Hour} })
	w2.install(w2.status(nil))
	tok = w2.delegable(1, nil, nil)
	if r, d := w2.doDelegated(w2.delegate(tok, w2.pop, bob, "read-data", nil), bob, "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("fresh by a recent update: %v %v", d.Check, d.Err)
	}
}

// A link that fails its signature cost the device a verification: it
// counts toward throttling as a forged token does.
func TestDelegationFailuresThrottle(t *testing.T) {
	bob, carol := newKey(t, "P-256"), newKey(t, "P-256")
	w := newWorld(t, func(c *device.Config) { c.Throttle.Failures = 2 })
	tok := w.delegable(1, nil, nil)
	_, rh := w.parent(tok)
	forged := w.chainOf(tok, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, bob))
	n := w.nonce()
	for range 2 {
		r, d := w.send(w.delegatedRequest(n, forged, carol, "read-data"))
		expect(t, r, d, wire.StatusVerificationError, device.CheckDelegation, token.ErrLinkSignature)
	}
	if !w.throttled() {
		t.Fatal("not throttled after two forged links")
	}
}

// The audit event of a delegated request names every key of the chain,
// the token's first, and the delegates' subjects.
func TestDelegationAuditEvent(t *testing.T) {
	var buf bytes.Buffer
	w := newWorld(t, func(c *device.Config) { c.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	bob, carol := newKey(t, "P-256"), newKey(t, "Ed25519")
	dt := w.delegate(w.delegable(2, nil, nil), w.pop, bob, "read-data configure", func(s *token.DelegationSpec) { s.Depth = 1 })
	dt = w.delegate(dt, bob, carol, "read-data", func(s *token.DelegationSpec) { s.Subject = "carol" })
	w.doDelegated(dt, carol, "read-data")
	w.doDelegated(dt, carol, "configure")
	var events []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e["request"] == "operation" {
			events = append(events, e)
		}
	}
	if len(events) != 2 {
		t.Fatalf("%d operation events, want 2", len(events))
	}
	want := []any{hex.EncodeToString(thumb(t, w.pop)), hex.EncodeToString(thumb(t, bob)), hex.EncodeToString(thumb(t, carol))}
	for i, e := range events {
		chain, _ := e["chain"].([]any)
		if !slices.Equal(chain, want) || e["subject"] != "alice" {
			t.Fatalf("event %d: chain %v subject %v, want %v alice", i, e["chain"], e["subject"], want)
		}
		if subs, _ := e["chain_subjects"].([]any); !slices.Equal(subs, []any{"bob", "carol"}) {
			t.Fatalf("event %d: chain subjects %v", i, e["chain_subjects"])
		}
	}
	if events[1]["check"] != "scope" {
		t.Fatalf("configure: %v", events[1])
	}
}

// A delegated operation works end to end over the transports devices
// serve: TCP (ServeListener), and BLE fragments and a serial stream
// (Serve).
func TestDelegationOverTransports(t *testing.T) {
	bob := newKey(t, "P-256")
	exchange := func(t *testing.T, ctx context.Context, w *world, c transport.Conn, dt []byte) {
		t.Helper()
		nr := roundTrip(t, ctx, c, wire.NonceRequest)
		if r := roundTrip(t, ctx, c, w.delegatedRequest(nr.Nonce, dt, bob, "read-data")); r.Status != wire.StatusSuccess || string(r.Data) != "ok:read-data" {
			t.Fatalf("delegated read-data: %+v", r)
		}
		nr = roundTrip(t, ctx, c, wire.NonceRequest)
		if r := roundTrip(t, ctx, c, w.delegatedRequest(nr.Nonce, dt, bob, "configure")); r.Status != wire.StatusAccessDenied {
			t.Fatalf("delegated configure: %+v", r)
		}
	}
	t.Run("TCP", func(t *testing.T) {
		w := newWorld(t)
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := transport.Dial(ctx, serveTCP(t, w, 2), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, ctx, w, c, dt)
	})
	t.Run("BLE fragments", func(t *testing.T) {
		w := newWorld(t)
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tp, dp := transport.PacketPipe(20)
		tech, err := transport.NewFragmentConn(tp, nil)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := transport.NewFragmentConn(dp, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- w.agent.Serve(ctx, dev) }()
		exchange(t, ctx, w, tech, dt)
		tech.Close()
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
	})
	t.Run("serial stream", func(t *testing.T) {
		w := newWorld(t)
		dt := w.delegate(w.delegable(1, nil, nil), w.pop, bob, "read-data", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		nc, _ := serveStream(t, w) // serving ends with the test
		c, err := transport.NewStreamConn(nc, nil)
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, ctx, w, c, dt)
	})
}
