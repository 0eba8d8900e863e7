package token_test

import (
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// UnverifiedClaims shows the parsed claims before any signature check, as a
// copy that cannot change what Verify later returns.
func TestUnverifiedClaims(t *testing.T) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	claims := &token.Claims{
		Issuer: "mbed.ta.TEST", Subject: "alice", Audience: []string{"ep:hvac-1"},
		Expiry: testNow.Add(time.Hour), NotBefore: testNow, ID: []byte{1, 2},
		Scope: mustScope(t, "read-data"), Key: pop.Public(),
	}
	raw, err := token.Issue(claims, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := token.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u := parsed.UnverifiedClaims()
	if u.Issuer != "mbed.ta.TEST" || u.Subject != "alice" || len(u.Audience) != 1 || u.Audience[0] != "ep:hvac-1" ||
		!u.Expiry.Equal(claims.Expiry) || !token.EqualKeys(u.Key, pop.Public()) || u.Scope.String() != "read-data" {
		t.Fatalf("unverified claims %+v", u)
	}
	u.Audience[0], u.ID[0] = "ep:other", 9
	v, err := parsed.Verify(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	if v.Audience[0] != "ep:hvac-1" || v.ID[0] != 1 {
		t.Fatalf("changing the unverified copy changed the token: %+v", v)
	}
}
