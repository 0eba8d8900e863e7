package token_test

import (
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
