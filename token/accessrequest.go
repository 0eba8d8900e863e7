package token

import (
	"crypto"
	"fmt"
	"strings"
)

// audiencePrefixes are the prefixes an aud entry may start with.
var audiencePrefixes = []string{PrefixEndpoint, PrefixDeviceID, PrefixLegacyEndpoint, PrefixLegacyDeviceID}

// AccessRequest is what a technician asks an authorization service for: an
// access token for some devices (aud) and operations (scope), bound to a
// proof-of-possession key (cnf). The client package sends it to the token
// endpoint (client.TokenClient.Fetch); the policy package decides it
// (policy.Service.Issue). docs/PROTOCOL.md section 9 gives its JSON form.
type AccessRequest struct {
	// Audience names the devices: "ep:<endpoint name>" or "id:<device id>"
	// (or the legacy "endpoint-name:" and "device-id:"), 1 to 50 entries,
	// each with 1 to 60 characters of [A-Za-z0-9+/= -] after the prefix.
	Audience []string
	// Scope lists the operations, 1 to 20 names each matching
	// ^[A-Za-z][A-Za-z0-9-]*$ with at most 60 characters. A service in
	// the v1 profile refuses a scope that is a single one-character name
	// (deployed devices refuse such a token); Validate, which cannot know
	// the service's profile, accepts it.
	Scope []string
	// Key is the public half of the proof-of-possession key the token
	// will be bound to (cnf).
	Key crypto.PublicKey
	// CNonce, if set, is a nonce the device issued (v2; 1 to
	// MaxCNonceLength bytes) for the service to put in the token, proving
	// to a device that requires it that the token is fresh
	// (docs/PROTOCOL.md section 12). A v1 service refuses it.
	CNonce []byte
}

// Validate checks the request against the limits of the token endpoint
// that hold for every service: [MaxAudiences] entries of at most
// [MaxAudienceValueLength] characters after the prefix, [MaxScopeItems]
// distinct operation names ([ValidateName]), and a key that tokens can be
// bound to ([AlgorithmFor]). A service may refuse more (the v1 profile a
// one-character scope, a P-256 key only). Errors match [ErrInvalid]; a
// refused key's error also matches [ErrUnsupportedKey] ([ErrWeakKey] for
// a degenerate key).
func (r *AccessRequest) Validate() error {
	if r == nil {
		return invalid("nil access request")
	}
	if len(r.Audience) == 0 || len(r.Audience) > MaxAudiences {
		return invalid("%d audience entries, want 1..%d", len(r.Audience), MaxAudiences)
	}
	for i, a := range r.Audience {
		if err := validateAudience(a); err != nil {
			return invalid("audience entry %d: %v", i, err)
		}
		if i > 0 && contains(r.Audience[:i], a) {
			return invalid("audience entry %q repeated", a)
		}
	}
	if len(r.Scope) == 0 || len(r.Scope) > MaxScopeItems {
		return invalid("%d scope items, want 1..%d", len(r.Scope), MaxScopeItems)
	}
	for i, s := range r.Scope {
		if err := ValidateName(s); err != nil {
			return invalid("scope item %d: %v", i, err)
		}
		if i > 0 && contains(r.Scope[:i], s) {
			return invalid("scope item %q repeated", s)
		}
	}
	if r.CNonce != nil && (len(r.CNonce) == 0 || len(r.CNonce) > MaxCNonceLength) {
		return invalid("cnonce of %d bytes, want 1..%d", len(r.CNonce), MaxCNonceLength)
	}
	if r.Key == nil {
		return invalid("no proof-of-possession key")
	}
	if _, err := AlgorithmFor(r.Key); err != nil {
		// The cause stays matchable: ErrUnsupportedKey, and
		// ErrWeakKey for a degenerate key.
		return fmt.Errorf("%w: proof-of-possession key: %w", ErrInvalid, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func validateAudience(a string) error {
	for _, p := range audiencePrefixes {
		if !strings.HasPrefix(a, p) {
			continue
		}
		v := a[len(p):]
		if len(v) == 0 || len(v) > MaxAudienceValueLength {
			return fmt.Errorf("%d characters after %q, want 1..%d", len(v), p, MaxAudienceValueLength)
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("+/= -", c) >= 0) {
				return fmt.Errorf("invalid character %q at %d", c, len(p)+i)
			}
		}
		return nil
	}
	return fmt.Errorf("%q has no known prefix (%s)", a, strings.Join(audiencePrefixes, ", "))
}
