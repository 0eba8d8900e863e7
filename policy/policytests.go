package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// TestSuite is a list of expectations about the policies that an owner
// keeps next to them and runs in CI ("alice may configure rooftop-1", "no
// junior may update-firmware anywhere"): the body of POST
// /admin/v1/policy-tests and the file that sdactl admin test reads (see
// [ParseTestSuite]). Run it with [Engine.RunTests].
type TestSuite struct {
	Tests []PolicyTest `json:"tests"`
	// Time and Profile ("v1" or "v2") are the defaults of the tests that
	// give none. [Engine.RunTests] needs a time for every test and takes
	// an empty profile as "v1"; the service defaults them to its clock and
	// profile.
	Time    time.Time `json:"time,omitzero"`
	Profile string    `json:"profile,omitempty"`
}

// Expectations of a [PolicyTest].
const (
	ExpectAllow = "allow"
	ExpectDeny  = "deny"
)

// PolicyTest is one expectation: every (subject, device, operation) triple
// it names, decided alone (one audience, one operation), has the expected
// outcome.
type PolicyTest struct {
	Name string `json:"name"`
	// Exactly one of Subject and Group: a subject id, or every member of
	// a group (a group without members fails the test).
	Subject string `json:"subject,omitempty"`
	Group   string `json:"group,omitempty"`
	// Exactly one of Audience and Devices: token audiences ("ep:…",
	// "id:…"), or the devices of the directory that a selector selects.
	Audience []string        `json:"aud,omitempty"`
	Devices  *DeviceSelector `json:"devices,omitempty"`
	// Operations lists 1 to [token.MaxScopeItems] operation names.
	Operations []string `json:"operations"`
	// Expect is [ExpectAllow] or [ExpectDeny].
	Expect string `json:"expect"`
	// Time and Profile override the suite's.
	Time    time.Time `json:"time,omitzero"`
	Profile string    `json:"profile,omitempty"`
}

// TestReport is the outcome of [Engine.RunTests].
type TestReport struct {
	// Object is "policy-test-report".
	Object  string       `json:"object"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Results []TestResult `json:"results"`
}

// TestResult is the outcome of one [PolicyTest].
type TestResult struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	// Checked counts the triples decided.
	Checked int `json:"checked"`
	// Message says why a test failed without a triple to show: a group
	// without members, a selector that selects no device.
	Message string `json:"message,omitempty"`
	// Failures lists the first triples with the wrong outcome, at most
	// maxTestFailures; FailuresTruncated says that there were more.
	Failures          []TestFailure `json:"failures"`
	FailuresTruncated bool          `json:"failures_truncated"`
}

// TestFailure is one triple whose outcome is not the one expected, and
// the explanation of its decision.
type TestFailure struct {
	Subject      string `json:"subject"`
	Device       string `json:"device,omitempty"`
	EndpointName string `json:"endpoint_name,omitempty"`
	Audience     string `json:"aud"`
	Operation    string `json:"operation"`
	// Got is "allow" or "deny".
	Got         string          `json:"got"`
	Explanation PairExplanation `json:"explanation"`
}

// ParseTestSuite decodes a test suite from JSON strictly (unknown fields
// and trailing data are errors) and validates it, returning a
// *[ValidationError] naming the fields ("tests[3].operations[0]") that
// fail. Both errors match [ErrInvalid].
func ParseTestSuite(b []byte) (*TestSuite, error) {
	var s TestSuite
	if err := strictUnmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: test suite: %w", ErrInvalid, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate reports whether the suite is well formed, as a
// *[ValidationError] naming every bad field.
func (s *TestSuite) Validate() error {
	var f fieldErrs
	if len(s.Tests) == 0 || len(s.Tests) > maxPolicyTests {
		f.add("tests", "1 to %d tests", maxPolicyTests)
		return f.err()
	}
	checkTestProfile(&f, "profile", s.Profile)
	for i := range s.Tests {
		s.Tests[i].validate(&f, fmt.Sprintf("tests[%d].", i))
	}
	return f.err()
}

func checkTestProfile(f *fieldErrs, name, v string) {
	if v != "" && v != "v1" && v != "v2" {
		f.add(name, "must be %q or %q", "v1", "v2")
	}
}

func (t *PolicyTest) validate(f *fieldErrs, n string) {
	if t.Name == "" {
		f.add(n+"name", "required")
	}
	checkText(f, n+"name", t.Name, maxNameLen)
	switch {
	case (t.Subject == "") == (t.Group == ""):
		f.add(n+"subject", "set exactly one of subject and group")
	case t.Subject != "":
		checkID(f, n+"subject", t.Subject)
	default:
		checkID(f, n+"group", t.Group)
	}
	switch {
	case (len(t.Audience) == 0) == (t.Devices == nil):
		f.add(n+"aud", "set exactly one of aud and devices")
	case t.Devices != nil:
		var df fieldErrs
		t.Devices.validate(&df)
		f.prefixed(n, df.err())
	case len(t.Audience) > token.MaxAudiences:
		f.add(n+"aud", "1 to %d entries", token.MaxAudiences)
	default:
		for i, a := range t.Audience {
			if _, err := parseAudience(a); err != nil {
				f.add(fmt.Sprintf("%saud[%d]", n, i), "must be ep:, id:, endpoint-name: or device-id: and a device identity")
			}
		}
	}
	if len(t.Operations) == 0 || len(t.Operations) > token.MaxScopeItems {
		f.add(n+"operations", "1 to %d operations", token.MaxScopeItems)
	} else {
		for i, o := range t.Operations {
			checkOperationName(f, fmt.Sprintf("%soperations[%d]", n, i), o)
		}
	}
	if t.Expect != ExpectAllow && t.Expect != ExpectDeny {
		f.add(n+"expect", "must be %q or %q", ExpectAllow, ExpectDeny)
	}
	checkTestProfile(f, n+"profile", t.Profile)
}

// RunTests validates the suite and runs its tests on the engine's
// present content: each triple is decided as [Engine.Decide] decides a
// request for one audience and one operation. A suite that is invalid, that
// gives no time for a test, whose tests decide more than
// maxPolicyTestChecks triples in all, or whose tests examine more than
// maxPolicyTestLookups directory entries in all to find their subjects
// and devices (even selecting none), is an error matching [ErrInvalid]
// naming the first test over the bound; failed tests are not errors.
func (e *Engine) RunTests(s *TestSuite) (*TestReport, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var f fieldErrs
	for i := range s.Tests {
		if s.Tests[i].Time.IsZero() && s.Time.IsZero() {
			f.add(fmt.Sprintf("tests[%d].time", i), "required: the test and the suite give no time")
		}
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	st := e.state()
	// Resolve every test's triples first: nothing runs if there are too
	// many, or if finding them examines too many directory entries.
	plans := make([]testPlan, len(s.Tests))
	total, lookups := 0, 0
	for i := range s.Tests {
		if !st.plan(&s.Tests[i], &plans[i], &lookups) {
			return nil, &ValidationError{Fields: []FieldError{{Name: fmt.Sprintf("tests[%d]", i),
				Message: fmt.Sprintf("the tests up to this one look up more than %d subjects and devices", maxPolicyTestLookups)}}}
		}
		total += len(plans[i].subjects) * len(plans[i].devices) * len(plans[i].ops)
		if total > maxPolicyTestChecks {
			return nil, &ValidationError{Fields: []FieldError{{Name: fmt.Sprintf("tests[%d]", i),
				Message: fmt.Sprintf("the tests up to this one decide more than %d (subject, device, operation) triples", maxPolicyTestChecks)}}}
		}
	}
	rep := &TestReport{Object: "policy-test-report", Results: make([]TestResult, len(s.Tests))}
	for i := range s.Tests {
		t := &s.Tests[i]
		at := cmpOrTime(t.Time, s.Time)
		structured := cmp.Or(t.Profile, s.Profile) == "v2"
		rep.Results[i] = st.runTest(t, &plans[i], at, structured)
		if rep.Results[i].Passed {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	return rep, nil
}

func cmpOrTime(a, b time.Time) time.Time {
	if !a.IsZero() {
		return a
	}
	return b
}

// testPlan is what a test decides: its subjects, its devices (audiences
// with their device keys) and its distinct operations; msg says why there
// is nothing to decide, and then the plan holds nothing else.
type testPlan struct {
	subjects []string
	devices  []testDevice
	ops      []string
	msg      string
}

// testDevice is one device of a test: the audience it is asked as, and
// its device key; or, selected from the directory, only its id, the
// audience and key built when the test runs.
type testDevice struct {
	id, aud, key string
}

// audience returns the audience and device key of the device.
func (d *testDevice) audience() (aud, key string) {
	if d.aud != "" {
		return d.aud, d.key
	}
	return token.PrefixDeviceID + d.id, "i\x00" + d.id
}

// plan resolves into p the subjects, devices and operations of a valid
// test, adding to *lookups the directory entries it examines. It stops at
// the first reason there is nothing to decide, and reports false, before
// examining them, when the entries would take *lookups over
// maxPolicyTestLookups.
func (st *state) plan(t *PolicyTest, p *testPlan, lookups *int) bool {
	charge := func(n int) bool {
		*lookups += n
		return *lookups <= maxPolicyTestLookups
	}
	if t.Subject != "" {
		p.subjects = []string{t.Subject}
	} else {
		if !charge(len(st.subjects)) {
			return false
		}
		if p.subjects = st.members(t.Group); len(p.subjects) == 0 {
			p.msg = fmt.Sprintf("group %q has no members", t.Group)
			return true
		}
	}
	if t.Devices == nil {
		if !charge(len(t.Audience)) {
			return false
		}
		for _, a := range t.Audience {
			if slices.ContainsFunc(p.devices, func(d testDevice) bool { return d.aud == a }) {
				continue
			}
			k, _ := parseAudience(a) // validated
			p.devices = append(p.devices, testDevice{aud: a, key: k})
		}
	} else {
		n := len(st.devices)
		if sel := t.Devices; !sel.All && len(sel.Attributes) == 0 {
			n = len(sel.IDs) + len(sel.EndpointNames)
		}
		if !charge(n) {
			return false
		}
		for _, id := range st.selectDevices(t.Devices) {
			p.devices = append(p.devices, testDevice{id: id})
		}
		if len(p.devices) == 0 {
			p.subjects = nil
			p.msg = fmt.Sprintf("the selector (%s) selects no device", describeSelector(t.Devices))
			return true
		}
	}
	for _, o := range t.Operations {
		if !slices.Contains(p.ops, o) {
			p.ops = append(p.ops, o)
		}
	}
	return true
}

// members returns the ids of the subjects in group, sorted.
func (st *state) members(group string) []string {
	var out []string
	for id, s := range st.subjects {
		if slices.Contains(s.s.Groups, group) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// selectDevices returns the ids of the devices that sel selects, sorted.
func (st *state) selectDevices(sel *DeviceSelector) []string {
	c := compile(&Policy{Devices: *sel})
	var out []string
	if !sel.All && len(sel.Attributes) == 0 {
		// Look the named devices up.
		for _, id := range sel.IDs {
			if st.devices[id] != nil && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		for _, ep := range sel.EndpointNames {
			if d := st.byEndpoint[ep]; d != nil && !slices.Contains(out, d.d.ID) {
				out = append(out, d.d.ID)
			}
		}
	} else {
		for id, d := range st.devices {
			if c.matchesDevice(d) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// runTest decides every triple of the plan of test t at time at.
func (st *state) runTest(t *PolicyTest, p *testPlan, at time.Time, structured bool) TestResult {
	res := TestResult{Name: t.Name, Failures: []TestFailure{}}
	if p.msg != "" {
		res.Message = p.msg
		return res
	}
	want := t.Expect == ExpectAllow
	// The audiences and device keys of this test only.
	auds, devKeys := make([]string, len(p.devices)), make([]string, len(p.devices))
	for i := range p.devices {
		auds[i], devKeys[i] = p.devices[i].audience()
	}
	for _, subj := range p.subjects {
		for i, aud := range auds {
			for _, op := range p.ops {
				r := &Request{Subject: subj, Audience: []string{aud}, Operations: []string{op}, Time: at, Structured: structured}
				keys, ops, auds := devKeys[i:i+1], []string{op}, []string{aud}
				res.Checked++
				if st.decide(r, keys, ops, auds).Allowed == want {
					continue
				}
				if len(res.Failures) == maxTestFailures {
					res.FailuresTruncated = true
					continue
				}
				pe := st.explain(r, keys, ops, auds).Pairs[0]
				got := ExpectDeny
				if !want {
					got = ExpectAllow
				}
				res.Failures = append(res.Failures, TestFailure{Subject: subj, Device: pe.Device, EndpointName: pe.EndpointName,
					Audience: aud, Operation: op, Got: got, Explanation: pe})
			}
		}
	}
	res.Passed = len(res.Failures) == 0
	return res
}
