package policy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// StatusUpdatePath is the path of the status update endpoint, served by
// [Service.PublicHandler].
const StatusUpdatePath = "/v1/status-update"

// StatusUpdate makes the signed status update for the device that aud
// ("ep:<name>", "id:<hex>" or a legacy prefix) names (docs/PROTOCOL.md
// section 12): the revocations that concern it now, the store's sequence
// number and the service's time, signed with the anchor key (with KeyID as
// kid, as tokens are). It returns the signed bytes and what they say.
//
// An aud that is not a valid audience matches [ErrInvalid], one that names
// no device in the directory [ErrNotFound]; a store or signer failure
// [ErrUnavailable]. Each call signs a new update: a technician's client
// caches them.
func (s *Service) StatusUpdate(ctx context.Context, aud string) ([]byte, *token.StatusUpdate, error) {
	if err := validateAudience(aud); err != nil {
		var f fieldErrs
		f.add("aud", "a prefix (ep:, id:, endpoint-name:, device-id:) and a device identity of at most %d characters of [A-Za-z0-9+/= -]", token.MaxAudienceValueLength)
		return nil, nil, f.err()
	}
	if s.Signer == nil {
		return nil, nil, fmt.Errorf("%w: no signing key configured", ErrUnavailable)
	}
	now := s.now().Truncate(time.Second)
	e, err := s.statusEntries(ctx, aud, now)
	if err != nil {
		return nil, nil, err
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, nil, err
	}
	u := &token.StatusUpdate{Issuer: iss, Sequence: uint64(e.Seq), Time: now, Audience: aud}
	for _, h := range e.Hashes {
		u.Hashes = append(u.Hashes, [32]byte(h))
	}
	u.TokenIDs = e.TokenIDs
	for _, c := range e.Subjects {
		u.Subjects = append(u.Subjects, token.SubjectCutoff{Subject: c.Subject, Before: c.Before})
	}
	for _, c := range e.Anchors {
		u.Anchors = append(u.Anchors, token.AnchorCutoff{KeyID: c.KeyID, Before: c.Before})
	}
	signed, err := token.SignStatus(u, s.Signer, &token.StatusOptions{KeyID: s.KeyID, Rand: s.Rand})
	if err != nil {
		// The bounds are kept when revocations are written; an update
		// beyond them means a store written otherwise.
		return nil, nil, fmt.Errorf("%w: signing the status update: %v", ErrUnavailable, err)
	}
	return signed, u, nil
}

// serveStatusUpdate answers GET (and HEAD) /v1/status-update?aud=...
func (s *Service) serveStatusUpdate(w http.ResponseWriter, r *http.Request, _ string) error {
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	q := r.URL.Query()
	auds, ok := q["aud"]
	if len(q) != 1 || !ok || len(auds) != 1 {
		var f fieldErrs
		f.add("aud", "exactly one aud query parameter, and no other")
		return f.err()
	}
	signed, u, err := s.StatusUpdate(r.Context(), auds[0])
	if errors.Is(err, ErrNotFound) {
		return &httpError{http.StatusNotFound, errTypeNotFound, "no device in the directory is named by aud", nil}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.StatusUpdateResponse{
		StatusUpdate: base64.StdEncoding.EncodeToString(signed),
		Aud:          u.Audience,
		Seq:          u.Sequence,
		Time:         u.Time.UTC().Format(time.RFC3339),
	})
	return nil
}
