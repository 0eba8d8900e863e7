package policy

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refStats counts the near-miss searches of refExplain, and those that
// met more than maxNearMissCandidates policies.
type refStats struct{ searches, truncated int }

// refExplain is a straightforward reference for Explain: it evaluates
// each (subject, device) pair again after deciding, collects every
// matched rule, and finds near misses by listing the candidates in the
// order Explain examines them (the pair's candidates, then the policies
// by subject key, then by device key), keeping the first
// maxNearMissCandidates, computing all failed conditions of each and
// sorting. TestExplainMatchesReference compares Explain with it.
func refExplain(e *Engine, r *Request, stats *refStats) (*Explanation, error) {
	devKeys, ops, auds, err := validateRequest(r)
	if err != nil {
		return nil, renameScopeFields(err)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	st := e.state()
	dec := st.decide(r, devKeys, ops, auds)
	x := &Explanation{
		Object: "explanation", Subject: r.Subject, Time: r.Time, Profile: profileName(r.Structured),
		Allowed: dec.Allowed, ExpiresAt: dec.Expiry, Policies: dec.Policies, Grants: dec.Grants, Denied: dec.Denied,
		Pairs: []PairExplanation{},
	}
	if x.Policies == nil {
		x.Policies = []string{}
	}
	if x.Grants == nil {
		x.Grants = []Grant{}
	}
	if dec.Delegation != nil && r.Structured {
		x.Delegation = &DelegationRule{MaxDepth: dec.Delegation.Depth, Operations: dec.Delegation.Operations}
	}
	subj := st.subjects[r.Subject]
	for i, k := range devKeys {
		d := st.device(k)
		var res []pairResult
		var cands []*compiled
		var denyStart time.Time
		if subj != nil && d != nil {
			res = make([]pairResult, len(ops))
			for _, c := range st.candidates(nil, subj, d) {
				if !slices.Contains(cands, c) {
					cands = append(cands, c)
				}
			}
			denyStart = evaluate(cands, ops, r.Time, res)
		}
		for j, op := range ops {
			pe := PairExplanation{Audience: auds[i], Operation: op, Matched: []PolicyMatch{}}
			if d != nil {
				pe.Device, pe.EndpointName = d.d.ID, d.d.EndpointName
			}
			switch {
			case subj == nil:
				pe.Reason = ReasonCode(ErrUnknownSubject)
			case d == nil:
				pe.Reason = ReasonCode(ErrUnknownDevice)
			default:
				refExplainPair(st, &pe, r, subj, d, cands, &res[j], denyStart, stats)
				if dec.Allowed {
					pe.LifetimePolicy, pe.ExpiresAt = pairLifetime(&res[j], &dec.Grants[j], denyStart)
				}
				if dn := dec.Denied; dn != nil && dn.Audience == auds[i] && dn.Operation == op && errors.Is(dn.Reason, ErrConstraintsDiffer) {
					pe.Allowed, pe.Reason = false, ReasonCode(ErrConstraintsDiffer)
					pe.NearMisses = refConstrainedMisses(&res[j], condConstraints,
						fmt.Sprintf("allows %s only under constraints that the other requested devices do not all allow", op))
				}
			}
			x.Pairs = append(x.Pairs, pe)
		}
	}
	return x, nil
}

func refExplainPair(st *state, pe *PairExplanation, r *Request, subj *subjectEntry, d *deviceEntry, cands []*compiled, pr *pairResult, denyStart time.Time, stats *refStats) {
	now, op := r.Time, pe.Operation
	for _, c := range cands {
		if !c.p.appliesAt(now) {
			continue
		}
		for i := range c.p.Operations {
			ru := c.rule(i)
			if ru.name != op && ru.name != AllOperations {
				continue
			}
			m := PolicyMatch{Policy: c.p.ID, Effect: c.p.Effect, Rule: ru.name}
			if c.p.Effect == Allow {
				m.ExpiresAt = c.bound(now)
				if len(ru.cons) > 0 {
					m.Constraints = cloneConstraints(ru.cons)
				}
				if d := c.p.Delegation; d != nil && (d.Operations == nil || slices.Contains(d.Operations, op)) {
					m.Delegation = &DelegationRule{MaxDepth: d.MaxDepth, Operations: slices.Clone(d.Operations)}
				}
			} else if !slices.Contains(pe.DenyPolicies, c.p.ID) {
				pe.DenyPolicies = append(pe.DenyPolicies, c.p.ID)
			}
			pe.Matched = append(pe.Matched, m)
		}
	}
	slices.SortStableFunc(pe.Matched, func(a, b PolicyMatch) int { return strings.Compare(a.Policy, b.Policy) })
	slices.Sort(pe.DenyPolicies)

	switch {
	case pr.uPolicy != nil:
		pe.LifetimePolicy, pe.ExpiresAt = pr.uPolicy.p.ID, pr.uBound
	case len(pr.alts) > 0:
		var best *altResult
		for k := range pr.alts {
			a := &pr.alts[k]
			if best == nil || a.bound.Before(best.bound) || a.bound.Equal(best.bound) && a.policy.p.ID < best.policy.p.ID {
				best = a
			}
		}
		pe.LifetimePolicy, pe.ExpiresAt = best.policy.p.ID, best.bound
	}
	if !denyStart.IsZero() && !pe.ExpiresAt.IsZero() && denyStart.Before(pe.ExpiresAt) {
		pe.ExpiresAt = denyStart
	}

	switch {
	case pr.deny != nil:
		pe.Reason = ReasonCode(ErrDenyPolicy)
	case pr.uPolicy == nil && len(pr.alts) == 0:
		pe.Reason = ReasonCode(ErrNoAllowPolicy)
		pe.NearMisses = refNearMisses(st, subj, d, cands, op, now, stats)
	case pr.uPolicy == nil && !r.Structured:
		pe.Reason = ReasonCode(ErrStructuredScopeRequired)
		pe.NearMisses = refConstrainedMisses(pr, condProfile,
			fmt.Sprintf("allows %s only with argument constraints, which need the v2 profile", op))
	default:
		pe.Allowed = true
	}
}

func refConstrainedMisses(pr *pairResult, cond, msg string) []NearMiss {
	var ids []string
	for _, a := range pr.alts {
		if !slices.Contains(ids, a.policy.p.ID) {
			ids = append(ids, a.policy.p.ID)
		}
	}
	slices.Sort(ids)
	out := []NearMiss{}
	for _, id := range ids[:min(len(ids), maxNearMisses)] {
		out = append(out, NearMiss{Policy: id, Effect: Allow, Failed: []FailedCondition{{Condition: cond, Message: msg}}})
	}
	return out
}

func refNearMisses(st *state, subj *subjectEntry, d *deviceEntry, cands []*compiled, op string, now time.Time, stats *refStats) []NearMiss {
	seq := slices.Clone(cands)
	for _, k := range subj.keys {
		seq = append(seq, st.policiesByKey(k)...)
	}
	for _, k := range d.keys {
		seq = append(seq, st.policiesByKey(k)...)
	}
	stats.searches++
	if len(seq) > maxNearMissCandidates {
		stats.truncated++
	}
	seq = seq[:min(len(seq), maxNearMissCandidates)]
	type miss struct {
		c    *compiled
		mask int
	}
	var found []miss
	for _, c := range seq {
		if c.p.Effect != Allow || slices.ContainsFunc(found, func(m miss) bool { return m.c == c }) {
			continue
		}
		if m := refFailedMask(c, subj, d, op, now); bits.OnesCount(uint(m)) == 1 || bits.OnesCount(uint(m)) == 2 {
			found = append(found, miss{c, m})
		}
	}
	slices.SortFunc(found, func(a, b miss) int {
		if na, nb := bits.OnesCount(uint(a.mask)), bits.OnesCount(uint(b.mask)); na != nb {
			return na - nb
		}
		return strings.Compare(a.c.p.ID, b.c.p.ID)
	})
	out := []NearMiss{}
	for _, m := range found[:min(len(found), maxNearMisses)] {
		out = append(out, NearMiss{Policy: m.c.p.ID, Effect: Allow, Failed: refFailedConditions(m.c, m.mask, subj, d, op)})
	}
	return out
}

// refFailedMask returns the conditions on which c fails for the pair,
// one bit each (failSubject, ...).
func refFailedMask(c *compiled, subj *subjectEntry, d *deviceEntry, op string, now time.Time) int {
	m := 0
	p := c.policy() // with its device attributes (see compiled.shed)
	if !slices.ContainsFunc(subj.keys, func(k string) bool { return slices.Contains(c.subjKeys, k) }) {
		m |= failSubject
	}
	if !refMatchesDevice(&p.Devices, d.d) {
		m |= failDevice
	}
	if !slices.ContainsFunc(p.Operations, func(r OperationRule) bool { return r.Name == op || r.Name == AllOperations }) {
		m |= failOperation
	}
	if p.Status != Active {
		m |= failStatus
	}
	if !p.ValidFrom.IsZero() && now.Before(p.ValidFrom) {
		m |= failValidFrom
	}
	if !p.ValidUntil.IsZero() && !now.Before(p.ValidUntil) {
		m |= failValidUntil
	}
	return m
}

// refMatchesDevice is the device selector's rule as the package
// documentation states it.
func refMatchesDevice(s *DeviceSelector, d *Device) bool {
	if s.All || slices.Contains(s.IDs, d.ID) || d.EndpointName != "" && slices.Contains(s.EndpointNames, d.EndpointName) {
		return true
	}
	if len(s.Attributes) == 0 {
		return false
	}
	for k, vs := range s.Attributes {
		v, ok := d.Attributes[k]
		if !ok || !slices.Contains(vs, v) {
			return false
		}
	}
	return true
}

func refFailedConditions(c *compiled, m int, subj *subjectEntry, d *deviceEntry, op string) []FailedCondition {
	var out []FailedCondition
	add := func(bit int, cond, format string, args ...any) {
		if m&bit != 0 {
			out = append(out, FailedCondition{Condition: cond, Message: fmt.Sprintf(format, args...)})
		}
	}
	p := c.policy()
	add(failSubject, condSubject, "applies to %s, not to %s", refDescribePolicySubjects(&p.Subjects), refDescribeSubject(subj.s))
	add(failDevice, condDevice, "selects %s, not %s", refDescribeSelector(&p.Devices), refDescribeDeviceRecord(d.d))
	var names []string
	for i := range c.p.Operations {
		ru := c.rule(i)
		if !slices.Contains(names, ru.name) {
			names = append(names, ru.name)
		}
	}
	add(failOperation, condOperation, "names %s, not %s", refShortList(names), op)
	add(failStatus, condStatus, "is %s", p.Status)
	add(failValidFrom, condValidFrom, "valid from %s, after the time asked", p.ValidFrom.UTC().Format(time.RFC3339))
	add(failValidUntil, condValidUntil, "valid until %s, not after the time asked", p.ValidUntil.UTC().Format(time.RFC3339))
	return out
}

func refShortList(list []string) string {
	const show = 5
	if len(list) <= show {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:show], ", "), len(list)-show)
}

func refDescribePolicySubjects(s *Subjects) string {
	var parts []string
	if len(s.Users) > 0 {
		parts = append(parts, "users "+refShortList(s.Users))
	}
	if len(s.Groups) > 0 {
		parts = append(parts, "groups "+refShortList(s.Groups))
	}
	if len(s.Applications) > 0 {
		parts = append(parts, "applications "+refShortList(s.Applications))
	}
	return strings.Join(parts, "; ")
}

func refDescribeSubject(s *Subject) string {
	d := string(s.Kind) + " " + s.ID
	if len(s.Groups) > 0 {
		d += " (groups " + refShortList(s.Groups) + ")"
	}
	return d
}

func refDescribeSelector(s *DeviceSelector) string {
	if s.All {
		return "all devices"
	}
	var parts []string
	if len(s.IDs) > 0 {
		parts = append(parts, "ids "+refShortList(s.IDs))
	}
	if len(s.EndpointNames) > 0 {
		parts = append(parts, "endpoint names "+refShortList(s.EndpointNames))
	}
	if len(s.Attributes) > 0 {
		var attrs []string
		for _, k := range slices.Sorted(mapsKeys(s.Attributes)) {
			attrs = append(attrs, k+"="+strings.Join(s.Attributes[k], "|"))
		}
		parts = append(parts, "attributes "+refShortList(attrs))
	}
	return strings.Join(parts, "; ")
}

func refDescribeDeviceRecord(d *Device) string {
	if d.EndpointName != "" {
		return "ep:" + d.EndpointName + " (id " + d.ID + ")"
	}
	return "id " + d.ID
}

// randomExplainStore returns the changes of a random store: the test
// directory, a few more subjects and devices, and up to 300 policies
// whose subjects and devices overlap a lot (so that the near-miss
// search meets more than maxNearMissCandidates policies), whose ids are
// not in the order they are added, and some of which are then deleted
// or replaced (so that the index lists are not in id order either).
func randomExplainStore(rng *rand.Rand) (puts, later []Change) {
	pick := func(list []string, n int) []string {
		out := slices.Clone(list)
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out[:n]
	}
	users := []string{"alice", "bob", "carol", "dave"}
	groupNames := []string{"techs", "contractors", "techs-east", "automation"}
	opNames := []string{"read", "write", "set-temp", "reboot", "configure"}
	devIDs := []string{dev1, dev2, dev3, "00000000000000000000000000000004"}
	puts = append(testDirectory(),
		PutSubject(&Subject{ID: "dave", Kind: User, Groups: []string{"techs", "techs-east", "contractors", "g1", "g2", "g3", "g4"}}),
		PutDevice(&Device{ID: devIDs[3], Attributes: map[string]string{"site": "roof", "model": "x", "floor": "2"}}),
	)
	randomPolicy := func(id string) *Policy {
		p := pol(id, lifetime(time.Duration(1+rng.IntN(48))*time.Hour))
		p.Subjects = Subjects{}
		for p.Subjects.Users == nil && p.Subjects.Groups == nil && p.Subjects.Applications == nil {
			if rng.IntN(2) == 0 {
				p.Subjects.Users = pick(users, 1+rng.IntN(2))
			}
			if rng.IntN(2) == 0 {
				p.Subjects.Groups = pick(groupNames, 1+rng.IntN(3))
			}
			if rng.IntN(5) == 0 {
				p.Subjects.Applications = []string{"tool"}
			}
		}
		switch rng.IntN(5) {
		case 0:
			p.Devices = DeviceSelector{All: true}
		case 1:
			p.Devices = DeviceSelector{EndpointNames: pick([]string{"hvac-1", "hvac-2", "pump-1"}, 1+rng.IntN(2))}
		case 2:
			p.Devices = DeviceSelector{IDs: pick(devIDs, 1+rng.IntN(2))}
		case 3:
			p.Devices = DeviceSelector{Attributes: map[string][]string{"site": pick([]string{"roof", "basement"}, 1+rng.IntN(2))}}
		default:
			p.Devices = DeviceSelector{IDs: pick(devIDs, 1), Attributes: map[string][]string{
				"site": pick([]string{"roof", "basement"}, 1), "model": pick([]string{"x", "y"}, 1+rng.IntN(2))}}
		}
		if rng.IntN(8) == 0 {
			// Long lists, which messages shorten.
			p.Subjects.Users = append(p.Subjects.Users, "u1", "u2", "u3", "u4", "u5", "u6")
			p.Subjects.Groups = append(p.Subjects.Groups, "g1", "g2", "g3", "g4", "g5")
		}
		if rng.IntN(8) == 0 && !p.Devices.All {
			p.Devices.EndpointNames = append(p.Devices.EndpointNames, "e1", "e2", "e3", "e4", "e5")
			if p.Devices.Attributes == nil {
				p.Devices.Attributes = map[string][]string{}
			}
			for _, k := range []string{"a1", "a2", "a3", "a4", "a5"} {
				p.Devices.Attributes[k] = []string{"v2", "v1"}
			}
		}
		p.Operations = nil
		if rng.IntN(8) == 0 {
			for _, o := range []string{"x1", "x2", "x3", "x4", "x5"} {
				p.Operations = append(p.Operations, OperationRule{Name: o})
			}
		}
		for _, o := range pick(opNames, 1+rng.IntN(3)) {
			p.Operations = append(p.Operations, OperationRule{Name: o})
		}
		if rng.IntN(10) == 0 {
			p.Operations = append(p.Operations, OperationRule{Name: AllOperations})
		}
		if rng.IntN(4) == 0 {
			p.Operations = append(p.Operations, OperationRule{Name: "set-temp", Constraints: []ArgConstraint{rangeArg(0, int64(rng.IntN(3)), 30)}})
		}
		switch rng.IntN(8) {
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
		case 3:
			window(-3*time.Hour, -time.Hour)(p)
			if rng.IntN(2) == 0 {
				p.Status = Inactive
			}
		}
		seen := map[string]bool{}
		p.Operations = slices.DeleteFunc(p.Operations, func(r OperationRule) bool {
			if len(r.Constraints) > 0 {
				return false
			}
			dup := seen[r.Name]
			seen[r.Name] = true
			return dup
		})
		// Some allow policies are delegable, chosen by id so that the
		// random sequence is the same as without delegation.
		if h := int(id[len(id)-1] - '0'); p.Effect == Allow && h%3 == 0 {
			p.Delegation = &DelegationRule{MaxDepth: 1 + h%4}
			if h%2 == 0 && p.Operations[0].Name != AllOperations {
				p.Delegation.Operations = []string{p.Operations[0].Name}
			}
		}
		return p
	}
	n := 1 + rng.IntN(100)
	if rng.IntN(3) == 0 {
		n = 150 + rng.IntN(150)
	}
	ids := rng.Perm(1000)[:n]
	for _, n := range ids {
		puts = append(puts, PutPolicy(randomPolicy(fmt.Sprintf("p%03d", n))))
	}
	for _, n := range ids {
		switch rng.IntN(6) {
		case 0:
			later = append(later, DeleteRecord(KindPolicy, fmt.Sprintf("p%03d", n)))
		case 1:
			later = append(later, PutPolicy(randomPolicy(fmt.Sprintf("p%03d", n))))
		}
	}
	return puts, later
}

// sameSentinel compares denial reasons, which are sentinel errors, by
// identity.
var sameSentinel = cmp.Comparer(func(a, b error) bool { return a == b })

// TestExplainMatchesReference compares Explain with refExplain on random
// stores and requests: the same explanation, near misses and their
// messages included.
func TestExplainMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 17))
	subjects := []string{"alice", "bob", "carol", "dave", "tool", "mallory"}
	auds := []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1", "id:" + dev1, "id:00000000000000000000000000000004", "ep:nope"}
	opNames := []string{"read", "write", "set-temp", "reboot", "configure"}
	pick := func(list []string, n int) []string {
		out := slices.Clone(list)
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out[:n]
	}
	withMisses, shortened := 0, 0 // pairs with near misses, messages with a shortened list
	var stats refStats
	for round := range 300 {
		puts, later := randomExplainStore(rng)
		var e Engine
		if err := e.Apply(puts...); err != nil {
			t.Fatal(err)
		}
		if len(later) > 0 {
			if err := e.Apply(later...); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			r := &Request{
				Subject:    subjects[rng.IntN(len(subjects))],
				Audience:   pick(auds, 1+rng.IntN(3)),
				Operations: pick(opNames, 1+rng.IntN(3)),
				Time:       t0.Add(time.Duration(rng.IntN(5)-2) * time.Hour),
				Structured: rng.IntN(2) == 0,
			}
			if rng.IntN(2) == 0 {
				// An operation that only "*" rules name.
				r.Operations = append(r.Operations, "op-none")
			}
			want, err := refExplain(&e, r, &stats)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Explain(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, sameSentinel); diff != "" {
				t.Fatalf("round %d, request %+v (-reference +Explain):\n%s", round, r, diff)
			}
			for _, p := range got.Pairs {
				if len(p.NearMisses) > 0 {
					withMisses++
				}
				for _, m := range p.NearMisses {
					for _, f := range m.Failed {
						if strings.HasSuffix(strings.Split(f.Message, ", not")[0], " more") {
							shortened++
						}
					}
				}
			}
		}
	}
	// The stores are random: make sure they exercise the search, and its
	// bound.
	t.Logf("%d near-miss searches, %d met more than %d policies; %d pairs with near misses, %d messages with a shortened list",
		stats.searches, stats.truncated, maxNearMissCandidates, withMisses, shortened)
	if withMisses < 500 || stats.truncated < 100 || shortened < 50 {
		t.Errorf("only %d pairs with near misses, %d searches at the bound, %d shortened lists", withMisses, stats.truncated, shortened)
	}
}
