package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	devKeys, ops, auds, err := validateRequest(r)
	if err != nil {
		return nil, renameScopeFields(err)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state().explain(r, devKeys, ops, auds), nil
}

// explain explains the validated request r, whose distinct device keys,
// operations and audiences are given, on st.
func (st *state) explain(r *Request, devKeys, ops, auds []string) *Explanation {
	dec := st.decide(r, devKeys, ops, auds)
	x := &Explanation{
		Object: "explanation", Subject: r.Subject, Time: r.Time, Profile: profileName(r.Structured),
		Allowed: dec.Allowed, ExpiresAt: dec.Expiry, Policies: dec.Policies, Grants: dec.Grants, Denied: dec.Denied,
		Pairs: make([]PairExplanation, 0, len(auds)*len(ops)),
	}
	if x.Policies == nil {
		x.Policies = []string{}
	}
	if x.Grants == nil {
		x.Grants = []Grant{}
	}
	subj := st.subjects[r.Subject]
	for i, k := range devKeys {
		d := st.device(k)
		var res []pairResult
		var cands []*compiled
		var denyStart time.Time
		if subj != nil && d != nil {
			res = make([]pairResult, len(ops))
			cands = st.candidates(nil, subj, d)
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
				st.explainPair(&pe, r, subj, d, cands, &res[j], denyStart)
				if dec.Allowed {
					pe.LifetimePolicy, pe.ExpiresAt = pairLifetime(&res[j], &dec.Grants[j], denyStart)
				}
				if dn := dec.Denied; dn != nil && dn.Audience == auds[i] && dn.Operation == op && errors.Is(dn.Reason, ErrConstraintsDiffer) {
					pe.Allowed, pe.Reason = false, ReasonCode(ErrConstraintsDiffer)
					pe.NearMisses = constrainedMisses(&res[j], condConstraints,
						fmt.Sprintf("allows %s only under constraints that the other requested devices do not all allow", op))
				}
			}
			x.Pairs = append(x.Pairs, pe)
		}
	}
	return x
}

// device returns the device with the given device key ("i\x00id" or
// "e\x00endpoint name"), or nil.
func (st *state) device(key string) *deviceEntry {
	if key[0] == 'i' {
		return st.devices[key[2:]]
	}
	return st.byEndpoint[key[2:]]
}

// explainPair fills pe for a known subject and device from the candidate
// policies of the pair and pr, what they say about it, as if the pair were
// asked alone.
func (st *state) explainPair(pe *PairExplanation, r *Request, subj *subjectEntry, d *deviceEntry, cands []*compiled, pr *pairResult, denyStart time.Time) {
	now, op := r.Time, pe.Operation
	for _, c := range cands {
		if !c.p.appliesAt(now) {
			continue
		}
		for _, ru := range c.rules {
			if ru.name != op && ru.name != AllOperations {
				continue
			}
			m := PolicyMatch{Policy: c.p.ID, Effect: c.p.Effect, Rule: ru.name}
			if c.p.Effect == Allow {
				m.ExpiresAt = c.bound(now)
				m.Constraints = cloneConstraints(ru.cons)
				if len(m.Constraints) == 0 {
					m.Constraints = nil
				}
			} else if !slices.Contains(pe.DenyPolicies, c.p.ID) {
				pe.DenyPolicies = append(pe.DenyPolicies, c.p.ID)
			}
			pe.Matched = append(pe.Matched, m)
		}
	}
	slices.SortStableFunc(pe.Matched, func(a, b PolicyMatch) int { return strings.Compare(a.Policy, b.Policy) })
	slices.Sort(pe.DenyPolicies)

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
// both subject and device, then those naming one of the subject's keys,
// then those selecting one of the device's keys. Only the policies kept
// have their failed conditions described.
func (st *state) nearMisses(subj *subjectEntry, d *deviceEntry, cands []*compiled, op string, now time.Time) []NearMiss {
	type kept struct {
		n int // failed conditions
		c *compiled
	}
	var top []kept // sorted by (n, id), at most maxNearMisses
	examined := 0
	consider := func(c *compiled) bool {
		if examined >= maxNearMissCandidates {
			return false
		}
		examined++
		if c.p.Effect != Allow {
			return true
		}
		worst := 2 // a policy failing more conditions is no near miss, nor one failing more than the kept ones
		if len(top) == maxNearMisses {
			worst = top[len(top)-1].n
		}
		n := failedCount(c, subj, d, op, now, worst)
		if n == 0 || n > worst {
			return true
		}
		k := kept{n, c}
		less := func(a, b kept) bool { return a.n < b.n || a.n == b.n && a.c.p.ID < b.c.p.ID }
		if len(top) == maxNearMisses && !less(k, top[len(top)-1]) || slices.ContainsFunc(top, func(t kept) bool { return t.c == c }) {
			return true
		}
		i := 0
		for i < len(top) && less(top[i], k) {
			i++
		}
		top = slices.Insert(top, i, k)
		if len(top) > maxNearMisses {
			top = top[:maxNearMisses]
		}
		return true
	}
	func() {
		for _, c := range cands {
			if !consider(c) {
				return
			}
		}
		for _, k := range subj.keys {
			for _, c := range st.bySubjKey[k] {
				if !consider(c) {
					return
				}
			}
		}
		for _, k := range d.keys {
			for _, c := range st.byDevKey[k] {
				if !consider(c) {
					return
				}
			}
		}
	}()
	out := make([]NearMiss, len(top))
	for i, k := range top {
		out[i] = NearMiss{Policy: k.c.p.ID, Effect: k.c.p.Effect, Failed: failedConditions(k.c, subj, d, op, now)}
	}
	return out
}

// Bits of failedMask, one per condition.
const (
	failSubject = 1 << iota
	failDevice
	failOperation
	failStatus
	failValidFrom
	failValidUntil
)

// failedMask returns the conditions on which policy c fails to apply to
// the pair (subject, device, op) at now, one bit each.
func failedMask(c *compiled, subj *subjectEntry, d *deviceEntry, op string, now time.Time) int {
	m := 0
	p := c.p
	if !c.matchesSubject(subj) {
		m |= failSubject
	}
	if !c.matchesDevice(d) {
		m |= failDevice
	}
	if !slices.ContainsFunc(c.rules, func(ru rule) bool { return ru.name == op || ru.name == AllOperations }) {
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

// failedCount counts the conditions on which policy c fails to apply to
// the pair (subject, device, op) at now, cheapest first, and stops
// counting above limit.
func failedCount(c *compiled, subj *subjectEntry, d *deviceEntry, op string, now time.Time, limit int) int {
	p := c.p
	n := 0
	if p.Status != Active {
		n++
	}
	if !p.ValidFrom.IsZero() && now.Before(p.ValidFrom) {
		n++
	}
	if !p.ValidUntil.IsZero() && !now.Before(p.ValidUntil) {
		n++
	}
	if !slices.ContainsFunc(c.rules, func(ru rule) bool { return ru.name == op || ru.name == AllOperations }) {
		n++
	}
	if n > limit {
		return n
	}
	if !c.matchesSubject(subj) {
		n++
	}
	if n > limit {
		return n
	}
	if !c.matchesDevice(d) {
		n++
	}
	return n
}

// failedConditions describes the conditions on which policy c fails to
// apply to the pair (subject, device, op) at now.
func failedConditions(c *compiled, subj *subjectEntry, d *deviceEntry, op string, now time.Time) []FailedCondition {
	m := failedMask(c, subj, d, op, now)
	var out []FailedCondition
	add := func(bit int, cond, format string, args ...any) {
		if m&bit != 0 {
			out = append(out, FailedCondition{Condition: cond, Message: fmt.Sprintf(format, args...)})
		}
	}
	p := c.p
	add(failSubject, condSubject, "applies to %s, not to %s", describePolicySubjects(&p.Subjects), describeSubject(subj.s))
	add(failDevice, condDevice, "selects %s, not %s", describeSelector(&p.Devices), describeDeviceRecord(d.d))
	if m&failOperation != 0 {
		var names []string
		for _, ru := range c.rules {
			if !slices.Contains(names, ru.name) {
				names = append(names, ru.name)
			}
		}
		add(failOperation, condOperation, "names %s, not %s", shortList(names), op)
	}
	add(failStatus, condStatus, "is %s", p.Status)
	add(failValidFrom, condValidFrom, "valid from %s, after the time asked", p.ValidFrom.UTC().Format(time.RFC3339))
	add(failValidUntil, condValidUntil, "valid until %s, not after the time asked", p.ValidUntil.UTC().Format(time.RFC3339))
	return out
}

// shortList joins up to five entries with commas, and says how many more.
func shortList(list []string) string {
	const show = 5
	if len(list) <= show {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:show], ", "), len(list)-show)
}

func describePolicySubjects(s *Subjects) string {
	var parts []string
	if len(s.Users) > 0 {
		parts = append(parts, "users "+shortList(s.Users))
	}
	if len(s.Groups) > 0 {
		parts = append(parts, "groups "+shortList(s.Groups))
	}
	if len(s.Applications) > 0 {
		parts = append(parts, "applications "+shortList(s.Applications))
	}
	return strings.Join(parts, "; ")
}

func describeSubject(s *Subject) string {
	d := string(s.Kind) + " " + s.ID
	if len(s.Groups) > 0 {
		d += " (groups " + shortList(s.Groups) + ")"
	}
	return d
}

func describeSelector(s *DeviceSelector) string {
	if s.All {
		return "all devices"
	}
	var parts []string
	if len(s.IDs) > 0 {
		parts = append(parts, "ids "+shortList(s.IDs))
	}
	if len(s.EndpointNames) > 0 {
		parts = append(parts, "endpoint names "+shortList(s.EndpointNames))
	}
	if len(s.Attributes) > 0 {
		var attrs []string
		for _, k := range slices.Sorted(mapsKeys(s.Attributes)) {
			attrs = append(attrs, k+"="+strings.Join(s.Attributes[k], "|"))
		}
		parts = append(parts, "attributes "+shortList(attrs))
	}
	return strings.Join(parts, "; ")
}

func describeDeviceRecord(d *Device) string {
	if d.EndpointName != "" {
		return "ep:" + d.EndpointName + " (id " + d.ID + ")"
	}
	return "id " + d.ID
}
