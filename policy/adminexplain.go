package policy

import (
	"net/http"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Paths of the owner's tools in the administration API (docs/PROTOCOL.md
// section 9, "Explain and policy tests").
const (
	explainPath     = AdminPathPrefix + "explain"
	policyTestsPath = AdminPathPrefix + "policy-tests"
	groupsPath      = AdminPathPrefix + "groups"
)

// ownerToolRoutes maps the patterns of explain, policy tests and groups to
// their handlers. They read the engine and never write the store, except
// the group membership routes, which write one subject.
func (s *Service) ownerToolRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		"POST " + explainPath:     s.admin(KindPolicy, s.adminExplain),
		"POST " + policyTestsPath: s.admin(KindPolicy, s.adminPolicyTests),

		"GET " + groupsPath:                                  s.admin(KindSubject, s.adminGroups),
		"GET " + groupsPath + "/{name}":                      s.admin(KindSubject, s.adminGroup),
		"PUT " + groupsPath + "/{name}/members/{subject}":    s.admin(KindSubject, s.adminGroupMember),
		"DELETE " + groupsPath + "/{name}/members/{subject}": s.admin(KindSubject, s.adminGroupMember),
	}
}

// explainJSON is the body of POST /admin/v1/explain.
type explainJSON struct {
	Subject    string     `json:"subject"`
	Audience   []string   `json:"aud"`
	Operations []string   `json:"operations"`
	Time       *time.Time `json:"time"`
	Profile    string     `json:"profile"`
}

// decodeExplainRequest decodes the body of POST /admin/v1/explain
// strictly into a Request, with the service's time and profile (structured
// for v2) as defaults. Its fields are checked by [Engine.Explain].
func decodeExplainRequest(body []byte, now time.Time, profile token.Profile) (*Request, error) {
	var in explainJSON
	if err := strictUnmarshal(body, &in); err != nil {
		return nil, badJSON(err)
	}
	r := &Request{Subject: in.Subject, Audience: in.Audience, Operations: in.Operations, Time: now}
	if in.Time != nil {
		r.Time = *in.Time
	}
	var f fieldErrs
	r.Structured = parseProfile(&f, "profile", in.Profile, profile)
	return r, f.err()
}

// parseProfile returns whether the profile named v ("v1", "v2", or ""
// for def) is structured, adding a field error named name otherwise.
func parseProfile(f *fieldErrs, name, v string, def token.Profile) bool {
	switch v {
	case "":
		return def != token.ProfileV1
	case "v1":
		return false
	case "v2":
		return true
	}
	f.add(name, "must be %q or %q", "v1", "v2")
	return false
}

// adminExplain answers POST /admin/v1/explain: 200 with the
// [Explanation], for a denial too.
func (s *Service) adminExplain(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	req, err := decodeExplainRequest(body, s.now(), s.Profile)
	if err != nil {
		return err
	}
	x, err := s.engine.Explain(req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

// decodeTestSuiteRequest decodes the body of POST /admin/v1/policy-tests
// strictly and validates it, with the service's time and profile as the
// suite's defaults.
func decodeTestSuiteRequest(body []byte, now time.Time, profile token.Profile) (*TestSuite, error) {
	var s TestSuite
	if err := strictUnmarshal(body, &s); err != nil {
		return nil, badJSON(err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Time.IsZero() {
		s.Time = now
	}
	if s.Profile == "" {
		s.Profile = profileName(profile != token.ProfileV1)
	}
	return &s, nil
}

// adminPolicyTests answers POST /admin/v1/policy-tests: 200 with the
// [TestReport], whether the tests pass or not.
func (s *Service) adminPolicyTests(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	suite, err := decodeTestSuiteRequest(body, s.now(), s.Profile)
	if err != nil {
		return err
	}
	rep, err := s.engine.RunTests(suite)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
