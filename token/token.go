package token

import (
	"bytes"
	"crypto"
	"io"
	"strings"
	"time"
)

// IssueOptions control how [Issue] encodes and signs a token. The zero value
// issues an SDA v1 token.
type IssueOptions struct {
	// Profile selects v1 (default) or v2 claim keys and features.
	Profile Profile
	// KeyID, if set, goes in the protected header (label 4) so devices can
	// pick the anchor key directly (v2 only).
	KeyID []byte
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Issue encodes c and signs it with key, returning the access token bytes
// 61(18(COSE_Sign1)) (RFC 8392 section 6, RFC 9052 section 4.2). The key's
// type decides the algorithm; in ProfileV1 it must be a P-256 key (ES256).
// Any crypto.Signer works, including hardware-backed keys. A token longer
// than [MaxTokenSize], which [Parse] would reject, is an [ErrInvalid] error,
// found before the key is asked to sign (a signature has the fixed size of
// its algorithm).
func Issue(c *Claims, key crypto.Signer, opts *IssueOptions) ([]byte, error) {
	return issue(c, key, opts, nil)
}

// IssueWithRevocationHash is [Issue] that also returns the token's
// revocation hash (see [RevocationHash]), computed from the ToBeSigned it
// signs rather than by parsing the token again: for an issuer that
// records every token by that hash. On error it returns Issue's error and
// neither a token nor a hash.
func IssueWithRevocationHash(c *Claims, key crypto.Signer, opts *IssueOptions) ([]byte, [32]byte, error) {
	var hash [32]byte
	tok, err := issue(c, key, opts, &hash)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return tok, hash, nil
}

// issue is Issue; when hash is not nil it receives the revocation hash.
func issue(c *Claims, key crypto.Signer, opts *IssueOptions, hash *[32]byte) ([]byte, error) {
	if c == nil {
		return nil, invalid("nil claims")
	}
	if opts == nil {
		opts = &IssueOptions{}
	}
	if key == nil {
		return nil, invalid("nil signing key")
	}
	alg, err := keyAlgorithm(key.Public()) // signSign1 checks the key in full
	if err != nil {
		return nil, err
	}
	if opts.Profile == ProfileV1 {
		if alg != AlgES256 {
			return nil, invalid("an SDA v1 token is signed with ES256, not %v", alg)
		}
		if opts.KeyID != nil {
			return nil, invalid("an SDA v1 token carries no kid")
		}
	}
	payload, err := encodeClaims(c, opts.Profile)
	if err != nil {
		return nil, err
	}
	// A token over MaxTokenSize, which Parse (and so every device) would
	// reject, is refused before the key is asked to sign it.
	return signSign1Hash(tagCWTPrefix, payload, key, opts.KeyID, opts.Rand, MaxTokenSize, nil, hash)
}

// Token is an access token that has been parsed strictly but whose
// signature has not been verified. Values read from it before [Token.Verify]
// succeeds are marked Unverified and must only be used to choose which
// trusted key to verify with.
type Token struct {
	raw    []byte
	msg    *sign1
	claims *Claims
}

// Parse parses an access token strictly: 61(18(COSE_Sign1)) or 18(COSE_Sign1)
// (both are accepted by deployed devices; untagged is not), the headers, and
// the claims. It does no cryptography. The returned Token keeps a copy of
// data. A CWT in another form (MACed, encrypted, multi-signer or nested, RFC
// 8392 Appendix A.4 to A.6) is refused with [ErrUnsupportedForm].
func Parse(data []byte) (*Token, error) {
	if len(data) > MaxTokenSize {
		return nil, malformed("token", "%d bytes exceed %d", len(data), MaxTokenSize)
	}
	var body []byte
	switch {
	case bytes.HasPrefix(data, tagCWTPrefix):
		body = data[len(tagCWTPrefix):]
	case bytes.HasPrefix(data, tagSign1Prefix):
		body = data[len(tagSign1Prefix):]
	default:
		if err := unsupportedForm("token", data); err != nil {
			return nil, err
		}
		return nil, malformed("token", "must start with tags 61(18( or 18(")
	}
	raw := bytes.Clone(data)
	m, err := parseSign1("token", raw[len(data)-len(body):])
	if err != nil {
		return nil, err
	}
	if err := nestedForm("token.payload", m); err != nil {
		return nil, err
	}
	if len(m.payload) == 0 || m.payload[0]>>5 != 5 {
		return nil, malformed("token.claims", "not a map")
	}
	claims, err := decodeClaims(m.payload)
	if err != nil {
		return nil, err
	}
	return &Token{raw: raw, msg: m, claims: claims}, nil
}

// UnverifiedIssuer returns the iss claim, not yet verified: use it only to
// look up the trust anchor to verify with.
func (t *Token) UnverifiedIssuer() string { return t.claims.Issuer }

// UnverifiedKeyID returns the kid header parameter, or nil, not yet
// verified: use it only to look up the trust anchor to verify with.
func (t *Token) UnverifiedKeyID() []byte { return bytes.Clone(t.msg.kid) }

// Algorithm returns the algorithm named in the protected header. The
// verification key must pin the same algorithm.
func (t *Token) Algorithm() Algorithm { return t.msg.alg }

// UnverifiedClaims returns a copy of the claims as parsed, not yet
// verified: for display and debugging only (a tool that pretty-prints a
// token). Nothing read from them may be trusted or used to decide anything;
// [Token.Verify] returns the same claims once the signature is checked.
func (t *Token) UnverifiedClaims() *Claims {
	return t.claims.clone()
}

// Bytes returns a copy of the token bytes as received.
func (t *Token) Bytes() []byte { return bytes.Clone(t.raw) }

// Verify checks the token's signature, over the bytes received, with pub,
// which pins the algorithm, and only then returns the claims. It does not
// check time or audience: see [Claims.Validate].
func (t *Token) Verify(pub crypto.PublicKey) (*Claims, error) {
	if err := t.msg.verify(pub, nil); err != nil {
		return nil, err
	}
	return t.claims.clone(), nil
}

// clone returns a deep copy of c.
func (c *Claims) clone() *Claims {
	out := *c
	out.Audience = append([]string(nil), c.Audience...)
	out.ID = bytes.Clone(c.ID)
	out.CNonce = bytes.Clone(c.CNonce)
	out.Delegation = c.Delegation.clone()
	return &out
}

// Identity names a device as audiences do.
type Identity struct {
	Endpoint string // endpoint name, matched by "ep:" and "endpoint-name:" entries
	DeviceID string // 32 hex characters, matched by "id:" and "device-id:" entries
}

// Audience prefixes. "endpoint-name:" and "device-id:" are the legacy forms.
const (
	PrefixEndpoint       = "ep:"
	PrefixDeviceID       = "id:"
	PrefixLegacyEndpoint = "endpoint-name:"
	PrefixLegacyDeviceID = "device-id:"
)

// Matches reports whether the audience entry aud names the device: it equals,
// byte for byte, one of the prefixes followed by the matching identity field.
// Empty identity fields never match.
func (id Identity) Matches(aud string) bool {
	match := func(prefix, value string) bool {
		return value != "" && len(aud) == len(prefix)+len(value) &&
			strings.HasPrefix(aud, prefix) && aud[len(prefix):] == value
	}
	return match(PrefixEndpoint, id.Endpoint) || match(PrefixLegacyEndpoint, id.Endpoint) ||
		match(PrefixDeviceID, id.DeviceID) || match(PrefixLegacyDeviceID, id.DeviceID)
}

// Validation holds what [Claims.Validate] checks against.
type Validation struct {
	Identity Identity      // the device; the token must name it in aud
	Now      time.Time     // the time of validation; required
	Leeway   time.Duration // clock skew tolerated on exp and nbf (v1 devices use 300 s)
}

// Validate checks audience and time: some aud entry must name v.Identity,
// exp + leeway must not be before v.Now (else [ErrExpired]) and nbf - leeway
// must not be after it (else [ErrNotYetValid]). A zero v.Now is an error:
// callers without a trustworthy clock must decide explicitly what time to
// use.
func (c *Claims) Validate(v Validation) error {
	ok := false
	for _, a := range c.Audience {
		if v.Identity.Matches(a) {
			ok = true
			break
		}
	}
	if !ok {
		return ErrWrongAudience
	}
	if v.Now.IsZero() {
		return invalid("validation time is required")
	}
	if v.Leeway < 0 {
		return invalid("negative leeway")
	}
	if c.Expiry.IsZero() || c.Expiry.Add(v.Leeway).Before(v.Now) {
		return ErrExpired
	}
	if !c.NotBefore.IsZero() && c.NotBefore.Add(-v.Leeway).After(v.Now) {
		return ErrNotYetValid
	}
	return nil
}
