package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func mustScope(t testing.TB, s string) token.Scope {
	t.Helper()
	sc, err := token.ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || k == nil {
		t.Fatalf("key %s: %v", kind, err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name            string
		anchor, pop     string
		profile         token.Profile
		wantAlg, popAlg token.Algorithm
	}{
		{"v1-ES256", "P-256", "P-256", token.ProfileV1, token.AlgES256, token.AlgES256},
		{"v2-ES256-EdDSA", "P-256", "Ed25519", token.ProfileV2, token.AlgES256, token.AlgEdDSA},
		{"v2-EdDSA", "Ed25519", "P-256", token.ProfileV2, token.AlgEdDSA, token.AlgES256},
		{"v2-ES384", "P-384", "P-384", token.ProfileV2, token.AlgES384, token.AlgES384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anchor, pop := newKey(t, tc.anchor), newKey(t, tc.pop)
			claims := &token.Claims{
				Issuer:    "mbed.ta.TEST",
				Subject:   "alice",
				Audience:  []string{"ep:hvac-1"},
				Expiry:    testNow.Add(time.Hour),
				NotBefore: testNow.Add(-time.Minute),
				Scope:     mustScope(t, "read-data configure"),
				Key:       pop.Public(),
			}
			tok, err := token.Issue(claims, anchor, &token.IssueOptions{Profile: tc.profile})
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := token.Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.UnverifiedIssuer() != "mbed.ta.TEST" || parsed.Algorithm() != tc.wantAlg {
				t.Fatalf("issuer %q alg %v", parsed.UnverifiedIssuer(), parsed.Algorithm())
			}
			got, err := parsed.Verify(anchor.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got.Profile != tc.profile || !token.EqualKeys(got.Key, pop.Public()) || got.Subject != "alice" {
				t.Fatalf("claims %+v", got)
			}
			if err := got.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: testNow}); err != nil {
				t.Fatal(err)
			}
			if _, err := parsed.Verify(newKey(t, tc.anchor).Public()); !errors.Is(err, token.ErrSignature) {
				t.Fatalf("verify with another key: %v", err)
			}
			req, err := token.SignRequest(&token.Request{Nonce: 42, Operation: token.Operation{Name: "configure", Args: []token.Arg{token.Int(21), token.Text("x")}}, Token: tok}, pop, nil)
			if err != nil {
				t.Fatal(err)
			}
			sr, err := token.ParseRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if token.SignedRequestAlgorithm(sr) != tc.popAlg {
				t.Fatalf("request alg %v", token.SignedRequestAlgorithm(sr))
			}
			r, err := sr.Verify(got.Key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Nonce != 42 || r.Operation.Name != "configure" || len(r.Operation.Args) != 2 {
				t.Fatalf("request %+v", r)
			}
			if err := got.Scope.Check(r.Operation); err != nil {
				t.Fatal(err)
			}
			t.Logf("token %d bytes, request %d bytes", len(tok), len(req))
		})
	}
}

// TestEpochTimes: times at the epoch are present claims (0), not absent
// ones, so a v1 token with nbf 0 still carries nbf.
func TestEpochTimes(t *testing.T) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	epoch := time.Unix(0, 0)
	tok, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:a"}, Expiry: testNow,
		NotBefore: epoch, IssuedAt: epoch, Scope: mustScope(t, "xy"), Key: pop.Public()}, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Verify(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotBefore.Equal(epoch) || !c.IssuedAt.Equal(epoch) {
		t.Fatalf("nbf %v, iat %v; want both at the epoch", c.NotBefore, c.IssuedAt)
	}
}

// TestIssueV1NeedsP256PoPKey: the cnf key of an SDA v1 token is an EC2
// P-256 key (docs/PROTOCOL.md 4.3); deployed devices know no other.
func TestIssueV1NeedsP256PoPKey(t *testing.T) {
	anchor := newKey(t, "P-256")
	for _, kind := range []string{"P-384", "Ed25519"} {
		c := &token.Claims{Issuer: "i", Audience: []string{"ep:a"}, Expiry: testNow, NotBefore: testNow,
			Scope: mustScope(t, "xy"), Key: newKey(t, kind).Public()}
		if _, err := token.Issue(c, anchor, nil); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("v1 token with a %s cnf key: %v, want ErrInvalid", kind, err)
		}
		if _, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV2}); err != nil {
			t.Errorf("v2 token with a %s cnf key: %v", kind, err)
		}
	}
}

// TestIssueV1RefusesOneByteScope: deployed SDA devices refuse a v1 token
// whose scope text is a single byte (status 2), so Issue refuses to sign
// one in ProfileV1 (ErrInvalid); v2 tokens and longer v1 scopes are issued.
func TestIssueV1RefusesOneByteScope(t *testing.T) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	issue := func(scope string, p token.Profile) error {
		_, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:a"}, Expiry: testNow, NotBefore: testNow,
			Scope: mustScope(t, scope), Key: pop.Public()}, anchor, &token.IssueOptions{Profile: p})
		return err
	}
	for _, scope := range []string{"a", "Z"} {
		if err := issue(scope, token.ProfileV1); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("v1 scope %q: %v, want ErrInvalid", scope, err)
		}
		if err := issue(scope, token.ProfileV2); err != nil {
			t.Errorf("v2 scope %q: %v", scope, err)
		}
	}
	for _, scope := range []string{"ab", "a b", "read-data"} {
		if err := issue(scope, token.ProfileV1); err != nil {
			t.Errorf("v1 scope %q: %v", scope, err)
		}
	}
}

// TestIssueOnlyWhatParseAccepts: Issue refuses claims whose token its own
// Parse would reject, instead of signing it.
func TestIssueOnlyWhatParseAccepts(t *testing.T) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	base := func() *token.Claims {
		return &token.Claims{Issuer: "i", Audience: []string{"ep:a"}, Expiry: testNow, NotBefore: testNow,
			Scope: mustScope(t, "xy"), Key: pop.Public()}
	}
	for _, tc := range []struct {
		name string
		mod  func(c *token.Claims)
	}{
		{"token over MaxTokenSize", func(c *token.Claims) {
			c.Audience = nil
			for i := 0; i < token.MaxAudiences; i++ {
				c.Audience = append(c.Audience, fmt.Sprintf("ep:%060d", i))
			}
		}},
		{"long subject", func(c *token.Claims) { c.Subject = strings.Repeat("s", token.MaxTokenSize) }},
		{"exp beyond the decodable range", func(c *token.Claims) { c.Expiry = time.Unix(math.MaxInt64/2+1, 0) }},
		{"iat beyond the decodable range", func(c *token.Claims) { c.IssuedAt = time.Unix(math.MaxInt64, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(c)
			tok, err := token.Issue(c, anchor, nil)
			if err == nil {
				_, perr := token.Parse(tok)
				t.Fatalf("Issue signed a %d-byte token (Parse: %v)", len(tok), perr)
			}
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// TestSignOnlyWhatParses: SignRequest and SignResponse refuse what the
// decoders would reject.
func TestSignOnlyWhatParses(t *testing.T) {
	key := newKey(t, "P-256")
	big := make([]byte, token.MaxTokenSize+1)
	if _, err := token.SignRequest(&token.Request{Nonce: 1, Operation: token.Operation{Name: "x"}, Token: big}, key, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("SignRequest with an oversized token: %v, want ErrInvalid", err)
	}
	if _, err := token.SignResponse(&token.DeviceResponse{Data: make([]byte, 17<<10)}, key, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("SignResponse with oversized data: %v, want ErrInvalid", err)
	}
}
