package client

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/securedeviceaccess/sda/token"
)

// FreshTokens is how a [Session] obtains, for [Session.DoFresh], a token
// proven fresh by the device's own nonce (v2, the cnonce of RFC 9200
// section 5.3, docs/PROTOCOL.md section 12 "Freshness on demand"): a
// fetcher and the request it asks, as a template.
type FreshTokens struct {
	// Fetcher fetches the tokens, usually a *TokenClient (not a
	// TokenSource: such tokens are good for one request and never
	// cached). Required.
	Fetcher TokenFetcher
	// Request is the template of every request: its Audience and Scope
	// are asked for; Key, when set, must be the session's public key (nil
	// means the session's); CNonce must be nil, as the session fills it
	// in with each operation's nonce.
	Request token.AccessRequest
}

// check refuses a template that cannot be used by a session with key pub.
func (f *FreshTokens) check(pub any) error {
	if f.Fetcher == nil {
		return invalid("fresh tokens without a fetcher")
	}
	if f.Request.CNonce != nil {
		return invalid("fresh tokens: the request template has a cnonce; the session sets it")
	}
	if f.Request.Key != nil && !token.EqualKeys(f.Request.Key, pub) {
		return invalid("fresh tokens: the request template names another key than the session's")
	}
	return nil
}

// DoFresh performs op as [Session.Do] does, with a token fetched for this
// operation alone: the session obtains a nonce from the device (the next
// nonce of the previous response, or a nonce request), asks Fresh.Fetcher
// for a token with Fresh.Request and CNonce set to that nonce (8 bytes,
// big-endian), checks that the token carries it and is bound to the
// session's key, and signs the request with the same nonce. A device that
// requires freshness by cnonce accepts the token for this nonce only, once.
// The token is not kept: every DoFresh fetches a new one, and Do still
// uses Tokens.
//
// Errors are those of Do, and those of the fetcher (a [*ServiceError], a
// [*TokenCheckError], ...); when the token cannot be obtained, the request
// was not sent and the nonce is kept for the next operation. Without
// Fresh, or with a template that sets CNonce or another key, it fails with
// [ErrInvalid] before anything is sent.
func (s *Session) DoFresh(ctx context.Context, op token.Operation) (*Result, error) {
	if s.Fresh == nil {
		return nil, invalid("DoFresh needs Session.Fresh")
	}
	return s.run(ctx, op, s.Fresh)
}

// freshToken fetches and checks the token for nonce.
func (s *Session) freshToken(ctx context.Context, f *FreshTokens, nonce uint64) (*AccessToken, error) {
	req := f.Request
	req.Key = s.Key.Public()
	req.CNonce = binary.BigEndian.AppendUint64(nil, nonce)
	tok, err := f.Fetcher.Fetch(ctx, &req)
	if err != nil {
		return nil, fmt.Errorf("client: obtaining a fresh token: %w", err)
	}
	if tok == nil || len(tok.Raw) == 0 {
		return nil, invalid("empty token")
	}
	// The fetcher (a TokenClient) checked it; any other is checked here,
	// unverified: the device verifies the signature.
	checked, err := CheckToken(tok.Raw, &TokenCheck{Key: req.Key, CNonce: req.CNonce})
	if err != nil {
		return nil, err
	}
	if !tok.Expiry.IsZero() && tok.Expiry.Before(checked.Expiry) {
		checked.Expiry = tok.Expiry
	}
	s.checked, s.checkedAud = nil, checked.Audience
	return checked, nil
}
