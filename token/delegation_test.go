package token_test

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// delegFixture is a v2 token bound to pop, issued by anchor.
type delegFixture struct {
	anchor, pop crypto.Signer
	claims      *token.Claims // as verified
	tok         []byte
	hash        [32]byte
}

func delegClaims(pop crypto.Signer, d *token.Delegation) *token.Claims {
	scope, _ := token.ParseScope("read-data configure reboot")
	return &token.Claims{
		Issuer:     "mbed.ta.TEST",
		Subject:    "alice",
		Audience:   []string{"ep:a", "ep:b"},
		Expiry:     testNow.Add(8 * time.Hour),
		NotBefore:  testNow.Add(-time.Hour),
		Scope:      scope,
		Key:        pop.Public(),
		Delegation: d,
	}
}

func newDelegFixture(t testing.TB, popKind string, d *token.Delegation) *delegFixture {
	t.Helper()
	f := &delegFixture{anchor: newKey(t, "P-256"), pop: newKey(t, popKind)}
	return f.issue(t, delegClaims(f.pop, d), token.ProfileV2)
}

func (f *delegFixture) issue(t testing.TB, c *token.Claims, p token.Profile) *delegFixture {
	t.Helper()
	tok, err := token.Issue(c, f.anchor, &token.IssueOptions{Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if f.claims, err = parsed.Verify(f.anchor.Public()); err != nil {
		t.Fatal(err)
	}
	f.tok, f.hash = tok, parsed.RevocationHash()
	return f
}

// verify parses a DelegatedToken and verifies its chain below f's token.
func (f *delegFixture) verify(t testing.TB, dt []byte) (*token.VerifiedChain, error) {
	t.Helper()
	d, err := token.ParseDelegatedToken(dt)
	if err != nil {
		t.Fatalf("ParseDelegatedToken: %v", err)
	}
	return d.Chain.Verify(f.claims, f.hash)
}

// chainOf verifies the chain of the given encoded links below f's token.
func (f *delegFixture) chainOf(t testing.TB, links ...[]byte) (*token.VerifiedChain, error) {
	t.Helper()
	c, err := token.NewChain(links...)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	return c.Verify(f.claims, f.hash)
}

func signLink(t testing.TB, l *token.Link, parent [32]byte, key crypto.Signer) []byte {
	t.Helper()
	b, err := token.SignLink(l, parent, key, nil)
	if err != nil {
		t.Fatalf("SignLink: %v", err)
	}
	return b
}

// wantRefusal checks that err is a *DelegationError of sentinel want on
// link at field.
func wantRefusal(t *testing.T, err error, want error, link int, field string) {
	t.Helper()
	var de *token.DelegationError
	if !errors.As(err, &de) || !errors.Is(err, want) || !errors.Is(err, token.ErrDelegation) {
		t.Fatalf("error %v, want a *DelegationError of %v", err, want)
	}
	if de.Link != link || de.Field != field {
		t.Fatalf("refused link %d field %q, want link %d field %q (%v)", de.Link, de.Field, link, field, err)
	}
}

func readData() token.Operation { return token.Operation{Name: "read-data"} }

func TestDelegateRoundTrip(t *testing.T) {
	for _, kinds := range [][3]string{{"P-256", "P-256", "P-256"}, {"Ed25519", "P-384", "Ed25519"}, {"P-384", "Ed25519", "P-256"}} {
		t.Run(kinds[0]+"-"+kinds[1]+"-"+kinds[2], func(t *testing.T) {
			f := newDelegFixture(t, kinds[0], &token.Delegation{Depth: 2})
			k1, k2 := newKey(t, kinds[1]), newKey(t, kinds[2])
			one, err := token.Delegate(f.tok, f.pop, &token.DelegationSpec{
				To: k1.Public(), Scope: mustScope(t, "read-data reboot"), Expiry: testNow.Add(2 * time.Hour),
				Audience: []string{"ep:b"}, Depth: 1, Subject: "bob",
			})
			if err != nil {
				t.Fatalf("Delegate: %v", err)
			}
			v, err := f.verify(t, one)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !token.EqualKeys(v.Claims.Key, k1.Public()) || v.Claims.Scope.String() != "read-data reboot" ||
				!v.Claims.Expiry.Equal(testNow.Add(2*time.Hour)) || !v.Claims.NotBefore.Equal(f.claims.NotBefore) ||
				len(v.Claims.Audience) != 1 || v.Claims.Audience[0] != "ep:b" || v.Claims.Delegation == nil || v.Claims.Delegation.Depth != 1 {
				t.Fatalf("effective claims %+v", v.Claims)
			}
			if v.Links[0].Selection != 0b101 || v.Links[0].Subject != "bob" || v.Links[0].Hash == ([32]byte{}) {
				t.Fatalf("link %+v", v.Links[0])
			}
			two, err := token.Delegate(one, k1, &token.DelegationSpec{
				To: k2.Public(), Scope: mustScope(t, "read-data"), Expiry: testNow.Add(time.Hour), NotBefore: testNow,
			})
			if err != nil {
				t.Fatalf("Delegate below a link: %v", err)
			}
			v, err = f.verify(t, two)
			if err != nil {
				t.Fatalf("Verify 2 links: %v", err)
			}
			if keys := v.Keys(); len(keys) != 3 || !token.EqualKeys(keys[0], f.pop.Public()) || !token.EqualKeys(keys[2], k2.Public()) {
				t.Fatalf("keys %v", keys)
			}
			if v.Claims.Delegation != nil || !v.Claims.NotBefore.Equal(testNow) {
				t.Fatalf("effective claims %+v", v.Claims)
			}
			if err := v.Check(readData()); err != nil {
				t.Fatalf("Check read-data: %v", err)
			}
			if err := v.Check(token.Operation{Name: "reboot"}); !errors.Is(err, token.ErrOutOfScope) {
				t.Fatalf("Check reboot: %v, want ErrOutOfScope", err)
			}

			// The request carries the chain and is signed by the last key.
			d, err := token.ParseDelegatedToken(two)
			if err != nil {
				t.Fatal(err)
			}
			req, err := token.SignRequest(&token.Request{Nonce: 7, Operation: readData(), Token: d.Token, Chain: d.Chain.Bytes()}, k2, nil)
			if err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			sr, err := token.ParseRequest(req)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			c, err := token.ParseChain(sr.Chain().Bytes())
			if err != nil || c.Len() != 2 || sr.Chain().Len() != 2 {
				t.Fatalf("ParseChain of the request's chain: %v", err)
			}
			if _, err := sr.Verify(k1.Public()); err == nil {
				t.Fatal("a request verified with an earlier key of the chain")
			}
			got, err := sr.Verify(k2.Public())
			if err != nil || string(got.Chain) != string(d.Chain.Bytes()) {
				t.Fatalf("Verify request: %v", err)
			}
			if string(d.Bytes()) != string(two) {
				t.Fatal("DelegatedToken.Bytes does not round-trip")
			}
		})
	}
}

func TestDelegateRefusals(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1, Operations: []string{"read-data", "reboot"}})
	k1 := newKey(t, "Ed25519")
	spec := func(edit func(*token.DelegationSpec)) *token.DelegationSpec {
		s := &token.DelegationSpec{To: k1.Public(), Scope: mustScope(t, "read-data"), Expiry: testNow.Add(time.Hour)}
		edit(s)
		return s
	}
	for _, tc := range []struct {
		name  string
		spec  *token.DelegationSpec
		want  error
		field string
	}{
		{"widening scope", spec(func(s *token.DelegationSpec) { s.Scope = mustScope(t, "read-data firmware") }), token.ErrNotNarrower, "scope"},
		{"operation not listed", spec(func(s *token.DelegationSpec) { s.Scope = mustScope(t, "configure") }), token.ErrNotDelegable, "scope"},
		{"exp after the token's", spec(func(s *token.DelegationSpec) { s.Expiry = testNow.Add(9 * time.Hour) }), token.ErrNotNarrower, "exp"},
		{"nbf before the token's", spec(func(s *token.DelegationSpec) { s.NotBefore = testNow.Add(-2 * time.Hour) }), token.ErrNotNarrower, "nbf"},
		{"nbf after exp", spec(func(s *token.DelegationSpec) { s.NotBefore = testNow.Add(2 * time.Hour) }), token.ErrNotNarrower, "nbf"},
		{"audience widened", spec(func(s *token.DelegationSpec) { s.Audience = []string{"ep:a", "ep:c"} }), token.ErrNotNarrower, "aud"},
		{"depth beyond the token's", spec(func(s *token.DelegationSpec) { s.Depth = 1 }), token.ErrDelegationDepth, "depth"},
		{"to the token's own key", spec(func(s *token.DelegationSpec) { s.To = f.pop.Public() }), token.ErrDelegationLoop, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.Delegate(f.tok, f.pop, tc.spec)
			wantRefusal(t, err, tc.want, 0, tc.field)
		})
	}
	t.Run("signing key not the holder's", func(t *testing.T) {
		_, err := token.Delegate(f.tok, k1, spec(func(*token.DelegationSpec) {}))
		if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("%v, want ErrInvalid", err)
		}
	})
	t.Run("below a link of depth 0", func(t *testing.T) {
		one, err := token.Delegate(f.tok, f.pop, spec(func(*token.DelegationSpec) {}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = token.Delegate(one, k1, spec(func(s *token.DelegationSpec) { s.To = newKey(t, "P-256").Public() }))
		wantRefusal(t, err, token.ErrDelegationDepth, 1, "depth")
	})
	t.Run("weak delegate key", func(t *testing.T) {
		_, err := token.Delegate(f.tok, f.pop, spec(func(s *token.DelegationSpec) { s.To = make([]byte, 32) }))
		if !errors.Is(err, token.ErrUnsupportedKey) {
			t.Fatalf("%v, want ErrUnsupportedKey", err)
		}
	})
	t.Run("not delegable", func(t *testing.T) {
		g := newDelegFixture(t, "P-256", nil)
		_, err := token.Delegate(g.tok, g.pop, spec(func(*token.DelegationSpec) {}))
		wantRefusal(t, err, token.ErrNotDelegable, 0, "depth")
	})
}

func TestChainVerifyRefusals(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 2, Operations: []string{"read-data", "reboot"}})
	k1, k2, other := newKey(t, "P-256"), newKey(t, "Ed25519"), newKey(t, "P-256")
	link := func(key crypto.PublicKey, edit func(*token.Link)) *token.Link {
		l := &token.Link{Key: key, Selection: 1, Expiry: testNow.Add(time.Hour)}
		if edit != nil {
			edit(l)
		}
		return l
	}
	good := link(k1.Public(), func(l *token.Link) { l.Depth = 1 })
	first := signLink(t, good, f.hash, f.pop)
	v, err := f.chainOf(t, first)
	if err != nil {
		t.Fatalf("the good link: %v", err)
	}
	h1 := v.Links[0].Hash
	second := signLink(t, link(k2.Public(), nil), h1, k1)
	if _, err := f.chainOf(t, first, second); err != nil {
		t.Fatalf("the good chain: %v", err)
	}

	for _, tc := range []struct {
		name  string
		links [][]byte
		want  error
		link  int
		field string
	}{
		{"signed by the wrong key", [][]byte{signLink(t, good, f.hash, other)}, token.ErrLinkSignature, 0, "signature"},
		{"for a different parent token", [][]byte{signLink(t, good, [32]byte{1}, f.pop)}, token.ErrLinkSignature, 0, "signature"},
		{"reordered", [][]byte{second, first}, token.ErrLinkSignature, 0, "signature"},
		// A duplicate never passes the depth rule (depth decreases
		// strictly), nor the loop rule, nor its signature.
		{"duplicated", [][]byte{first, first}, token.ErrDelegationDepth, 1, "depth"},
		{"second link signed by the token key", [][]byte{first, signLink(t, link(k2.Public(), nil), h1, f.pop)}, token.ErrLinkSignature, 1, "signature"},
		{"alg mismatch (P-256 parent, EdDSA link)", [][]byte{signLink(t, good, f.hash, newKey(t, "Ed25519"))}, token.ErrLinkSignature, 0, "signature"},
		{"loop to the token's key", [][]byte{first, signLink(t, link(f.pop.Public(), nil), h1, k1)}, token.ErrDelegationLoop, 1, "key"},
		{"loop to the link's own parent", [][]byte{first, signLink(t, link(k1.Public(), nil), h1, k1)}, token.ErrDelegationLoop, 1, "key"},
		{"selection out of range", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Selection = 1 << 3 }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "scope"},
		{"widening scope", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Selection, l.Scope = 0, mustScope(t, "read-data firmware") }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "scope"},
		{"operation not delegable", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Selection = 0b10 }), f.hash, f.pop)}, token.ErrNotDelegable, 0, "scope"},
		{"second link widens the first's selection", [][]byte{first, signLink(t, link(k2.Public(), func(l *token.Link) { l.Selection = 0b10 }), h1, k1)}, token.ErrNotNarrower, 1, "scope"},
		{"exp widened", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Expiry = testNow.Add(9 * time.Hour) }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "exp"},
		{"exp widened below a link", [][]byte{first, signLink(t, link(k2.Public(), func(l *token.Link) { l.Expiry = testNow.Add(2 * time.Hour) }), h1, k1)}, token.ErrNotNarrower, 1, "exp"},
		{"nbf widened", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.NotBefore = testNow.Add(-2 * time.Hour) }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "nbf"},
		{"audience widened", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Audience = []string{"ep:c"} }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "aud"},
		{"audience by prefix only", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Audience = []string{"ep:aa"} }), f.hash, f.pop)}, token.ErrNotNarrower, 0, "aud"},
		{"depth beyond the parent's", [][]byte{signLink(t, link(k1.Public(), func(l *token.Link) { l.Depth = 2 }), f.hash, f.pop)}, token.ErrDelegationDepth, 0, "depth"},
		{"below a link of depth 0", [][]byte{signLink(t, link(k1.Public(), nil), f.hash, f.pop), signLink(t, link(k2.Public(), nil), [32]byte{}, k1)}, token.ErrDelegationDepth, 1, "depth"},
		{"more links than the token allows", [][]byte{first, second, signLink(t, link(other.Public(), nil), [32]byte{}, k2)}, token.ErrDelegationDepth, 2, "depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.chainOf(t, tc.links...)
			wantRefusal(t, err, tc.want, tc.link, tc.field)
		})
	}

	t.Run("token without the claim", func(t *testing.T) {
		g := newDelegFixture(t, "P-256", nil)
		_, err := g.chainOf(t, signLink(t, good, g.hash, g.pop))
		wantRefusal(t, err, token.ErrNotDelegable, 0, "depth")
	})
	t.Run("v1 token", func(t *testing.T) {
		g := &delegFixture{anchor: newKey(t, "P-256"), pop: newKey(t, "P-256")}
		g.issue(t, delegClaims(g.pop, nil), token.ProfileV1)
		_, err := g.chainOf(t, signLink(t, good, g.hash, g.pop))
		wantRefusal(t, err, token.ErrNotDelegable, 0, "depth")
	})
}

func TestDelegationClaim(t *testing.T) {
	pop := newKey(t, "P-256")
	anchor := newKey(t, "P-256")
	t.Run("v1 refuses it", func(t *testing.T) {
		_, err := token.Issue(delegClaims(pop, &token.Delegation{Depth: 1}), anchor, nil)
		if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("%v, want ErrInvalid", err)
		}
	})
	for _, tc := range []struct {
		name string
		d    *token.Delegation
	}{
		{"depth 0", &token.Delegation{Depth: 0}},
		{"depth 5", &token.Delegation{Depth: token.MaxDelegationDepth + 1}},
		{"empty operations", &token.Delegation{Depth: 1, Operations: []string{}}},
		{"repeated operation", &token.Delegation{Depth: 1, Operations: []string{"read-data", "read-data"}}},
		{"operation not in the scope", &token.Delegation{Depth: 1, Operations: []string{"firmware"}}},
		{"invalid name", &token.Delegation{Depth: 1, Operations: []string{"9x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.Issue(delegClaims(pop, tc.d), anchor, &token.IssueOptions{Profile: token.ProfileV2})
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("%v, want ErrInvalid", err)
			}
		})
	}
	t.Run("round trip", func(t *testing.T) {
		d := &token.Delegation{Depth: 3, Operations: []string{"reboot", "read-data"}}
		f := (&delegFixture{anchor: anchor, pop: pop}).issue(t, delegClaims(pop, d), token.ProfileV2)
		c := f.claims
		if c.Delegation == nil || c.Delegation.Depth != 3 || len(c.Delegation.Operations) != 2 || c.Delegation.Operations[1] != "read-data" {
			t.Fatalf("delegation %+v", c.Delegation)
		}
		c.Delegation.Operations[0] = "x"
		p, err := token.Parse(f.tok)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := p.Verify(anchor.Public()); again.Delegation.Operations[0] != "reboot" {
			t.Fatal("Verify returned claims sharing the token's delegation")
		}
	})
}

// TestChainZeroValues: a nil or zero Chain, and a DelegatedToken without
// one, never panic and never verify.
func TestChainZeroValues(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1})
	var nilChain *token.Chain
	if nilChain.Len() != 0 || nilChain.Bytes() != nil || nilChain.UnverifiedLinks() != nil {
		t.Fatal("a nil Chain is not empty")
	}
	for _, c := range []*token.Chain{nilChain, {}} {
		if v, err := c.Verify(f.claims, f.hash); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("Verify of an empty chain: %v, %v; want ErrInvalid", v, err)
		}
	}
	d := &token.DelegatedToken{Token: f.tok}
	if _, err := token.ParseDelegatedToken(d.Bytes()); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("a DelegatedToken without a chain parsed back: %v", err)
	}
	if _, err := token.Delegate(f.tok, f.pop, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("Delegate with a nil spec: %v", err)
	}
}

// TestNilResults: the nil results of a failed Verify or parse do not
// panic when used: a nil VerifiedChain permits nothing and has no keys, a
// nil DelegatedToken has no bytes.
func TestNilResults(t *testing.T) {
	var v *token.VerifiedChain
	if err := v.Check(token.Operation{Name: "read-data"}); !errors.Is(err, token.ErrOutOfScope) {
		t.Fatalf("nil VerifiedChain Check: %v, want ErrOutOfScope", err)
	}
	if k := v.Keys(); k != nil {
		t.Fatalf("nil VerifiedChain Keys: %v", k)
	}
	var d *token.DelegatedToken
	if b := d.Bytes(); b != nil {
		t.Fatalf("nil DelegatedToken Bytes: %x", b)
	}
}

// TestSignLinkInvalid: SignLink refuses, with ErrInvalid (or the key's
// error), a link it cannot encode, before the key is asked to sign.
func TestSignLinkInvalid(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256").Public()
	exp := testNow.Add(time.Hour)
	for _, tc := range []struct {
		name string
		l    *token.Link
		want error
	}{
		{"nil link", nil, token.ErrInvalid},
		{"no key", &token.Link{Selection: 1, Expiry: exp}, token.ErrInvalid},
		{"weak key", &token.Link{Key: ed25519.PublicKey(make([]byte, 32)), Selection: 1, Expiry: exp}, token.ErrWeakKey},
		{"no scope", &token.Link{Key: k1, Expiry: exp}, token.ErrInvalid},
		{"selection beyond 20 permissions", &token.Link{Key: k1, Selection: 1 << 20, Expiry: exp}, token.ErrInvalid},
		{"no exp", &token.Link{Key: k1, Selection: 1}, token.ErrInvalid},
		{"nbf before 1970", &token.Link{Key: k1, Selection: 1, Expiry: exp, NotBefore: time.Unix(-1, 0)}, token.ErrInvalid},
		{"empty aud", &token.Link{Key: k1, Selection: 1, Expiry: exp, Audience: []string{}}, token.ErrInvalid},
		{"aud not UTF-8", &token.Link{Key: k1, Selection: 1, Expiry: exp, Audience: []string{"ep:\xff"}}, token.ErrInvalid},
		{"negative depth", &token.Link{Key: k1, Selection: 1, Expiry: exp, Depth: -1}, token.ErrInvalid},
		{"depth 5", &token.Link{Key: k1, Selection: 1, Expiry: exp, Depth: token.MaxDelegationDepth + 1}, token.ErrInvalid},
		{"sub too long", &token.Link{Key: k1, Selection: 1, Expiry: exp, Subject: strings.Repeat("x", token.MaxLinkSubjectLength+1)}, token.ErrInvalid},
		{"sub not UTF-8", &token.Link{Key: k1, Selection: 1, Expiry: exp, Subject: "\xff"}, token.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingSigner{Signer: f.pop}
			if _, err := token.SignLink(tc.l, f.hash, s, nil); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if s.calls != 0 {
				t.Fatal("the key was asked to sign")
			}
		})
	}
	if _, err := token.SignLink(&token.Link{Key: k1, Selection: 1, Expiry: exp}, f.hash, nil, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("nil key: %v, want ErrInvalid", err)
	}
}

// TestDelegateInvalid: arguments Delegate cannot work with.
func TestDelegateInvalid(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 2})
	to := newKey(t, "P-256").Public()
	good := func() *token.DelegationSpec {
		return &token.DelegationSpec{To: to, Scope: mustScope(t, "read-data"), Expiry: testNow.Add(time.Hour)}
	}
	for _, tc := range []struct {
		name   string
		holder []byte
		key    crypto.Signer
		spec   *token.DelegationSpec
		want   error
	}{
		{"nil key", f.tok, nil, good(), token.ErrInvalid},
		{"no To", f.tok, f.pop, func() *token.DelegationSpec { s := good(); s.To = nil; return s }(), token.ErrInvalid},
		{"no Scope", f.tok, f.pop, func() *token.DelegationSpec { s := good(); s.Scope = token.Scope{}; return s }(), token.ErrInvalid},
		{"no Expiry", f.tok, f.pop, func() *token.DelegationSpec { s := good(); s.Expiry = time.Time{}; return s }(), token.ErrInvalid},
		{"negative depth", f.tok, f.pop, func() *token.DelegationSpec { s := good(); s.Depth = -1; return s }(), token.ErrInvalid},
		{"sub too long", f.tok, f.pop, func() *token.DelegationSpec { s := good(); s.Subject = strings.Repeat("x", 300); return s }(), token.ErrInvalid},
		{"holder not a token", []byte{0xa0}, f.pop, good(), token.ErrMalformed},
		{"holder a malformed delegated token", []byte{0x82, 0x40, 0x80}, f.pop, good(), token.ErrMalformed},
		{"empty holder", nil, f.pop, good(), token.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := token.Delegate(tc.holder, tc.key, tc.spec); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
	t.Run("holder with a chain that does not narrow", func(t *testing.T) {
		k1 := newKey(t, "P-256")
		bad := signLink(t, &token.Link{Key: k1.Public(), Selection: 1, Expiry: testNow.Add(99 * time.Hour), Depth: 1}, f.hash, f.pop)
		c, err := token.NewChain(bad)
		if err != nil {
			t.Fatal(err)
		}
		holder := (&token.DelegatedToken{Token: f.tok, Chain: c}).Bytes()
		_, err = token.Delegate(holder, k1, good())
		wantRefusal(t, err, token.ErrNotNarrower, 0, "exp")
	})
}

// TestVerifiedChainCheck: an operation must be in the token's scope and in
// every link's.
func TestVerifiedChainCheck(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256")
	dt, err := token.Delegate(f.tok, f.pop, &token.DelegationSpec{To: k1.Public(), Scope: mustScope(t, "read-data reboot"), Expiry: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.verify(t, dt)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op string
		ok bool
	}{{"read-data", true}, {"reboot", true}, {"configure", false}, {"firmware", false}, {"read", false}} {
		err := v.Check(token.Operation{Name: tc.op})
		var se *token.ScopeError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &se) || se.Operation != tc.op) {
			t.Errorf("Check(%s): %v, want permitted %v", tc.op, err, tc.ok)
		}
	}
}

// TestChainVerifyBoundaries: a link's exp may equal its parent's and its
// nbf may equal its parent's; one second more (less) is refused.
func TestChainVerifyBoundaries(t *testing.T) {
	f := newDelegFixture(t, "Ed25519", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256").Public()
	for _, tc := range []struct {
		name     string
		exp, nbf time.Time
		field    string
	}{
		{"exp and nbf equal the token's", f.claims.Expiry, f.claims.NotBefore, ""},
		{"exp one second after", f.claims.Expiry.Add(time.Second), f.claims.NotBefore, "exp"},
		{"nbf one second before", f.claims.Expiry, f.claims.NotBefore.Add(-time.Second), "nbf"},
		{"nbf equal to exp", f.claims.Expiry, f.claims.Expiry, ""},
		{"nbf one second after exp", f.claims.Expiry.Add(-time.Second), f.claims.Expiry, "nbf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := f.chainOf(t, signLink(t, &token.Link{Key: k1, Selection: 1, Expiry: tc.exp, NotBefore: tc.nbf}, f.hash, f.pop))
			if tc.field == "" {
				if err != nil || !v.Claims.Expiry.Equal(tc.exp) || !v.Claims.NotBefore.Equal(tc.nbf) {
					t.Fatalf("%v, claims %+v", err, v)
				}
				return
			}
			wantRefusal(t, err, token.ErrNotNarrower, 0, tc.field)
		})
	}
	t.Run("claims of a v1 token given a delegation", func(t *testing.T) {
		c := *f.claims
		c.Profile = token.ProfileV1
		c.Delegation = &token.Delegation{Depth: 1}
		chain, err := token.NewChain(signLink(t, &token.Link{Key: k1, Selection: 1, Expiry: c.Expiry}, f.hash, f.pop))
		if err != nil {
			t.Fatal(err)
		}
		_, err = chain.Verify(&c, f.hash)
		wantRefusal(t, err, token.ErrNotDelegable, 0, "depth")
	})
}

// TestDelegationClaimLimits: the operations list at 20 names (accepted)
// and 21 (refused), with a "*" scope that any name is in.
func TestDelegationClaimLimits(t *testing.T) {
	pop, anchor := newKey(t, "P-256"), newKey(t, "P-256")
	ops := make([]string, token.MaxScopeItems+1)
	for i := range ops {
		ops[i] = fmt.Sprintf("op-%d", i)
	}
	c := delegClaims(pop, &token.Delegation{Depth: token.MaxDelegationDepth, Operations: ops[:token.MaxScopeItems]})
	c.Scope = newScope(t, token.Permission{Operation: token.AllOperations})
	if _, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV2}); err != nil {
		t.Fatalf("20 operations, depth 4: %v", err)
	}
	c.Delegation.Operations = ops
	if _, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV2}); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("21 operations: %v, want ErrInvalid", err)
	}
}

// TestDelegateSubSecondTimes: Delegate truncates the spec's Expiry and
// NotBefore to whole seconds, the wire's precision, before it checks and
// encodes them, so an Expiry in the last second of the parent's exp (say,
// now.Add(d) landing on it) is the parent's exp, not a widening.
func TestDelegateSubSecondTimes(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256")
	exp := f.claims.Expiry.Add(999 * time.Millisecond) // within the parent's exp second
	nbf := f.claims.NotBefore.Add(500 * time.Millisecond)
	dt, err := token.Delegate(f.tok, f.pop, &token.DelegationSpec{To: k1.Public(), Scope: mustScope(t, "read-data"), Expiry: exp, NotBefore: nbf})
	if err != nil {
		t.Fatalf("Delegate with exp %v (the parent's %v) refused: %v", exp, f.claims.Expiry, err)
	}
	v, err := f.verify(t, dt)
	if err != nil {
		t.Fatal(err)
	}
	if l := v.Links[0]; !l.Expiry.Equal(f.claims.Expiry) || !l.NotBefore.Equal(f.claims.NotBefore) {
		t.Fatalf("link exp %v nbf %v, want the whole seconds %v and %v", l.Expiry, l.NotBefore, f.claims.Expiry, f.claims.NotBefore)
	}
	// A second after the parent's exp is still refused.
	_, err = token.Delegate(f.tok, f.pop, &token.DelegationSpec{To: k1.Public(), Scope: mustScope(t, "read-data"), Expiry: f.claims.Expiry.Add(time.Second)})
	wantRefusal(t, err, token.ErrNotNarrower, 0, "exp")
}
