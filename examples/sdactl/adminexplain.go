package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// Explain and policy tests: a decision with its reasons, and expectations
// of who may do what checked against the policies.

// Paths of the administration API that these commands call.
const (
	explainPath     = policy.AdminPathPrefix + "explain"
	policyTestsPath = policy.AdminPathPrefix + "policy-tests"
)

// explainRequest is the body of POST /admin/v1/explain.
type explainRequest struct {
	Subject    string     `json:"subject"`
	Audience   []string   `json:"aud"`
	Operations []string   `json:"operations"`
	Time       *time.Time `json:"time,omitempty"`
	Profile    string     `json:"profile,omitempty"`
}

// explanationJSON is the service's explanation of a decision.
type explanationJSON struct {
	Object    string      `json:"object"`
	Subject   string      `json:"subject"`
	Time      time.Time   `json:"time"`
	Profile   string      `json:"profile"`
	Allowed   bool        `json:"allowed"`
	ExpiresAt time.Time   `json:"expires_at"`
	Policies  []string    `json:"policies"`
	Grants    []grantJSON `json:"grants"`
	Denied    *denialJSON `json:"denied"`
	// Delegation is what a v2 token's delegation claim would allow.
	Delegation *policy.DelegationRule `json:"delegation"`
	Pairs      []pairExplJSON         `json:"pairs"`
}

type grantJSON struct {
	Operation    string                   `json:"operation"`
	Alternatives [][]policy.ArgConstraint `json:"alternatives"`
}

type denialJSON struct {
	Audience  string `json:"aud"`
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
	Policy    string `json:"policy"`
}

type pairExplJSON struct {
	Audience       string         `json:"aud"`
	Device         string         `json:"device"`
	EndpointName   string         `json:"endpoint_name"`
	Operation      string         `json:"operation"`
	Allowed        bool           `json:"allowed"`
	Reason         string         `json:"reason"`
	DenyPolicies   []string       `json:"deny_policies"`
	LifetimePolicy string         `json:"lifetime_policy"`
	ExpiresAt      time.Time      `json:"expires_at"`
	Matched        []policyMatch  `json:"matched"`
	NearMisses     []nearMissJSON `json:"near_misses"`
}

type policyMatch struct {
	Policy      string                 `json:"policy"`
	Effect      string                 `json:"effect"`
	Rule        string                 `json:"rule"`
	ExpiresAt   time.Time              `json:"expires_at"`
	Constraints []policy.ArgConstraint `json:"constraints"`
	Delegation  *policy.DelegationRule `json:"delegation"`
}

type nearMissJSON struct {
	Policy string `json:"policy"`
	Effect string `json:"effect"`
	Failed []struct {
		Condition string `json:"condition"`
		Message   string `json:"message"`
	} `json:"failed"`
}

// reasonText says what a reason code of a denial means, for an owner.
var reasonText = map[string]string{
	"unknown_subject":           "the subject is not in the directory",
	"unknown_device":            "no device of the directory has this audience",
	"deny_policy":               "a deny policy applies",
	"no_allow_policy":           "no allow policy applies",
	"structured_scope_required": "allowed only with argument constraints, which a v1 token cannot carry",
	"constraints_differ":        "the devices allow it under different argument constraints: ask for them one at a time",
}

func reasonDescription(code string) string {
	if t, ok := reasonText[code]; ok {
		return t + " (" + code + ")"
	}
	return clean(code)
}

var adminExplainCmd = adminCommand("explain", "", "explain a decision: the policies, the denial, what almost matched",
	`Asks POST /admin/v1/explain how the service decides a token request of
-subject for the devices -aud (repeatable) and the operations -ops at -time
(default: now), without issuing anything, and prints the decision and, per
device and operation: the verdict, the allow policies that matched (with
their expiry bounds, constraints and, for a policy that lets the operation
be passed on, its delegation depth), the deny policies that applied, the
policy that chose the token's lifetime, and for a denial up to 3 near
misses: policies that match all but one or two conditions, each failed
condition named (subject, device, operation, status, valid_from,
valid_until, constraints, profile). Exits with 1 when the request would be
denied, 0 when allowed. With -json, the service's answer.
`, "  sdactl admin explain "+exampleService+" \\\n      -subject alice -aud ep:hvac-1 -ops read-data\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		subject := fs.String("subject", "", "the `subject` asking (required)")
		var aud stringList
		fs.Var(&aud, "aud", "a `device`: ep:<endpoint name> or id:<32 hex device id>; repeatable (required)")
		ops := fs.String("ops", "", "the `operations`, separated by spaces (required)")
		tp := addTimeProfileFlags(fs)
		asJSON := fs.Bool("json", false, "print the service's explanation as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			switch {
			case *subject == "":
				return usageErrorf("-subject is required")
			case len(aud) == 0:
				return usageErrorf("-aud is required")
			case strings.TrimSpace(*ops) == "":
				return usageErrorf("-ops is required")
			}
			at, profile, err := tp.parse()
			if err != nil {
				return err
			}
			req := &explainRequest{Subject: *subject, Audience: aud, Operations: strings.Fields(*ops), Time: at, Profile: profile}
			var raw jsonRaw
			if err := api.call(ctx, "POST", explainPath, nil, req, &raw); err != nil {
				return err
			}
			var ex explanationJSON
			if err := json.Unmarshal(raw.b, &ex); err != nil || ex.Object != "explanation" {
				return inputErr(fmt.Errorf("the service's answer is not an explanation: %s", shorten(raw.b)))
			}
			if *asJSON {
				err = printRecord(e.stdout, raw.b, true, nil)
			} else {
				err = printExplanation(e.stdout, &ex)
			}
			if err != nil {
				return err
			}
			if !ex.Allowed {
				return failedErr(fmt.Errorf("the request would be denied"))
			}
			return nil
		}
	})

// printExplanation prints an explanation for an owner.
func printExplanation(w io.Writer, ex *explanationJSON) error {
	fmt.Fprintf(w, "subject:  %s\n", clean(ex.Subject))
	fmt.Fprintf(w, "time:     %s (profile %s)\n", fmtTime(ex.Time), clean(ex.Profile))
	if ex.Allowed {
		fmt.Fprintf(w, "decision: ALLOWED until %s\n", fmtTime(ex.ExpiresAt))
		fmt.Fprintf(w, "policies: %s\n", orDash(strings.Join(ex.Policies, ", ")))
		fmt.Fprintf(w, "scope:    %s\n", grantsText(ex.Grants))
		if d := ex.Delegation; d != nil {
			fmt.Fprintf(w, "delegable: %s\n", delegationText(d))
		}
	} else {
		fmt.Fprintln(w, "decision: DENIED")
		if d := ex.Denied; d != nil {
			by := ""
			if d.Policy != "" {
				by = " by policy " + d.Policy
			}
			fmt.Fprintf(w, "because:  %s on %s: %s%s\n", clean(d.Operation), clean(d.Audience), reasonDescription(d.Reason), by)
		}
	}
	for i := range ex.Pairs {
		fmt.Fprintln(w)
		printPair(w, &ex.Pairs[i], "")
	}
	return nil
}

// printPair prints the explanation of one (device, operation) pair, each
// line prefixed with indent.
func printPair(w io.Writer, p *pairExplJSON, indent string) {
	dev := clean(p.Audience)
	switch {
	case p.EndpointName != "" && p.Device != "":
		dev += " (" + clean(p.EndpointName) + ", " + p.Device + ")"
	case p.Device != "":
		dev += " (" + p.Device + ")"
	}
	verdict := "allowed"
	if !p.Allowed {
		verdict = "DENIED: " + reasonDescription(p.Reason)
	} else if !p.ExpiresAt.IsZero() {
		verdict += " until " + fmtTime(p.ExpiresAt)
	}
	fmt.Fprintf(w, "%s%s %s: %s\n", indent, dev, clean(p.Operation), verdict)
	for _, m := range p.Matched {
		s := fmt.Sprintf("%s (%s", m.Policy, m.Effect)
		if m.Rule != "" && m.Rule != p.Operation {
			s += ", rule " + clean(m.Rule)
		}
		if len(m.Constraints) > 0 {
			s += ", " + ruleText(p.Operation, m.Constraints)
		}
		if !m.ExpiresAt.IsZero() {
			s += ", until " + fmtTime(m.ExpiresAt)
		}
		if m.Delegation != nil {
			s += fmt.Sprintf(", delegable depth %d", m.Delegation.MaxDepth)
		}
		fmt.Fprintf(w, "%s  matched:   %s)\n", indent, s)
	}
	if len(p.DenyPolicies) > 0 {
		fmt.Fprintf(w, "%s  denied by: %s\n", indent, strings.Join(p.DenyPolicies, ", "))
	}
	if p.LifetimePolicy != "" {
		fmt.Fprintf(w, "%s  lifetime:  %s\n", indent, p.LifetimePolicy)
	}
	for _, n := range p.NearMisses {
		var failed []string
		for _, f := range n.Failed {
			failed = append(failed, clean(f.Condition)+": "+clean(f.Message))
		}
		fmt.Fprintf(w, "%s  near miss: %s (%s): %s\n", indent, n.Policy, n.Effect, strings.Join(failed, "; "))
	}
}

// grantsText is the scope that grants give, in the text form.
func grantsText(gs []grantJSON) string {
	var parts []string
	for _, g := range gs {
		if len(g.Alternatives) == 0 {
			parts = append(parts, g.Operation)
		}
		for _, alt := range g.Alternatives {
			parts = append(parts, ruleText(g.Operation, alt))
		}
	}
	return orDash(clean(strings.Join(parts, " ")))
}

// testReportJSON is the report of a policy test suite.
type testReportJSON struct {
	Object  string           `json:"object"`
	Passed  int              `json:"passed"`
	Failed  int              `json:"failed"`
	Results []testResultJSON `json:"results"`
}

type testResultJSON struct {
	Name              string            `json:"name"`
	Passed            bool              `json:"passed"`
	Checked           int               `json:"checked"`
	Message           string            `json:"message"`
	Failures          []testFailureJSON `json:"failures"`
	FailuresTruncated bool              `json:"failures_truncated"`
}

type testFailureJSON struct {
	Subject      string        `json:"subject"`
	Device       string        `json:"device"`
	EndpointName string        `json:"endpoint_name"`
	Operation    string        `json:"operation"`
	Got          string        `json:"got"`
	Explanation  *pairExplJSON `json:"explanation"`
}

var adminTestCmd = adminCommand("test", "TESTFILE", "run policy tests: expectations of who may do what, checked against the policies",
	`Runs the tests of TESTFILE (JSON or YAML, "-": stdin) against the service's
policies (POST /admin/v1/policy-tests), or with -store FILE against a store
file or a document of "sdactl store export", offline (no service is called:
for CI). Prints PASS or FAIL per test and, for a failure, each (subject,
device, operation) decided otherwise than expected with its explanation
(as "sdactl admin explain" prints it; at most 5 per test). Exits with 1
when a test fails, 0 when all pass.

A test names exactly one of subject or group (every member of the group),
exactly one of aud (a list of devices' audiences) or devices (a device
selector as in a policy), the operations, and expect: allow or deny. It
passes when every (subject, device, operation) decided alone has the
expected outcome. The file may set time and profile for all its tests, and
each test its own; -time and -profile set them where the file does not
(default: the service's clock and profile; offline, now and v2).

For example, tests.yaml:
    tests:
      - name: alice may read hvac-1
        subject: alice
        aud: [ep:hvac-1]
        operations: [read-data]
        expect: allow
      - name: no technician may update-firmware anywhere
        group: technicians
        devices: {all: true}
        operations: [update-firmware]
        expect: deny
`, "  sdactl admin test "+exampleService+" tests.yaml\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		store := fs.String("store", "", "run offline against this store `file` or export document, instead of a service")
		tp := addTimeProfileFlags(fs)
		asJSON := fs.Bool("json", false, "print the report as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 1, 1, "TESTFILE"); err != nil {
				return err
			}
			at, profile, err := tp.parse()
			if err != nil {
				return err
			}
			suite, err := e.readJSONOrYAML(args[0])
			if err != nil {
				return err
			}
			if suite, err = suiteDefaults(suite, at, profile); err != nil {
				return inputErr(fmt.Errorf("%s: not a test suite: %w", args[0], err))
			}
			var raw []byte
			if *store != "" {
				if raw, err = offlineTests(e, *store, args[0], suite); err != nil {
					return err
				}
			} else {
				var ans jsonRaw
				if err := api.call(ctx, "POST", policyTestsPath, nil, json.RawMessage(suite), &ans); err != nil {
					return err
				}
				raw = ans.b
			}
			var rep testReportJSON
			if err := json.Unmarshal(raw, &rep); err != nil || rep.Object != "policy-test-report" {
				return inputErr(fmt.Errorf("the answer is not a test report: %s", shorten(raw)))
			}
			if *asJSON {
				err = printRecord(e.stdout, raw, true, nil)
			} else {
				err = printTestReport(e.stdout, &rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed > 0 {
				return failedErr(fmt.Errorf("%d of %d tests failed", rep.Failed, rep.Passed+rep.Failed))
			}
			return nil
		}
	})

// printTestReport prints a test report for an owner.
func printTestReport(w io.Writer, rep *testReportJSON) error {
	for _, r := range rep.Results {
		verdict := "PASS"
		if !r.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s (%s checked)\n", verdict, clean(r.Name), strconv.Itoa(r.Checked))
		if r.Message != "" {
			fmt.Fprintf(w, "      %s\n", clean(r.Message))
		}
		for _, f := range r.Failures {
			want := "deny"
			if f.Got == "deny" {
				want = "allow"
			}
			fmt.Fprintf(w, "      %s on %s %s: %s, expected %s\n", clean(f.Subject), deviceText(f.Device, f.EndpointName),
				clean(f.Operation), clean(f.Got), want)
			if f.Explanation != nil {
				printPair(w, f.Explanation, "        ")
			}
		}
		if r.FailuresTruncated {
			fmt.Fprintln(w, "      (more failures not listed)")
		}
	}
	if rep.Failed == 0 {
		fmt.Fprintf(w, "all %s passed\n", plural(rep.Passed, "test"))
	} else {
		fmt.Fprintf(w, "%d of %s failed\n", rep.Failed, plural(rep.Passed+rep.Failed, "test"))
	}
	return nil
}

// suiteDefaults sets the suite's time and profile, where the file gives
// none, to the flags' (nil and "": the service's own defaults).
func suiteDefaults(suite []byte, at *time.Time, profile string) ([]byte, error) {
	if at == nil && profile == "" {
		return suite, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(suite, &doc); err != nil {
		return nil, err
	}
	if _, ok := doc["time"]; !ok && at != nil {
		doc["time"], _ = json.Marshal(at)
	}
	if _, ok := doc["profile"]; !ok && profile != "" {
		doc["profile"], _ = json.Marshal(profile)
	}
	return json.Marshal(doc)
}

// offlineTests runs a test suite against the records of a store file or
// export document (Engine.RunTests) and returns the report as JSON. The
// suite's time defaults to now, its profile to v2.
func offlineTests(e *env, store, name string, suite []byte) ([]byte, error) {
	snap, err := e.readSnapshotFile(store)
	if err != nil {
		return nil, err
	}
	s, err := policy.ParseTestSuite(suite)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", name, err))
	}
	if s.Time.IsZero() {
		s.Time = e.now().UTC().Truncate(time.Second)
	}
	if s.Profile == "" {
		s.Profile = "v2"
	}
	var eng policy.Engine
	if err := eng.Load(snap); err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", store, err))
	}
	rep, err := eng.RunTests(s)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", name, err))
	}
	return json.Marshal(rep)
}
