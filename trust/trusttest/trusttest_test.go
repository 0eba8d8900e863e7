package trusttest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// verify parses raw and verifies it as a device would, with the issuer's
// anchor looked up in a store.
func verify(t *testing.T, iss *trusttest.Issuer, raw []byte) (*token.Token, *token.Claims) {
	t.Helper()
	tok, err := token.Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	anchors, err := iss.Store(t).Lookup(tok.UnverifiedIssuer(), tok.UnverifiedKeyID())
	if err != nil || len(anchors) != 1 {
		t.Fatalf("Lookup: %v, %d anchors", err, len(anchors))
	}
	c, err := tok.Verify(anchors[0].Key)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := anchors[0].Check(c, time.Now()); err != nil {
		t.Fatalf("anchor Check: %v", err)
	}
	return tok, c
}

func TestIssuer(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	if _, ok := iss.Key.(*ecdsa.PrivateKey); !ok || iss.Key.Public().(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Fatalf("anchor key is %T, want a P-256 key", iss.Key)
	}
	name, err := token.AnchorName(iss.Key.Public())
	if err != nil || iss.Anchor.Issuer != name || !token.EqualKeys(iss.Anchor.Key, iss.Key.Public()) {
		t.Errorf("anchor %q (%v), want the SDA name %q of the key", iss.Anchor.Issuer, err, name)
	}
	if err := iss.Anchor.Validate(); err != nil {
		t.Errorf("anchor does not validate: %v", err)
	}
	if other := trusttest.NewIssuer(t); token.EqualKeys(other.Key.Public(), iss.Key.Public()) {
		t.Error("two issuers share a key")
	}
}

func TestTokenV1Defaults(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	pop := trusttest.NewPoPKey(t)
	before := time.Now().Truncate(time.Second)
	raw := iss.Token(t, "ep:hvac-1", "read-data configure", pop.Public())
	tok, c := verify(t, iss, raw)
	if c.Profile != token.ProfileV1 || tok.UnverifiedKeyID() != nil {
		t.Errorf("profile %v, kid %x; want a v1 token without kid", c.Profile, tok.UnverifiedKeyID())
	}
	if len(c.Audience) != 1 || c.Audience[0] != "ep:hvac-1" {
		t.Errorf("aud %q", c.Audience)
	}
	if got, _ := c.Scope.Text(); got != "read-data configure" {
		t.Errorf("scope %q", got)
	}
	if !token.EqualKeys(c.Key, pop.Public()) {
		t.Error("cnf is not the PoP key")
	}
	if c.IssuedAt.Before(before) || c.IssuedAt.After(time.Now()) || !c.NotBefore.Equal(c.IssuedAt) {
		t.Errorf("iat %v nbf %v, want now", c.IssuedAt, c.NotBefore)
	}
	if got := c.Expiry.Sub(c.IssuedAt); got != trusttest.DefaultLifetime {
		t.Errorf("lifetime %v, want %v", got, trusttest.DefaultLifetime)
	}
	if c.Subject != "" || c.ID != nil {
		t.Errorf("sub %q cti %x, want none", c.Subject, c.ID)
	}
	err := c.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: time.Now()})
	if err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestTokenOptions(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	pop := trusttest.NewPoPKey(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	raw := iss.Token(t, "id:0123456789abcdef0123456789abcdef", "read-data", pop.Public(),
		trusttest.Subject("alice"), trusttest.IssuedAt(at), trusttest.Lifetime(10*time.Minute), trusttest.ID([]byte{1, 2, 3}))
	_, c := verify(t, iss, raw)
	if c.Subject != "alice" || !bytes.Equal(c.ID, []byte{1, 2, 3}) {
		t.Errorf("sub %q cti %x", c.Subject, c.ID)
	}
	if !c.IssuedAt.Equal(at) || !c.NotBefore.Equal(at) || !c.Expiry.Equal(at.Add(10*time.Minute)) {
		t.Errorf("iat %v nbf %v exp %v", c.IssuedAt, c.NotBefore, c.Expiry)
	}
	err := c.Validate(token.Validation{Identity: token.Identity{DeviceID: "0123456789abcdef0123456789abcdef"}, Now: at.Add(time.Hour)})
	if !errors.Is(err, token.ErrExpired) {
		t.Errorf("an hour later: %v, want ErrExpired", err)
	}
}

func TestTokenV2Structured(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	pop := trusttest.NewPoPKey(t)
	scope, err := token.NewScope(
		token.Permission{Operation: "read-data"},
		token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
	if err != nil {
		t.Fatal(err)
	}
	raw := iss.Token(t, "ep:hvac-2", "", pop.Public(), trusttest.V2(), trusttest.Scope(scope))
	tok, c := verify(t, iss, raw)
	kid, _ := token.Thumbprint(iss.Key.Public())
	if c.Profile != token.ProfileV2 || !bytes.Equal(tok.UnverifiedKeyID(), kid) {
		t.Errorf("profile %v kid %x; want v2 with the anchor's thumbprint %x", c.Profile, tok.UnverifiedKeyID(), kid)
	}
	if !c.Scope.Equal(scope) {
		t.Errorf("scope %v, want %v", c.Scope, scope)
	}
	set := func(v int64) token.Operation {
		return token.Operation{Name: "set-temperature", Args: []token.Arg{token.Int(v)}}
	}
	if c.Scope.Check(set(21)) != nil || !errors.Is(c.Scope.Check(set(35)), token.ErrOutOfScope) {
		t.Error("the structured scope does not constrain set-temperature to 16..28")
	}
}

func TestTokenFailsTheTest(t *testing.T) {
	pop := trusttest.NewPoPKey(t)
	faketb.ExpectFatal(t, "scope", func(tb testing.TB) {
		trusttest.NewIssuer(tb).Token(tb, "ep:x", "read data!", pop.Public())
	})
	faketb.ExpectFatal(t, "issuing", func(tb testing.TB) {
		scope, _ := token.NewScope(token.Permission{Operation: "set", Constraints: []token.Constraint{token.InRange(0, 1, 2)}})
		// A structured scope needs v2.
		trusttest.NewIssuer(tb).Token(tb, "ep:x", "", pop.Public(), trusttest.Scope(scope))
	})
	faketb.ExpectFatal(t, "issuing", func(tb testing.TB) {
		trusttest.NewIssuer(tb).Token(tb, "ep:x", "read-data", nil)
	})
}
