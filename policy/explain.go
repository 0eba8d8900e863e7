package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Explanation is the answer of [Engine.Explain]: the decision that
// [Engine.Decide] makes on the same request, and the reasoning behind it
// for each (device, operation) pair. Its JSON form is the answer of POST
// /admin/v1/explain (docs/PROTOCOL.md section 9, "Explain and policy
// tests").
type Explanation struct {
	// Object is "explanation".
	Object string `json:"object"`
	// Subject, Time and Profile ("v1" or "v2") repeat the request.
	Subject string    `json:"subject"`
	Time    time.Time `json:"time"`
	Profile string    `json:"profile"`
	// Allowed, ExpiresAt, Policies, Grants and Denied are those of the
	// [Decision]: Expiry, Policies and Grants when allowed, Denied (the
	// first denied pair) when not.
	Allowed   bool      `json:"allowed"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Policies  []string  `json:"policies"`
	Grants    []Grant   `json:"grants"`
	Denied    *Denial   `json:"denied,omitempty"`
	// Delegation is, when allowed in the v2 profile, what the token's
	// delegation claim would allow ([Decision].Delegation): the depth, and
	// the delegable operations in request order, all of them listed. Nil
	// when nothing is delegable, and in the v1 profile.
	Delegation *DelegationRule `json:"delegation,omitempty"`
	// Pairs explains each distinct (audience, operation) pair of the
	// request in request order, devices outer.
	Pairs []PairExplanation `json:"pairs"`
}

// PairExplanation explains one (device, operation) pair of a request.
type PairExplanation struct {
	// Audience is the request's audience entry; Device and EndpointName
	// identify the device it names, when the directory has it.
	Audience     string `json:"aud"`
	Device       string `json:"device,omitempty"`
	EndpointName string `json:"endpoint_name,omitempty"`
	Operation    string `json:"operation"`
	// Allowed says whether the policies allow the pair. A pair is decided
	// as if asked alone (one audience, one operation), except the pair
	// that a request's [ErrConstraintsDiffer] denial names, which is denied
	// with it. Reason, when not allowed, is a reason code (see
	// [ReasonCode]).
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
	// DenyPolicies lists, sorted, the deny policies that apply to the pair.
	DenyPolicies []string `json:"deny_policies,omitempty"`
	// LifetimePolicy is the allow policy that bounds the pair's token
	// lifetime, ExpiresAt that bound (also capped by the start of a deny
	// policy that will apply later). For a denied pair they are what an
	// allowed one would get, when an allow policy applies.
	LifetimePolicy string    `json:"lifetime_policy,omitempty"`
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	// Matched lists the operation rules of the policies that match the
	// pair and apply at the request's time, sorted by policy id.
	Matched []PolicyMatch `json:"matched"`
	// NearMisses lists, for a denied pair, up to three policies of the
	// effect the pair lacks that match on all but one or two conditions,
	// fewest failed conditions first, then by id.
	NearMisses []NearMiss `json:"near_misses,omitempty"`
}

// PolicyMatch is one operation rule of a policy that matches a pair and
// applies.
type PolicyMatch struct {
	Policy string `json:"policy"`
	Effect Effect `json:"effect"`
	// Rule is the rule's operation name: the pair's operation, or "*".
	Rule string `json:"rule"`
	// ExpiresAt is, for an allow policy, the latest expiry it allows for
	// a token issued at the request's time.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Constraints are the rule's argument constraints, all of which must
	// hold; none means the rule allows the operation without constraints.
	Constraints []ArgConstraint `json:"constraints,omitempty"`
	// Delegation is, for an allow policy that lets the pair's operation
	// be passed on, the policy's delegation (see [DelegationRule]).
	Delegation *DelegationRule `json:"delegation,omitempty"`
}

// NearMiss is a policy that almost applies to a denied pair, and the
// conditions it fails.
type NearMiss struct {
	Policy string            `json:"policy"`
	Effect Effect            `json:"effect"`
	Failed []FailedCondition `json:"failed"`
}

// FailedCondition names a condition a near miss fails and says why.
// Condition is one of "subject", "device", "operation", "status",
// "valid_from", "valid_until", "constraints" and "profile".
type FailedCondition struct {
	Condition string `json:"condition"`
	Message   string `json:"message"`
}

// Conditions of a [FailedCondition].
const (
	condSubject     = "subject"
	condDevice      = "device"
	condOperation   = "operation"
	condStatus      = "status"
	condValidFrom   = "valid_from"
	condValidUntil  = "valid_until"
	condConstraints = "constraints"
	condProfile     = "profile"
)

// reasonCodes are the codes of the denial reasons, in the order of their
// declaration in errors.go.
var reasonCodes = [...]struct {
	err  error
	code string
}{
	{ErrUnknownSubject, "unknown_subject"},
	{ErrUnknownDevice, "unknown_device"},
	{ErrDenyPolicy, "deny_policy"},
	{ErrNoAllowPolicy, "no_allow_policy"},
	{ErrStructuredScopeRequired, "structured_scope_required"},
	{ErrConstraintsDiffer, "constraints_differ"},
}

// ReasonCode returns the code that the JSON of the administration API
// gives the denial reason err ("unknown_subject", "unknown_device",
// "deny_policy", "no_allow_policy", "structured_scope_required",
// "constraints_differ"), or "" when err matches none of them.
func ReasonCode(err error) string {
	for _, rc := range reasonCodes {
		if err == rc.err {
			return rc.code
		}
	}
	for _, rc := range reasonCodes {
		if errors.Is(err, rc.err) {
			return rc.code
		}
	}
	return ""
}

// denialJSON is the JSON form of a [Denial].
type denialJSON struct {
	Audience  string `json:"aud"`
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
	PolicyID  string `json:"policy,omitempty"`
}

// MarshalJSON encodes the denial as {"aud", "operation", "reason",
// "policy"}, the reason as its [ReasonCode].
func (d Denial) MarshalJSON() ([]byte, error) {
	return json.Marshal(denialJSON{Audience: d.Audience, Operation: d.Operation, Reason: ReasonCode(d.Reason), PolicyID: d.PolicyID})
}

// UnmarshalJSON decodes what MarshalJSON encodes, strictly; an unknown
// reason code is an error matching [ErrInvalid].
func (d *Denial) UnmarshalJSON(b []byte) error {
	var v denialJSON
	if err := strictUnmarshal(b, &v); err != nil {
		return err
	}
	i := slices.IndexFunc(reasonCodes[:], func(rc struct {
		err  error
		code string
	}) bool {
		return rc.code == v.Reason
	})
	if i < 0 {
		return fmt.Errorf("%w: unknown denial reason %q", ErrInvalid, v.Reason)
	}
	*d = Denial{Audience: v.Audience, Operation: v.Operation, Reason: reasonCodes[i].err, PolicyID: v.PolicyID}
	return nil
}

// profileName returns "v2" for a structured request and "v1" otherwise.
func profileName(structured bool) string {
	if structured {
		return "v2"
	}
	return "v1"
}

// renameScopeFields renames the field errors of validateRequest that name
// the operations "scope" (the token request's field) to "operations".
func renameScopeFields(err error) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &ValidationError{Fields: slices.Clone(ve.Fields)}
	for i, f := range out.Fields {
		if rest, ok := strings.CutPrefix(f.Name, "scope"); ok {
			out.Fields[i].Name = "operations" + rest
		}
	}
	return out
}

// Explain decides r as [Engine.Decide] does and explains the decision:
// for each (device, operation) pair, the policies that matched it, the
// deny policies that applied, the allow policy that bounds its lifetime
// and, for a denied pair, the policies that almost matched. It returns an
// error (matching [ErrInvalid], naming "subject", "time", "aud[i]" or
// "operations[i]") only for a malformed request.
//
// Near misses are looked up by index among the policies naming the
// subject (or one of its groups), those selecting the device by id,
// endpoint name or attribute, and those that match both: at most
// maxNearMissCandidates policies are examined per pair, so that the cost
// does not grow with the number of policies. A store where more policies
// than that name one group or select all devices may have near misses
// that Explain does not report.
func (e *Engine) Explain(r *Request) (*Explanation, error) {
	b := decideBufs.Get().(*decideBuf) // working memory, as for Decide
	defer b.release()
	if err := b.validate(r); err != nil {
		return nil, renameScopeFields(err)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state().explainWith(r, b), nil
}

// explain explains the validated request r, whose distinct device keys,
// operations and audiences are given, on st.
func (st *state) explain(r *Request, devKeys, ops, auds []string) *Explanation {
	return st.explainWith(r, newDecideBuf(devKeys, ops, auds))
}

// explainWith explains the validated request r, whose distinct devices,
// operations and audiences b holds, on st, with b's working memory (the
// explanation shares none of it). It evaluates each known device's
// candidate policies once, and decides from those results as decide
// does.
func (st *state) explainWith(r *Request, b *decideBuf) *Explanation {
	ops, auds := b.ops, b.auds
	subj := st.subjects[r.Subject]
	b.devs = b.devs[:0]
	for _, d := range b.refs {
		b.devs = append(b.devs, st.deviceOf(d))
	}
	devs := b.devs
	// The candidates of device i are cands[bounds[i]:bounds[i+1]], its
	// results results[i*len(ops):(i+1)*len(ops)].
	cands := b.cands[:0]
	defer func() { b.cands = cands }()
	n := len(devs) * len(ops)
	if cap(b.results) < n {
		b.results = make([]pairResult, n)
	}
	results := b.results[:n]
	clear(results)
	// bounds, then matches (below).
	if cap(b.ints) < len(devs)+1+n {
		b.ints = make([]int, len(devs)+1+n)
	}
	ints := b.ints[:len(devs)+1+n]
	clear(ints)
	bounds := ints[:len(devs)+1]
	if cap(b.times) < len(devs) {
		b.times = make([]time.Time, len(devs))
	}
	denyStarts := b.times[:len(devs)]
	clear(denyStarts)
	var denyStart time.Time
	for i, d := range devs {
		if subj != nil && d != nil {
			cands = st.candidates(cands, subj, d)
			cands = cands[:bounds[i]+len(uniqueCandidates(cands[bounds[i]:]))]
			denyStarts[i] = evaluate(cands[bounds[i]:], ops, r.Time, results[i*len(ops):(i+1)*len(ops)])
			denyStart = earliest(denyStart, denyStarts[i])
		}
		bounds[i+1] = len(cands)
	}
	// The same sorted by id, for the matched rules, and the number of
	// rules that match each pair.
	byID := append(b.byID[:0], cands...)
	defer func() { b.byID = byID }()
	matches := ints[len(devs)+1:]
	total := 0
	for i := range devs {
		slices.SortStableFunc(byID[bounds[i]:bounds[i+1]], func(a, b *compiled) int { return strings.Compare(a.p.ID, b.p.ID) })
		for _, c := range cands[bounds[i]:bounds[i+1]] {
			if !c.p.appliesAt(r.Time) {
				continue
			}
			for _, ru := range c.p.Operations {
				for j, op := range ops {
					if ru.Name == op || ru.Name == AllOperations {
						matches[i*len(ops)+j]++
						total++
					}
				}
			}
		}
	}
	matched := make([]PolicyMatch, 0, total) // shared by the pairs

	var dec *Decision
	switch unknown := slices.Index(devs, nil); {
	case subj == nil:
		dec = denied(auds[0], ops[0], ErrUnknownSubject, nil)
	case unknown >= 0:
		dec = denied(auds[unknown], ops[0], ErrUnknownDevice, nil)
	default:
		for i := range devs {
			if dec = firstDenial(results[i*len(ops):(i+1)*len(ops)], auds[i], ops); dec != nil {
				break
			}
		}
		if dec == nil {
			dec = grant(r, len(devs), ops, auds, results, denyStart, nil)
		}
	}

	x := &Explanation{
		Object: "explanation", Subject: r.Subject, Time: r.Time, Profile: profileName(r.Structured),
		Allowed: dec.Allowed, ExpiresAt: dec.Expiry, Policies: dec.Policies, Grants: dec.Grants, Denied: dec.Denied,
		Pairs: make([]PairExplanation, len(auds)*len(ops)),
	}
	if x.Policies == nil {
		x.Policies = []string{}
	}
	if x.Grants == nil {
		x.Grants = []Grant{}
	}
	if d := dec.Delegation; d != nil && r.Structured {
		x.Delegation = &DelegationRule{MaxDepth: d.Depth, Operations: slices.Clone(d.Operations)}
	}
	for i, d := range devs {
		for j, op := range ops {
			pe := &x.Pairs[i*len(ops)+j] // filled in place
			pe.Audience, pe.Operation = auds[i], op
			if d != nil {
				pe.Device, pe.EndpointName = d.d.ID, d.d.EndpointName
			}
			switch {
			case subj == nil:
				pe.Reason = ReasonCode(ErrUnknownSubject)
			case d == nil:
				pe.Reason = ReasonCode(ErrUnknownDevice)
			default:
				pr := &results[i*len(ops)+j]
				n := matches[i*len(ops)+j]
				pe.Matched, matched = matched[:0:n], matched[n:n:cap(matched)]
				st.explainPair(pe, r, subj, d, cands[bounds[i]:bounds[i+1]], byID[bounds[i]:bounds[i+1]], pr, denyStarts[i])
				if dec.Allowed {
					pe.LifetimePolicy, pe.ExpiresAt = pairLifetime(pr, &dec.Grants[j], denyStarts[i])
				}
				if dn := dec.Denied; dn != nil && dn.Audience == auds[i] && dn.Operation == op && errors.Is(dn.Reason, ErrConstraintsDiffer) {
					pe.Allowed, pe.Reason = false, ReasonCode(ErrConstraintsDiffer)
					pe.NearMisses = constrainedMisses(pr, condConstraints,
						fmt.Sprintf("allows %s only under constraints that the other requested devices do not all allow", op))
				}
			}
			if pe.Matched == nil {
				pe.Matched = []PolicyMatch{}
			}
		}
	}
	return x
}

// uniqueCandidates removes from cs, in place, the policies met before:
// candidates returns a policy once per (subject key, device key) pair
// through which it applies, which Decide tolerates but an explanation
// must list, and the near-miss search count, once.
func uniqueCandidates(cs []*compiled) []*compiled {
	out := cs[:0]
	if len(cs) <= 32 {
		for _, c := range cs {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out
	}
	seen := make(map[*compiled]struct{}, len(cs))
	for _, c := range cs {
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	return out
}

// explainPair fills pe for a known subject and device from the candidate
// policies of the pair (cands in index order, byID the same sorted by id,
// stably) and pr, what they say about it, as if the pair were asked
// alone. pe.Matched is empty, with room for exactly the matched rules.
func (st *state) explainPair(pe *PairExplanation, r *Request, subj *subjectEntry, d *deviceEntry, cands, byID []*compiled, pr *pairResult, denyStart time.Time) {
	now, op := r.Time, pe.Operation
	for _, c := range byID {
		if len(pe.Matched) == cap(pe.Matched) {
			break
		}
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
				m.Delegation = c.p.delegationOf(op)
			} else if !slices.Contains(pe.DenyPolicies, c.p.ID) {
				pe.DenyPolicies = append(pe.DenyPolicies, c.p.ID) // in id order
			}
			pe.Matched = append(pe.Matched, m)
		}
	}

	// The lifetime the pair alone would get: its best unconstrained
	// allow, else (v2) the earliest bound of its alternatives.
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
		pe.NearMisses = st.nearMisses(subj, d, cands, op, now)
	case pr.uPolicy == nil && !r.Structured:
		pe.Reason = ReasonCode(ErrStructuredScopeRequired)
		pe.NearMisses = constrainedMisses(pr, condProfile,
			fmt.Sprintf("allows %s only with argument constraints, which need the v2 profile", op))
	default:
		pe.Allowed = true
	}
}

// pairLifetime returns the policy that bounds the lifetime of one pair of
// an allowed decision, and that bound: of the policies the decision uses
// for the pair (its unconstrained allow, or per alternative granted the
// better of it and the alternative's), the one with the earliest bound.
func pairLifetime(pr *pairResult, g *Grant, denyStart time.Time) (string, time.Time) {
	var bound time.Time
	var pol *compiled
	use := func(b time.Time, c *compiled) {
		if pol == nil || b.Before(bound) || b.Equal(bound) && c.p.ID < pol.p.ID {
			bound, pol = b, c
		}
	}
	if g.Alternatives == nil {
		use(pr.uBound, pr.uPolicy)
	}
	for _, alt := range g.Alternatives {
		b, c := pr.uBound, pr.uPolicy
		key, _ := json.Marshal(alt) // plain data: cannot fail
		if k := pr.altIndex(string(key)); k >= 0 && better(pr.alts[k].bound, pr.alts[k].policy, b, c) {
			b, c = pr.alts[k].bound, pr.alts[k].policy
		}
		use(b, c)
	}
	if pol == nil {
		return "", time.Time{}
	}
	if !denyStart.IsZero() && denyStart.Before(bound) {
		bound = denyStart
	}
	return pol.p.ID, bound
}

// constrainedMisses returns, as near misses failing one condition, the
// policies of the pair's constrained alternatives.
func constrainedMisses(pr *pairResult, cond, msg string) []NearMiss {
	var ids []string
	for _, a := range pr.alts {
		if !slices.Contains(ids, a.policy.p.ID) {
			ids = append(ids, a.policy.p.ID)
		}
	}
	slices.Sort(ids)
	out := make([]NearMiss, 0, min(len(ids), maxNearMisses))
	for _, id := range ids[:min(len(ids), maxNearMisses)] {
		out = append(out, NearMiss{Policy: id, Effect: Allow, Failed: []FailedCondition{{Condition: cond, Message: msg}}})
	}
	return out
}

// nearMisses returns up to maxNearMisses allow policies that fail one or
// two of the conditions subject, device, operation, status, valid_from and
// valid_until for the pair, fewest failures first, then by id. It examines
// at most maxNearMissCandidates policies, found by index: those matching
// both subject and device (cands, in their order), then those naming one
// of the subject's keys, then those selecting one of the device's keys.
//
// A policy is scored with one bit per failed condition, cheapest
// conditions first, and dropped as soon as it cannot enter the near misses
// kept so far; only the policies finally kept have their failed
// conditions described. As cands holds every policy that matches both
// subject and device, a policy found by one of them matches the other
// when it is in cands: the selectors are evaluated only for a policy
// found by one of several attributes that it selects.
func (st *state) nearMisses(subj *subjectEntry, d *deviceEntry, cands []*compiled, op string, now time.Time) []NearMiss {
	s := nearMissSearch{subj: subj, d: d, cands: cands, op: op, now: now}
	func() {
		for _, c := range cands {
			if !s.consider(c, foundByBoth) {
				return
			}
		}
		for _, k := range subj.keys {
			for _, c := range st.policiesByKey(k) {
				if !s.consider(c, foundBySubject) {
					return
				}
			}
		}
		for _, k := range d.keys {
			how := foundByDevice
			if k[0] == 'k' {
				how = foundByAttribute
			}
			for _, c := range st.policiesByKey(k) {
				if !s.consider(c, how) {
					return
				}
			}
		}
	}()
	return s.misses()
}

// How the near-miss search found a policy.
const (
	foundByBoth      = iota // in the candidates: matches subject and device
	foundBySubject          // by one of the subject's keys: matches the subject
	foundByDevice           // by the device's id, endpoint name or "*": matches the device
	foundByAttribute        // by one of the device's attributes: matches it unless it selects several
)

// nearMissSearch is the state of one search of nearMisses.
type nearMissSearch struct {
	subj     *subjectEntry
	d        *deviceEntry
	cands    []*compiled
	op       string
	now      time.Time
	examined int
	n        int                     // near misses kept in top
	top      [maxNearMisses]nearMiss // sorted by (failed, id)
}

// nearMiss is a policy that almost applies, with its failed conditions:
// their number and one bit each (failSubject, ...).
type nearMiss struct {
	c      *compiled
	failed int
	mask   int
}

// Bits of a nearMiss's mask, one per condition.
const (
	failSubject = 1 << iota
	failDevice
	failOperation
	failStatus
	failValidFrom
	failValidUntil
)

// consider examines policy c, found as how says, and keeps it when it is
// one of the best near misses so far. It reports false, examining
// nothing, once maxNearMissCandidates policies have been examined.
func (s *nearMissSearch) consider(c *compiled, how int) bool {
	if s.examined >= maxNearMissCandidates {
		return false
	}
	s.examined++
	p := c.p
	if p.Effect != Allow {
		return true
	}
	// limit is the most conditions c may fail and still be kept: two, or
	// when the near misses are all found, fewer than the last one (as
	// many, when c's id comes first).
	limit := 2
	if s.n == maxNearMisses {
		last := &s.top[s.n-1]
		limit = last.failed
		if p.ID >= last.c.p.ID {
			limit--
		}
		if limit == 0 {
			return true
		}
	}
	mask, n := 0, 0
	fail := func(bit int) {
		mask |= bit
		n++
	}
	if p.Status != Active {
		fail(failStatus)
	}
	if !p.ValidFrom.IsZero() && s.now.Before(p.ValidFrom) {
		fail(failValidFrom)
	}
	if !p.ValidUntil.IsZero() && !s.now.Before(p.ValidUntil) {
		fail(failValidUntil)
	}
	if !c.namesOperation(s.op) {
		fail(failOperation)
	}
	if n > limit {
		return true
	}
	switch {
	case how == foundByBoth || slices.Contains(s.cands, c):
	case how == foundBySubject:
		fail(failDevice)
	case how == foundByDevice || len(c.attrs) <= 1 || c.matchesDevice(s.d):
		fail(failSubject)
	default:
		// Found by an attribute of the device, and fails the others.
		fail(failDevice)
		if n <= limit && !c.matchesSubject(s.subj) {
			fail(failSubject)
		}
	}
	if n == 0 || n > limit {
		return true
	}
	for _, k := range s.top[:s.n] {
		if k.c == c {
			return true
		}
	}
	i := s.n
	for i > 0 && (n < s.top[i-1].failed || n == s.top[i-1].failed && p.ID < s.top[i-1].c.p.ID) {
		i--
	}
	if s.n < maxNearMisses {
		s.n++
	}
	copy(s.top[i+1:s.n], s.top[i:s.n-1])
	s.top[i] = nearMiss{c: c, failed: n, mask: mask}
	return true
}

// namesOperation reports whether one of c's rules names op or "*".
func (c *compiled) namesOperation(op string) bool {
	for i := range c.p.Operations {
		if c.p.Operations[i].Name == op || c.p.Operations[i].Name == AllOperations {
			return true
		}
	}
	return false
}

// misses returns the near misses kept, their failed conditions described.
// The conditions of all of them share one slice, and their messages,
// built in one buffer, one string.
func (s *nearMissSearch) misses() []NearMiss {
	total := 0
	for _, k := range s.top[:s.n] {
		total += bits.OnesCount(uint(k.mask))
	}
	out := make([]NearMiss, s.n)
	conds := make([]FailedCondition, total)
	var buf [1024]byte
	var ends [maxNearMisses * len(condNames)]int // of each message in b
	b, j := buf[:0], 0
	for i, k := range s.top[:s.n] {
		n := bits.OnesCount(uint(k.mask))
		out[i] = NearMiss{Policy: k.c.p.ID, Effect: k.c.p.Effect, Failed: conds[j : j+n : j+n]}
		for bit, name := range condNames {
			if k.mask&(1<<bit) != 0 {
				conds[j].Condition = name
				b = s.appendFailure(b, 1<<bit, k.c)
				ends[j] = len(b)
				j++
			}
		}
	}
	msgs, start := string(b), 0
	for j := range conds {
		conds[j].Message = msgs[start:ends[j]]
		start = ends[j]
	}
	return out
}

// condNames are the conditions of the bits of a nearMiss's mask, in bit
// order.
var condNames = [...]string{condSubject, condDevice, condOperation, condStatus, condValidFrom, condValidUntil}

// appendFailure appends to b the message saying why policy c fails the
// condition bit of the pair searched.
func (s *nearMissSearch) appendFailure(b []byte, bit int, c *compiled) []byte {
	p := c.p
	switch bit {
	case failSubject:
		b = appendPolicySubjects(append(b, "applies to "...), &p.Subjects)
		return appendSubject(append(b, ", not to "...), s.subj.s)
	case failDevice:
		b = appendSelector(append(b, "selects "...), &c.policy().Devices)
		return appendDeviceRecord(append(b, ", not "...), s.d.d)
	case failOperation:
		var nb [8]string
		names := nb[:0]
		for _, ru := range c.p.Operations {
			if !slices.Contains(names, ru.Name) {
				names = append(names, ru.Name)
			}
		}
		b = appendShortList(append(b, "names "...), names)
		return append(append(b, ", not "...), s.op...)
	case failStatus:
		return append(append(b, "is "...), p.Status...)
	case failValidFrom:
		b = p.ValidFrom.UTC().AppendFormat(append(b, "valid from "...), time.RFC3339)
		return append(b, ", after the time asked"...)
	default: // failValidUntil
		b = p.ValidUntil.UTC().AppendFormat(append(b, "valid until "...), time.RFC3339)
		return append(b, ", not after the time asked"...)
	}
}

// appendShortList appends to b up to five entries of list joined with
// commas, and says how many more.
func appendShortList(b []byte, list []string) []byte {
	for i, s := range list[:min(len(list), shortListLen)] {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	return appendMore(b, len(list)-shortListLen)
}

// shortListLen is the number of entries appendShortList shows.
const shortListLen = 5

// appendMore appends " and n more" to b when n > 0.
func appendMore(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	return append(strconv.AppendInt(append(b, " and "...), int64(n), 10), " more"...)
}

// appendPart appends to b, which held n bytes before the first part, the
// label of one more part of a description, after "; " when it is not the
// first.
func appendPart(b []byte, n int, label string) []byte {
	if len(b) > n {
		b = append(b, "; "...)
	}
	return append(b, label...)
}

// appendPolicySubjects appends to b the subjects a policy names: "users
// ...; groups ...; applications ...".
func appendPolicySubjects(b []byte, s *Subjects) []byte {
	n := len(b)
	if len(s.Users) > 0 {
		b = appendShortList(appendPart(b, n, "users "), s.Users)
	}
	if len(s.Groups) > 0 {
		b = appendShortList(appendPart(b, n, "groups "), s.Groups)
	}
	if len(s.Applications) > 0 {
		b = appendShortList(appendPart(b, n, "applications "), s.Applications)
	}
	return b
}

// appendSubject appends to b a subject's kind, id and groups.
func appendSubject(b []byte, s *Subject) []byte {
	b = append(append(append(b, s.Kind...), ' '), s.ID...)
	if len(s.Groups) > 0 {
		b = append(appendShortList(append(b, " (groups "...), s.Groups), ')')
	}
	return b
}

// describeSelector describes a device selector: "all devices", or "ids
// ...; endpoint names ...; attributes k=v1|v2, ...".
func describeSelector(s *DeviceSelector) string { return string(appendSelector(nil, s)) }

// appendSelector appends describeSelector(s) to b.
func appendSelector(b []byte, s *DeviceSelector) []byte {
	if s.All {
		return append(b, "all devices"...)
	}
	n := len(b)
	if len(s.IDs) > 0 {
		b = appendShortList(appendPart(b, n, "ids "), s.IDs)
	}
	if len(s.EndpointNames) > 0 {
		b = appendShortList(appendPart(b, n, "endpoint names "), s.EndpointNames)
	}
	if len(s.Attributes) > 0 {
		b = appendPart(b, n, "attributes ")
		var kb [1]string
		keys := kb[:0]
		if len(s.Attributes) == 1 {
			for k := range s.Attributes {
				keys = append(keys, k)
			}
		} else {
			keys = slices.Sorted(mapsKeys(s.Attributes))
		}
		for i, k := range keys[:min(len(keys), shortListLen)] {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(append(b, k...), '=')
			for j, v := range s.Attributes[k] {
				if j > 0 {
					b = append(b, '|')
				}
				b = append(b, v...)
			}
		}
		b = appendMore(b, len(keys)-shortListLen)
	}
	return b
}

// appendDeviceRecord appends to b a device's endpoint name and id.
func appendDeviceRecord(b []byte, d *Device) []byte {
	if d.EndpointName != "" {
		b = append(append(b, "ep:"...), d.EndpointName...)
		return append(append(append(b, " (id "...), d.ID...), ')')
	}
	return append(append(b, "id "...), d.ID...)
}
