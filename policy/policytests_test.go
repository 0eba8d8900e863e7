package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

func fieldNames(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var names []string
	for _, f := range ve.Fields {
		names = append(names, f.Name)
	}
	return names
}

func mustParseSuite(t *testing.T, s string) *TestSuite {
	t.Helper()
	suite, err := ParseTestSuite([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return suite
}

func TestRunTests(t *testing.T) {
	e := explainEngine(t,
		pol("alice-read", ops("read")),
		pol("techs-write", groups("techs"), ops("write"), devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}})),
		pol("temp", ops(), constrained("set-temp", rangeArg(0, 16, 28))),
		pol("later", ops("reboot"), window(time.Hour, 0)),
	)
	suite := mustParseSuite(t, `{"time":"2030-01-02T03:04:05Z","tests":[
		{"name":"alice may read hvac-1","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"},
		{"name":"alice may write everywhere","subject":"alice","devices":{"all":true},"operations":["write","read"],"expect":"allow"},
		{"name":"no contractor may write on the roof","group":"contractors","devices":{"attributes":{"site":["roof"]}},"operations":["write"],"expect":"deny"},
		{"name":"nobody in an empty group","group":"nobody","aud":["ep:hvac-1"],"operations":["read"],"expect":"deny"},
		{"name":"no device on the moon","subject":"alice","devices":{"attributes":{"site":["moon"]}},"operations":["read"],"expect":"deny"},
		{"name":"set-temp needs v2","subject":"alice","aud":["ep:hvac-1"],"operations":["set-temp"],"expect":"deny"},
		{"name":"set-temp in v2","subject":"alice","aud":["ep:hvac-1"],"operations":["set-temp"],"expect":"allow","profile":"v2"},
		{"name":"reboot later","subject":"alice","aud":["ep:hvac-1"],"operations":["reboot"],"expect":"allow","time":"2030-01-02T04:04:05Z"},
		{"name":"unknown device is denied","subject":"alice","aud":["ep:nope"],"operations":["read"],"expect":"deny"}
	]}`)
	rep, err := e.RunTests(suite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Object != "policy-test-report" || rep.Passed != 6 || rep.Failed != 3 || len(rep.Results) != 9 {
		t.Fatalf("report %+v", rep)
	}
	byName := map[string]TestResult{}
	for _, r := range rep.Results {
		byName[r.Name] = r
	}
	if r := byName["alice may read hvac-1"]; !r.Passed || r.Checked != 1 || len(r.Failures) != 0 {
		t.Errorf("%+v", r)
	}
	r := byName["alice may write everywhere"]
	if r.Passed || r.Checked != 6 || len(r.Failures) != 1 {
		t.Fatalf("%+v", r)
	}
	f := r.Failures[0]
	if f.Subject != "alice" || f.Device != dev2 || f.EndpointName != "hvac-2" || f.Operation != "write" || f.Got != "deny" ||
		f.Explanation.Reason != "no_allow_policy" || !slices.ContainsFunc(f.Explanation.NearMisses, func(m NearMiss) bool { return m.Policy == "techs-write" }) {
		t.Errorf("failure %+v", f)
	}
	if r := byName["no contractor may write on the roof"]; !r.Passed || r.Checked != 2 {
		t.Errorf("%+v", r)
	}
	if r := byName["nobody in an empty group"]; r.Passed || r.Checked != 0 || !strings.Contains(r.Message, "no members") {
		t.Errorf("%+v", r)
	}
	if r := byName["no device on the moon"]; r.Passed || !strings.Contains(r.Message, "selects no device") {
		t.Errorf("%+v", r)
	}
	for _, n := range []string{"set-temp needs v2", "set-temp in v2", "reboot later", "unknown device is denied"} {
		if r := byName[n]; !r.Passed {
			t.Errorf("%s: %+v", n, r)
		}
	}
}

func TestRunTestsGroupOfManySubjects(t *testing.T) {
	var e Engine
	changes := testDirectory()
	for i := range 300 {
		changes = append(changes, PutSubject(&Subject{ID: fmt.Sprintf("junior%03d", i), Kind: User, Groups: []string{"juniors"}}))
	}
	// Seven juniors may update firmware on hvac-2: a mistake the test finds.
	changes = append(changes, PutPolicy(pol("oops", users("junior007", "junior013", "junior100", "junior101", "junior150", "junior200", "junior299"),
		ops("update-firmware"), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}))))
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	rep, err := e.RunTests(mustParseSuite(t, `{"time":"2030-01-02T03:04:05Z","tests":[
		{"name":"no junior may update-firmware anywhere","group":"juniors","devices":{"all":true},"operations":["update-firmware"],"expect":"deny"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Passed || rep.Failed != 1 || r.Checked != 300*3 || len(r.Failures) != maxTestFailures || !r.FailuresTruncated {
		t.Fatalf("result %+v", r)
	}
	var who []string
	for _, f := range r.Failures {
		who = append(who, f.Subject)
		if f.Got != "allow" || f.EndpointName != "hvac-2" || !f.Explanation.Allowed || f.Explanation.LifetimePolicy != "oops" {
			t.Errorf("failure %+v", f)
		}
	}
	if !slices.Equal(who, []string{"junior007", "junior013", "junior100", "junior101", "junior150"}) {
		t.Errorf("failures of %v", who)
	}
}

func TestParseTestSuite(t *testing.T) {
	t.Run("strict", func(t *testing.T) {
		_, err := ParseTestSuite([]byte(`{"tests":[{"name":"x","subject":"a","aud":["ep:x"],"operations":["read"],"expect":"allow","extra":1}]}`))
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown field: %v", err)
		}
		if _, err := ParseTestSuite([]byte(`{"tests":[]} {}`)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("trailing data: %v", err)
		}
	})
	t.Run("fields named", func(t *testing.T) {
		_, err := ParseTestSuite([]byte(`{"profile":"v3","tests":[
			{"name":"","subject":"a","group":"g","aud":["ep:x"],"operations":["read"],"expect":"allow"},
			{"name":"b","subject":"a","aud":["ep:x"],"devices":{"all":true},"operations":["read"],"expect":"maybe"},
			{"name":"c","group":"g","aud":["ep:x","bad"],"operations":["bad op"],"expect":"deny","profile":"x"},
			{"name":"d","subject":"a","devices":{"ids":["nothex"]},"operations":[],"expect":"deny"}]}`))
		want := []string{"profile", "tests[0].name", "tests[0].subject", "tests[1].aud", "tests[1].expect",
			"tests[2].aud[1]", "tests[2].operations[0]", "tests[2].profile", "tests[3].devices.ids[0]", "tests[3].operations"}
		if got := fieldNames(err); !slices.Equal(got, want) {
			t.Fatalf("fields %v, want %v (%v)", got, want, err)
		}
	})
	t.Run("bounds", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"tests":[`)
		for i := range maxPolicyTests + 1 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"name":"t","subject":"a","aud":["ep:x"],"operations":["read"],"expect":"allow"}`)
		}
		b.WriteString(`]}`)
		if got := fieldNames(func() error { _, err := ParseTestSuite([]byte(b.String())); return err }()); !slices.Equal(got, []string{"tests"}) {
			t.Fatalf("fields %v", got)
		}
	})
}

func TestRunTestsErrors(t *testing.T) {
	e := explainEngine(t, pol("p1"))
	_, err := e.RunTests(mustParseSuite(t, `{"tests":[{"name":"t","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"}]}`))
	if got := fieldNames(err); !slices.Equal(got, []string{"tests[0].time"}) {
		t.Fatalf("no time: %v", err)
	}
	// Too many triples: nothing runs.
	var changes []Change
	for i := range 2000 {
		changes = append(changes, PutDevice(&Device{ID: fmt.Sprintf("%032x", i+100)}))
	}
	for i := range 3 {
		changes = append(changes, PutSubject(&Subject{ID: fmt.Sprintf("s%d", i), Kind: User, Groups: []string{"many"}}))
	}
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	ops := `"o1","o2","o3","o4","o5","o6","o7","o8","o9","o10","o11","o12","o13","o14","o15","o16","o17"`
	_, err = e.RunTests(mustParseSuite(t, `{"time":"2030-01-02T03:04:05Z","tests":[{"name":"t","group":"many","devices":{"all":true},"operations":[`+ops+`],"expect":"deny"}]}`))
	if got := fieldNames(err); !slices.Equal(got, []string{"tests[0]"}) {
		t.Fatalf("too many checks: %v", err)
	}
}

func TestHTTPPolicyTests(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28))), pol("later", ops("reboot"), window(time.Hour, 0)))
	w := env.do("POST", policyTestsPath, env.adminKey, `{"tests":[
		{"name":"alice may set-temp (v2 by default)","subject":"alice","aud":["ep:hvac-1"],"operations":["set-temp"],"expect":"allow"},
		{"name":"alice may not in v1","subject":"alice","aud":["ep:hvac-1"],"operations":["set-temp"],"expect":"deny","profile":"v1"},
		{"name":"alice may read","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"}]}`)
	var rep TestReport
	if w.Code != 200 || strictUnmarshal(w.Body.Bytes(), &rep) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if rep.Passed != 2 || rep.Failed != 1 || rep.Results[2].Passed || rep.Results[2].Failures[0].Explanation.Reason != "no_allow_policy" {
		t.Fatalf("report %s", w.Body)
	}
	for _, s := range []string{`"object":"policy-test-report"`, `"failures_truncated":false`, `"got":"deny"`, `"checked":1`} {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("report lacks %s: %s", s, w.Body)
		}
	}
	// The service's time is the default: "later" applies from t0 + 1 h on.
	for _, c := range []struct{ time, want string }{{"", "deny"}, {`,"time":"2030-01-02T04:04:05Z"`, "allow"}} {
		w = env.do("POST", policyTestsPath, env.adminKey, `{"tests":[{"name":"n","subject":"alice","aud":["ep:hvac-1"],"operations":["reboot"],"expect":"`+c.want+`"}]`+c.time+`}`)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"passed":1`) {
			t.Fatalf("time %q: %d %s", c.time, w.Code, w.Body)
		}
	}
	w = env.do("POST", policyTestsPath, env.adminKey, `{"tests":[{"name":"n","subject":"alice","aud":["ep:hvac-1"],"operations":["x y"],"expect":"yes"}]}`)
	if e := decodeError(t, w); w.Code != 400 || e.Type != errTypeValidation || len(e.Fields) != 2 || e.Fields[0].Name != "tests[0].operations[0]" || e.Fields[1].Name != "tests[0].expect" {
		t.Fatalf("validation: %d %+v", w.Code, e)
	}
	w = env.do("POST", policyTestsPath, env.adminKey, `{"tests":[],"extra":true}`)
	if e := decodeError(t, w); w.Code != 400 || e.Type != errTypeBadRequest {
		t.Fatalf("unknown field: %d %+v", w.Code, e)
	}
	w = env.do("POST", policyTestsPath, env.aliceKey, `{"tests":[]}`)
	if e := decodeError(t, w); w.Code != 403 || e.Type != errTypeForbidden {
		t.Fatalf("non-admin: %d %+v", w.Code, e)
	}
}

// FuzzParseTestSuite: the test suite decoder and RunTests never panic,
// and every error is a typed one.
func FuzzParseTestSuite(f *testing.F) {
	f.Add([]byte(`{"time":"2030-01-02T03:04:05Z","profile":"v2","tests":[{"name":"a","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"},{"name":"b","group":"techs","devices":{"attributes":{"site":["roof"]}},"operations":["write"],"expect":"deny","time":"2031-01-01T00:00:00Z","profile":"v1"}]}`))
	f.Add([]byte(`{"tests":[{"name":"c","group":"none","devices":{"all":true},"operations":["x"],"expect":"deny"}]}`))
	f.Add([]byte(`{"tests":[{"name":"","subject":"a","group":"b","aud":["bad"],"devices":{"ids":["zz"]},"operations":[],"expect":""}]}`))
	e := explainEngine(f, pol("p1"), pol("d", denyEffect, ops("write"), groups("techs")))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseTestSuite(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if s.Time.IsZero() {
			s.Time = t0
		}
		rep, err := e.RunTests(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if rep.Passed+rep.Failed != len(s.Tests) {
			t.Fatalf("report %+v for %d tests", rep, len(s.Tests))
		}
	})
}
