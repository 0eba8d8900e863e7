package policy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Paths of the what-if, diff and change log endpoints of the
// administration API (docs/PROTOCOL.md section 9, "What-if and diff").
const (
	whatIfPath  = AdminPathPrefix + "what-if"
	diffPath    = AdminPathPrefix + "diff"
	changesPath = AdminPathPrefix + "changes"
)

// impactRoutes maps the patterns of the what-if, diff and change log
// endpoints to their handlers. They read the engine and never write.
func (s *Service) impactRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		"POST " + whatIfPath: s.admin(KindPolicy, s.adminWhatIf),
	}
}

// whatIfJSON is the body of POST /admin/v1/what-if.
type whatIfJSON struct {
	Changes []Change   `json:"changes"`
	Time    *time.Time `json:"time"`
	Profile *string    `json:"profile"`
	Limit   *int       `json:"limit"`
}

// impactParams checks the time, profile and limit common to what-if and
// diff, defaulting to the service's now and profile.
func (s *Service) impactParams(f *fieldErrs, at *time.Time, profile *string, limit *int) (time.Time, *ImpactOptions) {
	t := s.now()
	if at != nil {
		t = *at
	}
	opts := &ImpactOptions{Structured: s.Profile != token.ProfileV1}
	if profile != nil {
		switch *profile {
		case "v1":
			opts.Structured = false
		case "v2":
			opts.Structured = true
		default:
			f.add("profile", "must be %q or %q", "v1", "v2")
		}
	}
	if limit != nil {
		if *limit < 1 || *limit > MaxImpactDetails {
			f.add("limit", "an integer from 1 to %d", MaxImpactDetails)
		}
		opts.Limit = *limit
	}
	return t, opts
}

// decodeWhatIf decodes the body of POST /admin/v1/what-if strictly and
// checks the fields that are not the changes' records.
func decodeWhatIf(body []byte) (*whatIfJSON, *fieldErrs, error) {
	var in whatIfJSON
	if err := strictUnmarshal(body, &in); err != nil {
		return nil, nil, errBadJSON
	}
	f := new(fieldErrs)
	if in.Changes == nil {
		f.add("changes", "required")
	}
	for i, c := range in.Changes {
		if c.Seq != 0 {
			f.add("changes["+strconv.Itoa(i)+"].seq", "set by the store, not in a change")
		}
	}
	return &in, f, nil
}

// adminWhatIf answers POST /admin/v1/what-if: the Impact of the changes
// on the service's current state, which it does not change.
func (s *Service) adminWhatIf(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	in, f, err := decodeWhatIf(body)
	if err != nil {
		return err
	}
	at, opts := s.impactParams(f, in.Time, in.Profile, in.Limit)
	if err := f.err(); err != nil {
		return err
	}
	im, err := s.engine.WhatIf(in.Changes, at, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, im)
	return nil
}
