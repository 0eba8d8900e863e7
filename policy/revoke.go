package policy

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// RevokeRequest asks [Service.Revoke] to revoke tokens (docs/PROTOCOL.md
// section 12, "Revocations"). Byte strings are in hexadecimal.
type RevokeRequest struct {
	Kind RevocationKind
	// TokenID or Hash (the token hash as issued, or its revocation hash)
	// name the token of a RevokeToken request; one of them, not both.
	TokenID string
	Hash    string
	// Subject names the subject of a RevokeSubject request.
	Subject string
	// Device names the device of a RevokeDevice request: its id, or an
	// audience ("ep:<name>", "id:<hex>", "endpoint-name:", "device-id:").
	Device string
	// Anchor is the key id of a RevokeAnchor request.
	Anchor string
	// Before is the cut-off time of RevokeSubject and RevokeAnchor:
	// tokens issued at or before it are revoked. Zero means now; a time
	// after now is refused.
	Before time.Time
	// Reason is recorded with the revocations; By is the subject of the
	// administrator who asks.
	Reason string
	By     string
}

// validate checks the request; field names are those of the HTTP API.
func (r *RevokeRequest) validate(now time.Time) error {
	var f fieldErrs
	extra := func(name string, set bool) {
		if set {
			f.add(name, "not taken by a %q revocation", r.Kind)
		}
	}
	switch r.Kind {
	case RevokeToken:
		switch {
		case r.TokenID == "" && r.Hash == "":
			f.add("cti", "a cti or a hash is required")
		case r.TokenID != "" && r.Hash != "":
			f.add("hash", "a cti or a hash, not both")
		case r.TokenID != "":
			checkHex(&f, "cti", strings.ToLower(r.TokenID), 1, maxTokenIDBytes)
		default:
			checkHex(&f, "hash", strings.ToLower(r.Hash), 32, 32)
		}
		extra("subject", r.Subject != "")
		extra("device", r.Device != "")
		extra("anchor", r.Anchor != "")
		extra("before", !r.Before.IsZero())
	case RevokeSubject:
		checkID(&f, "subject", r.Subject)
		extra("cti", r.TokenID != "")
		extra("hash", r.Hash != "")
		extra("device", r.Device != "")
		extra("anchor", r.Anchor != "")
	case RevokeAnchor:
		checkHex(&f, "anchor", strings.ToLower(r.Anchor), 1, maxKeyIDBytes)
		extra("cti", r.TokenID != "")
		extra("hash", r.Hash != "")
		extra("subject", r.Subject != "")
		extra("device", r.Device != "")
	case RevokeDevice:
		if _, err := deviceAudience(r.Device); err != nil {
			f.add("device", "a device id (32 lower-case hexadecimal digits) or a device audience (ep:, id:, endpoint-name:, device-id:)")
		}
		extra("cti", r.TokenID != "")
		extra("hash", r.Hash != "")
		extra("subject", r.Subject != "")
		extra("anchor", r.Anchor != "")
		extra("before", !r.Before.IsZero())
	default:
		f.add("kind", "one of %q, %q, %q, %q", RevokeToken, RevokeSubject, RevokeDevice, RevokeAnchor)
	}
	if r.Before.After(now) {
		f.add("before", "must not be after the current time")
	}
	if len(r.Reason) > maxDescriptionLen {
		f.add("reason", "longer than %d bytes", maxDescriptionLen)
	}
	if len(r.By) > maxIDLen {
		f.add("by", "longer than %d bytes", maxIDLen)
	}
	return f.err()
}

// deviceAudience returns the audience form of a device named by its id or
// an audience.
func deviceAudience(v string) (string, error) {
	var f fieldErrs
	if checkDeviceID(&f, "device", v); f.err() == nil {
		return token.PrefixDeviceID + v, nil
	}
	if err := validateAudience(v); err != nil {
		return "", err
	}
	return v, nil
}

// Revoke revokes tokens and returns the revocations that hold them, in
// the order written: for RevokeDevice one RevokeToken revocation per
// unexpired token of the ledger whose audience names the device (none
// when there is none). It is idempotent: a revocation that exists is
// returned as it is, not written again; a cut-off replaces an earlier
// cut-off of the same subject or anchor when its Before is later, and is
// otherwise returned as it is. The revocations are written in one batch,
// with the deletion of those no longer relevant.
//
// A malformed request matches [ErrInvalid] (a *[ValidationError] naming
// the HTTP API's fields). A revocation after which the status update of
// some device would exceed its bounds is refused with a
// *[RevocationBoundError] (matching [ErrConflict]), and nothing is
// written. Store failures are reported as by [Service.Apply]. Every
// revocation returned is logged as the audit event sda.token.revoked.
func (s *Service) Revoke(ctx context.Context, req RevokeRequest) ([]*Revocation, error) {
	return s.revoke(ctx, req, "")
}

func (s *Service) revoke(ctx context.Context, req RevokeRequest, requestID string) ([]*Revocation, error) {
	now := s.now()
	if err := req.validate(now); err != nil {
		return nil, err
	}
	req.TokenID, req.Hash, req.Anchor = strings.ToLower(req.TokenID), strings.ToLower(req.Hash), strings.ToLower(req.Anchor)
	if req.Before.IsZero() && (req.Kind == RevokeSubject || req.Kind == RevokeAnchor) {
		req.Before = now
	}
	req.Before = req.Before.UTC().Truncate(time.Second)
	ledger, err := s.ledger()
	if err != nil {
		return nil, err
	}
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	wanted, err := s.revocationsFor(ctx, ledger, &req, now)
	if err != nil {
		return nil, err
	}

	// Merge with the revocations held: the result, what to write, and
	// what to prune.
	held := s.engine.revocations()
	byID := make(map[string]*Revocation, len(held))
	for _, r := range held {
		byID[r.ID] = r
	}
	var out []*Revocation
	var changes []Change
	written := map[string]bool{}
	for _, r := range wanted {
		if old := byID[r.ID]; old != nil && old.relevant(now) && (r.Kind == RevokeToken || !r.Before.After(old.Before)) {
			out = append(out, old)
			continue
		}
		byID[r.ID] = r
		written[r.ID] = true
		out = append(out, r)
		changes = append(changes, Change{Kind: KindRevocation, ID: r.ID, Revocation: r})
	}
	after := make([]*Revocation, 0, len(byID))
	for _, id := range slices.Sorted(mapsKeys(byID)) {
		r := byID[id]
		if !r.relevant(now) && !written[id] {
			changes = append(changes, DeleteRecord(KindRevocation, id))
			continue
		}
		after = append(after, r)
	}
	if len(written) > 0 {
		if err := checkStatusBounds(after, s.engine.deviceKey); err != nil {
			return nil, err
		}
	}
	if len(changes) > 0 {
		if err := s.Apply(ctx, changes...); err != nil {
			return nil, err
		}
	}
	for _, r := range out {
		s.auditRevoked(ctx, r, !written[r.ID], requestID)
	}
	return out, nil
}

// revocationsFor builds the revocations that req asks for.
func (s *Service) revocationsFor(ctx context.Context, ledger Ledger, req *RevokeRequest, now time.Time) ([]*Revocation, error) {
	base := Revocation{Kind: req.Kind, CreatedAt: now.UTC().Truncate(time.Second), CreatedBy: req.By, Reason: req.Reason}
	fromRecord := func(rec *IssuedRecord) *Revocation {
		r := base
		r.Kind, r.TokenID, r.Hash = RevokeToken, rec.TokenID, rec.RevocationHash
		r.Audience, r.Until = slices.Clone(rec.Audience), rec.Expiry.UTC()
		r.ID = revocationID(&r)
		return &r
	}
	switch req.Kind {
	case RevokeToken:
		list, err := s.ledgerIssued(ctx, ledger, &IssuedFilter{TokenID: req.TokenID, Hash: req.Hash, Limit: 1})
		if err != nil {
			return nil, ledgerError(err)
		}
		if len(list.Records) == 1 {
			return []*Revocation{fromRecord(list.Records[0])}, nil
		}
		// A token the ledger does not know (issued elsewhere, or before
		// the ledger): revoked for every device, for as long as a token
		// issued now may live.
		r := base
		r.TokenID, r.Hash, r.Until = req.TokenID, req.Hash, now.UTC().Truncate(time.Second).Add(MaxTokenLifetime)
		r.ID = revocationID(&r)
		return []*Revocation{&r}, nil
	case RevokeDevice:
		aud, _ := deviceAudience(req.Device)
		auds := []string{aud}
		if d := s.engine.deviceByAudience(aud); d != nil {
			auds = deviceAudiences(d)
		}
		list, err := s.ledgerIssued(ctx, ledger, &IssuedFilter{Audiences: auds, ExpiresAfter: now.Add(-IssuedRetention), Limit: maxStatusHashes + 1})
		if err != nil {
			return nil, ledgerError(err)
		}
		if list.HasMore {
			return nil, &RevocationBoundError{Audience: aud, Entries: "token hashes", Count: list.Total, Max: maxStatusHashes}
		}
		out := make([]*Revocation, len(list.Records))
		for i, rec := range list.Records {
			out[i] = fromRecord(rec)
		}
		return out, nil
	}
	// A cut-off: relevant until the last token it covers expires.
	r := base
	r.Subject, r.Anchor, r.Before = req.Subject, req.Anchor, req.Before
	list, err := s.ledgerIssued(ctx, ledger, &IssuedFilter{Subject: req.Subject, Anchor: req.Anchor, IssuedBefore: req.Before})
	if err != nil {
		return nil, ledgerError(err)
	}
	r.Until = list.LatestExpiry.UTC()
	if list.Total == 0 {
		r.Until = req.Before.Add(MaxTokenLifetime)
	}
	r.ID = revocationID(&r)
	return []*Revocation{&r}, nil
}

// Revocations returns the revocations that are still relevant at the
// service's current time, sorted by id.
func (s *Service) Revocations(ctx context.Context) ([]*Revocation, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	var out []*Revocation
	for _, r := range s.engine.revocations() {
		if r.relevant(now) {
			out = append(out, r.clone())
		}
	}
	slices.SortFunc(out, func(a, b *Revocation) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Issued lists the ledger of issued tokens (see [Ledger.Issued]).
func (s *Service) Issued(ctx context.Context, f *IssuedFilter) (*IssuedList, error) {
	ledger, err := s.ledger()
	if err != nil {
		return nil, err
	}
	list, err := s.ledgerIssued(ctx, ledger, f)
	if err != nil {
		return nil, ledgerError(err)
	}
	return list, nil
}

// statusEntries returns the revocations relevant at now to the device
// that aud names (an error matching [ErrNotFound] when the directory has
// no such device), with the store's sequence number they were read at:
// what the device's status update carries. Token revocations concern the
// device when their audience names it in any form, or is empty.
func (s *Service) statusEntries(ctx context.Context, aud string, now time.Time) (*statusEntries, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	s.syncMu.Lock()
	seq := s.seq
	d := s.engine.deviceByAudience(aud)
	revs := s.engine.revocations()
	s.syncMu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("%w: no device %q in the directory", ErrNotFound, aud)
	}
	auds := deviceAudiences(d)
	out := &statusEntries{Seq: seq}
	seenHash, seenID := map[string]bool{}, map[string]bool{}
	for _, r := range revs {
		if !r.relevant(now) {
			continue
		}
		switch r.Kind {
		case RevokeSubject:
			out.Subjects = append(out.Subjects, subjectCutoff{r.Subject, r.Before})
		case RevokeAnchor:
			kid, _ := hex.DecodeString(r.Anchor)
			out.Anchors = append(out.Anchors, anchorCutoff{kid, r.Before})
		case RevokeToken:
			if len(r.Audience) > 0 && !slices.ContainsFunc(r.Audience, func(a string) bool { return slices.Contains(auds, a) }) {
				continue
			}
			if r.Hash != "" {
				if !seenHash[r.Hash] {
					seenHash[r.Hash] = true
					h, _ := hex.DecodeString(r.Hash)
					out.Hashes = append(out.Hashes, h)
				}
			} else if !seenID[r.TokenID] {
				seenID[r.TokenID] = true
				id, _ := hex.DecodeString(r.TokenID)
				out.TokenIDs = append(out.TokenIDs, id)
			}
		}
	}
	slices.SortFunc(out.Hashes, bytes.Compare)
	slices.SortFunc(out.TokenIDs, bytes.Compare)
	slices.SortFunc(out.Subjects, func(a, b subjectCutoff) int { return strings.Compare(a.Subject, b.Subject) })
	slices.SortFunc(out.Anchors, func(a, b anchorCutoff) int { return bytes.Compare(a.KeyID, b.KeyID) })
	return out, nil
}

// auditRevoked logs a revocation as the audit event sda.token.revoked;
// existing tells that it was held already and not written again.
func (s *Service) auditRevoked(ctx context.Context, r *Revocation, existing bool, requestID string) {
	attrs := []slog.Attr{
		slog.String("id", r.ID), slog.String("kind", string(r.Kind)), slog.String("subject", r.CreatedBy),
		slog.Time("until", r.Until), slog.Bool("existing", existing),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("token_id", r.TokenID)
	add("hash", r.Hash)
	add("revoked_subject", r.Subject)
	add("anchor", r.Anchor)
	if !r.Before.IsZero() {
		attrs = append(attrs, slog.Time("before", r.Before))
	}
	if len(r.Audience) > 0 {
		attrs = append(attrs, slog.Any("aud", r.Audience))
	}
	add("reason", r.Reason)
	add("request_id", requestID)
	s.logger().LogAttrs(ctx, slog.LevelInfo, "sda.token.revoked", attrs...)
}

// revocations returns the revocations held, unsorted. Records are never
// mutated once stored.
func (e *Engine) revocations() []*Revocation {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return nil
	}
	out := make([]*Revocation, 0, len(e.st.revs))
	for _, r := range e.st.revs {
		out = append(out, r)
	}
	return out
}

// deviceByAudience returns the device an audience names, or nil.
func (e *Engine) deviceByAudience(aud string) *Device {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return nil
	}
	k, err := parseAudience(aud)
	if err != nil {
		return nil
	}
	if name, ok := strings.CutPrefix(k, "e\x00"); ok {
		if x := e.st.byEndpoint[name]; x != nil {
			return x.d
		}
		return nil
	}
	if x := e.st.devices[strings.TrimPrefix(k, "i\x00")]; x != nil {
		return x.d
	}
	return nil
}

// deviceKey returns the key under which the status bounds count the device
// that aud names.
func (e *Engine) deviceKey(aud string) string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return aud
	}
	return e.st.deviceKey(aud)
}
