package client

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// AccessToken is an access token as the client holds it: the bytes to present to
// devices and what the client learned from them.
type AccessToken struct {
	// Raw is the token as issued (61(18(COSE_Sign1)) or 18(COSE_Sign1)).
	Raw []byte
	// Expiry is when the client stops using the token: the earlier of the
	// token's exp claim and the service's granted_until. The zero time
	// means unknown (a token given with [StaticToken]).
	Expiry time.Time
	// Issuer, Audience, Scope and Key are the token's iss, aud, scope and
	// cnf claims. They are verified only when Verified is true; otherwise
	// they were checked against what the client asked for, but not
	// authenticated.
	Issuer   string
	Audience []string
	Scope    token.Scope
	Key      crypto.PublicKey
	// Verified reports that the token's signature was checked with a key
	// from [TokenCheck.Anchors].
	Verified bool
}

// TokenCheck says what [CheckToken] compares a token with.
type TokenCheck struct {
	// Key is the public half of the client's proof-of-possession key. The
	// token's cnf claim must be this key. Required.
	Key crypto.PublicKey
	// Audience, when not nil, must equal the token's aud claim as a set.
	Audience []string
	// Scope, when not nil, must equal the operation names of the token's
	// scope as a set.
	Scope []string
	// CNonce, when not nil, must equal the token's cnonce claim (v2): a
	// token asked for with [token.AccessRequest.CNonce] carries the
	// device's nonce, or a device requiring it refuses the token.
	CNonce []byte
	// Anchors, when not nil, are the trust anchors the token must verify
	// with, found as a device finds them ([trust.LookupToken]); the
	// signature is then checked and the claims are authenticated. When
	// nil, the claims are read without verifying the signature: the device
	// verifies it anyway, and the checks here only catch a token that is
	// not the one asked for. Only the signature is checked: an anchor's
	// validity window and constraints are the device's to apply.
	Anchors trust.Store
	// Now is the time the expiry is checked against; zero means
	// time.Now().
	Now time.Time
}

// CheckToken parses raw strictly and checks it before use: the cnf key is
// c.Key, the audience and scope are the ones asked for, the token has not
// expired and, when c.Anchors is set, its signature verifies with the
// anchor's key, and with c.CNonce set, the token carries that cnonce.
// Failures are [*TokenCheckError] values matching
// [ErrTokenMismatch].
func CheckToken(raw []byte, c *TokenCheck) (*AccessToken, error) {
	if c == nil || c.Key == nil {
		return nil, invalid("token check without the client's key")
	}
	t, err := token.Parse(raw)
	if err != nil {
		return nil, &TokenCheckError{Check: "parse", Reason: "not a well-formed access token", Err: err}
	}
	out := &AccessToken{Raw: t.Bytes()}
	var exp time.Time
	var cnonce []byte
	if c.Anchors != nil {
		anchors, err := trust.LookupToken(c.Anchors, t)
		if err != nil {
			return nil, &TokenCheckError{Check: "signature", Reason: fmt.Sprintf("no trust anchor for issuer %q", t.UnverifiedIssuer()), Err: err}
		}
		var claims *token.Claims
		for _, a := range anchors {
			if claims, err = t.Verify(a.Key); err == nil {
				break
			}
		}
		if err != nil {
			return nil, &TokenCheckError{Check: "signature", Reason: "does not verify with the trust anchor", Err: err}
		}
		out.Issuer, out.Audience, out.Scope, out.Key, exp, cnonce = claims.Issuer, claims.Audience, claims.Scope, claims.Key, claims.Expiry, claims.CNonce
		out.Verified = true
	} else {
		// Not authenticated: these only serve to refuse a token that is
		// not the one asked for.
		u := t.UnverifiedClaims()
		out.Issuer, out.Audience, out.Scope, out.Key, exp, cnonce = u.Issuer, u.Audience, u.Scope, u.Key, u.Expiry, u.CNonce
	}
	out.Expiry = exp
	if !token.EqualKeys(out.Key, c.Key) {
		return nil, &TokenCheckError{Check: "cnf", Reason: "the token is bound to another key"}
	}
	if c.Audience != nil && !sameSet(c.Audience, out.Audience) {
		return nil, &TokenCheckError{Check: "aud", Reason: fmt.Sprintf("granted %q, asked for %q", out.Audience, c.Audience)}
	}
	if c.Scope != nil && !sameSet(c.Scope, out.Scope.Names()) {
		return nil, &TokenCheckError{Check: "scope", Reason: fmt.Sprintf("granted %q, asked for %q", out.Scope.String(), c.Scope)}
	}
	if c.CNonce != nil && !bytes.Equal(c.CNonce, cnonce) {
		return nil, &TokenCheckError{Check: "cnonce", Reason: fmt.Sprintf("the token carries cnonce %x, asked for %x", cnonce, c.CNonce)}
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !exp.After(now) {
		return nil, &TokenCheckError{Check: "expiry", Reason: fmt.Sprintf("expired at %v", exp.UTC().Format(time.RFC3339))}
	}
	return out, nil
}

// sameSet reports whether a and b hold the same strings, ignoring order and
// repetition.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
