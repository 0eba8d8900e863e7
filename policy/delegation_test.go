package policy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/securedeviceaccess/sda/token"
)

// delegable lets the policy's tokens be delegated to depth, passing on
// the named operations (none: every operation of the policy).
func delegable(depth int, ops ...string) polOpt {
	return func(p *Policy) { p.Delegation = &DelegationRule{MaxDepth: depth, Operations: ops} }
}

// TestDelegationRuleValidate checks each rule of a policy's delegation
// field: depth bounds, operation names, deny policies.
func TestDelegationRuleValidate(t *testing.T) {
	valid := []struct {
		name string
		mod  polOpt
	}{
		{"every operation, depth 1", delegable(1)},
		{"the maximum depth", delegable(maxDelegationDepth)},
		{"one of the policy's operations", func(p *Policy) { ops("read", "write")(p); delegable(2, "read")(p) }},
		{"all of the policy's operations listed", func(p *Policy) { ops("read", "write")(p); delegable(2, "write", "read")(p) }},
		{"any name under a wildcard rule", func(p *Policy) { ops("*")(p); delegable(1, "read-data")(p) }},
		{"a name of a constrained rule", func(p *Policy) { ops()(p); constrained("set", rangeArg(0, 1, 2))(p); delegable(1, "set")(p) }},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1", tt.mod)
			if err := p.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	wrong := []struct {
		name, field string
		mod         polOpt
	}{
		{"depth 0", "delegation.max_depth", delegable(0)},
		{"a negative depth", "delegation.max_depth", delegable(-1)},
		{"a depth above the maximum", "delegation.max_depth", delegable(maxDelegationDepth + 1)},
		{"an empty operation list", "delegation.operations", func(p *Policy) { p.Delegation = &DelegationRule{MaxDepth: 1, Operations: []string{}} }},
		{"an operation the policy does not grant", "delegation.operations[1]", func(p *Policy) { ops("read", "write")(p); delegable(1, "read", "reboot")(p) }},
		{"a malformed name", "delegation.operations[0]", delegable(1, "read data")},
		{"the wildcard", "delegation.operations[0]", func(p *Policy) { ops("*")(p); delegable(1, "*")(p) }},
		{"a duplicate", "delegation.operations[1]", delegable(1, "read", "read")},
		{"too many", "delegation.operations", func(p *Policy) { ops("*")(p); delegable(1, names("op", maxRules+1)...)(p) }},
		{"a deny policy", "delegation", func(p *Policy) { denyEffect(p); delegable(1)(p) }},
	}
	for _, tt := range wrong {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1", tt.mod)
			if err := p.Validate(); !errors.Is(err, ErrInvalid) || !hasField(err, tt.field) {
				t.Errorf("Validate = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
}

// TestDelegationJSON: the delegation field is decoded strictly, encoded
// back unchanged, omitted when nil, and copied by clone.
func TestDelegationJSON(t *testing.T) {
	const base = `{"id":"p","status":"active","effect":"allow","subjects":{"users":["u"]},"operations":[{"name":"read-data"},{"name":"configure"}],"devices":{"all":true},"token_lifetime_seconds":3600`
	c, err := DecodeChange(KindPolicy, []byte(base+`,"delegation":{"max_depth":2,"operations":["read-data"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &DelegationRule{MaxDepth: 2, Operations: []string{"read-data"}}
	if diff := gocmp.Diff(want, c.Policy.Delegation); diff != "" {
		t.Fatalf("decoded delegation (-want +got):\n%s", diff)
	}
	b, err := EncodeRecord(&c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delegation":{"max_depth":2,"operations":["read-data"]}`) {
		t.Errorf("encoded %s, want the delegation as decoded", b)
	}
	c2, err := DecodeChange(KindPolicy, b)
	if err != nil || !gocmp.Equal(c.Policy, c2.Policy) {
		t.Errorf("re-decoded %+v, %v; want %+v", c2.Policy, err, c.Policy)
	}

	cl := c.Policy.clone()
	cl.Delegation.Operations[0] = "configure"
	cl.Delegation.MaxDepth = 3
	if c.Policy.Delegation.Operations[0] != "read-data" || c.Policy.Delegation.MaxDepth != 2 {
		t.Errorf("clone shares the delegation: %+v", c.Policy.Delegation)
	}

	// No delegation: the field is left out.
	c, err = DecodeChange(KindPolicy, []byte(base+`}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(c.Policy)
	if err != nil || strings.Contains(string(b), "delegation") {
		t.Errorf("encoded %s, %v: want no delegation field", b, err)
	}

	for _, tc := range []struct {
		name, body string
		problem    JSONProblem
		path       string
	}{
		{"an unknown member", `,"delegation":{"max_depth":1,"depth":2}}`, JSONUnknownField, "delegation.depth"},
		{"a depth as text", `,"delegation":{"max_depth":"1"}}`, JSONWrongType, "delegation.max_depth"},
		{"operations as text", `,"delegation":{"max_depth":1,"operations":"read-data"}}`, JSONWrongType, "delegation.operations"},
		{"a number as an operation", `,"delegation":{"max_depth":1,"operations":["read-data",7]}}`, JSONWrongType, "delegation.operations[1]"},
		{"not an object", `,"delegation":true}`, JSONWrongType, "delegation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeChange(KindPolicy, []byte(base+tc.body))
			var je *JSONError
			if !errors.As(err, &je) || je.Problem != tc.problem || je.Path != tc.path {
				t.Errorf("DecodeChange = %v, want a %v *JSONError at %s", err, tc.problem, tc.path)
			}
		})
	}
	// Decoded but invalid: a field error.
	c, err = DecodeChange(KindPolicy, []byte(base+`,"delegation":{"max_depth":9}}`))
	if err == nil {
		err = c.Policy.Validate()
	}
	if !errors.Is(err, ErrInvalid) || !hasField(err, "delegation.max_depth") {
		t.Errorf("depth 9: %v, want a field error on delegation.max_depth", err)
	}
}

// TestDecideDelegation checks the rule that makes an operation of a token
// delegable: on every requested device, a policy that grants what the
// token carries for it, until the token's expiry, lets it be passed on;
// the depth is the least over the operations passed on.
func TestDecideDelegation(t *testing.T) {
	both := []string{"ep:hvac-1", "ep:hvac-2"}
	onDev := func(id string) polOpt { return devices(DeviceSelector{IDs: []string{id}}) }
	tests := []struct {
		name       string
		policies   []*Policy
		aud, ops   []string
		structured bool
		want       *token.Delegation
	}{
		{
			name:     "no policy delegates",
			policies: []*Policy{pol("p1")},
		},
		{
			name:     "one policy, every operation",
			policies: []*Policy{pol("p1", ops("read", "write"), delegable(2))},
			aud:      both, ops: []string{"read", "write"},
			want: &token.Delegation{Depth: 2, Operations: []string{"read", "write"}},
		},
		{
			name:     "only the listed operations",
			policies: []*Policy{pol("p1", ops("read", "write"), delegable(2, "write"))},
			ops:      []string{"read", "write"},
			want:     &token.Delegation{Depth: 2, Operations: []string{"write"}},
		},
		{
			name:     "a wildcard rule passes on the listed operations",
			policies: []*Policy{pol("p1", ops("*"), delegable(1, "read"))},
			ops:      []string{"write", "read"},
			want:     &token.Delegation{Depth: 1, Operations: []string{"read"}},
		},
		{
			name:     "a device whose policy does not delegate",
			policies: []*Policy{pol("p1", onDev(dev1), delegable(3)), pol("p2", onDev(dev2))},
			aud:      both,
		},
		{
			name:     "every device delegates: the least depth",
			policies: []*Policy{pol("p1", onDev(dev1), delegable(3)), pol("p2", onDev(dev2), delegable(1))},
			aud:      both,
			want:     &token.Delegation{Depth: 1, Operations: []string{"read"}},
		},
		{
			name:     "another policy of the same device delegates",
			policies: []*Policy{pol("p1", lifetime(48*time.Hour)), pol("p2", delegable(2))},
			want:     nil, // p2 allows 24 h, the token lasts 48 h
		},
		{
			name:     "another policy of the same device delegates for the token's lifetime",
			policies: []*Policy{pol("p1"), pol("p2", delegable(2), lifetime(48*time.Hour))},
			want:     &token.Delegation{Depth: 2, Operations: []string{"read"}},
		},
		{
			name:     "the deepest of the delegating policies of a pair",
			policies: []*Policy{pol("p1", delegable(1)), pol("p2", delegable(3)), pol("p3", delegable(2))},
			want:     &token.Delegation{Depth: 3, Operations: []string{"read"}},
		},
		{
			name: "the least depth over the operations",
			policies: []*Policy{
				pol("p1", ops("read"), delegable(3)),
				pol("p2", ops("write"), delegable(1)),
				pol("p3", ops("reboot")),
			},
			ops:  []string{"read", "write", "reboot"},
			want: &token.Delegation{Depth: 1, Operations: []string{"read", "write"}},
		},
		{
			name:     "a delegating policy that ends before the token",
			policies: []*Policy{pol("p1"), pol("p2", delegable(2), window(-time.Hour, time.Hour))},
		},
		{
			name:     "a delegating policy that ends with the token",
			policies: []*Policy{pol("p1", window(0, 2*time.Hour)), pol("p2", delegable(2), window(-time.Hour, 2*time.Hour))},
			want:     &token.Delegation{Depth: 2, Operations: []string{"read"}},
		},
		{
			name:     "a delegating policy cut short by a later deny like the token",
			policies: []*Policy{pol("p1", lifetime(48*time.Hour)), pol("p2", delegable(1)), pol("d", denyEffect, window(time.Hour, 0))},
			want:     &token.Delegation{Depth: 1, Operations: []string{"read"}},
		},
		{
			name:     "an inactive delegating policy",
			policies: []*Policy{pol("p1"), pol("p2", delegable(2), inactive)},
		},
		{
			name:     "another subject's delegating policy",
			policies: []*Policy{pol("p1"), pol("p2", delegable(2), users("bob"))},
		},
		{
			name:       "constrained grant, delegating",
			policies:   []*Policy{pol("p1", ops(), constrained("set", rangeArg(0, 1, 5)), delegable(1))},
			ops:        []string{"set"},
			structured: true,
			want:       &token.Delegation{Depth: 1, Operations: []string{"set"}},
		},
		{
			name: "constrained grant, delegated on one device by an unconstrained policy",
			policies: []*Policy{
				pol("p1", ops(), constrained("set", rangeArg(0, 1, 5)), onDev(dev1), delegable(1)),
				pol("p2", ops("set"), onDev(dev2), delegable(2)),
			},
			aud: both, ops: []string{"set"},
			structured: true,
			want:       &token.Delegation{Depth: 1, Operations: []string{"set"}},
		},
		{
			name: "constrained grant, one device's unconstrained policy does not delegate",
			policies: []*Policy{
				pol("p1", ops(), constrained("set", rangeArg(0, 1, 5)), onDev(dev1), delegable(1)),
				pol("p2", ops("set"), onDev(dev2)),
			},
			aud: both, ops: []string{"set"},
			structured: true,
		},
		{
			name: "an unconstrained grant is not delegated by a constrained one",
			policies: []*Policy{
				pol("p1", ops("set")),
				pol("p2", ops(), constrained("set", rangeArg(0, 1, 5)), delegable(2)),
			},
			ops:        []string{"set"},
			structured: true,
		},
		{
			name: "every alternative of the token must be delegated",
			policies: []*Policy{
				pol("p1", ops(), constrained("set", rangeArg(0, 1, 5)), delegable(2)),
				pol("p2", ops(), constrained("set", rangeArg(0, 7, 9))),
			},
			ops:        []string{"set"},
			structured: true,
		},
		{
			name: "alternatives delegated by different policies",
			policies: []*Policy{
				pol("p1", ops(), constrained("set", rangeArg(0, 1, 5)), delegable(2)),
				pol("p2", ops(), constrained("set", rangeArg(0, 7, 9)), delegable(4)),
			},
			ops:        []string{"set"},
			structured: true,
			want:       &token.Delegation{Depth: 2, Operations: []string{"set"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Engine
			changes := testDirectory()
			for _, p := range tt.policies {
				changes = append(changes, PutPolicy(p))
			}
			if err := e.Apply(changes...); err != nil {
				t.Fatal(err)
			}
			req := &Request{Subject: "alice", Audience: orList(tt.aud, "ep:hvac-1"), Operations: orList(tt.ops, "read"), Time: t0, Structured: tt.structured}
			d, err := e.Decide(req)
			if err != nil || !d.Allowed {
				t.Fatalf("Decide = %+v, %v; want allowed", d, err)
			}
			if diff := gocmp.Diff(tt.want, d.Delegation); diff != "" {
				t.Errorf("Delegation (-want +got):\n%s", diff)
			}
		})
	}
}

// refDelegation is a straightforward reference for Decision.Delegation:
// for each granted operation, device and permission of the token, it
// scans every policy for one that applies, matches, grants the
// permission (unconstrained, or under exactly its constraints), lets the
// operation be passed on and allows a token until the decision's expiry.
func refDelegation(e *Engine, r *Request, dec *Decision) *token.Delegation {
	if !dec.Allowed {
		return nil
	}
	devKeys, _, _, err := validateRequest(r)
	if err != nil {
		return nil
	}
	st := e.state()
	subj := st.subjects[r.Subject]
	var out *token.Delegation
	for _, g := range dec.Grants {
		pieces := g.Alternatives
		if pieces == nil {
			pieces = [][]ArgConstraint{nil}
		}
		opDepth := maxDelegationDepth
		for _, k := range devKeys {
			d := st.device(k)
			for _, piece := range pieces {
				best := 0
				for _, c := range st.policies {
					p := c.policy() // with its device attributes (see compiled.shed)
					if p.Effect != Allow || !p.appliesAt(r.Time) || !p.delegates(g.Operation) || c.bound(r.Time).Before(dec.Expiry) ||
						!slices.ContainsFunc(subj.keys, func(k string) bool { return slices.Contains(c.subjKeys, k) }) ||
						!refMatchesDevice(&p.Devices, d.d) {
						continue
					}
					if slices.ContainsFunc(p.Operations, func(ru OperationRule) bool {
						return len(ru.Constraints) == 0 && (ru.Name == g.Operation || ru.Name == AllOperations) ||
							piece != nil && ru.Name == g.Operation && gocmp.Equal(ru.Constraints, piece)
					}) {
						best = max(best, p.Delegation.MaxDepth)
					}
				}
				opDepth = min(opDepth, best)
			}
		}
		if opDepth > 0 {
			if out == nil {
				out = &token.Delegation{Depth: opDepth}
			}
			out.Depth = min(out.Depth, opDepth)
			out.Operations = append(out.Operations, g.Operation)
		}
	}
	return out
}

// TestDecideDelegationMatchesReference compares Decision.Delegation with
// refDelegation on random stores and requests, and checks that a
// policy's delegation changes nothing else in a decision.
func TestDecideDelegationMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	subjects := []string{"alice", "bob", "carol", "dave", "tool"}
	auds := []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1", "id:" + dev1, "id:00000000000000000000000000000004"}
	opNames := []string{"read", "write", "set-temp", "reboot", "configure"}
	delegated, partly := 0, 0
	for round := range 200 {
		puts, _ := randomExplainStore(rng)
		// plain has the policies without delegation.
		for i, c := range puts {
			if c.Kind == KindPolicy && c.Policy.Delegation != nil {
				p := c.Policy.clone()
				p.Delegation = nil
				puts[i] = PutPolicy(p)
			}
		}
		var plain Engine
		if err := plain.Apply(puts...); err != nil {
			t.Fatal(err)
		}
		for i, c := range puts {
			if c.Kind != KindPolicy || c.Policy.Effect != Allow || rng.IntN(2) == 0 {
				continue
			}
			p := c.Policy.clone()
			p.Delegation = &DelegationRule{MaxDepth: 1 + rng.IntN(maxDelegationDepth)}
			if rng.IntN(2) == 0 {
				for _, r := range p.Operations {
					if r.Name != AllOperations && !slices.Contains(p.Delegation.Operations, r.Name) && rng.IntN(2) == 0 {
						p.Delegation.Operations = append(p.Delegation.Operations, r.Name)
					}
				}
				if len(p.Delegation.Operations) == 0 {
					p.Delegation.Operations = nil
				}
			}
			puts[i] = PutPolicy(p)
		}
		var e Engine
		if err := e.Apply(puts...); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			r := &Request{
				Subject:    subjects[rng.IntN(len(subjects))],
				Audience:   auds[:1+rng.IntN(3)],
				Operations: opNames[rng.IntN(3):][:1+rng.IntN(3)],
				Time:       t0.Add(time.Duration(rng.IntN(5)-2) * time.Hour),
				Structured: rng.IntN(2) == 0,
			}
			got, err := e.Decide(r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := plain.Decide(r)
			if err != nil {
				t.Fatal(err)
			}
			if want.Delegation != nil {
				t.Fatalf("round %d: a decision without delegating policies has %+v", round, want.Delegation)
			}
			withoutDeleg := *got
			withoutDeleg.Delegation = nil
			if diff := gocmp.Diff(want, &withoutDeleg, sameSentinel); diff != "" {
				t.Fatalf("round %d, request %+v: delegation changed the decision (-without +with):\n%s", round, r, diff)
			}
			if diff := gocmp.Diff(refDelegation(&e, r, got), got.Delegation); diff != "" {
				t.Fatalf("round %d, request %+v (-reference +Decide):\n%s", round, r, diff)
			}
			if got.Delegation != nil {
				delegated++
				if len(got.Delegation.Operations) < len(got.Grants) {
					partly++
				}
			}
		}
	}
	t.Logf("%d delegable decisions, %d with some operations only", delegated, partly)
	if delegated < 100 || partly < 20 {
		t.Errorf("only %d delegable decisions, %d partly: the random stores do not exercise the rule", delegated, partly)
	}
}

// orList returns list, or a list of def when list is nil.
func orList(list []string, def string) []string {
	if list == nil {
		return []string{def}
	}
	return list
}

// TestTokenEndpointDelegation: a v2 token carries the decision's
// delegation claim, without the operation list when every operation of
// its scope may be passed on; a v1 token and a non-delegable grant carry
// none. The audit event says what the token lets its holder pass on.
func TestTokenEndpointDelegation(t *testing.T) {
	tests := []struct {
		name    string
		profile token.Profile
		policy  *Policy
		want    *token.Delegation
	}{
		{"v2, some operations", token.ProfileV2, pol("p1", ops("read", "configure"), delegable(1, "read")), &token.Delegation{Depth: 1, Operations: []string{"read"}}},
		{"v2, every operation", token.ProfileV2, pol("p1", ops("read", "configure"), delegable(3)), &token.Delegation{Depth: 3}},
		{"v2, every operation listed", token.ProfileV2, pol("p1", ops("read", "configure"), delegable(2, "configure", "read")), &token.Delegation{Depth: 2}},
		{"v2, not delegable", token.ProfileV2, pol("p1", ops("read", "configure")), nil},
		{"v1, delegable policy", token.ProfileV1, pol("p1", ops("read", "configure"), delegable(3)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.profile, tt.policy)
			w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1", "id:" + dev2}, "read configure"))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp struct {
				AccessToken []byte `json:"access_token"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			tok, err := token.Parse(resp.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tok.Verify(&env.anchor.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if c.Profile != tt.profile {
				t.Errorf("profile %v, want %v", c.Profile, tt.profile)
			}
			if diff := gocmp.Diff(tt.want, c.Delegation); diff != "" {
				t.Errorf("delegation claim (-want +got):\n%s", diff)
			}
			ev := auditEvents(t, env.audit)
			last := ev[len(ev)-1]
			if tt.want == nil {
				if _, ok := last["delegation_depth"]; ok {
					t.Errorf("audit event %v names a delegation", last)
				}
			} else if last["delegation_depth"] != float64(tt.want.Depth) {
				t.Errorf("audit event %v, want delegation_depth %d", last, tt.want.Depth)
			}
		})
	}
}

// TestMemoryStoreKeepsDelegation: a MemoryStore returns a policy's
// delegation as written, and a caller changing its own copy afterwards
// changes nothing in the store.
func TestMemoryStoreKeepsDelegation(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	p := pol("p1", ops("read", "write"), delegable(2, "read"))
	if _, err := s.Apply(ctx, PutPolicy(p)); err != nil {
		t.Fatal(err)
	}
	p.Delegation.Operations[0] = "write"
	p.Delegation.MaxDepth = 4
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &DelegationRule{MaxDepth: 2, Operations: []string{"read"}}
	if diff := gocmp.Diff(want, snap.Policies[0].Delegation); diff != "" {
		t.Errorf("stored delegation (-want +got):\n%s", diff)
	}
	snap.Policies[0].Delegation.Operations[0] = "write"
	again, _ := s.Snapshot(ctx)
	if diff := gocmp.Diff(want, again.Policies[0].Delegation); diff != "" {
		t.Errorf("a snapshot shares the stored delegation (-want +got):\n%s", diff)
	}
}

// TestWhatIfIgnoresDelegation: a policy's delegation is not part of a
// grant: adding, changing or removing it alone gains and loses nothing,
// while the same change with a grant in it is reported.
func TestWhatIfIgnoresDelegation(t *testing.T) {
	var e Engine
	if err := e.Apply(append(testDirectory(), PutPolicy(pol("p1", ops("read", "write"))), PutPolicy(pol("p2", delegable(2))))...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		change       *Policy
		gained, lost int64
	}{
		{"delegation added", pol("p1", ops("read", "write"), delegable(1, "read")), 0, 0},
		{"delegation changed", pol("p2", delegable(4)), 0, 0},
		{"delegation removed", pol("p2"), 0, 0},
		{"delegation added with a grant", pol("p2", ops("read", "reboot"), delegable(1)), 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, structured := range []bool{false, true} {
				im, err := e.WhatIf([]Change{PutPolicy(tc.change)}, t0, &ImpactOptions{Structured: structured})
				if err != nil {
					t.Fatal(err)
				}
				if im.Gained != tc.gained || im.Lost != tc.lost {
					t.Errorf("structured %v: gained %d, lost %d; want %d, %d", structured, im.Gained, im.Lost, tc.gained, tc.lost)
				}
			}
		})
	}
}

// TestExplainDelegation: an explanation shows what the token's
// delegation claim would allow (v2 only), and each matched allow rule of
// a policy that lets the pair's operation be passed on shows the
// policy's delegation.
func TestExplainDelegation(t *testing.T) {
	var e Engine
	if err := e.Apply(append(testDirectory(),
		PutPolicy(pol("p1", ops("read", "write"), delegable(2, "read"))),
		PutPolicy(pol("p2", ops("*"))))...); err != nil {
		t.Fatal(err)
	}
	for _, structured := range []bool{false, true} {
		x, err := e.Explain(&Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"read", "write"}, Time: t0, Structured: structured})
		if err != nil || !x.Allowed {
			t.Fatalf("Explain = %+v, %v", x, err)
		}
		var want *DelegationRule
		if structured {
			want = &DelegationRule{MaxDepth: 2, Operations: []string{"read"}}
		}
		if diff := gocmp.Diff(want, x.Delegation); diff != "" {
			t.Errorf("structured %v: delegation (-want +got):\n%s", structured, diff)
		}
		got := map[string]*DelegationRule{}
		for _, p := range x.Pairs {
			for _, m := range p.Matched {
				got[p.Operation+" "+m.Policy] = m.Delegation
			}
		}
		wantMatched := map[string]*DelegationRule{
			"read p1":  {MaxDepth: 2, Operations: []string{"read"}},
			"read p2":  nil,
			"write p1": nil, // p1 does not let write be passed on
			"write p2": nil,
		}
		if diff := gocmp.Diff(wantMatched, got); diff != "" {
			t.Errorf("structured %v: matched rules' delegation (-want +got):\n%s", structured, diff)
		}
	}
}
