package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// UpdateOutcome says what became of a status update (v2, docs/PROTOCOL.md
// section 12) that an operation request carried.
type UpdateOutcome struct {
	// Carried reports that the request carried an update. The other fields
	// are zero when it did not.
	Carried bool
	// Installed reports that the update was verified, persisted and is in
	// force.
	Installed bool
	// Issuer, Sequence and Time are the update's; verified only when
	// Installed (zero when it did not parse).
	Issuer   string
	Sequence uint64
	Time     time.Time
	// Err says why the update was ignored; it matches [ErrStatusUpdate].
	Err error
}

// heldStatus is the update installed from one issuer.
type heldStatus struct {
	raw    []byte // the signed update as verified
	update *token.StatusUpdate
	// installed is when it was installed, on the agent's monotonic clock;
	// zero for an update loaded from State (its age is unknown).
	installed time.Time
}

// statusStore holds at most MaxStatusIssuers updates, one per issuer,
// persisted under stateKeyStatus. Readers see an immutable slice; install
// builds a new one, persists it and only then publishes it, so a failed
// write changes nothing.
type statusStore struct {
	state State

	mu   sync.RWMutex
	held []*heldStatus // sorted by issuer; never modified once published

	installMu sync.Mutex // serialises install
}

func loadStatus(state State) (*statusStore, error) {
	s := &statusStore{state: state}
	b, err := state.Load(stateKeyStatus)
	if err != nil {
		return nil, fmt.Errorf("%w: loading %s: %v", ErrState, stateKeyStatus, err)
	}
	if b == nil {
		return s, nil
	}
	if s.held, err = decodeStatusState(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, stateKeyStatus, err)
	}
	return s, nil
}

// The updates are persisted under stateKeyStatus as a CBOR array of 1 to
// MaxStatusIssuers byte strings, each a signed update as verified
// (token.ParseStatus reads it), ascending by issuer, one per issuer. The
// device's State is trusted as for its other keys: the updates were
// verified before they were stored and are not verified again (an anchor
// removed since must not revive the tokens its update revoked).

func encodeStatusState(held []*heldStatus) []byte {
	n := 1
	for _, h := range held {
		n += len(h.raw) + statusEnvelopeOverhead
	}
	b := codec.AppendHead(make([]byte, 0, n), 4, uint64(len(held)))
	for _, h := range held {
		b = codec.AppendBytes(b, h.raw)
	}
	return b
}

// decodeStatusState decodes the persisted updates strictly: the layout
// encodeStatusState writes, each update parsing strictly.
func decodeStatusState(b []byte) ([]*heldStatus, error) {
	var buf [MaxStatusIssuers][]byte
	if len(b) == 0 || b[0] < 0x81 || b[0] > 0x80+MaxStatusIssuers {
		return nil, fmt.Errorf("%w: not an array of 1..%d updates", errStateSyntax, MaxStatusIssuers)
	}
	items, err := codec.ReadArray(b, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStateSyntax, err)
	}
	held := make([]*heldStatus, 0, len(items))
	for i, it := range items {
		raw, err := codec.ReadBytes(it)
		if err != nil {
			return nil, fmt.Errorf("%w: update %d: %v", errStateSyntax, i, err)
		}
		s, err := token.ParseStatus(raw)
		if err != nil {
			return nil, fmt.Errorf("update %d: %w", i, err)
		}
		u := s.UnverifiedUpdate() // verified before it was stored
		if i > 0 && held[i-1].update.Issuer >= u.Issuer {
			return nil, fmt.Errorf("%w: updates not in ascending order of issuer", errStateSyntax)
		}
		held = append(held, &heldStatus{raw: s.Bytes(), update: u})
	}
	return held, nil
}

// get returns the update held from issuer, or nil.
func (s *statusStore) get(issuer string) *heldStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, h := range s.held {
		if h.update.Issuer == issuer {
			return h
		}
	}
	return nil
}

// sequences returns what response key 7 says: the [seq, time] of each
// update held.
func (s *statusStore) sequences() []wire.Sequence {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]wire.Sequence, len(s.held))
	for i, h := range s.held {
		out[i] = wire.Sequence{Issuer: h.update.Issuer, Seq: h.update.Sequence, Time: uint64(h.update.Time.Unix())}
	}
	return out
}

// skip reports why an update of issuer with sequence seq and time t would
// not be installed now, or nil: it is not newer than the one held, or
// there is no room for another issuer.
func (s *statusStore) skip(issuer string, newer func(seq uint64, t time.Time) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, h := range s.held {
		if h.update.Issuer == issuer {
			if !newer(h.update.Sequence, h.update.Time) {
				return fmt.Errorf("%w: issuer %q holds sequence %d of %v", ErrStatusOlder, issuer, h.update.Sequence, h.update.Time.UTC())
			}
			return nil
		}
	}
	if len(s.held) >= MaxStatusIssuers {
		return fmt.Errorf("%w: %d issuers held", ErrStatusIssuers, MaxStatusIssuers)
	}
	return nil
}

// install replaces the update held from u's issuer with u (raw its signed
// bytes), persisting first.
func (s *statusStore) install(raw []byte, u *token.StatusUpdate, now time.Time) error {
	s.installMu.Lock()
	defer s.installMu.Unlock()
	// Checked again: another request may have installed one meanwhile.
	if err := s.skip(u.Issuer, u.NewerThan); err != nil {
		return err
	}
	s.mu.RLock()
	held := slices.DeleteFunc(slices.Clone(s.held), func(h *heldStatus) bool { return h.update.Issuer == u.Issuer })
	s.mu.RUnlock()
	held = append(held, &heldStatus{raw: raw, update: u, installed: now})
	slices.SortFunc(held, func(x, y *heldStatus) int { return strings.Compare(x.update.Issuer, y.update.Issuer) })
	if err := s.state.Store(stateKeyStatus, encodeStatusState(held)); err != nil {
		return fmt.Errorf("%w: %w: storing %s: %v", ErrStatusUpdate, ErrState, stateKeyStatus, err)
	}
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
	return nil
}

// installStatus handles a status update (docs/PROTOCOL.md section 12):
// parse strictly, skip unless newer than what is held from the issuer (and
// unless there is room for it), verify it with an anchor of the issuer,
// check the anchor's validity and constraints and that it names this
// device, persist it, and raise the lower bound of time to its time.
func (a *Agent) installStatus(ctx context.Context, raw []byte) (o UpdateOutcome) {
	o.Carried = true
	s, err := token.ParseStatus(raw)
	if err != nil {
		o.Err = fmt.Errorf("%w: %w", ErrStatusMalformed, err)
		return o
	}
	iss := s.UnverifiedIssuer()
	unverified := s.UnverifiedUpdate()
	o.Issuer, o.Sequence, o.Time = iss, unverified.Sequence, unverified.Time
	if o.Err = a.status.skip(iss, s.UnverifiedNewerThan); o.Err != nil {
		return o
	}
	anchors, err := a.anchors.Lookup(iss, s.UnverifiedKeyID())
	if err != nil {
		o.Err = fmt.Errorf("%w: %w", ErrStatusUnknownIssuer, err)
		return o
	}
	var u *token.StatusUpdate
	var anchor *trust.Anchor
	err = nil
	for i := range anchors {
		if anchors[i].PinnedAlgorithm() != s.Algorithm() {
			continue
		}
		if u, err = s.Verify(anchors[i].Key); err == nil {
			anchor = &anchors[i]
			break
		}
	}
	if anchor == nil {
		if err == nil {
			err = fmt.Errorf("%w: update signed with %v, no anchor of the issuer pins it", token.ErrAlgorithmMismatch, s.Algorithm())
		}
		o.Err = fmt.Errorf("%w: %w", ErrStatusForged, err)
		return o
	}
	now, known := a.clock.now()
	anchorNow := now
	if !known {
		anchorNow = time.Time{}
	}
	// The anchor's validity at the device's time and for the update's time
	// (as for a token's issue time), and its audience constraints.
	if err := anchor.Check(&token.Claims{Issuer: iss, Audience: []string{u.Audience}, IssuedAt: u.Time}, anchorNow); err != nil {
		o.Err = fmt.Errorf("%w: %w", ErrStatusAnchor, err)
		return o
	}
	if !a.identity.Matches(u.Audience) {
		o.Err = fmt.Errorf("%w: %w: %q", ErrStatusWrongDevice, token.ErrWrongAudience, u.Audience)
		return o
	}
	if o.Err = a.status.install(s.Bytes(), u, a.mono()); o.Err != nil {
		return o
	}
	o.Installed = true
	if err := a.clock.raise(u.Time, now); err != nil && a.log != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "sda: persisting the time lower bound failed", slog.String("error", err.Error()))
	}
	return o
}

// forgedUpdate reports whether o is an update whose signature failed with
// an anchor that pins its algorithm: it cost a signature verification and
// counts toward throttling as a forged token does.
func forgedUpdate(o *UpdateOutcome) bool {
	return errors.Is(o.Err, ErrStatusForged) && !errors.Is(o.Err, token.ErrAlgorithmMismatch)
}

// InstallStatus installs a signed status update (v2, docs/PROTOCOL.md
// section 12) that the device obtained itself, as one carried by a request
// is installed: it is verified with an anchor of its issuer, must name
// this device and be newer than the update held from its issuer, is
// persisted, and raises the lower bound of time. It returns nil when the
// update is installed, else why it was ignored (matching
// [ErrStatusUpdate]; [ErrStatusOlder] when the device holds it or a newer
// one already). Config.StatusUpdates is not needed: it only governs what
// requests and responses carry. The result is logged as an audit event
// ("sda: status update installed" at Info, "sda: status update ignored" at
// Warn).
func (a *Agent) InstallStatus(update []byte) error {
	ctx := context.Background()
	o := a.installStatus(ctx, update)
	if a.log != nil {
		level, msg := slog.LevelInfo, "sda: status update installed"
		if o.Err != nil {
			level, msg = slog.LevelWarn, "sda: status update ignored"
		}
		a.log.LogAttrs(ctx, level, msg, updateAttrs(nil, &o)...)
	}
	if forgedUpdate(&o) {
		a.throttle.fail(nil, a.mono())
	}
	return o.Err
}

// updateAttrs appends the audit attributes of o.
func updateAttrs(attrs []slog.Attr, o *UpdateOutcome) []slog.Attr {
	if !o.Carried {
		return attrs
	}
	result := "installed"
	if !o.Installed {
		result = "ignored"
	}
	attrs = append(attrs, slog.String("status_update", result))
	if o.Issuer != "" {
		attrs = append(attrs, slog.String("status_issuer", o.Issuer), slog.Uint64("status_seq", o.Sequence))
	}
	if o.Err != nil {
		attrs = append(attrs, slog.String("status_reason", o.Err.Error()))
	}
	return attrs
}

// KeepStatusFresh keeps the status updates of an online device current:
// it calls fetch at once and then every interval until ctx ends, and
// installs what fetch returns with [Agent.InstallStatus]. fetch returns a
// signed update for this device (the client package offers one that asks
// an authorization service; the device package does no network I/O). A
// failed fetch, or an update that is ignored (an unchanged update is, with
// [ErrStatusOlder]), is logged to Config.Logger and retried at the next
// interval. It returns ctx.Err() when ctx ends; an interval that is not
// positive is an [ErrConfig] error.
func KeepStatusFresh(ctx context.Context, a *Agent, fetch func(ctx context.Context) ([]byte, error), interval time.Duration) error {
	if a == nil || fetch == nil || interval <= 0 {
		return configError("KeepStatusFresh needs an agent, a fetch function and a positive interval")
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		b, err := fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if a.log != nil {
				a.log.LogAttrs(ctx, slog.LevelWarn, "sda: fetching the status update failed", slog.String("error", err.Error()))
			}
		default:
			_ = a.InstallStatus(b) // logged there
		}
		t.Reset(interval)
	}
}

// statusRevoked reports whether the update installed from the token's
// issuer revokes the token with verified claims c, verified by anchor, or
// one of links, the verified delegation chain of the request (nil when
// none), by its hash. revHash returns the token's revocation hash,
// computed only when the update lists hashes.
func (a *Agent) statusRevoked(c *token.Claims, anchor *trust.Anchor, revHash func() *[32]byte, links []token.Link) error {
	h := a.status.get(c.Issuer)
	if h == nil {
		return nil
	}
	u := h.update
	var rh *[32]byte
	if u.HasHashes() {
		rh = revHash()
	}
	var kid []byte
	if len(u.Anchors) > 0 {
		if kid = anchor.KeyID; len(kid) == 0 {
			kid, _ = a.thumbprints.get(anchor.Key) // the key verified a token: it has one
		}
	}
	if entry, ok := u.Revokes(c, rh, kid); ok {
		return &RevocationError{Entry: entry, Issuer: u.Issuer, Sequence: u.Sequence}
	}
	if i := linkRevoked(u, links); i > 0 {
		return &RevocationError{Entry: token.EntryTokenHash, Issuer: u.Issuer, Sequence: u.Sequence, Link: i}
	}
	return nil
}

// RevocationError is the reason of a token refused by a status update
// (v2): which entry of the update of its issuer revoked it. It matches
// [ErrRevoked]. (A token on the device's own revocation list is refused
// with an error matching ErrRevoked that names its id or hash.)
type RevocationError struct {
	// Entry is the kind of entry that matched, as
	// token.StatusUpdate.Revokes names it: token.EntryTokenHash,
	// EntryTokenID, EntrySubjectCutoff or EntryAnchorCutoff.
	Entry string
	// Issuer and Sequence identify the installed update.
	Issuer   string
	Sequence uint64
	// Link is, for an entry that revoked a link of the request's
	// delegation chain by its hash (Entry token.EntryTokenHash), the
	// link's position, 1 for the first; 0 when the entry revoked the
	// token itself (and with it every chain below it).
	Link int
}

// Error describes the revocation.
func (e *RevocationError) Error() string {
	if e.Link > 0 {
		return fmt.Sprintf("%v: %s of delegation link %d in the status update of %q, sequence %d", ErrRevoked, e.Entry, e.Link, e.Issuer, e.Sequence)
	}
	return fmt.Sprintf("%v: %s in the status update of %q, sequence %d", ErrRevoked, e.Entry, e.Issuer, e.Sequence)
}

// Is reports whether target is ErrRevoked.
func (e *RevocationError) Is(target error) bool { return target == ErrRevoked }
