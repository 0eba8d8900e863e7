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
//
// A delegated token (v2, docs/PROTOCOL.md section 13) is the token as
// issued, in Raw, and the chain of delegation links below it, in Chain.
// Its Audience, Scope, Expiry and Key are then the chain's effective ones:
// those of its last link, which the holder signs with.
type AccessToken struct {
	// Raw is the token as issued (61(18(COSE_Sign1)) or 18(COSE_Sign1)).
	Raw []byte
	// Chain is the delegation chain below the token, or nil when the
	// token is not delegated. A [Session] sends it with every request.
	Chain *token.Chain
	// Expiry is when the client stops using the token: the earlier of the
	// token's exp claim and the service's granted_until (for a delegated
	// token, the last link's exp). The zero time means unknown (a token
	// given with [StaticToken]).
	Expiry time.Time
	// Issuer, Audience, Scope and Key are the token's iss, aud, scope and
	// cnf claims, or, for a delegated token, the effective audience, scope
	// and key of the chain's last link. They are verified only when
	// Verified is true; otherwise they were checked against what the
	// client asked for, but not authenticated.
	Issuer   string
	Audience []string
	Scope    token.Scope
	Key      crypto.PublicKey
	// Verified reports that the token's signature was checked with a key
	// from [TokenCheck.Anchors] (and, for a delegated token, the chain
	// with it).
	Verified bool
}

// Bytes returns what holds the token: Raw, or for a delegated token the
// encoded DelegatedToken [token, chain] (docs/PROTOCOL.md section 13),
// which [StaticToken], [CheckToken] and [token.ParseDelegatedToken] read.
func (t *AccessToken) Bytes() []byte {
	if t.Chain == nil {
		return bytes.Clone(t.Raw)
	}
	return (&token.DelegatedToken{Token: t.Raw, Chain: t.Chain}).Bytes()
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
//
// raw may also be a delegated token (a DelegatedToken, [AccessToken.Bytes]).
// Its chain is then verified against the token's claims as a device does
// ([token.Chain.Verify]: every link's signature, narrowing, depth and
// loops; a refusal is a TokenCheckError with Check "delegation" that
// unwraps to a [*token.DelegationError]), and the checks above apply to
// the chain's effective values: its last key must be c.Key, and the
// audience, scope and expiry are those of its last link. The chain needs
// no anchor to verify, so it is verified with or without c.Anchors; only
// with them are the token's own claims, and so the whole chain,
// authenticated. c.CNonce is compared with the token's cnonce, which is
// the delegator's: a device requiring freshness refuses delegated tokens.
func CheckToken(raw []byte, c *TokenCheck) (*AccessToken, error) {
	if c == nil || c.Key == nil {
		return nil, invalid("token check without the client's key")
	}
	t, chain, err := parseHeld(raw)
	if err != nil {
		return nil, &TokenCheckError{Check: "parse", Reason: "not a well-formed access token", Err: err}
	}
	out := &AccessToken{Raw: t.Bytes(), Chain: chain}
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
		if claims, err = effectiveClaims(t, chain, claims); err != nil {
			return nil, err
		}
		out.Issuer, out.Audience, out.Scope, out.Key, exp, cnonce = claims.Issuer, claims.Audience, claims.Scope, claims.Key, claims.Expiry, claims.CNonce
		out.Verified = true
	} else {
		// Not authenticated: these only serve to refuse a token that is
		// not the one asked for.
		u, err := effectiveClaims(t, chain, t.UnverifiedClaims())
		if err != nil {
			return nil, err
		}
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

// parseHeld parses raw strictly as a token or, when it is a CBOR array
// (tokens are tagged), as a delegated token, and returns the token and
// the chain (nil for a token).
func parseHeld(raw []byte) (*token.Token, *token.Chain, error) {
	if len(raw) == 0 || raw[0]>>5 != 4 { // not a CBOR array: a token
		t, err := token.Parse(raw)
		return t, nil, err
	}
	d, err := token.ParseDelegatedToken(raw)
	if err != nil {
		return nil, nil, err
	}
	t, err := token.Parse(d.Token)
	if err != nil {
		return nil, nil, err
	}
	return t, d.Chain, nil
}

// effectiveClaims returns claims, the token's, or with a chain the claims
// at its end, after verifying the chain against them.
func effectiveClaims(t *token.Token, chain *token.Chain, claims *token.Claims) (*token.Claims, error) {
	if chain == nil {
		return claims, nil
	}
	v, err := chain.Verify(claims, t.RevocationHash())
	if err != nil {
		return nil, &TokenCheckError{Check: "delegation", Reason: "the delegation chain does not verify", Err: err}
	}
	return v.Claims, nil
}

// sameSet reports whether a and b hold the same strings, ignoring order and
// repetition.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
