package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// Size defaults, as in the original device library.
const (
	DefaultMaxMessageSize  = 2048
	DefaultMaxResponseSize = 2048
)

// Config configures an [Agent]. Only Identity and Anchors are required;
// the zero values of the other fields are the secure, v1-compatible
// defaults. [New] copies the Config; changing it afterwards has no effect.
type Config struct {
	// Identity is the device's name as audiences carry it. At least the
	// endpoint name or the device id (32 hex characters) must be set.
	Identity token.Identity
	// Anchors are the trust anchors tokens must be signed by.
	Anchors trust.Store
	// Operations maps operation names to handlers. nil means no operation
	// but the built-in [RevokeOperation].
	Operations *Registry

	// Clock returns the current time; nil means time.Now. In ClockTrusted
	// mode it is wall time; in the clockless modes it only measures
	// durations (nonce lifetime, throttling) and may start at any value.
	Clock func() time.Time
	// ClockMode says whether Clock is wall time; see [ClockMode].
	ClockMode ClockMode
	// MinTime is a lower bound of time known when the device was built or
	// provisioned (for example the firmware's build time). Zero means none.
	MinTime time.Time
	// Leeway is the clock skew tolerated on exp and nbf. Zero means
	// DefaultLeeway (300 s, as in v1); a negative value means none.
	Leeway time.Duration

	// MaxNonces is the number of nonces outstanding at once; zero means
	// DefaultMaxNonces (10), at most MaxMaxNonces.
	MaxNonces int
	// NonceLifetime is how long a nonce stays usable; zero means
	// DefaultNonceLifetime (5 minutes).
	NonceLifetime time.Duration
	// NonceQuota is the number of unexpired nonces one connection served by
	// [Agent.Serve] or [Agent.ServeListener] may hold, so that one
	// connection's flood cannot take the others' nonces: a connection that
	// holds its quota and asks for another nonce gives up its own oldest
	// ([ErrNonceReleased]). Zero means DefaultNonceQuota (4); larger than
	// MaxNonces means MaxNonces.
	// ServeListener lowers it to MaxNonces divided by its connection limit
	// (at least 1). Process and Handle, which cannot tell connections
	// apart, have no quota but MaxNonces.
	NonceQuota int
	// Throttle configures the refusal of nonces to a source after repeated
	// verification failures.
	Throttle Throttle

	// MaxMessageSize is the largest request accepted; zero means
	// DefaultMaxMessageSize (2048 bytes).
	MaxMessageSize int
	// MaxResponseSize is the largest response sent; a larger one is
	// replaced by token.StatusResponseTooSmall without data. Zero means
	// DefaultMaxResponseSize (2048 bytes).
	MaxResponseSize int

	// FrameTimeout bounds, on connections served by Serve and
	// ServeListener, the time from the first byte of a request to its last
	// (on Conns with the transport.FrameReceiver capability), and the time
	// a response takes to leave. Zero means DefaultFrameTimeout (5 s); a
	// negative value means none.
	FrameTimeout time.Duration
	// IdleTimeout is how long a connection served by ServeListener may
	// wait for the first byte of its next request before it is closed.
	// Zero means DefaultIdleTimeout (30 s); a negative value means none.
	IdleTimeout time.Duration

	// State persists the lower bound of time and the revocation list. nil
	// means a fresh MemoryState: nothing survives a restart.
	State State
	// MaxRevocations bounds the revocation list; zero means
	// DefaultMaxRevocations, at most MaxMaxRevocations.
	MaxRevocations int

	// Logger receives one audit event per request ("sda: request allowed"
	// at Info, "sda: request rejected" at Warn). nil means no logging.
	Logger *slog.Logger
	// OnOutcome, if set, is called with every decision, after the
	// response is built and before Process returns. It must not block for
	// long; a panic in it is recovered and ignored.
	OnOutcome func(Outcome)
	// OnDrop, if set, is called with every connection Serve or
	// ServeListener drops (Logger receives them too, "sda: connection
	// dropped" at Warn). The same rules as for OnOutcome apply.
	OnDrop func(Drop)

	// Rand is the source of nonces; nil means crypto/rand.Reader.
	Rand io.Reader

	// RejectV1 makes the agent accept only v2 tokens.
	RejectV1 bool
	// NextNonce (v2) offers a fresh nonce in every operation response to a
	// request whose proof of possession and nonce verified (response key
	// 5), so a session needs one round trip per operation.
	NextNonce bool
	// SigningKey (v2), if set, signs operation responses to requests whose
	// proof of possession verified (response key 6; token.SignResponse):
	// status, data, the request's nonce and Identity.
	SigningKey crypto.Signer
	// StatusUpdates (v2) makes the device take status updates
	// (docs/PROTOCOL.md section 12) carried by operation requests, the
	// third element of [3, bundle, update], and say in every nonce and
	// operation response which it holds (response key 7, empty when none),
	// so that clients know when to push one. A request may then be
	// MaxMessageSize plus token.MaxStatusUpdateSize plus 3 bytes
	// ([Agent.MaxRequestSize]; transports configured with a smaller
	// MaxMessageSize refuse more); without its update it must still fit
	// MaxMessageSize. Without StatusUpdates, a third element is malformed
	// (status 2) and responses are those of v1, byte for byte. Updates
	// installed with [Agent.InstallStatus] revoke tokens either way.
	StatusUpdates bool
	// Freshness (v2) is a requirement that every token be proven fresh;
	// see [Freshness]. The zero value requires nothing.
	Freshness Freshness
	// IssuerFreshness (v2) adds freshness requirements per issuer (the
	// token's iss). New copies the map.
	IssuerFreshness map[string]Freshness

	// TokenCacheSize (v2), if positive, caches that many verified tokens
	// by hash so later requests with the same token cost one signature
	// check (the PoP). At most MaxTokenCacheSize. The cache needs an
	// anchor store that implements [trust.Versioned] (trust.MemoryStore
	// and trust.FileStore do) and is disabled otherwise.
	TokenCacheSize int
}

// Agent is the device side of SDA: it answers nonce and operation
// requests. It is safe for concurrent use.
type Agent struct {
	identity    token.Identity
	anchors     trust.Store
	anchorsVer  trust.Versioned
	ops         *Registry
	mono        func() time.Time
	clock       *clockPolicy
	leeway      time.Duration
	nonces      *nonceStore
	throttle    *throttle
	maxMsg      int
	maxResp     int
	revocations *revocations
	log         *slog.Logger
	onOutcome   func(Outcome)
	rejectV1    bool
	nextNonce   bool
	signer      crypto.Signer
	cache       *tokenCache
	revoke      Handler

	// Status updates and freshness (v2).
	statusUpdates bool
	status        *statusStore
	freshness     Freshness
	issuerFresh   map[string]Freshness
	fresh         freshTokens
	thumbprints   thumbprints

	// Serving connections (Serve, ServeListener).
	nonceQuota   int
	frameTimeout time.Duration
	idleTimeout  time.Duration
	onDrop       func(Drop)
	conns        atomic.Int64 // connections being served, for Stats
}

// New returns an agent for cfg, loading the lower bound of time and the
// revocation list from cfg.State. Configuration errors match [ErrConfig],
// unreadable state [ErrState].
func New(cfg Config) (*Agent, error) {
	if cfg.Identity.Endpoint == "" && cfg.Identity.DeviceID == "" {
		return nil, configError("identity needs an endpoint name or a device id")
	}
	if id := cfg.Identity.DeviceID; id != "" && !isHex32(id) {
		return nil, configError("device id %q is not 32 hex characters", id)
	}
	if cfg.Anchors == nil {
		return nil, configError("no anchor store")
	}
	if cfg.ClockMode > ClockStrict {
		return nil, configError("unknown clock mode %d", cfg.ClockMode)
	}
	if cfg.Throttle.Failures > MaxThrottleFailures {
		return nil, configError("Throttle.Failures %d exceeds %d", cfg.Throttle.Failures, MaxThrottleFailures)
	}
	a := &Agent{
		identity:  cfg.Identity,
		anchors:   cfg.Anchors,
		ops:       cfg.Operations,
		mono:      cfg.Clock,
		leeway:    cfg.Leeway,
		maxMsg:    cfg.MaxMessageSize,
		maxResp:   cfg.MaxResponseSize,
		log:       cfg.Logger,
		onOutcome: cfg.OnOutcome,
		onDrop:    cfg.OnDrop,
		rejectV1:  cfg.RejectV1,
		nextNonce: cfg.NextNonce,
		signer:    cfg.SigningKey,

		statusUpdates: cfg.StatusUpdates,
		freshness:     cfg.Freshness,
		issuerFresh:   maps.Clone(cfg.IssuerFreshness),
	}
	if err := a.freshness.validate(); err != nil {
		return nil, err
	}
	for _, f := range a.issuerFresh {
		if err := f.validate(); err != nil {
			return nil, err
		}
	}
	if a.mono == nil {
		a.mono = time.Now
	}
	a.throttle = newThrottle(cfg.Throttle, a.mono())
	a.frameTimeout = timeoutOr(cfg.FrameTimeout, DefaultFrameTimeout)
	a.idleTimeout = timeoutOr(cfg.IdleTimeout, DefaultIdleTimeout)
	switch {
	case a.leeway == 0:
		a.leeway = DefaultLeeway
	case a.leeway < 0:
		a.leeway = 0
	}
	if a.maxMsg == 0 {
		a.maxMsg = DefaultMaxMessageSize
	}
	if a.maxResp == 0 {
		a.maxResp = DefaultMaxResponseSize
	}
	if a.maxMsg < 0 || a.maxResp < 0 {
		return nil, configError("negative size limit")
	}
	maxNonces, life := cfg.MaxNonces, cfg.NonceLifetime
	if maxNonces == 0 {
		maxNonces = DefaultMaxNonces
	}
	if life == 0 {
		life = DefaultNonceLifetime
	}
	if maxNonces < 0 || maxNonces > MaxMaxNonces || life < 0 {
		return nil, configError("nonces: %d outstanding (want 1..%d), lifetime %v", maxNonces, MaxMaxNonces, life)
	}
	switch a.nonceQuota = cfg.NonceQuota; {
	case a.nonceQuota == 0:
		a.nonceQuota = DefaultNonceQuota
	case a.nonceQuota < 0:
		return nil, configError("negative NonceQuota")
	}
	a.nonceQuota = min(a.nonceQuota, maxNonces)
	rnd := cfg.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	a.nonces = newNonceStore(maxNonces, life, rnd)
	if cfg.TokenCacheSize < 0 || cfg.TokenCacheSize > MaxTokenCacheSize {
		return nil, configError("token cache size %d, want 0..%d", cfg.TokenCacheSize, MaxTokenCacheSize)
	}
	if v, ok := cfg.Anchors.(trust.Versioned); ok {
		a.anchorsVer = v
		a.cache = newTokenCache(cfg.TokenCacheSize)
	}
	if a.signer != nil {
		if _, err := token.AlgorithmFor(a.signer.Public()); err != nil {
			return nil, configError("signing key: %w", err)
		}
	}
	maxRev := cfg.MaxRevocations
	if maxRev == 0 {
		maxRev = DefaultMaxRevocations
	}
	if maxRev < 0 || maxRev > MaxMaxRevocations {
		return nil, configError("MaxRevocations %d, want 0..%d", maxRev, MaxMaxRevocations)
	}
	state := cfg.State
	if state == nil {
		state = &MemoryState{}
	}
	var err error
	if a.clock, err = newClockPolicy(cfg.ClockMode, a.mono, a.leeway, cfg.MinTime, state); err != nil {
		return nil, err
	}
	if a.revocations, err = loadRevocations(maxRev, state); err != nil {
		return nil, err
	}
	if a.status, err = loadStatus(state); err != nil {
		return nil, err
	}
	a.revoke = HandlerFunc(a.revokeHandler)
	return a, nil
}

// timeoutOr returns d, def when d is zero, and zero (none) when d is
// negative.
func timeoutOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Process answers one request (the bytes of a technician -> device
// envelope) with the bytes of a response. It is the transport-agnostic core
// of the agent: it always returns a well-formed response (docs/PROTOCOL.md section 3) and never
// panics. See [Agent.Handle] for the decision behind the response.
func (a *Agent) Process(ctx context.Context, request []byte) []byte {
	resp, _ := a.Handle(ctx, request)
	return resp
}

// Handle is [Agent.Process] returning also the [Outcome]: what was asked,
// the status answered and, for a rejection, the check that failed and the
// typed reason. The decision has already been logged and passed to
// Config.OnOutcome.
//
// Process and Handle cannot tell who sent a request: all their requests
// come from one source, with the device-wide throttle and no nonce quota
// but Config.MaxNonces. [Agent.Serve] and [Agent.ServeListener] tell
// connections apart.
func (a *Agent) Handle(ctx context.Context, request []byte) (resp []byte, d Outcome) {
	return a.handle(ctx, request, nil)
}

// handle is Handle for a request from src (nil: the shared source).
func (a *Agent) handle(ctx context.Context, request []byte, src *source) (resp []byte, d Outcome) {
	if src != nil {
		d.Remote = src.remote
	}
	defer func() {
		if r := recover(); r != nil {
			typ := uint64(wire.TypeErrorResponse)
			switch d.Request {
			case RequestNonce:
				typ = wire.TypeNonceResponse
			case RequestOperation:
				typ = wire.TypeOperationResponse
			}
			d.Status, d.Check, d.Err = token.StatusInternalError, CheckInternal, fmt.Errorf("%w: panic: %v", ErrInternal, r)
			d.NextNonce = 0
			r := wire.Response{Type: typ, Status: token.StatusInternalError}
			if typ != wire.TypeErrorResponse {
				a.addSequences(&r)
			}
			resp = r.Encode()
		}
		a.record(ctx, &d)
	}()
	if limit := a.MaxRequestSize(); len(request) > limit {
		return a.tooLarge(&d, len(request), limit), d
	}
	// Signed and Status alias request: token.ParseRequest and
	// token.ParseStatus copy what the agent keeps.
	msg, err := wire.DecodeMessageView(request)
	if err == nil && msg.Status != nil && !a.statusUpdates {
		// [3, bundle, status update] is for devices that take status
		// updates (v2); this one refuses it as the reference refuses any
		// third element.
		err = fmt.Errorf("%w: operation request with a third element", wire.ErrMalformed)
	}
	if n := len(request); a.statusUpdates && n > a.maxMsg {
		// Only a status update may take a request beyond MaxMessageSize:
		// without it, the request must fit.
		if msg.Status != nil {
			n -= len(codec.AppendHead(nil, 2, uint64(len(msg.Status)))) + len(msg.Status)
		}
		if n > a.maxMsg {
			return a.tooLarge(&d, n, a.maxMsg), d
		}
	}
	if err != nil {
		d.Status, d.Check = token.StatusInvalidRequest, CheckEnvelope
		d.Err = fmt.Errorf("%w: envelope: %v", token.ErrMalformed, err)
		typ := uint64(wire.TypeErrorResponse)
		r := wire.Response{Type: typ, Status: token.StatusInvalidRequest}
		if msg.Type == wire.TypeOperationRequest {
			// It starts as one ([3, ...]): the reference device answers
			// with an operation response.
			d.Request, r.Type = RequestOperation, wire.TypeOperationResponse
			a.addSequences(&r)
		}
		return r.Encode(), d
	}
	if msg.Type == wire.TypeNonceRequest {
		d.Request = RequestNonce
		r := a.nonceRequest(&d, src)
		a.addSequences(&r)
		return r.Encode(), d
	}
	d.Request = RequestOperation
	if msg.Status != nil {
		// The update first (docs/PROTOCOL.md section 12): it may revoke
		// the request's token or raise the lower bound of time.
		d.Update = a.installStatus(ctx, msg.Status)
	}
	r := a.operation(ctx, msg.Signed, &d)
	now := a.mono()
	if costlyFailure(&d) || forgedUpdate(&d.Update) {
		a.throttle.fail(src, now)
	}
	// An authentic and fresh request (its nonce consumed) gets a next
	// nonce (v2) whatever the outcome.
	if a.nextNonce && d.Operation != "" && d.Check != CheckNonce && !a.throttle.blocked(src, now) {
		if n, err := a.nonces.issue(now, src); err == nil {
			d.NextNonce = n
		}
	}
	return a.finish(&r, &d), d
}

// MaxRequestSize returns the largest request the agent accepts:
// Config.MaxMessageSize, or with Config.StatusUpdates that plus
// token.MaxStatusUpdateSize and the 3 bytes of the update's byte string
// head. Transports given a MaxMessageSize of their own must allow at least
// this much (their default, transport.DefaultMaxMessageSize, does).
func (a *Agent) MaxRequestSize() int {
	if a.statusUpdates {
		return a.maxMsg + token.MaxStatusUpdateSize + statusEnvelopeOverhead
	}
	return a.maxMsg
}

// tooLarge records the refusal of a request of n bytes beyond limit and
// returns the response for it.
func (a *Agent) tooLarge(d *Outcome, n, limit int) []byte {
	d.Status, d.Check = token.StatusInvalidRequest, CheckSize
	d.Err = fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, limit)
	return wire.Response{Type: wire.TypeErrorResponse, Status: token.StatusInvalidRequest}.Encode()
}

// addSequences adds response key 7 (v2) to a nonce or operation response
// of a device that takes status updates.
func (a *Agent) addSequences(r *wire.Response) {
	if a.statusUpdates {
		r.HasSequences, r.Sequences = true, a.status.sequences()
	}
}

// costlyFailure reports whether d is a verification failure that cost the
// device a signature verification, the failures that count toward
// throttling: status 4 from the token signature check on, that is, for a
// token naming an issuer the device trusts, unless no anchor of the issuer
// pins the token's algorithm (then nothing was verified). Every refusal of
// a delegation chain counts: the token's signature was verified before
// (or its verification cached), and a forged link cost one more. Failures
// before (an unknown issuer, a malformed request or chain) cost nothing.
func costlyFailure(d *Outcome) bool {
	return d.Status == token.StatusVerificationError && d.Check >= CheckTokenSignature &&
		!(d.Check == CheckTokenSignature && errors.Is(d.Err, token.ErrAlgorithmMismatch))
}

func (a *Agent) nonceRequest(d *Outcome, src *source) wire.Response {
	r := wire.Response{Type: wire.TypeNonceResponse}
	now := a.mono()
	if a.throttle.blocked(src, now) {
		d.Status, d.Check, d.Err = token.StatusBusy, CheckNonceIssue, ErrThrottled
		r.Status = token.StatusBusy
		return r
	}
	n, err := a.nonces.issue(now, src)
	if err != nil {
		d.Status, d.Check, d.Err = token.StatusBusy, CheckNonceIssue, err
		if errors.Is(err, ErrInternal) {
			d.Status = token.StatusInternalError
		}
		r.Status = d.Status
		return r
	}
	d.Status, d.Nonce = token.StatusSuccess, n
	r.Status, r.Nonce = token.StatusSuccess, n
	return r
}

// reject records a failed check in d and returns the response for it.
func reject(d *Outcome, st token.Status, c Check, err error) wire.Response {
	d.Status, d.Check, d.Err = st, c, err
	return wire.Response{Type: wire.TypeOperationResponse, Status: st}
}

// operation runs the verification pipeline in the mandatory order (see
// the package documentation) and then the handler.
func (a *Agent) operation(ctx context.Context, signed []byte, d *Outcome) wire.Response {
	sr, err := token.ParseRequest(signed)
	if err != nil {
		return reject(d, token.StatusInvalidRequest, CheckParse, err)
	}
	// The bundle's delegation chain (v2), parsed strictly with the bundle
	// (nil when none).
	chain := sr.Chain()
	d.Nonce = sr.UnverifiedNonce()
	tokBytes := sr.UnverifiedToken()
	// The SHA-256 of the token bytes, computed when needed: by the token
	// cache, and by the revocation check when the list holds hashes.
	var hash [32]byte
	haveHash := false
	th := func() *[32]byte {
		if !haveHash {
			hash, haveHash = sha256.Sum256(tokBytes), true
		}
		return &hash
	}
	now, known := a.clock.now()
	anchorNow := now // zero when unknown: the anchor window cannot be checked

	var claims *token.Claims
	var anchor trust.Anchor
	var version uint64
	var tok *token.Token // nil when the token comes from the cache
	var revHash [32]byte // token.RevocationHash, once computed
	haveRevHash := false
	var cached *cacheEntry
	if a.cache != nil {
		version = a.anchorsVer.Version()
		cached = a.cache.get(th(), version, now)
	}
	if e := cached; e != nil {
		claims, anchor, revHash, haveRevHash = e.claims, e.anchor, e.revocationHash, true
		d.CachedToken = true
		d.Issuer, d.Subject, d.TokenID = claims.Issuer, claims.Subject, claims.ID
		if err := anchor.ValidAt(anchorNow); err != nil {
			return reject(d, token.StatusVerificationError, CheckAnchorConstraints, err)
		}
	} else {
		if tok, err = token.Parse(tokBytes); err != nil {
			return reject(d, token.StatusInvalidRequest, CheckParse, err)
		}
		d.Issuer = tok.UnverifiedIssuer()
		anchors, err := trust.LookupToken(a.anchors, tok)
		if err != nil {
			return reject(d, token.StatusVerificationError, CheckAnchor, err)
		}
		if claims, anchor, err = verifyToken(tok, anchors); err != nil {
			return reject(d, token.StatusVerificationError, CheckTokenSignature, err)
		}
		d.Subject, d.TokenID = claims.Subject, claims.ID
		if a.rejectV1 && claims.Profile == token.ProfileV1 {
			return reject(d, token.StatusVerificationError, CheckProfile, ErrProfile)
		}
		if err := anchor.Check(claims, anchorNow); err != nil {
			return reject(d, token.StatusVerificationError, CheckAnchorConstraints, err)
		}
		if a.cache != nil && a.audienceOK(claims) {
			revHash, haveRevHash = tok.RevocationHash(), true
			a.cache.put(th(), &cacheEntry{claims: claims, anchor: anchor, revocationHash: revHash, version: version, expires: claims.Expiry.Add(a.leeway)})
		}
	}
	// eff are the claims the request is checked against from here on: the
	// token's, or a delegated request's effective claims at the end of its
	// chain (key, scope, audience, exp, nbf). Issuer, subject, id and
	// issue time stay the token's: revocation, freshness and the lower
	// bound of time go by the token the issuer signed.
	eff := claims
	var vc *token.VerifiedChain
	if chain != nil {
		if !haveRevHash {
			revHash, haveRevHash = tok.RevocationHash(), true
		}
		if vc, err = chain.Verify(claims, revHash); err != nil {
			return reject(d, token.StatusVerificationError, CheckDelegation, err)
		}
		eff = vc.Claims
		d.tokenKey, d.Chain = claims.Key, chainLinks(vc.Links)
	}
	if !a.audienceOK(eff) {
		return reject(d, token.StatusVerificationError, CheckAudience, token.ErrWrongAudience)
	}
	if err := a.clock.check(eff, now, known); err != nil {
		return reject(d, token.StatusVerificationError, CheckTime, err)
	}
	d.TimeUnknown = !known
	req, err := sr.Verify(eff.Key)
	if err != nil {
		return reject(d, token.StatusVerificationError, CheckProofOfPossession, err)
	}
	d.Operation = req.Operation.Name
	if err := a.nonces.consume(req.Nonce, a.mono()); err != nil {
		return reject(d, token.StatusVerificationError, CheckNonce, err)
	}
	// The request is authentic and fresh. From here on the technician gets
	// a next nonce (v2, see handle) and a signed response (v2) whatever the
	// outcome.
	rh := func() *[32]byte {
		if !haveRevHash {
			revHash, haveRevHash = tok.RevocationHash(), true
		}
		return &revHash
	}
	var links []token.Link
	if vc != nil {
		links = vc.Links
	}
	if err := a.checkRevoked(claims, &anchor, tokBytes, th, rh, links); err != nil {
		return reject(d, token.StatusVerificationError, CheckRevocation, err)
	}
	h, opFresh := a.revoke, Freshness{}
	if req.Operation.Name != RevokeOperation {
		h, opFresh = a.ops.lookup(req.Operation.Name)
	}
	if err := a.checkFreshness(claims, req.Nonce, opFresh, rh, vc != nil); err != nil {
		return reject(d, token.StatusVerificationError, CheckFreshness, err)
	}
	// Only a token that is not revoked counts as verified: a revoked one
	// (say, issued by a clock running ahead) must not move the bound.
	if err := a.clock.observe(claims, now); err != nil && a.log != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "sda: persisting the time lower bound failed", slog.String("error", err.Error()))
	}
	if vc != nil {
		err = vc.Check(req.Operation) // the token's scope and every link's
	} else {
		err = claims.Scope.Check(req.Operation)
	}
	if err != nil {
		return reject(d, token.StatusAccessDenied, CheckScope, err)
	}
	if h == nil {
		return reject(d, token.StatusGeneralError, CheckOperation, fmt.Errorf("%w: %q", ErrUnknownOperation, req.Operation.Name))
	}
	call := &Call{
		Operation: req.Operation, Issuer: claims.Issuer, Subject: claims.Subject, TokenID: bytes.Clone(claims.ID),
		Scope: eff.Scope, Profile: claims.Profile, Device: a.identity, Nonce: req.Nonce, Chain: slices.Clone(d.Chain),
	}
	data, panicked, err := runHandler(ctx, h, call)
	switch {
	case panicked:
		return reject(d, token.StatusInternalError, CheckOperation, err)
	case err != nil:
		return reject(d, token.StatusOperationFailed, CheckOperation, fmt.Errorf("%w: %w", ErrOperationFailed, err))
	}
	d.Status = token.StatusSuccess
	if data == nil {
		data = []byte{}
	}
	return wire.Response{Type: wire.TypeOperationResponse, Status: token.StatusSuccess, Data: data}
}

// checkRevoked is the revocation check (step 11) of a verified token:
// the device's revocation list, looked up by the token's id and, when the
// list holds hashes, the hashes of tokenHashes and the hashes of links,
// the verified delegation chain of the request (nil when none), and the
// status update installed from the token's issuer. tokBytes and th are
// the token as received and its SHA-256, computed on demand, anchor the
// anchor that verified it, rh its revocation hash, computed on demand. A revoked token revokes
// every chain below it; a revoked link every link below it.
func (a *Agent) checkRevoked(claims *token.Claims, anchor *trust.Anchor, tokBytes []byte, th, rh func() *[32]byte, links []token.Link) error {
	var hashes [maxTokenHashes][32]byte
	var hs [][32]byte
	holdsHashes := a.revocations.holdsHashes()
	if holdsHashes {
		hs = tokenHashes(hashes[:0], rh(), th(), tokBytes, anchor.Key)
	}
	if err := a.revocations.revoked(claims.ID, hs); err != nil {
		return err
	}
	if holdsHashes && len(links) > 0 {
		if err := a.revocations.revokedLinks(links); err != nil {
			return err
		}
	}
	return a.statusRevoked(claims, anchor, rh, links)
}

// verifyToken verifies tok with the first anchor whose key verifies it.
// Anchors whose key pins another algorithm than the token's are not tried;
// when none is left the error matches token.ErrAlgorithmMismatch.
//
// An ECDSA key pins the algorithm of its curve when it is a point of the
// curve (trust.Anchor.PinnedAlgorithm). Checking that costs about 1% of a
// verification, which checks it again: so an anchor is tried when its
// curve is the token's, and only when the verification fails is the point
// checked, an anchor whose key is not a point of its curve being then
// passed over as one that pins no algorithm.
func verifyToken(tok *token.Token, anchors []trust.Anchor) (*token.Claims, trust.Anchor, error) {
	var firstErr error
	for i := range anchors {
		alg := curveAlgorithm(anchors[i].Key)
		if alg == 0 {
			alg = anchors[i].PinnedAlgorithm()
		}
		if alg != tok.Algorithm() {
			continue
		}
		c, err := tok.Verify(anchors[i].Key)
		if err == nil {
			return c, anchors[i], nil
		}
		if alg = anchors[i].PinnedAlgorithm(); alg != tok.Algorithm() {
			continue // not a point of its curve
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: token signed with %v, no anchor of the issuer pins it", token.ErrAlgorithmMismatch, tok.Algorithm())
	}
	return nil, trust.Anchor{}, firstErr
}

// curveAlgorithm returns the algorithm of an ECDSA key's curve, without
// checking the point; 0 for other keys and for an ECDSA key without a
// point or on another curve.
func curveAlgorithm(pub crypto.PublicKey) token.Algorithm {
	k, ok := pub.(*ecdsa.PublicKey)
	//lint:ignore SA1019 only reading the coordinates to reject a key without them
	if !ok || k == nil || k.X == nil || k.Y == nil {
		return 0
	}
	switch k.Curve {
	case elliptic.P256():
		return token.AlgES256
	case elliptic.P384():
		return token.AlgES384
	}
	return 0
}

func (a *Agent) audienceOK(c *token.Claims) bool {
	for _, aud := range c.Audience {
		if a.identity.Matches(aud) {
			return true
		}
	}
	return false
}

// finish adds the v2 extras to an operation response, enforces the response
// size limit and encodes it.
func (a *Agent) finish(r *wire.Response, d *Outcome) []byte {
	r.NextNonce = d.NextNonce
	a.addSequences(r)
	// Responses are signed only once the proof of possession verified:
	// the device does not sign for unauthenticated requesters.
	sign := a.signer != nil && d.Operation != ""
	build := func() ([]byte, error) {
		if sign {
			s, err := token.SignResponse(&token.DeviceResponse{Status: uint32(r.Status), Data: r.Data, Nonce: d.Nonce, Device: a.identity}, a.signer, nil)
			if err != nil {
				return nil, err
			}
			r.Signed = s
		}
		return r.Encode(), nil
	}
	out, err := build()
	if err == nil && len(out) <= a.maxResp {
		return out
	}
	if err != nil {
		d.Status, d.Check, d.Err = token.StatusInternalError, CheckResponse, fmt.Errorf("%w: signing the response: %v", ErrInternal, err)
		sign = false
	} else {
		d.Status, d.Check, d.Err = token.StatusResponseTooSmall, CheckResponse, fmt.Errorf("%w: %d bytes, limit %d", ErrResponseTooLarge, len(out), a.maxResp)
	}
	r.Status, r.Data, r.Signed = d.Status, nil, nil
	if out, err = build(); err != nil {
		r.Signed = nil
		out = r.Encode()
	}
	return out
}
