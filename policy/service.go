package policy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Service is the authorization service: it authenticates callers, decides
// token requests with the policies of its [Store] and mints tokens signed
// by the trust anchor key. It serves HTTP, the public endpoints
// ([Service.PublicHandler]) and the administration API
// ([Service.AdminHandler]) apart or together ([Service.ServeHTTP]), and
// can be used directly through [Service.Issue].
//
// Fill in the fields, then use the Service; do not change them afterwards.
// A Service is safe for concurrent use.
type Service struct {
	// Store holds policies, directories and API keys. Required.
	Store Store
	// Signer is the trust anchor's private key. Required. Its type decides
	// the algorithm; the v1 profile needs a P-256 key.
	Signer crypto.Signer
	// Profile selects the token format: token.ProfileV1 (the zero value,
	// compatible with deployed SDA devices) or token.ProfileV2.
	Profile token.Profile
	// KeyID, in the v2 profile, is put in the token's kid header.
	KeyID []byte
	// Issuer is the token's iss; empty means token.AnchorName of the
	// Signer's public key, which is what SDA v1 devices look up.
	Issuer string
	// AnchorDescription and AnchorCreatedAt are published by
	// GET /v3/trust-anchors.
	AnchorDescription string
	AnchorCreatedAt   time.Time
	// Authenticator authenticates HTTP callers; nil means bearer API keys
	// looked up in the Store (see [NewAPIKey]).
	Authenticator Authenticator
	// Logger receives one audit event per token request (issued or
	// denied) and per administrative write; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for token ids and signatures; nil means crypto/rand.
	Rand io.Reader
	// Ledger records every issued token before the token is returned
	// (docs/PROTOCOL.md section 12). Nil means the Store, which must then
	// implement [Ledger] (MemoryStore, FileStore and package sqlstore's
	// Store do): otherwise no token is issued, with an error matching
	// [ErrConfig] and [ErrUnavailable].
	Ledger Ledger
	// MaxIssued bounds the records the Ledger holds; zero means
	// [DefaultMaxIssued]. At the bound, once expired records are pruned,
	// issuance fails with [ErrLedgerFull] (HTTP 503).
	MaxIssued int
	// MaxStaleness bounds how old the service's view of the Store may be
	// when it decides. Zero means the Store is asked for new changes (one
	// cheap query) before every decision, so that changes made through
	// other instances take effect at once; decisions arriving while one
	// such query is in flight share the next.
	MaxStaleness time.Duration
	// RateLimit limits the token endpoint per client address and per API
	// key (HTTP 429); nil means no limit.
	RateLimit *RateLimit

	serving servingState // ratelimit.go, probes.go

	// Metrics, if set, receives the service's measurements (see
	// [Metrics]; package policyprom exports them to Prometheus). Nil
	// costs nothing.
	Metrics Metrics

	issOnce sync.Once
	iss     string
	anchor  string // hex key id of the anchor key: KeyID, else the key's COSE Key Thumbprint
	issErr  error

	httpOnce sync.Once
	http     *serviceHandlers
	cnfKeys  cnfKeyCache // tokenreqkeys.go

	syncMu sync.Mutex
	// syncStarts counts the reads of the Store that sync started; it
	// changes under syncMu. syncedFrom (under syncMu) is the number of the
	// last one that succeeded: a caller that arrived when syncStarts was
	// n is up to date once syncedFrom > n (synccoalesce.go).
	syncStarts atomic.Uint64
	syncedFrom uint64
	engine     Engine
	seq        int64
	hist       changeHistory // history.go
	loaded     bool
	lastSync   time.Time
	// monotonic is the clock MaxStaleness is measured on; nil means
	// time.Now. Tests set it.
	monotonic func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// issuer returns the iss claim: Issuer, or the anchor name of the Signer's
// key, computed once (the fields are frozen after first use).
func (s *Service) issuer() (string, error) {
	s.issOnce.Do(func() {
		s.iss = s.Issuer
		if s.iss == "" {
			var err error
			if s.iss, err = token.AnchorName(s.Signer.Public()); err != nil {
				s.issErr = fmt.Errorf("%w: anchor name: %v", ErrUnavailable, err)
				return
			}
		}
		kid := s.KeyID
		if len(kid) == 0 {
			var err error
			if kid, err = token.Thumbprint(s.Signer.Public()); err != nil {
				s.issErr = fmt.Errorf("%w: anchor key thumbprint: %v", ErrUnavailable, err)
				return
			}
		}
		s.anchor = hex.EncodeToString(kid)
	})
	return s.iss, s.issErr
}

// anchorKeyID returns the hex key id of the anchor key, which the ledger
// and anchor cut-offs name it by.
func (s *Service) anchorKeyID() (string, error) {
	_, err := s.issuer()
	return s.anchor, err
}

// ledger returns the Ledger: the Ledger field, else the Store if it is one.
func (s *Service) ledger() (Ledger, error) {
	if s.Ledger != nil {
		return s.Ledger, nil
	}
	if l, ok := s.Store.(Ledger); ok {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %w: the store keeps no ledger of issued tokens and Service.Ledger is nil", ErrUnavailable, ErrConfig)
}

func (s *Service) maxIssued() int {
	if s.MaxIssued > 0 {
		return s.MaxIssued
	}
	return DefaultMaxIssued
}

// ErrUnavailable reports that the service cannot reach its store or sign;
// nothing was issued or written, and the same request may succeed later.
// A write whose outcome is unknown is reported with [ErrOutcomeUnknown]
// instead.
var ErrUnavailable = errors.New("policy: service unavailable")

// sync brings the engine up to date with the store, at most MaxStaleness
// old: with what the Store had committed when the caller called it
// (synccoalesce.go).
func (s *Service) sync(ctx context.Context) error {
	return s.syncAfter(ctx, s.syncMark())
}

// syncAfter is sync for a caller that arrived at mark (see syncMark).
func (s *Service) syncAfter(ctx context.Context, mark uint64) error {
	if s.Store == nil {
		return fmt.Errorf("%w: no store configured", ErrUnavailable)
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	now := time.Now() // staleness is measured on the local monotonic clock
	if s.monotonic != nil {
		now = s.monotonic()
	}
	if s.loaded && s.MaxStaleness > 0 && now.Sub(s.lastSync) < s.MaxStaleness {
		return nil
	}
	if s.loaded && s.syncedFrom > mark {
		// A read of the Store that started after the caller arrived has
		// succeeded: it saw everything committed before the caller came.
		return nil
	}
	started := s.syncStarts.Add(1)
	if err := s.syncLocked(ctx, now); err != nil {
		return err
	}
	s.syncedFrom = started
	return nil
}

// syncLocked reads the Store's changes, or a snapshot, into the engine.
// The caller holds syncMu.
func (s *Service) syncLocked(ctx context.Context, now time.Time) error {
	if s.loaded {
		start := s.metricsStart()
		changes, err := s.Store.Changes(ctx, s.seq)
		s.storeOp(StoreChanges, start, ignoreTruncated(err))
		reason := SnapshotTruncated
		switch {
		case err == nil:
			// The engine checks uniqueness change by change, while a store
			// may move a unique name within one batch, and a store that
			// keeps only the latest version of each record returns the
			// changes of several batches collapsed. When the engine
			// rejects the changes (unchanged: Apply is all or nothing),
			// load a snapshot instead of failing until restart.
			if len(changes) == 0 {
				s.lastSync = now
				return nil
			}
			if undo, err := s.engine.applyRecording(changes); err == nil {
				s.hist.record(changes, undo)
				s.seq = changes[len(changes)-1].Seq
				s.lastSync = now
				if s.Metrics != nil {
					s.Metrics.ChangesApplied(len(changes))
				}
				return nil
			}
			reason = SnapshotRejected
		case !errors.Is(err, ErrChangesTruncated):
			return fmt.Errorf("%w: store: %v", ErrUnavailable, err)
		}
		return s.loadSnapshot(ctx, now, reason)
	}
	return s.loadSnapshot(ctx, now, SnapshotInitial)
}

// loadSnapshot replaces the engine's content with a snapshot of the
// Store, read at now for the given reason. The caller holds syncMu.
func (s *Service) loadSnapshot(ctx context.Context, now time.Time, reason SnapshotReason) error {
	start := s.metricsStart()
	snap, err := s.Store.Snapshot(ctx)
	s.storeOp(StoreSnapshot, start, err)
	if err != nil {
		return fmt.Errorf("%w: store: %v", ErrUnavailable, err)
	}
	if err := s.engine.Load(snap); err != nil {
		return fmt.Errorf("%w: loading store: %v", ErrUnavailable, err)
	}
	s.seq, s.loaded, s.lastSync = snap.Seq, true, now
	s.hist.reset(snap.Seq)
	if s.Metrics != nil {
		s.Metrics.SnapshotLoaded(reason)
	}
	return nil
}

// ignoreTruncated returns err, or nil for [ErrChangesTruncated], which
// asks for a snapshot rather than reports a failure.
func ignoreTruncated(err error) error {
	if errors.Is(err, ErrChangesTruncated) {
		return nil
	}
	return err
}

// Sync brings the service's in-memory view up to date with its Store
// now, regardless of MaxStaleness.
func (s *Service) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	s.lastSync = time.Time{}
	s.syncMu.Unlock()
	return s.sync(ctx)
}

// Apply writes changes to the Store and then brings the service's view up
// to date, so that the caller's next decision sees them. An error means
// the Store did not commit the changes, except [ErrOutcomeUnknown]: it
// matches [ErrInvalid] or [ErrConflict] when the changes were refused, and
// [ErrUnavailable] when the Store could not write them, whatever error the
// Store returned. Once the Store has committed, Apply returns nil even if
// reading the changes back fails: the failure is logged, and the service
// reads the Store again before its next decision (which fails with
// [ErrUnavailable] while the Store cannot be read).
func (s *Service) Apply(ctx context.Context, changes ...Change) error {
	if s.Store == nil {
		return fmt.Errorf("%w: no store configured", ErrUnavailable)
	}
	start := s.metricsStart()
	_, err := s.Store.Apply(ctx, changes...)
	s.storeOp(StoreApply, start, err)
	if err != nil {
		return writeError(err)
	}
	if err := s.Sync(ctx); err != nil {
		s.logger().LogAttrs(ctx, slog.LevelWarn, "sda.store.sync_failed",
			slog.String("after", "apply"), slog.String("error", err.Error()))
	}
	return nil
}

// writeError maps an error of [Store.Apply]. An error about the request, or
// one that says the outcome is unknown, is returned as it is; any other
// means that the Store could not write (it did not commit: see [Store]),
// and matches ErrUnavailable.
func writeError(err error) error {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrUnavailable):
		return err
	}
	return fmt.Errorf("%w: store: %w", ErrUnavailable, err)
}

// IssuedToken is a minted access token.
type IssuedToken struct {
	// Token is the encoded token, 61(18(COSE_Sign1)).
	Token []byte
	// Claims are the claims it carries.
	Claims *token.Claims
	// Decision is the decision it rests on.
	Decision *Decision
}

// Issue decides req for subject (already authenticated) and, when every
// requested (device, operation) pair is allowed, returns a signed token.
// A denial is an error matching [ErrDenied] (a *[DeniedError]); a malformed
// request matches [ErrInvalid] (a *[ValidationError] naming the JSON fields
// of the HTTP request). Every outcome is logged as an audit event.
func (s *Service) Issue(ctx context.Context, subject string, req *token.AccessRequest) (*IssuedToken, error) {
	return s.issue(ctx, subject, req, 0, "")
}

// issue is Issue; cnfAlg is the algorithm of req.Key when it was found by
// token.AlgorithmFor for this very key (by the cache of cnf keys), else 0.
func (s *Service) issue(ctx context.Context, subject string, req *token.AccessRequest, cnfAlg token.Algorithm, requestID string) (tok *IssuedToken, err error) {
	now := s.now()
	var dec *Decision
	defer func() {
		s.audit(ctx, subject, req, tok, dec, err, requestID)
		s.tokenOutcome(err)
	}()

	var f fieldErrs
	// The scope is decided in its text form, as the HTTP API receives it:
	// the names separated by single spaces (a name with a space in it is
	// refused, not split).
	scope, serr := token.ParseScope(strings.Join(req.Scope, " "))
	if serr == nil && slices.ContainsFunc(req.Scope, func(n string) bool { return strings.Contains(n, " ") }) {
		serr = errors.New("an operation name with a space")
	}
	switch {
	case serr != nil:
		f.add("scope", "1 to %d operation names separated by single spaces, each matching ^[A-Za-z][A-Za-z0-9-]*$ and at most %d characters", token.MaxScopeItems, token.MaxNameLength)
	case s.Profile == token.ProfileV1 && v1ScopeLength(scope.Names()) < token.MinV1ScopeLength:
		f.add("scope", "a v1 token cannot carry a scope of one character: deployed devices refuse it")
	}
	if len(req.Audience) == 0 || len(req.Audience) > token.MaxAudiences {
		f.add("aud", "1 to %d entries", token.MaxAudiences)
	} else {
		for i, a := range req.Audience {
			if validateAudience(a) != nil {
				f.add(fmt.Sprintf("aud[%d]", i), "a prefix (ep:, id:, endpoint-name:, device-id:) and a device identity of at most %d characters of [A-Za-z0-9+/= -]", token.MaxAudienceValueLength)
			}
		}
	}
	if err := s.checkCnf(req.Key, cnfAlg); err != nil {
		f.add("cnf", "%v", err)
	}
	switch {
	case req.CNonce == nil:
	case s.Profile == token.ProfileV1:
		f.add("cnonce", "a v1 token carries no cnonce")
	case len(req.CNonce) == 0 || len(req.CNonce) > token.MaxCNonceLength:
		f.add("cnonce", "1 to %d bytes", token.MaxCNonceLength)
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	if s.Signer == nil {
		return nil, fmt.Errorf("%w: no signing key configured", ErrUnavailable)
	}
	ledger, err := s.ledger()
	if err != nil {
		return nil, err
	}
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	start := s.metricsStart()
	dec, err = s.engine.Decide(&Request{
		Subject:    subject,
		Audience:   req.Audience,
		Operations: scope.Names(),
		Time:       now,
		Structured: s.Profile != token.ProfileV1,
	})
	if s.Metrics != nil {
		s.Metrics.Decision(time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	if err := dec.Err(); err != nil {
		return nil, err
	}
	claims, err := s.claims(subject, req, dec, now)
	if err != nil {
		return nil, err
	}
	start = s.metricsStart()
	b, rh, err := token.IssueWithRevocationHash(claims, s.Signer, &token.IssueOptions{Profile: s.Profile, KeyID: s.KeyID, Rand: s.Rand})
	if s.Metrics != nil {
		s.Metrics.Signing(time.Since(start))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: signing: %v", ErrUnavailable, err)
	}
	// The owner must see every token handed out: the record is committed
	// before the token leaves, or the token is dropped.
	rec, err := s.issuedRecord(b, rh, claims)
	if err != nil {
		return nil, err
	}
	start = s.metricsStart()
	err = ledger.RecordIssued(ctx, rec, now, s.maxIssued())
	s.storeOp(StoreRecordIssued, start, err)
	if err != nil {
		return nil, ledgerError(err)
	}
	return &IssuedToken{Token: b, Claims: claims, Decision: dec}, nil
}

// issuedRecord returns the ledger's record of the token b with claims and
// revocation hash rh.
func (s *Service) issuedRecord(b []byte, rh [32]byte, claims *token.Claims) (*IssuedRecord, error) {
	kid, err := s.anchorKeyID()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return &IssuedRecord{
		TokenID:        hex.EncodeToString(claims.ID),
		TokenHash:      hex.EncodeToString(sum[:]),
		RevocationHash: hex.EncodeToString(rh[:]),
		Subject:        claims.Subject,
		Audience:       slices.Clone(claims.Audience),
		Scope:          claims.Scope.Names(),
		Issuer:         claims.Issuer,
		AnchorKeyID:    kid,
		IssuedAt:       claims.IssuedAt,
		Expiry:         claims.Expiry,
	}, nil
}

// ledgerError maps an error of the Ledger: whatever it is, the token was
// not recorded, so it is not issued, and the caller may try again later.
func ledgerError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: ledger: %w", ErrUnavailable, err)
}

// v1ScopeLength returns the length of the text scope a v1 token granting
// names carries: the distinct names separated by single spaces.
func v1ScopeLength(names []string) int {
	n := -1
	for i, name := range names {
		if !contains(names[:i], name) {
			n += 1 + len(name)
		}
	}
	return n
}

// checkCnf checks that the proof-of-possession key is a valid key that the
// configured profile can carry. token.AlgorithmFor refuses invalid points
// and degenerate keys; alg, when not 0, is its result for this key, found
// by the cache of cnf keys when it kept the key (which is never modified),
// and the key is not checked again.
func (s *Service) checkCnf(key crypto.PublicKey, alg token.Algorithm) error {
	if key == nil {
		return errors.New("a public key is required")
	}
	if alg == 0 {
		var err error
		if alg, err = token.AlgorithmFor(key); err != nil {
			return cnfKeyError(err)
		}
	}
	if s.Profile == token.ProfileV1 && alg != token.AlgES256 {
		return errors.New("the v1 profile needs an ECDSA P-256 key")
	}
	return nil
}

// cnfKeyError describes, for the caller, why a cnf key was refused.
func cnfKeyError(err error) error {
	if errors.Is(err, token.ErrWeakKey) {
		return errors.New("a degenerate public key (an Ed25519 point of small order, or non-canonical), with which signatures verify without a private key")
	}
	return errors.New("unsupported or invalid public key")
}

func (s *Service) claims(subject string, req *token.AccessRequest, dec *Decision, now time.Time) (*token.Claims, error) {
	perms := make([]token.Permission, 0, len(dec.Grants))
	for _, g := range dec.Grants {
		if g.Alternatives == nil {
			perms = append(perms, token.Permission{Operation: g.Operation})
			continue
		}
		for _, alt := range g.Alternatives {
			p := token.Permission{Operation: g.Operation, Constraints: make([]token.Constraint, len(alt))}
			for i, c := range alt {
				p.Constraints[i] = c.token()
			}
			perms = append(perms, p)
		}
	}
	scope, err := token.NewScope(perms...)
	if err != nil {
		return nil, fmt.Errorf("%w: building scope: %v", ErrUnavailable, err)
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if err := readRand(s.Rand, id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Distinct audiences in request order.
	aud := make([]string, 0, len(req.Audience))
	for _, a := range req.Audience {
		if !contains(aud, a) {
			aud = append(aud, a)
		}
	}
	return &token.Claims{
		Issuer:     iss,
		Subject:    subject,
		Audience:   aud,
		Expiry:     dec.Expiry.Truncate(time.Second),
		NotBefore:  now.Truncate(time.Second),
		IssuedAt:   now.Truncate(time.Second),
		ID:         id,
		Scope:      scope,
		Key:        req.Key,
		CNonce:     bytes.Clone(req.CNonce),
		Delegation: s.delegationClaim(dec),
	}, nil
}

// delegationClaim returns the delegation claim of a token granted by dec:
// in the v2 profile, what dec lets the holder pass on, without the list
// of operations when every operation of the scope is on it; in the v1
// profile, whose tokens are never delegable, nil.
func (s *Service) delegationClaim(dec *Decision) *token.Delegation {
	if s.Profile == token.ProfileV1 || dec.Delegation == nil {
		return nil
	}
	d := &token.Delegation{Depth: dec.Delegation.Depth}
	if len(dec.Delegation.Operations) < len(dec.Grants) {
		d.Operations = slices.Clone(dec.Delegation.Operations)
	}
	return d
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// token converts the constraint to the token package's form.
func (c ArgConstraint) token() token.Constraint {
	switch {
	case c.Range != nil:
		return token.InRange(c.Arg, c.Range[0], c.Range[1])
	case c.Equals != nil:
		return token.Equals(c.Arg, c.Equals.token())
	default:
		vals := make([]token.Arg, len(c.OneOf))
		for i, v := range c.OneOf {
			vals[i] = v.token()
		}
		return token.OneOf(c.Arg, vals...)
	}
}

func (v ArgValue) token() token.Arg {
	switch {
	case v.Int != nil:
		return token.Int(*v.Int)
	case v.Text != nil:
		return token.Text(*v.Text)
	default:
		return token.Bytes(v.Bytes)
	}
}

// audit logs the outcome of a token request.
func (s *Service) audit(ctx context.Context, subject string, req *token.AccessRequest, tok *IssuedToken, dec *Decision, err error, requestID string) {
	l := s.logger()
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	if !l.Enabled(ctx, level) {
		return
	}
	// Room for every attribute of an event, allocated once.
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("subject", subject),
		slog.Any("aud", auditList(req.Audience)),
		slog.String("scope", strings.Join(req.Scope, " ")))
	if requestID != "" {
		attrs = append(attrs, slog.String("request_id", requestID))
	}
	if err == nil {
		attrs = append(attrs,
			slog.String("token_id", hex.EncodeToString(tok.Claims.ID)),
			slog.Time("expiry", tok.Claims.Expiry),
			slog.String("granted_scope", tok.Claims.Scope.String()),
			slog.String("policies", strings.Join(tok.Decision.Policies, ",")))
		if d := tok.Claims.Delegation; d != nil {
			attrs = append(attrs, slog.Int("delegation_depth", d.Depth))
			if d.Operations != nil {
				attrs = append(attrs, slog.String("delegation_operations", strings.Join(d.Operations, " ")))
			}
		}
		l.LogAttrs(ctx, slog.LevelInfo, "sda.token.issued", attrs...)
		return
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	if dec != nil && dec.Denied != nil {
		d := dec.Denied
		attrs = append(attrs, slog.String("denied_audience", d.Audience), slog.String("denied_operation", d.Operation))
		if d.PolicyID != "" {
			attrs = append(attrs, slog.String("deny_policy", d.PolicyID))
		}
	}
	l.LogAttrs(ctx, slog.LevelWarn, "sda.token.denied", attrs...)
}
