package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// explainEngine returns an engine holding the test directory and policies.
func explainEngine(t testing.TB, policies ...*Policy) *Engine {
	t.Helper()
	var e Engine
	changes := testDirectory()
	for _, p := range policies {
		changes = append(changes, PutPolicy(p))
	}
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	return &e
}

func mustExplain(t *testing.T, e *Engine, r *Request) *Explanation {
	t.Helper()
	x, err := e.Explain(r)
	if err != nil {
		t.Fatal(err)
	}
	// The explanation's decision is Decide's.
	d, err := e.Decide(r)
	if err != nil {
		t.Fatal(err)
	}
	checkSameDecision(t, x, d)
	return x
}

func checkSameDecision(t *testing.T, x *Explanation, d *Decision) {
	t.Helper()
	if x.Allowed != d.Allowed || !x.ExpiresAt.Equal(d.Expiry) {
		t.Fatalf("explain says allowed=%v until %v; decide %v until %v", x.Allowed, x.ExpiresAt, d.Allowed, d.Expiry)
	}
	if diff := cmp.Diff(d.Policies, x.Policies, cmpEmpty); diff != "" {
		t.Fatalf("policies differ (-decide +explain):\n%s", diff)
	}
	if diff := cmp.Diff(d.Grants, x.Grants, cmpEmpty); diff != "" {
		t.Fatalf("grants differ (-decide +explain):\n%s", diff)
	}
	if (d.Denied == nil) != (x.Denied == nil) || d.Denied != nil && (*d.Denied != *x.Denied) {
		t.Fatalf("denial differs: decide %+v, explain %+v", d.Denied, x.Denied)
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b any) bool {
	va, vb := fmt.Sprint(a), fmt.Sprint(b)
	return va == "[]" && vb == "[]"
}, cmp.Ignore())

func req(subject string, aud []string, ops ...string) *Request {
	return &Request{Subject: subject, Audience: aud, Operations: ops, Time: t0}
}

// pairOf returns the pair of x for aud and op.
func pairOf(t *testing.T, x *Explanation, aud, op string) *PairExplanation {
	t.Helper()
	for i := range x.Pairs {
		if x.Pairs[i].Audience == aud && x.Pairs[i].Operation == op {
			return &x.Pairs[i]
		}
	}
	t.Fatalf("no pair (%s, %s) in %+v", aud, op, x.Pairs)
	return nil
}

func missIDs(p *PairExplanation) []string {
	var ids []string
	for _, m := range p.NearMisses {
		ids = append(ids, m.Policy)
	}
	return ids
}

func missConds(m NearMiss) []string {
	var c []string
	for _, f := range m.Failed {
		c = append(c, f.Condition)
	}
	return c
}

func TestExplainAllowed(t *testing.T) {
	e := explainEngine(t,
		pol("short", lifetime(time.Hour)),
		pol("long", lifetime(48*time.Hour), ops("*")),
		pol("write", ops("write"), lifetime(2*time.Hour), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
		pol("other", users("bob")),
	)
	x := mustExplain(t, e, req("alice", []string{"ep:hvac-1", "id:" + dev2}, "read", "write", "read"))
	if !x.Allowed || x.Object != "explanation" || x.Profile != "v1" || x.Subject != "alice" || !x.Time.Equal(t0) {
		t.Fatalf("explanation header %+v", x)
	}
	if len(x.Pairs) != 4 {
		t.Fatalf("%d pairs, want 4 (2 devices x 2 distinct operations)", len(x.Pairs))
	}
	// Devices outer, operations inner, in request order.
	var order []string
	for _, p := range x.Pairs {
		order = append(order, p.Audience+" "+p.Operation)
	}
	want := []string{"ep:hvac-1 read", "ep:hvac-1 write", "id:" + dev2 + " read", "id:" + dev2 + " write"}
	if !slices.Equal(order, want) {
		t.Fatalf("pairs %v, want %v", order, want)
	}
	p := pairOf(t, x, "ep:hvac-1", "read")
	if !p.Allowed || p.Reason != "" || p.Device != dev1 || p.EndpointName != "hvac-1" {
		t.Errorf("pair %+v", p)
	}
	// Both allows of read match; the longer one bounds the lifetime.
	var matched []string
	for _, m := range p.Matched {
		matched = append(matched, m.Policy+":"+m.Rule)
	}
	if !slices.Equal(matched, []string{"long:*", "short:read"}) {
		t.Errorf("matched %v", matched)
	}
	if p.LifetimePolicy != "long" || !p.ExpiresAt.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("lifetime chosen by %q until %v", p.LifetimePolicy, p.ExpiresAt)
	}
	if !p.Matched[1].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("short's bound %v", p.Matched[1].ExpiresAt)
	}
	// write on hvac-1: "long" (48 h) beats "write" (2 h) for the pair.
	if p := pairOf(t, x, "ep:hvac-1", "write"); p.LifetimePolicy != "long" || len(p.Matched) != 2 {
		t.Errorf("write pair %+v", p)
	}
	for _, p := range x.Pairs {
		if len(p.NearMisses) != 0 || len(p.DenyPolicies) != 0 {
			t.Errorf("allowed pair %+v has near misses or denies", p)
		}
	}
}

func TestExplainLifetimeChooser(t *testing.T) {
	// Each pair's lifetime is bounded by its own best allow; the token's
	// by the pair with the earliest.
	e := explainEngine(t,
		pol("roof", lifetime(10*time.Hour), devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}})),
		pol("basement", lifetime(3*time.Hour), devices(DeviceSelector{Attributes: map[string][]string{"site": {"basement"}}})),
		pol("capped", lifetime(20*time.Hour), window(-time.Hour, 5*time.Hour), devices(DeviceSelector{IDs: []string{dev3}})),
		pol("later-deny", denyEffect, window(8*time.Hour, 0), devices(DeviceSelector{IDs: []string{dev3}})),
	)
	x := mustExplain(t, e, req("alice", []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"}, "read"))
	if !x.Allowed || !x.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("allowed=%v until %v", x.Allowed, x.ExpiresAt)
	}
	for aud, want := range map[string]struct {
		pol string
		exp time.Duration
	}{"ep:hvac-1": {"roof", 10 * time.Hour}, "ep:hvac-2": {"basement", 3 * time.Hour}, "ep:pump-1": {"roof", 8 * time.Hour}} {
		// pump-1: roof's 10 h capped by the deny that starts at 8 h.
		p := pairOf(t, x, aud, "read")
		if p.LifetimePolicy != want.pol || !p.ExpiresAt.Equal(t0.Add(want.exp)) {
			t.Errorf("%s: lifetime by %q until %v, want %q until +%v", aud, p.LifetimePolicy, p.ExpiresAt, want.pol, want.exp)
		}
	}
	// capped allows pump-1 for 20 h but only until +5 h: roof is better.
	p := pairOf(t, x, "ep:pump-1", "read")
	if i := slices.IndexFunc(p.Matched, func(m PolicyMatch) bool { return m.Policy == "capped" }); i < 0 || !p.Matched[i].ExpiresAt.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("capped's bound in %+v", p.Matched)
	}
}

func TestExplainDenials(t *testing.T) {
	setTemp := constrained("set-temp", rangeArg(0, 16, 28))
	tests := []struct {
		name     string
		policies []*Policy
		r        *Request
		reason   error
		denyAud  string
		denyOp   string
		policy   string // the deny policy of the decision
		pairDeny []string
		misses   []string
	}{
		{
			name:     "unknown subject",
			policies: []*Policy{pol("p1")},
			r:        req("mallory", []string{"ep:hvac-1"}, "read"),
			reason:   ErrUnknownSubject, denyAud: "ep:hvac-1", denyOp: "read",
		},
		{
			name:     "unknown device",
			policies: []*Policy{pol("p1")},
			r:        req("alice", []string{"ep:hvac-1", "ep:nope"}, "read"),
			reason:   ErrUnknownDevice, denyAud: "ep:nope", denyOp: "read",
		},
		{
			name:     "deny wins",
			policies: []*Policy{pol("allow"), pol("zdeny", denyEffect), pol("adeny", denyEffect, ops("*"))},
			r:        req("alice", []string{"ep:hvac-1"}, "read"),
			reason:   ErrDenyPolicy, denyAud: "ep:hvac-1", denyOp: "read", policy: "adeny",
			pairDeny: []string{"adeny", "zdeny"},
		},
		{
			name:     "no allow policy",
			policies: []*Policy{pol("writer", ops("write"))},
			r:        req("alice", []string{"ep:hvac-1"}, "read"),
			reason:   ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read",
			misses: []string{"writer"},
		},
		{
			name:     "structured scope required",
			policies: []*Policy{pol("p1", ops(), setTemp)},
			r:        req("alice", []string{"ep:hvac-1"}, "set-temp"),
			reason:   ErrStructuredScopeRequired, denyAud: "ep:hvac-1", denyOp: "set-temp",
			misses: []string{"p1"},
		},
		{
			name: "constraints differ",
			policies: []*Policy{
				pol("p1", ops(), setTemp, devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops(), constrained("set-temp", rangeArg(0, 10, 20)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})),
			},
			r:      &Request{Subject: "alice", Audience: []string{"ep:hvac-1", "ep:hvac-2"}, Operations: []string{"set-temp"}, Time: t0, Structured: true},
			reason: ErrConstraintsDiffer, denyAud: "ep:hvac-2", denyOp: "set-temp",
			misses: []string{"p2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := mustExplain(t, explainEngine(t, tt.policies...), tt.r)
			if x.Allowed || x.Denied == nil || !errors.Is(x.Denied.Reason, tt.reason) || x.Denied.Audience != tt.denyAud ||
				x.Denied.Operation != tt.denyOp || x.Denied.PolicyID != tt.policy {
				t.Fatalf("denied %+v", x.Denied)
			}
			p := pairOf(t, x, tt.denyAud, tt.denyOp)
			if p.Allowed || p.Reason != ReasonCode(tt.reason) {
				t.Errorf("pair allowed=%v reason %q, want %q", p.Allowed, p.Reason, ReasonCode(tt.reason))
			}
			if !slices.Equal(p.DenyPolicies, tt.pairDeny) {
				t.Errorf("deny policies %v, want %v", p.DenyPolicies, tt.pairDeny)
			}
			if got := missIDs(p); !slices.Equal(got, tt.misses) {
				t.Errorf("near misses %v, want %v", got, tt.misses)
			}
			// A constrained allow misses on the profile, or on the
			// constraints the other devices allow.
			want := map[error]string{ErrStructuredScopeRequired: condProfile, ErrConstraintsDiffer: condConstraints}[tt.reason]
			if want != "" && (len(p.NearMisses) != 1 || !slices.Equal(missConds(p.NearMisses[0]), []string{want})) {
				t.Errorf("near misses %+v, want one failing %s", p.NearMisses, want)
			}
		})
	}
}

func TestExplainConstraints(t *testing.T) {
	e := explainEngine(t, pol("p1", ops("read"), constrained("set-temp", rangeArg(0, 16, 28)), constrained("set-temp", rangeArg(1, 0, 1))))
	r := &Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"set-temp"}, Time: t0, Structured: true}
	x := mustExplain(t, e, r)
	if !x.Allowed || x.Profile != "v2" {
		t.Fatalf("allowed=%v profile %s", x.Allowed, x.Profile)
	}
	p := pairOf(t, x, "ep:hvac-1", "set-temp")
	if len(p.Matched) != 2 {
		t.Fatalf("matched %+v", p.Matched)
	}
	got := [][]ArgConstraint{p.Matched[0].Constraints, p.Matched[1].Constraints}
	want := [][]ArgConstraint{{rangeArg(0, 16, 28)}, {rangeArg(1, 0, 1)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if p.LifetimePolicy != "p1" {
		t.Errorf("lifetime policy %q", p.LifetimePolicy)
	}
}

func TestExplainNearMisses(t *testing.T) {
	roof := DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}}
	tests := []struct {
		name   string
		p      *Policy
		conds  []string
		nomiss bool
	}{
		{name: "subject", p: pol("m", users("bob")), conds: []string{condSubject}},
		{name: "subject by group", p: pol("m", groups("juniors")), conds: []string{condSubject}},
		{name: "device", p: pol("m", devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})), conds: []string{condDevice}},
		{name: "device by attributes", p: pol("m", devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}, "model": {"y"}}})), conds: []string{condDevice}},
		{name: "operation", p: pol("m", ops("write")), conds: []string{condOperation}},
		{name: "status", p: pol("m", inactive), conds: []string{condStatus}},
		{name: "valid from", p: pol("m", window(time.Hour, 0)), conds: []string{condValidFrom}},
		{name: "valid until", p: pol("m", window(-2*time.Hour, -time.Hour)), conds: []string{condValidUntil}},
		{name: "two conditions", p: pol("m", users("bob"), inactive), conds: []string{condSubject, condStatus}},
		{name: "device and operation", p: pol("m", ops("write"), devices(roof), devices(DeviceSelector{IDs: []string{dev2}})), conds: []string{condDevice, condOperation}},
		{name: "three conditions are not a near miss", p: pol("m", users("bob"), ops("write"), inactive), nomiss: true},
		{name: "a deny is not a near miss", p: pol("m", denyEffect, ops("write")), nomiss: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := mustExplain(t, explainEngine(t, tt.p), req("alice", []string{"ep:hvac-1"}, "read"))
			p := pairOf(t, x, "ep:hvac-1", "read")
			if p.Reason != "no_allow_policy" {
				t.Fatalf("reason %q", p.Reason)
			}
			if tt.nomiss {
				if len(p.NearMisses) != 0 {
					t.Fatalf("near misses %+v", p.NearMisses)
				}
				return
			}
			if len(p.NearMisses) != 1 || p.NearMisses[0].Policy != "m" || p.NearMisses[0].Effect != Allow {
				t.Fatalf("near misses %+v", p.NearMisses)
			}
			if got := missConds(p.NearMisses[0]); !slices.Equal(got, tt.conds) {
				t.Errorf("failed %v, want %v", got, tt.conds)
			}
			for _, f := range p.NearMisses[0].Failed {
				if f.Message == "" {
					t.Errorf("condition %s without a message", f.Condition)
				}
			}
		})
	}
	t.Run("fewest failures first, then id, at most three", func(t *testing.T) {
		e := explainEngine(t,
			pol("z-one", ops("write")),
			pol("a-two", ops("write"), inactive),
			pol("b-one", users("bob")),
			pol("c-one", inactive),
			pol("d-one", window(time.Hour, 0)),
		)
		x := mustExplain(t, e, req("alice", []string{"ep:hvac-1"}, "read"))
		if got := missIDs(pairOf(t, x, "ep:hvac-1", "read")); !slices.Equal(got, []string{"b-one", "c-one", "d-one"}) {
			t.Errorf("near misses %v", got)
		}
	})
	t.Run("operation message names the policy's operations", func(t *testing.T) {
		x := mustExplain(t, explainEngine(t, pol("m", ops("read-data"))), req("alice", []string{"ep:hvac-1"}, "configure"))
		f := pairOf(t, x, "ep:hvac-1", "configure").NearMisses[0].Failed[0]
		if f.Condition != condOperation || f.Message != "names read-data, not configure" {
			t.Errorf("failed %+v", f)
		}
	})
	t.Run("a bounded number of candidates is examined", func(t *testing.T) {
		// More than maxNearMissCandidates policies for another user on
		// all devices: each is a near miss, and only a bounded number is
		// examined.
		var ps []*Policy
		for i := range maxNearMissCandidates + 50 {
			ps = append(ps, pol(fmt.Sprintf("p%04d", i), users("bob"), devices(DeviceSelector{All: true})))
		}
		e := explainEngine(t, ps...)
		st := e.st
		subj, d := st.subjects["alice"], st.devices[dev1]
		cands := st.candidates(nil, subj, d)
		if got := st.nearMisses(subj, d, cands, "read", t0); len(got) != maxNearMisses {
			t.Fatalf("%d near misses", len(got))
		}
	})
}

func TestExplainValidation(t *testing.T) {
	e := explainEngine(t)
	_, err := e.Explain(&Request{Subject: "alice", Audience: []string{"ep:hvac-1", "bad"}, Operations: []string{"read", "no way"}, Time: t0})
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	var names []string
	for _, f := range ve.Fields {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"aud[1]", "operations[1]"}) {
		t.Errorf("fields %v", names)
	}
}

func TestReasonCode(t *testing.T) {
	want := []string{"unknown_subject", "unknown_device", "deny_policy", "no_allow_policy", "structured_scope_required", "constraints_differ"}
	for i, rc := range reasonCodes {
		if got := ReasonCode(&DeniedError{Decision: &Decision{Denied: &Denial{Reason: rc.err}}}); got != want[i] {
			t.Errorf("ReasonCode(%v) = %q, want %q", rc.err, got, want[i])
		}
	}
	if got := ReasonCode(ErrInvalid); got != "" {
		t.Errorf("ReasonCode(ErrInvalid) = %q", got)
	}
	d := Denial{Audience: "ep:x", Operation: "read", Reason: ErrDenyPolicy, PolicyID: "d1"}
	b, err := json.Marshal(d)
	if err != nil || string(b) != `{"aud":"ep:x","operation":"read","reason":"deny_policy","policy":"d1"}` {
		t.Fatalf("%s %v", b, err)
	}
	var back Denial
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Fatalf("%+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"aud":"ep:x","operation":"read","reason":"nope"}`), &back); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown reason: %v", err)
	}
}

// TestExplainAgreesWithDecide compares Explain with Decide on random
// stores and requests: same decision, and pairs consistent with it.
func TestExplainAgreesWithDecide(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 15))
	users := []string{"alice", "bob", "carol", "tool"}
	groupNames := []string{"techs", "contractors", "techs-east", "automation"}
	opNames := []string{"read", "write", "set-temp", "reboot"}
	auds := []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1", "id:" + dev1, "ep:nope"}
	pick := func(list []string, n int) []string {
		out := slices.Clone(list)
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out[:n]
	}
	for round := range 300 {
		var ps []*Policy
		for i := range 1 + rng.IntN(12) {
			p := pol(fmt.Sprintf("p%02d", i), lifetime(time.Duration(1+rng.IntN(48))*time.Hour))
			switch rng.IntN(3) {
			case 0:
				p.Subjects = Subjects{Users: pick(users[:3], 1+rng.IntN(2))}
			case 1:
				p.Subjects = Subjects{Groups: pick(groupNames, 1+rng.IntN(2))}
			default:
				p.Subjects = Subjects{Applications: []string{"tool"}}
			}
			switch rng.IntN(4) {
			case 0:
				p.Devices = DeviceSelector{All: true}
			case 1:
				p.Devices = DeviceSelector{EndpointNames: pick([]string{"hvac-1", "hvac-2", "pump-1"}, 1+rng.IntN(2))}
			case 2:
				p.Devices = DeviceSelector{IDs: []string{[]string{dev1, dev2, dev3}[rng.IntN(3)]}}
			default:
				p.Devices = DeviceSelector{Attributes: map[string][]string{"site": pick([]string{"roof", "basement"}, 1)}}
			}
			p.Operations = nil
			for _, o := range pick(append(slices.Clone(opNames), "*"), 1+rng.IntN(2)) {
				p.Operations = append(p.Operations, OperationRule{Name: o})
			}
			if rng.IntN(3) == 0 {
				p.Operations = append(p.Operations, OperationRule{Name: "set-temp", Constraints: []ArgConstraint{rangeArg(0, int64(rng.IntN(3)), 30)}})
			}
			switch rng.IntN(6) {
			case 0:
				denyEffect(p)
				p.Operations = slices.DeleteFunc(p.Operations, func(r OperationRule) bool { return len(r.Constraints) > 0 })
				if len(p.Operations) == 0 {
					p.Operations = []OperationRule{{Name: "reboot"}}
				}
			case 1:
				p.Status = Inactive
			case 2:
				window(time.Duration(rng.IntN(5)-2)*time.Hour, time.Duration(3+rng.IntN(5))*time.Hour)(p)
			}
			// Drop duplicate unconstrained rules.
			seen := map[string]bool{}
			p.Operations = slices.DeleteFunc(p.Operations, func(r OperationRule) bool {
				if len(r.Constraints) > 0 {
					return false
				}
				dup := seen[r.Name]
				seen[r.Name] = true
				return dup
			})
			ps = append(ps, p)
		}
		e := explainEngine(t, ps...)
		r := &Request{
			Subject:    append(slices.Clone(users), "mallory")[rng.IntN(5)],
			Audience:   pick(auds, 1+rng.IntN(3)),
			Operations: pick(opNames, 1+rng.IntN(3)),
			Time:       t0,
			Structured: rng.IntN(2) == 0,
		}
		x, err := e.Explain(r)
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Decide(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(round), func(t *testing.T) { checkSameDecision(t, x, d) })
		// The pairs agree: an allowed decision has every pair allowed, a
		// denied one its denied pair denied with the decision's reason.
		for _, p := range x.Pairs {
			if x.Allowed && !p.Allowed {
				t.Fatalf("round %d: allowed decision, denied pair %+v", round, p)
			}
		}
		if !x.Allowed {
			p := pairOf(t, x, d.Denied.Audience, d.Denied.Operation)
			if p.Allowed || p.Reason != ReasonCode(d.Denied.Reason) {
				t.Fatalf("round %d: decision denied %+v, pair %+v", round, d.Denied, p)
			}
		}
	}
}

// TestNearMissCandidateBound checks that the near-miss search examines
// exactly maxNearMissCandidates policies, in index order: a near miss
// examined last is reported, one just beyond the bound is not, though its
// id comes first.
func TestNearMissCandidateBound(t *testing.T) {
	var ps []*Policy
	// Not near misses of (alice, hvac-1, read): each fails the device,
	// the operation and the status.
	for i := range maxNearMissCandidates - 1 {
		ps = append(ps, pol(fmt.Sprintf("m%03d", i), groups("techs"), ops("write"), inactive, devices(DeviceSelector{IDs: []string{dev2}})))
	}
	// Near misses failing the device only: the first is the last policy
	// examined, the second the first one not examined.
	ps = append(ps,
		pol("z-last", groups("techs"), devices(DeviceSelector{IDs: []string{dev2}})),
		pol("a-beyond", groups("techs"), devices(DeviceSelector{IDs: []string{dev2}})))
	x := mustExplain(t, explainEngine(t, ps...), req("alice", []string{"ep:hvac-1"}, "read"))
	p := pairOf(t, x, "ep:hvac-1", "read")
	if got := missIDs(p); !slices.Equal(got, []string{"z-last"}) {
		t.Fatalf("near misses %v, want [z-last]", got)
	}
	if got := missConds(p.NearMisses[0]); !slices.Equal(got, []string{condDevice}) {
		t.Errorf("failed %v", got)
	}
}
