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
		"GET " + diffPath:    s.admin(KindPolicy, s.adminDiff),
		"GET " + changesPath: s.admin(KindPolicy, s.adminChanges),
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
		return nil, nil, badJSON(err)
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

// seqParam reads an optional sequence number query parameter.
func seqParam(r *http.Request, f *fieldErrs, name string, def int64) int64 {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		f.add(name, "a sequence number, at least 0")
		return def
	}
	return n
}

// optionalParams reads the time, profile and limit query parameters of a
// diff: nil when absent.
func optionalParams(r *http.Request, f *fieldErrs) (at *time.Time, profile *string, limit *int) {
	q := r.URL.Query()
	if v := q.Get("time"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			f.add("time", "an RFC 3339 time")
		} else {
			at = &t
		}
	}
	if q.Has("profile") {
		v := q.Get("profile")
		profile = &v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1
		}
		limit = &n
	}
	return at, profile, limit
}

// diffJSON is the answer of GET /admin/v1/diff.
type diffJSON struct {
	*Impact
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// adminDiff answers GET /admin/v1/diff?from=SEQ&to=SEQ&time=&profile=&limit=N:
// the Impact between the states at from and at to (default: the current
// one), rebuilt from the service's change history.
func (s *Service) adminDiff(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	var f fieldErrs
	if !r.URL.Query().Has("from") {
		f.add("from", "required")
	}
	from := seqParam(r, &f, "from", 0)
	to := seqParam(r, &f, "to", -1)
	pt, pp, pl := optionalParams(r, &f)
	at, opts := s.impactParams(&f, pt, pp, pl)
	if err := f.err(); err != nil {
		return err
	}
	im, to, err := s.diff(from, to, at, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, diffJSON{Impact: im, From: from, To: to})
	return nil
}

// changeLogJSON is the answer of GET /admin/v1/changes.
type changeLogJSON struct {
	Object  string           `json:"object"`
	Data    []ChangeLogEntry `json:"data"`
	HasMore bool             `json:"has_more"`
	Seq     int64            `json:"seq"`
}

// adminChanges answers GET /admin/v1/changes?since=SEQ&limit=N: the
// changes the service applied after since (default: the oldest it knows).
func (s *Service) adminChanges(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	var f fieldErrs
	limit := defaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChangeLog {
			f.add("limit", "an integer from 1 to %d", maxChangeLog)
		}
		limit = n
	}
	since := seqParam(r, &f, "since", -1)
	if err := f.err(); err != nil {
		return err
	}
	entries, more, seq, err := s.changeLog(since, limit, "since")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, changeLogJSON{Object: "list", Data: entries, HasMore: more, Seq: seq})
	return nil
}
