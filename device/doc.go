// Package device is the device side of Secure Device Access: the agent an
// HVAC controller (or any device) runs to decide, offline, whether a
// technician's request may run.
//
// An [Agent] is built from a [Config]: the device's [token.Identity], a
// [trust.Store] of anchors, a [Registry] of operation [Handler]s, a clock
// policy, limits, a [State] for what must survive restarts, and a
// *slog.Logger for audit events. [Agent.Process] turns the bytes of one
// request into the bytes of one response and is all a transport needs;
// [Agent.Serve] and [Agent.ServeListener] run it over a transport.Conn or a
// transport.Listener. [Agent.Handle] also returns the [Decision]: the status
// sent, the [Check] that failed and the typed reason.
//
// # Security considerations
//
// Verification order. An operation request goes through these checks, in
// this order, and the first failure decides ([Check] names them): message
// size; strict parse of the envelope, the signed bundle and the token
// (malformed: status 2, nothing else touched); anchor lookup by iss and,
// in v2 tokens, kid (trust.LookupToken; in a v1 token, as in deployed v1
// devices, the kid never causes a refusal) (unknown or revoked: 4); token signature with the anchor's key, which
// pins the algorithm (4); profile; anchor validity, retirement and
// constraints (4); audience (4); time (4); proof-of-possession signature
// with the token's cnf key (4); nonce: outstanding and unexpired, consumed
// only now (4); revocation of the token's cti or hash (4); scope: the agent
// itself checks that the scope permits the operation and its arguments (5);
// then the handler (error: 0x0FFFFFFF, panic: 3). The original device
// library consumed the nonce first, so a forged request could burn a
// technician's nonce; here nothing an unauthenticated sender does touches
// the nonce set except asking for nonces.
//
// Nonces are 64 random bits, never 0, single use, at most Config.MaxNonces
// (default 10) outstanding, each valid Config.NonceLifetime (default 5
// minutes). When every slot holds an unexpired nonce, a nonce request is
// refused with StatusBusy ([ErrNoncesExhausted]) rather than evicting the
// oldest as the original did: a flood of nonce requests can delay a new
// session by up to the nonce lifetime, but it can never invalidate a nonce
// a technician already holds. Consumed and expired nonces are remembered
// in a bounded ring so a rejection says [ErrNonceReplayed] or
// [ErrNonceExpired] rather than [ErrNonceUnknown], and so a value is never
// issued twice in a short time.
//
// Throttling. After Throttle.Failures (default 5) verification failures
// (status 4) within Throttle.Window (default 1 minute) the agent refuses new
// nonces with StatusBusy ([ErrThrottled]) for Throttle.Lockout (default 1
// minute). Each guess at a signature therefore costs the attacker a nonce
// and, after a few, a minute. Requests carrying an already issued nonce are
// still served, so a technician mid-session is not locked out; but an
// attacker who can reach the device can keep new sessions locked out, a
// denial of service any radio jammer achieves too. Malformed requests and
// scope denials do not count: they reveal nothing about keys.
//
// Clocks. Time checks are never skipped silently. With [ClockTrusted], the
// default, exp and nbf are checked with the leeway (default 300 s, as in
// v1) against the clock, or against the lower bound when the clock reads
// earlier than it. The lower bound is the newest issue time (iat, or nbf)
// of a fully verified token, persisted through [State], and at least
// Config.MinTime. A device without a trustworthy clock uses
// [ClockLowerBound]: a token that expired before the lower bound is
// rejected, but nbf cannot be checked and a token that expired after the
// newest token seen is accepted, so a stolen token stays usable on a device
// that sees no newer tokens; until the first token is accepted there is no
// bound at all and the decision says TimeUnknown. [ClockStrict] closes that
// first gap by rejecting every token ([ErrTimeUnknown]) until a bound is
// provisioned (MinTime, or State). An issuer whose clock runs ahead can
// raise a clockless device's bound too far; the bound is capped by the
// token's exp, and with a trusted clock by now plus the leeway.
//
// Every decision is an audit event: at Info for allowed requests, at Warn
// for rejections, with the check, the reason, issuer, subject, token id,
// operation and nonce. The wire carries only the status number. Logging is
// skipped entirely when the logger is not enabled at the level.
//
// Resources are bounded: message and response sizes, nonces, the replay
// ring, the token cache, the revocation list (entries are dropped only
// once their token has expired; a full list refuses more), concurrent
// connections of ServeListener. Process recovers from panics as a last
// resort and always answers with a well-formed response.
//
// # Compatibility
//
// With the zero values of its v2 options the agent speaks SDA v1 (the v1
// profile of docs/PROTOCOL.md) byte for byte: it accepts requests as the original technician SDK
// builds them and answers with the original's response layout, an
// indefinite-length map with keys 3/4 before 1/2. v1 and v2 tokens are both
// accepted unless Config.RejectV1. The v2 additions are enabled per agent:
// Config.NextNonce (response key 5), Config.SigningKey (key 6, a
// COSE_Sign1 over status, data, the request's nonce and the device's
// identity, see token.SignResponse) and Config.TokenCacheSize. StatusBusy
// (8) is new in v2; a v1 technician app treats it as an error. The
// revocation operation is [RevokeOperation]. docs/PROTOCOL.md documents the
// device's protocol.
package device
