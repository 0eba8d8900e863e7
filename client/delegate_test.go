package client

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// delegable returns a v2 token for pop on ep:hvac-1, signed by anchor,
// that lets its holder pass on up to depth links of the whole scope.
func delegable(t testing.TB, anchor crypto.Signer, pop crypto.PublicKey, scope string, exp time.Time, depth int) []byte {
	t.Helper()
	return issueDelegation(t, anchor, pop, []string{"ep:hvac-1"}, scope, exp, token.ProfileV2, nil, &token.Delegation{Depth: depth})
}

func mustScope(t testing.TB, s string) token.Scope {
	t.Helper()
	sc, err := token.ParseScopeText(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func anchorStore(t testing.TB, anchor crypto.Signer) trust.Store {
	t.Helper()
	a, err := trust.NewAnchor(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	s, err := trust.NewMemoryStore(*a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDelegatedSession: a delegate runs the operation passed on to it on
// a real device agent with its own key and the delegated token; an
// operation it was not given is refused by the device; a session whose key
// is not the chain's last key refuses the token before anything is sent.
func TestDelegatedSession(t *testing.T) {
	d := newE2EDevice(t, true)
	alice, sub := mustKey(t, KeyEd25519), mustKey(t, KeyP256)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	raw := delegable(t, d.anchor, alice.Public(), "read-data configure", exp, 1)
	holder, err := CheckToken(raw, &TokenCheck{Key: alice.Public(), Anchors: anchorStore(t, d.anchor)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Delegate(holder, alice, &token.DelegationSpec{To: sub.Public(), Scope: mustScope(t, "configure"), Expiry: exp.Add(-time.Minute), Subject: "sub-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Chain == nil || got.Chain.Len() != 1 || !token.EqualKeys(got.Key, sub.Public()) || !slices.Equal(got.Scope.Names(), []string{"configure"}) {
		t.Fatalf("Delegate: chain %v, key %v, scope %v; want one link to the delegate's key for configure", got.Chain, got.Key, got.Scope)
	}

	t.Run("delegated operation runs", func(t *testing.T) {
		conn, _, done := connect(t, d, links[0], nil)
		defer done()
		s := &Session{Conn: conn, Key: sub, Tokens: StaticToken(got.Bytes()), DeviceKey: d.key.Public(), Device: e2eIdentity}
		res, err := s.Do(context.Background(), token.Operation{Name: "configure", Args: []token.Arg{token.Int(7)}})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Data) != "ran:7" || d.counter.get(7) != 1 {
			t.Errorf("got %q, ran %d times; want ran:7 once", res.Data, d.counter.get(7))
		}
		// read-data is the holder's, not passed on.
		_, err = s.Do(context.Background(), token.Operation{Name: "read-data"})
		if !errors.Is(err, ErrAccessDenied) {
			t.Errorf("read-data with the delegated token: %v, want %v", err, ErrAccessDenied)
		}
	})
	t.Run("session key is not the last key", func(t *testing.T) {
		conn, _, done := connect(t, d, links[0], nil)
		defer done()
		before := d.nonces.Load()
		// alice's key signs for her own token, not for the delegated one.
		s := &Session{Conn: conn, Key: alice, Tokens: StaticToken(got.Bytes())}
		_, err := s.Do(context.Background(), token.Operation{Name: "configure", Args: []token.Arg{token.Int(8)}})
		var tce *TokenCheckError
		if !errors.As(err, &tce) || tce.Check != "cnf" || !errors.Is(err, ErrTokenMismatch) {
			t.Errorf("Do: %v, want a cnf TokenCheckError", err)
		}
		if n := d.nonces.Load() - before; n != 0 || d.counter.get(8) != 0 {
			t.Errorf("the device answered %d nonce requests and ran %d times, want nothing sent", n, d.counter.get(8))
		}
	})
}

// TestCheckDelegatedToken: CheckToken verifies a delegated token's chain
// and reports its effective values, and refuses chains that do not verify
// with the typed error of package token.
func TestCheckDelegatedToken(t *testing.T) {
	anchor := mustP256(t)
	anchors := anchorStore(t, anchor)
	alice, sub, eve := mustKey(t, KeyP256), mustKey(t, KeyP256), mustKey(t, KeyP256)
	exp := testNow.Add(time.Hour)
	raw := delegable(t, anchor, alice.Public(), "read-data configure", exp, 1)
	tok, err := token.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	holder := &AccessToken{Raw: raw}
	good, err := Delegate(holder, alice, &token.DelegationSpec{To: sub.Public(), Scope: mustScope(t, "read-data"), Expiry: exp.Add(-30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// link signs a link below the token with key, without the narrowing
	// checks of Delegate.
	link := func(key crypto.Signer, scope string, exp time.Time) []byte {
		t.Helper()
		l, err := token.SignLink(&token.Link{Key: sub.Public(), Scope: mustScope(t, scope), Expiry: exp}, tok.RevocationHash(), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := token.NewChain(l)
		if err != nil {
			t.Fatal(err)
		}
		return (&AccessToken{Raw: raw, Chain: c}).Bytes()
	}

	for _, anchored := range []bool{true, false} {
		c := &TokenCheck{Key: sub.Public(), Now: testNow}
		name := "unanchored"
		if anchored {
			c.Anchors, name = anchors, "anchored"
		}
		t.Run(name+"/good", func(t *testing.T) {
			got, err := CheckToken(good.Bytes(), c)
			if err != nil {
				t.Fatal(err)
			}
			if got.Verified != anchored || got.Chain.Len() != 1 || !token.EqualKeys(got.Key, sub.Public()) ||
				got.Scope.String() != "read-data" || !got.Expiry.Equal(exp.Add(-30*time.Minute)) {
				t.Errorf("got verified %v, key %v, scope %q, exp %v; want the link's", got.Verified, got.Key, got.Scope, got.Expiry)
			}
		})
		t.Run(name+"/refused", func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				raw   []byte
				check *TokenCheck
				want  error
			}{
				{"wrong signer", link(eve, "read-data", exp), c, token.ErrLinkSignature},
				{"wider scope", link(alice, "read-data update-firmware", exp), c, token.ErrNotNarrower},
				{"longer", link(alice, "read-data", exp.Add(time.Hour)), c, token.ErrNotNarrower},
			} {
				_, err := CheckToken(tc.raw, tc.check)
				var tce *TokenCheckError
				var de *token.DelegationError
				if !errors.As(err, &tce) || tce.Check != "delegation" || !errors.As(err, &de) || !errors.Is(err, tc.want) || !errors.Is(err, ErrTokenMismatch) {
					t.Errorf("%s: %v, want a delegation TokenCheckError matching %v", tc.name, err, tc.want)
				}
			}
			// The chain verifies, but ends with another key than the client's.
			cc := *c
			cc.Key = alice.Public()
			_, err := CheckToken(good.Bytes(), &cc)
			var tce *TokenCheckError
			if !errors.As(err, &tce) || tce.Check != "cnf" {
				t.Errorf("another client's key: %v, want a cnf TokenCheckError", err)
			}
		})
	}
}

// TestDelegateRefusals: Delegate refuses what a device would refuse, with
// package token's typed errors, and a key that is not the holder's.
func TestDelegateRefusals(t *testing.T) {
	anchor := mustP256(t)
	alice, sub := mustKey(t, KeyP256), mustKey(t, KeyP256)
	exp := testNow.Add(time.Hour)
	spec := func(scope string) *token.DelegationSpec {
		return &token.DelegationSpec{To: sub.Public(), Scope: mustScope(t, scope), Expiry: exp.Add(-time.Minute)}
	}
	v1 := &AccessToken{Raw: issue(t, anchor, alice.Public(), []string{"ep:hvac-1"}, "read-data", exp)}
	if _, err := Delegate(v1, alice, spec("read-data")); !errors.Is(err, token.ErrNotDelegable) {
		t.Errorf("from a v1 token: %v, want %v", err, token.ErrNotDelegable)
	}
	holder := &AccessToken{Raw: delegable(t, anchor, alice.Public(), "read-data", exp, 1)}
	if _, err := Delegate(holder, alice, spec("read-data configure")); !errors.Is(err, token.ErrNotNarrower) {
		t.Errorf("widening: %v, want %v", err, token.ErrNotNarrower)
	}
	if _, err := Delegate(holder, sub, spec("read-data")); !errors.Is(err, ErrTokenMismatch) {
		t.Errorf("with another key than the holder's: %v, want %v", err, ErrTokenMismatch)
	}
	once, err := Delegate(holder, alice, spec("read-data"))
	if err != nil {
		t.Fatal(err)
	}
	third := mustKey(t, KeyP256)
	s := spec("read-data")
	s.To = third.Public()
	if _, err := Delegate(once, sub, s); !errors.Is(err, token.ErrDelegationDepth) {
		t.Errorf("below a link of depth 0: %v, want %v", err, token.ErrDelegationDepth)
	}
}
