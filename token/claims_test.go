package token_test

import (
	"crypto/ecdsa"
	"errors"
	"slices"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// parseClaimsMap signs the claim set m (a v1 claims map, see claimsMap) and
// parses it.
func parseClaimsMap(t *testing.T, anchor *ecdsa.PrivateKey, m map[int]any) (*token.Claims, error) {
	t.Helper()
	p, err := token.Parse(rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, m)))
	if err != nil {
		return nil, err
	}
	return p.Verify(anchor.Public())
}

// TestUnknownClaimKeyIsRefused: a claim key this package does not know is
// refused as such, whatever its value; it is never read as one of the
// known claims (a text string under an unknown key is not the sub claim).
func TestUnknownClaimKeyIsRefused(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	for _, key := range []int{0, 10, 11, 13, 24, 26, -1, -2, 1000} {
		for _, v := range []any{"alice", uint64(1), []byte{1}} {
			m := claimsMap(t, pop)
			m[key] = v
			c, err := parseClaimsMap(t, anchor, m)
			var pe *token.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("claim key %d = %v: got claims %+v, error %v; want a *ParseError", key, v, c, err)
			}
			if pe.Field != "token.claims" {
				t.Errorf("claim key %d = %v: error names %q, want token.claims", key, v, pe.Field)
			}
		}
	}
}

// TestAudienceAsOneString: RFC 8392 section 3.1.3 allows aud to be a
// single text string; it is read as a one-entry audience, which Validate
// then matches, and its limits are those of an array entry.
func TestAudienceAsOneString(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	m := claimsMap(t, pop)
	m[3] = "ep:hvac-1"
	c, err := parseClaimsMap(t, anchor, m)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Audience, []string{"ep:hvac-1"}) {
		t.Fatalf("aud %q, want [ep:hvac-1]", c.Audience)
	}
	if err := c.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: testNow}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []any{"", string(make([]byte, token.MaxAudienceLength+1)), "\xff"} {
		m[3] = bad
		if _, err := parseClaimsMap(t, anchor, m); !errors.Is(err, token.ErrMalformed) {
			t.Errorf("aud %q: got %v, want ErrMalformed", bad, err)
		}
	}
}
