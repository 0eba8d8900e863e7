package token

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

// TestAccessRequestLimits: every limit of an access request at N
// (accepted) and N+1 (refused), and each malformed field refused with
// ErrInvalid.
func TestAccessRequestLimits(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	key := priv.Public()
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	ep := func(i int) string {
		return "ep:dev-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
	}
	op := func(i int) string { return "op" + string(rune('a'+i%26)) + strings.Repeat("z", i/26) }
	ok := []*AccessRequest{
		{Audience: []string{"ep:a"}, Scope: []string{"a"}, Key: key},
		{Audience: many(50, ep), Scope: many(20, op), Key: key},
		{Audience: []string{"ep:" + strings.Repeat("A", 60), "id:0abc+/= -Z9z", "endpoint-name:x", "device-id:y"}, Scope: []string{"A" + strings.Repeat("b-9", 19) + "x2"}, Key: key},
	}
	for i, r := range ok {
		if err := r.Validate(); err != nil {
			t.Errorf("valid request %d: %v", i, err)
		}
	}
	bad := map[string]*AccessRequest{
		"no audience":       {Scope: []string{"a"}, Key: key},
		"51 audiences":      {Audience: many(51, ep), Scope: []string{"a"}, Key: key},
		"61 characters":     {Audience: []string{"ep:" + strings.Repeat("A", 61)}, Scope: []string{"a"}, Key: key},
		"empty value":       {Audience: []string{"ep:"}, Scope: []string{"a"}, Key: key},
		"unknown prefix":    {Audience: []string{"name:x"}, Scope: []string{"a"}, Key: key},
		"bad character":     {Audience: []string{"ep:a_b"}, Scope: []string{"a"}, Key: key},
		"non-ASCII":         {Audience: []string{"ep:é"}, Scope: []string{"a"}, Key: key},
		"repeated audience": {Audience: []string{"ep:a", "ep:a"}, Scope: []string{"a"}, Key: key},
		"no scope":          {Audience: []string{"ep:a"}, Key: key},
		"21 scopes":         {Audience: []string{"ep:a"}, Scope: many(21, op), Key: key},
		"scope digit":       {Audience: []string{"ep:a"}, Scope: []string{"1a"}, Key: key},
		"scope space":       {Audience: []string{"ep:a"}, Scope: []string{"a b"}, Key: key},
		"scope 61":          {Audience: []string{"ep:a"}, Scope: []string{strings.Repeat("a", 61)}, Key: key},
		"repeated scope":    {Audience: []string{"ep:a"}, Scope: []string{"a", "a"}, Key: key},
		"no key":            {Audience: []string{"ep:a"}, Scope: []string{"a"}},
		"rsa-like key":      {Audience: []string{"ep:a"}, Scope: []string{"a"}, Key: "not a key"},
	}
	for name, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	var nilRequest *AccessRequest
	if err := nilRequest.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil request: %v, want ErrInvalid", err)
	}
}
