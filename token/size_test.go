package token_test

import (
	"crypto"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// TestTokenSizes reports the token sizes quoted in docs/PROTOCOL.md and
// holds the v2 target: one audience and three scopes fit in 220 bytes with
// ES256.
func TestTokenSizes(t *testing.T) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	anchorName, _ := token.AnchorName(anchor.Public())
	issue := func(iss, scope string, p token.Profile) int {
		tok, err := token.Issue(&token.Claims{
			Issuer: iss, Audience: []string{"ep:hvac-1"},
			Expiry: testNow.Add(time.Hour), NotBefore: testNow,
			Scope: mustScope(t, scope), Key: pop.Public(),
		}, anchor, &token.IssueOptions{Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		return len(tok)
	}
	three := "read-data configure update-firmware"
	v1Short := issue("mbed.ta.TEST", "read-data configure", token.ProfileV1)
	v1Anchor := issue(anchorName, three, token.ProfileV1)
	v2 := issue("sda.example", three, token.ProfileV2)
	t.Logf("v1 (iss mbed.ta.TEST, 2 scopes): %d bytes", v1Short)
	t.Logf("v1 (iss anchor name, 3 scopes): %d bytes", v1Anchor)
	t.Logf("v2 (iss sda.example, 3 scopes): %d bytes", v2)
	if v1Short != 216 {
		t.Errorf("v1 token of %d bytes; docs/PROTOCOL.md and the annotated test say 216", v1Short)
	}
	if v2 > 220 {
		t.Errorf("v2 token with one audience and three scopes is %d bytes, over the 220-byte target", v2)
	}
}

// TestDelegationSizes reports the chain sizes quoted in docs/PROTOCOL.md
// section 4.4 and holds the issue's target: a link adds at most 120 bytes
// with ES256 (P-256 keys, the selection form, no optional keys).
func TestDelegationSizes(t *testing.T) {
	anchor, pop, k1, k2 := newKey(t, "P-256"), newKey(t, "P-256"), newKey(t, "P-256"), newKey(t, "P-256")
	three := mustScope(t, "read-data configure update-firmware")
	tok, err := token.Issue(&token.Claims{
		Issuer: "sda.example", Audience: []string{"ep:hvac-1"},
		Expiry: testNow.Add(time.Hour), NotBefore: testNow,
		Scope: three, Key: pop.Public(), Delegation: &token.Delegation{Depth: 2},
	}, anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	delegate := func(holder []byte, key, to crypto.Signer, scope token.Scope, depth int) []byte {
		t.Helper()
		dt, err := token.Delegate(holder, key, &token.DelegationSpec{To: to.Public(), Scope: scope, Expiry: testNow.Add(30 * time.Minute), Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		return dt
	}
	chainSize := func(dt []byte) int {
		d, err := token.ParseDelegatedToken(dt)
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Chain.Bytes())
	}
	bundle := func(dt []byte, key crypto.Signer) int {
		t.Helper()
		r := &token.Request{Nonce: 1, Operation: readData(), Token: tok}
		if dt != nil {
			d, _ := token.ParseDelegatedToken(dt)
			r.Chain = d.Chain.Bytes()
		}
		req, err := token.SignRequest(r, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(req)
	}
	one := delegate(tok, pop, k1, mustScope(t, "read-data configure"), 1)
	two := delegate(one, k1, k2, mustScope(t, "read-data"), 0)
	link1, link2 := chainSize(one)-1, chainSize(two)-chainSize(one)
	r0, r1, r2 := bundle(nil, pop), bundle(one, k1), bundle(two, k2)
	t.Logf("token (v2, ES256, P-256 PoP key, 3 scopes, delegation claim): %d bytes", len(tok))
	t.Logf("token + 1 link: chain %d bytes, delegated token %d bytes; request %d -> %d bytes (+%d)", chainSize(one), len(one), r0, r1, r1-r0)
	t.Logf("token + 2 links: chain %d bytes, delegated token %d bytes; request %d bytes (+%d for the second link)", chainSize(two), len(two), r2, r2-r1)
	t.Logf("per link (selection form): first %d bytes (with depth 1), second %d bytes (no optional key)", link1, link2)
	alone := delegate(tok, pop, k1, mustScope(t, "read-data configure"), 0)
	rAlone := bundle(alone, k1)
	t.Logf("token + 1 link without optional keys: chain %d bytes; request %d -> %d bytes (+%d)", chainSize(alone), r0, rAlone, rAlone-r0)

	explicit := newScope(t, token.Permission{Operation: "configure", Constraints: []token.Constraint{token.InRange(0, 18, 24)}})
	wide, err := token.Issue(&token.Claims{
		Issuer: "sda.example", Audience: []string{"ep:hvac-1"}, Expiry: testNow.Add(time.Hour),
		Scope: newScope(t, token.Permission{Operation: "configure", Constraints: []token.Constraint{token.InRange(0, 16, 28)}}),
		Key:   pop.Public(), Delegation: &token.Delegation{Depth: 1},
	}, anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	tok = wide
	linkExplicit := chainSize(delegate(wide, pop, k1, explicit, 0)) - 1
	t.Logf("per link (explicit scope %v): %d bytes", explicit, linkExplicit)
	if link2 > 120 || r2-r1 > 120 || chainSize(alone) > 120 {
		t.Errorf("a link adds %d bytes to the chain and %d to the request, a first link %d to the chain: over the 120-byte target", link2, r2-r1, chainSize(alone))
	}
	if link2 != 119 {
		t.Errorf("a selection link without optional keys is %d bytes; docs/PROTOCOL.md says 119", link2)
	}
}
