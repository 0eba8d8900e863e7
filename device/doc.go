// Package device is the device side of Secure Device Access: the agent an
// HVAC controller (or any device) runs to decide, offline, whether a
// technician's request may run. Device firmware builds an [Agent] with
// [New] from a [Config] (its identity, its trust anchors, the operations it
// offers in a [Registry]) and serves connections with [Agent.Serve] or
// [Agent.ServeListener].
//
// The [Config] holds the device's [token.Identity], a [trust.Store] of
// anchors, a [Registry] of operation [Handler]s, a clock policy, limits, a
// [State] for what must survive restarts, and a *slog.Logger for audit
// events. [Agent.Process] turns the bytes of one request into the bytes of
// one response and is all a transport needs; [Agent.Serve] and
// [Agent.ServeListener] run it over a transport.Conn or a
// transport.Listener. [Agent.Handle] also returns the [Outcome]: the status
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
// constraints (4); delegation chain (v2, see below, 4); audience (4); time
// (4); proof-of-possession signature with the token's cnf key, or the last
// link's key (4); nonce: outstanding and unexpired, consumed
// only now (4); revocation of the token's cti or hash and of the chain's
// link hashes, by the device's list or the status update of its issuer
// (4); freshness requirements (v2, 4); scope: the agent
// itself checks that the scope permits the operation and its arguments (5);
// then the handler (error: 0x0FFFFFFF, panic: 3). The original device
// library consumed the nonce first, so a forged request could burn a
// technician's nonce; here nothing an unauthenticated sender does touches
// the nonce set except asking for nonces.
//
// Delegation (v2, docs/PROTOCOL.md section 13). A token whose issuer
// made it delegable may come with a chain of links, each signed by the key
// of its parent (the token's cnf key, then the previous link's) over the
// parent's hash, each passing a narrower part of the token on to another
// key. The chain is parsed strictly with the bundle (malformed: status 2)
// and verified after the anchor constraints, on every request, a cached
// token's too ([CheckDelegation], token.Chain.Verify; a refusal matches
// token.ErrDelegation and is a *token.DelegationError). From there on the
// request is checked against the end of the chain: its audience, time
// window and key (the request must be signed by the last link's key: a
// request signed by the token's key or an earlier delegate's fails the
// proof of possession), and the scope check requires the token's scope and
// every link's to permit the operation. Revocation goes by the token (its
// cti, its hashes, the subject and anchor cut-offs of its sub, iat and
// anchor), which revokes every chain below it, and by each link's hash,
// which revokes the link and every link below it; link subjects are only
// the delegator's say-so and are not subject to cut-offs. The lower bound
// of time moves only by the token's issue time, never by a link's times,
// which the issuer did not sign. A delegated token cannot meet a cnonce
// freshness requirement (its cnonce is its holder's session nonce), only
// a recent status update. [Outcome].Chain, [Call].Chain and the audit
// event ("chain": the key thumbprints, the token's first) name every key
// of the chain; Call.Scope is the end of the chain's.
//
// Keys. A token whose cnf is a degenerate key (an Ed25519 point of small
// order, with which a request "signed" without any private key would
// verify) is malformed (status 2, token.ErrWeakKey); New refuses such a
// Config.SigningKey, and the token package refuses such anchor keys on
// every verification.
//
// Nonces are 64 random bits, never 0, single use, at most Config.MaxNonces
// (default 10) outstanding, each valid Config.NonceLifetime (default 5
// minutes). When every slot holds an unexpired nonce, a nonce request is
// refused with token.StatusBusy ([ErrNoncesExhausted]) rather than evicting the
// oldest as the original did: a flood of nonce requests can never
// invalidate a nonce a technician already holds. Consumed and expired
// nonces are remembered in a bounded ring so a rejection says
// [ErrNonceReplayed] or [ErrNonceExpired] rather than [ErrNonceUnknown],
// and so a value is never issued twice in a short time; an index of the
// values held keeps issuing and using a nonce from searching them, and
// outstanding nonces are scanned for expired ones only once the earliest of
// them has expired, so while nonces are used before they expire the cost
// of issuing and using one does not grow with Config.MaxNonces. A nonce
// request that finds an expired nonce outstanding, a connection at its
// quota that asks for another nonce, and a connection that closes scan the
// outstanding nonces.
//
// Sources. What one sender does must not deny service to another, so
// [Agent.Serve] and [Agent.ServeListener] treat each connection as a
// source. A connection may hold at most Config.NonceQuota (default 4)
// unexpired nonces; ServeListener lowers the quota to MaxNonces divided by
// its connection limit (at least 1: with the defaults, 10/8), so that every
// connection it serves can hold a nonce however the others flood. A
// connection that holds its quota and asks for another nonce (a retry, a new
// session on the same connection) gives up its own oldest, never another
// connection's; a connection's nonces are released when it closes
// ([ErrNonceReleased] for a request that carries a released nonce). A nonce may be used on any connection
// while it is outstanding: only its holder can sign a request with it, and
// it is consumed only once the proof of possession verified.
//
// Throttling. After Throttle.Failures (default 5) verification failures
// from one source within Throttle.Window (default 1 minute) the agent
// refuses that source new nonces with token.StatusBusy ([ErrThrottled]) for
// Throttle.Lockout (default 1 minute). Only failures that cost the device a
// signature verification count: status 4 from the token signature check on,
// for a token naming an issuer the device trusts; every refusal of a
// delegation chain among them (the token's signature was verified, or
// taken from the cache of verified tokens, and a forged link costs one
// more verification). A request naming an
// unknown issuer, a malformed request or a scope denial costs nothing,
// reveals nothing about keys and locks no one out. For throttling, a source
// is the peer's address when the transport tells it (an IPv4 address, the
// /64 of a global IPv6 address, a link-local IPv6 address; see
// transport.RemoteAddresser), so reconnecting does not escape a lockout; the
// agent remembers the 256 most recently failing addresses. Each guess at a
// signature therefore costs the attacker a nonce and, after a few, a minute
// for its address. Requests carrying an already issued nonce are still
// served, so a technician mid-session is not locked out. A technician
// behind the same address as an attacker (one NAT) shares its lockout, but
// not its nonces.
//
// A single shared link. A connection whose transport tells no address (a
// serial line, a BLE link, a pipe) counts its failures against the
// device-wide throttle, and [Agent.Process] and [Agent.Handle] cannot tell
// senders apart at all (the device-wide throttle, no quota but MaxNonces).
// Everyone who can send on such a link is one source, and fairness between
// sources cannot help where there is one: an attacker on the link can make
// the link's connection give up a technician's nonce by asking for more
// (or, through Process, take every free slot for up to the nonce lifetime)
// and, with forgeries that cost the device signature
// verifications (a trusted issuer's name on a forged or stolen token), keep
// new sessions locked out, as a radio jammer, or anyone who unplugs the
// cable, could. What holds there too: no nonce is ever burnt by a forged
// request, no other connection's nonce is ever given up, and failures that
// cost nothing lock no one out.
//
// Connections. Serve and ServeListener drop a connection that has begun a
// request and not finished it within Config.FrameTimeout (default 5 s;
// transport.FrameReceiver), or not taken a response within it.
// ServeListener also drops one idle (waiting for the first byte of a
// request) longer than Config.IdleTimeout (default 30 s), and when a
// connection arrives and all its slots are taken it closes the connection
// idle longest, preferring one that holds no nonce; when none is idle, the
// oldest connection yields its slot at its next idle moment, so a newcomer
// waits at most twice the frame timeout (the rest of a request, then its
// response) plus the time to process one request. Connections that never
// finish a frame, or send nothing, therefore cannot lock a technician out.
// What remains: an attacker opening connections as fast as the device
// accepts them churns through the slots, and may close a technician's
// connection in the instants it is idle between two requests if no
// longer-idle connection is there to go first; a limit of connections per
// address would be the next step. Every drop is an audit event ([Drop],
// Config.OnDrop, "sda: connection dropped" at Warn).
//
// Monitoring. Config.OnOutcome sees every decision and Config.OnDrop every
// dropped connection; [Agent.Stats] returns the gauges (nonces
// outstanding, sources locked out by throttling, connections served).
// Package device/deviceprom exports them to Prometheus; this package
// depends on no metrics library.
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
// bound at all and the outcome says TimeUnknown. [ClockStrict] closes that
// first gap by rejecting every token ([ErrTimeUnknown]) until a bound is
// provisioned (MinTime, or State). An issuer whose clock runs ahead can
// raise a clockless device's bound too far; the bound is capped by the
// token's exp, and with a trusted clock by now plus the leeway.
//
// Status updates (v2, Config.StatusUpdates, [Agent.InstallStatus],
// [KeepStatusFresh]). An authorization service signs, per device, a status
// update with its anchor key: its revocations (token hashes, token ids,
// subject and anchor cut-offs), a sequence number and its time. Any
// technician carries it as the third element of an operation request; the
// device handles it before the request's token: strict parse, skipped
// unless newer than the update held from its issuer (before any signature
// check, so replays cost nothing), verified with an anchor of the issuer
// that pins its algorithm, the anchor valid and allowing the update's
// audience, which must name this device; at most [MaxStatusIssuers]
// issuers. It is persisted (State key "status-updates") before it is used,
// so a failed write leaves the previous update in force, and raises the
// lower bound of time to the update's time (with a trusted clock, at most
// to now plus the leeway): a device without a clock thereby refuses a
// token that expired before the newest update's time. An ignored update
// never fails the request; [UpdateOutcome] and the audit event say why
// ([ErrStatusUpdate]). A forged update counts toward throttling as a
// forged token does. The update of a token's issuer revokes it at the
// revocation check ([RevocationError] names the entry). What an update
// cannot do: reach a device before someone carries it there, so a revoked
// token works on a device until the first visit (or fetch) after the
// revocation; and an update may be withheld, not forged: a device that
// requires freshness then refuses tokens instead.
//
// Freshness (v2, [Freshness]). A device may require, for all operations,
// per issuer or per operation ([Registry.RegisterFresh]), that a token be
// proven fresh: by an update of its issuer installed within MaxStatusAge
// on the monotonic clock (unknown after a restart, so the requirement
// fails until a new update arrives), or by a cnonce, the request's own
// nonce in the token, which the device issued and consumes once; a token
// so proven is remembered (at most [MaxFreshTokens], in memory) for the
// session's later requests. A refusal is a [*FreshnessError] saying why
// each way failed.
//
// Every decision is an audit event: at Info for allowed requests, at Warn
// for rejections, with the check, the reason, issuer, subject, token id,
// operation and nonce, and for a delegated request every key of its chain. The wire carries only the status number. Logging is
// skipped entirely when the logger is not enabled at the level.
//
// Resources are bounded: message and response sizes, nonces (per
// connection too), the replay ring, the token cache, the revocation list
// (entries are dropped only once their token has expired; a full list
// refuses more), the throttled addresses, concurrent connections of
// ServeListener and the time each may hold a slot, the status updates
// (MaxStatusIssuers of at most token.MaxStatusUpdateSize bytes), the
// tokens remembered fresh, the anchor key thumbprints remembered for
// anchor cut-offs (16) and delegation chains (token.MaxDelegationDepth
// links, within the message size). Process recovers from
// panics as a last resort and always answers with a well-formed response.
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
// identity, see token.SignResponse), Config.TokenCacheSize,
// Config.StatusUpdates (response key 7 and a third envelope element) and
// the freshness requirements. Delegation chains (a fourth element of the
// signed bundle) need no option: they verify only below v2 tokens whose
// issuer made them delegable. token.StatusBusy
// (8) is new in v2; a v1 technician app treats it as an error. The
// revocation operation is [RevokeOperation]. docs/PROTOCOL.md documents the
// device's protocol.
package device
