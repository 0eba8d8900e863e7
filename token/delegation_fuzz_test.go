package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"
)

// delegationSeeds is a delegable v2 token and valid chains below it (one
// and two links, selections and explicit scopes, every algorithm), as
// chains, delegated tokens and 4-element requests.
type delegationSeeds struct {
	claims                  *Claims
	hash                    [32]byte
	chains, dts, reqs, toks [][]byte
}

func newDelegationSeeds(f *testing.F) *delegationSeeds {
	f.Helper()
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	scope, err := NewScope(Permission{Operation: "read-data"}, Permission{Operation: "set", Constraints: []Constraint{InRange(0, 1, 9), OneOf(1, Text("a"), Bytes([]byte{1}))}})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	c := &Claims{Issuer: "mbed.ta.X", Audience: []string{"ep:a", "id:0123"}, Expiry: now.Add(time.Hour), NotBefore: now,
		Scope: scope, Key: pop.Public(), Delegation: &Delegation{Depth: 3, Operations: []string{"read-data", "set"}}}
	tok, err := Issue(c, anchor, &IssueOptions{Profile: ProfileV2})
	if err != nil {
		f.Fatal(err)
	}
	t, _ := Parse(tok)
	s := &delegationSeeds{claims: t.claims, hash: t.RevocationHash(), toks: [][]byte{tok}}
	narrow, _ := NewScope(Permission{Operation: "set", Constraints: []Constraint{InRange(0, 2, 3), Equals(1, Text("a"))}})
	one, err := Delegate(tok, pop, &DelegationSpec{To: k1.Public(), Scope: scope, Expiry: now.Add(time.Minute), Depth: 2, Subject: "bob", Audience: []string{"ep:a"}})
	if err != nil {
		f.Fatal(err)
	}
	two, err := Delegate(one, k1, &DelegationSpec{To: k2.Public(), Scope: narrow, Expiry: now.Add(time.Minute), NotBefore: now.Add(time.Second)})
	if err != nil {
		f.Fatal(err)
	}
	for _, dt := range [][]byte{one, two} {
		d, err := ParseDelegatedToken(dt)
		if err != nil {
			f.Fatal(err)
		}
		var last crypto.Signer = k1
		if d.Chain.Len() == 2 {
			last = k2
		}
		req, err := SignRequest(&Request{Nonce: 9, Operation: Operation{Name: "set", Args: []Arg{Int(2), Text("a")}}, Token: tok, Chain: d.Chain.Bytes()}, last, nil)
		if err != nil {
			f.Fatal(err)
		}
		s.chains, s.dts, s.reqs, s.toks = append(s.chains, d.Chain.Bytes()), append(s.dts, dt), append(s.reqs, req), append(s.toks, d.Token)
	}
	return s
}

// checkChainRoundTrip checks that an accepted chain re-encodes to its
// input and that each link's payload decodes to what encodes the same.
func checkChainRoundTrip(t *testing.T, c *Chain, data []byte) {
	if data != nil && !bytes.Equal(c.Bytes(), data) {
		t.Fatalf("Bytes does not return the chain parsed:\n%x\n%x", data, c.Bytes())
	}
	for i, l := range c.links {
		checkLinkClaimsRoundTrip(t, l.claims)
		if ul := c.UnverifiedLinks()[i]; !EqualKeys(ul.Key, l.claims.Key) || ul.Hash != ([32]byte{}) {
			t.Fatalf("UnverifiedLinks[%d] differs from the parsed link", i)
		}
	}
}

func checkLinkClaimsRoundTrip(t *testing.T, l *Link) {
	enc, err := encodeLinkClaims(l)
	if err != nil {
		t.Fatalf("accepted link does not encode: %v", err)
	}
	l2, err := decodeLinkClaims("link", enc)
	if err != nil {
		t.Fatalf("re-encoded link does not decode: %v\n%x", err, enc)
	}
	enc2, err := encodeLinkClaims(l2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("link encoding is not a fixed point: %v\n%x\n%x", err, enc, enc2)
	}
	if !EqualKeys(l.Key, l2.Key) || !l.Scope.Equal(l2.Scope) || l.Selection != l2.Selection || !l.Expiry.Equal(l2.Expiry) ||
		!l.NotBefore.Equal(l2.NotBefore) || !slices.Equal(l.Audience, l2.Audience) || l.Depth != l2.Depth || l.Subject != l2.Subject {
		t.Fatalf("round trip changed the link: %+v -> %+v", l, l2)
	}
}

// checkVerifyTyped verifies c below the seed token: it must not panic and
// refuse only with a *DelegationError.
func checkVerifyTyped(t *testing.T, s *delegationSeeds, c *Chain) {
	v, err := c.Verify(s.claims, s.hash)
	if err != nil {
		var de *DelegationError
		if !errors.As(err, &de) || !errors.Is(err, ErrDelegation) {
			t.Fatalf("Verify error %v is not a *DelegationError", err)
		}
		return
	}
	if len(v.Links) != c.Len() || len(v.Keys()) != c.Len()+1 || !v.Claims.Scope.Within(s.claims.Scope) {
		t.Fatalf("verified chain %+v", v)
	}
}

// FuzzParseChain: ParseChain never panics and refuses with ErrMalformed;
// an accepted chain re-encodes to its input, its links' payloads round-trip,
// and Chain.Verify refuses it (if at all) with a typed DelegationError.
func FuzzParseChain(f *testing.F) {
	s := newDelegationSeeds(f)
	for _, c := range s.chains {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseChain(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not match ErrMalformed", err)
			}
			return
		}
		checkChainRoundTrip(t, c, data)
		checkVerifyTyped(t, s, c)
	})
}

// FuzzParseDelegatedToken: ParseDelegatedToken never panics and refuses
// with ErrMalformed; an accepted one re-encodes to its input.
func FuzzParseDelegatedToken(f *testing.F) {
	s := newDelegationSeeds(f)
	for _, d := range s.dts {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDelegatedToken(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not match ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(d.Bytes(), data) {
			t.Fatalf("Bytes does not return the delegated token parsed")
		}
		if _, err := Parse(d.Token); err != nil {
			t.Fatalf("accepted token does not parse: %v", err)
		}
		checkChainRoundTrip(t, d.Chain, nil)
		checkVerifyTyped(t, s, d.Chain)
	})
}

// FuzzLinkClaims: the link payload decoder never panics and refuses with
// ErrMalformed; an accepted payload round-trips.
func FuzzLinkClaims(f *testing.F) {
	s := newDelegationSeeds(f)
	for _, data := range s.chains {
		c, _ := ParseChain(data)
		for _, l := range c.links {
			f.Add(l.payload)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decodeLinkClaims("link", data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not match ErrMalformed", err)
			}
			return
		}
		checkLinkClaimsRoundTrip(t, l)
	})
}

// FuzzWithin: Within never panics on two decoded scopes, every valid scope
// is within itself, and when one is within the other, the operations it
// permits among those its constraints mention are permitted by the other.
func FuzzWithin(f *testing.F) {
	text, _ := ParseScope("read-data configure")
	fewer, _ := ParseScope("read-data")
	wide, _ := NewScope(Permission{Operation: AllOperations, Constraints: []Constraint{InRange(0, -9, 9)}})
	set, _ := NewScope(Permission{Operation: "set", Constraints: []Constraint{InRange(0, 1, 9), OneOf(1, Text("a"), Bytes([]byte{1}), Int(3))}})
	narrow, _ := NewScope(Permission{Operation: "set", Constraints: []Constraint{InRange(0, 2, 3), Equals(1, Int(3)), Equals(2, Text("x"))}})
	small, _ := NewScope(Permission{Operation: "set", Constraints: []Constraint{InRange(1, 2, 4)}})
	for _, pair := range [][2]Scope{{text, fewer}, {wide, set}, {set, narrow}, {narrow, small}, {set, small}} {
		a, _ := pair[0].MarshalCBOR()
		b, _ := pair[1].MarshalCBOR()
		f.Add(a, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var sa, sb Scope
		if sa.UnmarshalCBOR(a) != nil || sb.UnmarshalCBOR(b) != nil {
			return
		}
		if !sa.Within(sa) || !sb.Within(sb) {
			t.Fatalf("a scope is not within itself: %v, %v", sa, sb)
		}
		for _, pair := range [][2]Scope{{sa, sb}, {sb, sa}} {
			child, parent := pair[0], pair[1]
			if !child.Within(parent) {
				continue
			}
			for _, op := range mentionedOperations(child, parent) {
				if child.Check(op) == nil && parent.Check(op) != nil {
					t.Fatalf("%v is within %v, but %s%v is permitted by the first only", child, parent, op.Name, op.Args)
				}
			}
		}
	})
}

// mentionedOperations returns operations named in the scopes (and one
// other) with single-value argument lists built from the values the
// constraints mention, ±1 for integers, at every argument position some
// constraint names, other arguments left at a mentioned default.
func mentionedOperations(scopes ...Scope) []Operation {
	names := []string{"zz-other"}
	var vals [MaxArgs][]Arg
	maxArg := -1
	for _, s := range scopes {
		for _, p := range s.perms {
			if p.Operation != AllOperations {
				names = append(names, p.Operation)
			}
			for _, c := range p.Constraints {
				maxArg = max(maxArg, c.Arg)
				if c.Kind == ConstraintRange {
					for _, n := range []int64{c.Min, c.Max} {
						vals[c.Arg] = append(vals[c.Arg], Int(n), Int(n-1), Int(n+1))
					}
				}
				for _, v := range c.Values {
					vals[c.Arg] = append(vals[c.Arg], v)
					if n, ok := v.Int(); ok {
						vals[c.Arg] = append(vals[c.Arg], Int(n-1), Int(n+1))
					}
				}
			}
		}
	}
	var ops []Operation
	for _, name := range names {
		ops = append(ops, Operation{Name: name})
		if maxArg < 0 {
			continue
		}
		// Vary one argument at a time, the others at each of their
		// first few values in turn.
		for base := range 3 {
			args := make([]Arg, maxArg+1)
			for i := range args {
				args[i] = Int(0)
				if len(vals[i]) > 0 {
					args[i] = vals[i][base%len(vals[i])]
				}
			}
			for i := range args {
				for _, v := range vals[i] {
					a := slices.Clone(args)
					a[i] = v
					ops = append(ops, Operation{Name: name, Args: a})
				}
			}
		}
	}
	return ops
}
