package client

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/securedeviceaccess/sda/token"
)

// Delegate passes on, offline, a narrower part of the access of holder to
// the key spec.To (v2, docs/PROTOCOL.md section 13): it adds a
// delegation link below holder's token (or below its chain, when holder
// is itself delegated), signed with key, which must be the key holder is
// bound to (its last key). The result is the delegate's token: hand its
// [AccessToken.Bytes] to the delegate, whose [Session] (with
// [StaticToken], and its own key) sends it to devices.
//
// Delegate refuses, with the typed errors of [token.Delegate] (a
// [*token.DelegationError] matching [token.ErrDelegation] and one of
// [token.ErrNotDelegable], [token.ErrDelegationDepth],
// [token.ErrNotNarrower], [token.ErrDelegationLoop]), what a device would
// refuse: a token without the owner's permission to delegate (every v1
// token), a chain as deep as the token allows, a scope, time window or
// audience wider than the holder's. A key that is not holder's is
// [ErrTokenMismatch] ("cnf"); an invalid spec is [token.ErrInvalid]. It
// verifies no signature: check holder with [CheckToken] first.
//
// The returned token's Audience, Scope, Expiry and Key are the new link's
// effective ones (Key is spec.To); Verified is false.
func Delegate(holder *AccessToken, key crypto.Signer, spec *token.DelegationSpec) (*AccessToken, error) {
	if holder == nil || len(holder.Raw) == 0 || key == nil || spec == nil {
		return nil, invalid("delegation needs a token, its key and a specification")
	}
	if hk, _, err := unverifiedKeyAudience(holder); err == nil && !token.EqualKeys(hk, key.Public()) {
		return nil, &TokenCheckError{Check: "cnf", Reason: "the key is not the one the token is bound to"}
	}
	raw, err := token.Delegate(holder.Bytes(), key, spec)
	if err != nil {
		if errors.Is(err, token.ErrDelegation) {
			return nil, err
		}
		return nil, fmt.Errorf("client: delegating: %w", err)
	}
	t, chain, err := parseHeld(raw)
	if err != nil {
		return nil, fmt.Errorf("client: reading the delegated token: %w", err)
	}
	c, err := effectiveClaims(t, chain, t.UnverifiedClaims())
	if err != nil {
		return nil, err
	}
	return &AccessToken{Raw: t.Bytes(), Chain: chain, Expiry: c.Expiry, Issuer: c.Issuer,
		Audience: c.Audience, Scope: c.Scope, Key: c.Key}, nil
}
