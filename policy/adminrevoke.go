package policy

import (
	"net/http"
	"strconv"
	"time"
)

// Paths of the administration API for revocation (docs/PROTOCOL.md
// section 12).
const (
	revocationsPath  = AdminPathPrefix + "revocations"
	issuedTokensPath = AdminPathPrefix + "issued-tokens"
)

// revokeJSON is the body of POST /admin/v1/revocations.
type revokeJSON struct {
	Kind    RevocationKind `json:"kind"`
	TokenID string         `json:"cti"`
	Hash    string         `json:"hash"`
	Subject string         `json:"subject"`
	Device  string         `json:"device"`
	Anchor  string         `json:"anchor"`
	Before  *time.Time     `json:"before"`
	Reason  string         `json:"reason"`
}

// revocationRoutes maps the patterns of the revocation endpoints of the
// administration API to their handlers.
func (s *Service) revocationRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		"POST " + revocationsPath: s.admin(KindRevocation, s.adminRevoke),
		"GET " + revocationsPath:  s.admin(KindRevocation, s.adminRevocations),
		"GET " + issuedTokensPath: s.admin(KindRevocation, s.adminIssued),
	}
}

// adminRevoke answers POST /admin/v1/revocations: 201 with the
// revocations that hold the request, in the list format.
func (s *Service) adminRevoke(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	var in revokeJSON
	if err := strictUnmarshal(body, &in); err != nil {
		return badJSON(err)
	}
	req := RevokeRequest{Kind: in.Kind, TokenID: in.TokenID, Hash: in.Hash, Subject: in.Subject, Device: in.Device,
		Anchor: in.Anchor, Reason: in.Reason, By: a.principal.Subject}
	if in.Before != nil {
		req.Before = *in.Before
	}
	revs, err := s.revoke(r.Context(), req, a.requestID)
	if err != nil {
		return err
	}
	if revs == nil {
		revs = []*Revocation{}
	}
	writeJSON(w, http.StatusCreated, listJSON[*Revocation]{Object: "list", Data: revs, TotalCount: len(revs), Limit: len(revs)})
	return nil
}

// listParams reads the limit and after query parameters of a list.
func listParams(r *http.Request, f *fieldErrs) (limit int, after string) {
	q := r.URL.Query()
	limit = defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			f.add("limit", "an integer from 1 to %d", maxListLimit)
		}
		limit = n
	}
	after = q.Get("after")
	if len(after) > maxIDLen {
		f.add("after", "longer than %d bytes", maxIDLen)
	}
	return limit, after
}

// adminRevocations answers GET /admin/v1/revocations: the revocations
// still relevant, sorted by id.
func (s *Service) adminRevocations(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	var f fieldErrs
	limit, after := listParams(r, &f)
	if err := f.err(); err != nil {
		return err
	}
	all, err := s.Revocations(r.Context())
	if err != nil {
		return err
	}
	data := []*Revocation{}
	for _, rev := range all {
		if rev.ID > after {
			data = append(data, rev)
		}
	}
	more := len(data) > limit
	if more {
		data = data[:limit]
	}
	writeJSON(w, http.StatusOK, listJSON[*Revocation]{Object: "list", Data: data, HasMore: more, TotalCount: len(all), After: after, Limit: limit})
	return nil
}

// adminIssued answers GET /admin/v1/issued-tokens?subject=&aud=: the
// ledger, sorted by cti. An aud naming a device of the directory selects
// the tokens that name the device in any form.
func (s *Service) adminIssued(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	var f fieldErrs
	limit, after := listParams(r, &f)
	q := r.URL.Query()
	filter := &IssuedFilter{Subject: q.Get("subject"), After: after, Limit: limit}
	if filter.Subject != "" {
		checkID(&f, "subject", filter.Subject)
	}
	if aud := q.Get("aud"); aud != "" {
		a, err := deviceAudience(aud)
		if err != nil {
			f.add("aud", "a device id or a device audience (ep:, id:, endpoint-name:, device-id:)")
		} else if d := s.engine.deviceByAudience(a); d != nil {
			filter.Audiences = deviceAudiences(d)
		} else {
			filter.Audiences = []string{a}
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	list, err := s.Issued(r.Context(), filter)
	if err != nil {
		return err
	}
	data := list.Records
	if data == nil {
		data = []*IssuedRecord{}
	}
	writeJSON(w, http.StatusOK, listJSON[*IssuedRecord]{Object: "list", Data: data, HasMore: list.HasMore, TotalCount: list.Total, After: after, Limit: limit})
	return nil
}
