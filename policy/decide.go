package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Request asks whether a subject may have a token for some operations on
// some devices.
type Request struct {
	// Subject is the authenticated subject id.
	Subject string
	// Audience names the devices: "ep:<endpoint name>" or "id:<device id>"
	// (legacy "endpoint-name:" and "device-id:"), 1 to [token.MaxAudiences] entries.
	Audience []string
	// Operations names the operations, 1 to [token.MaxScopeItems].
	Operations []string
	// Time is the time of the decision; it must be set.
	Time time.Time
	// Structured says that the token can carry argument constraints (the
	// v2 profile). When false (v1), an operation that is allowed only with
	// argument constraints is denied with [ErrStructuredScopeRequired].
	Structured bool
}

// Decision is the outcome of [Engine.Decide]: all or nothing.
type Decision struct {
	// Allowed is true when every (device, operation) pair is allowed.
	Allowed bool
	// Grants lists, when allowed, one entry per distinct requested
	// operation in request order: what the token's scope carries.
	Grants []Grant
	// Expiry is, when allowed, the latest expiry the policies allow (see
	// the package documentation for the rule).
	Expiry time.Time
	// Policies lists, sorted, the ids of the allow policies the grant rests on.
	Policies []string
	// Denied describes the first denied pair, in request order (devices
	// outer, operations inner), when not allowed.
	Denied *Denial
	// Delegation, when allowed, says which of the granted operations the
	// token's holder may pass on and to what depth (nil: none). An
	// operation is delegable when, on every requested device, each
	// permission the token carries for it is granted by an allow policy
	// whose [DelegationRule] names it and that allows a token until
	// Expiry; Depth is the least, over the delegable operations and
	// their devices, of the greatest MaxDepth of such policies.
	// Operations lists the delegable operations in request order. A
	// policy's delegation changes nothing else in a decision. The
	// [Service] puts it into v2 tokens only.
	Delegation *token.Delegation
}

// Grant is one operation of a token's scope. Alternatives is nil when the
// operation is granted without constraints; otherwise the operation is
// permitted when all constraints of at least one alternative hold.
type Grant struct {
	Operation    string            `json:"operation"`
	Alternatives [][]ArgConstraint `json:"alternatives,omitempty"`
}

// Denial explains why a request was denied.
type Denial struct {
	Audience  string // the audience entry of the denied pair
	Operation string // the operation of the denied pair
	Reason    error  // one of the reason errors, such as ErrDenyPolicy
	PolicyID  string // the deny policy, for ErrDenyPolicy
}

// Err returns nil when the decision allows, and a *[DeniedError] otherwise.
func (d *Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &DeniedError{Decision: d}
}

// Lifetime returns the lifetime of a token issued at t under this decision.
func (d *Decision) Lifetime(t time.Time) time.Duration { return d.Expiry.Sub(t) }

// pairResult is what the candidate policies say about one (device, operation).
type pairResult struct {
	deny    *compiled
	uBound  time.Time // best expiry among unconstrained allows; zero: none
	uPolicy *compiled
	alts    []altResult
	// uDel lists the unconstrained allows that let the operation be
	// passed on; nil: none. A pointer keeps pairResult, allocated per
	// decision, as small as without delegation.
	uDel *[]delegator
}

// delegator is an allow policy that lets a pair's grant be passed on:
// its delegation depth and the latest expiry it allows.
type delegator struct {
	depth int
	bound time.Time
}

// delegationDepth returns the greatest depth of the delegators in ds
// that allow a token until exp, or 0.
func delegationDepth(ds []delegator, exp time.Time) int {
	best := 0
	for _, d := range ds {
		if d.depth > best && !d.bound.Before(exp) {
			best = d.depth
		}
	}
	return best
}

// altIndex returns the index of the alternative with the given key in
// pr.alts, or -1.
func (pr *pairResult) altIndex(key string) int {
	return slices.IndexFunc(pr.alts, func(a altResult) bool { return a.key == key })
}

type altResult struct {
	key    string
	cons   []ArgConstraint
	bound  time.Time
	policy *compiled
	del    []delegator // policies with exactly these constraints that let them be passed on
}

// bound is the latest expiry a policy allows for a token issued at t.
func (c *compiled) bound(t time.Time) time.Time {
	b := t.Add(c.p.TokenLifetime)
	if !c.p.ValidUntil.IsZero() && c.p.ValidUntil.Before(b) {
		b = c.p.ValidUntil
	}
	return b
}

// better reports whether policy a with bound ba is preferred to b with bound bb:
// the later expiry, then the smaller id, so that decisions are deterministic.
func better(ba time.Time, a *compiled, bb time.Time, b *compiled) bool {
	if b == nil {
		return true
	}
	if !ba.Equal(bb) {
		return ba.After(bb)
	}
	return a.p.ID < b.p.ID
}

// decideBuf holds the working memory of one decision: the request's
// distinct devices, operations and audiences, the devices found, the
// results per (device, operation), the candidate policies and the
// policies a grant rests on (and Explain's own working lists).
// Engine.Decide and Engine.Explain take one from decideBufs and put it
// back, so that a decision allocates little more than the
// Decision it returns: with a large engine the heap is large and the
// collector runs seldom, so that each allocation is memory that is not
// in cache (BenchmarkMillion/decide).
type decideBuf struct {
	refs    []devRef
	ops     []string
	auds    []string
	devs    []*deviceEntry
	results []pairResult
	cands   []*compiled
	used    []*compiled

	// Explain's: candidates sorted by id, positions and counts, times.
	byID  []*compiled
	ints  []int
	times []time.Time
}

// maxPooledCands and maxPooledResults bound the candidate lists and the
// results a pooled decideBuf keeps: a decision over more allocates its
// own, so that one large decision does not pin a large buffer, nor make
// the decisions after it clear one (release clears whole buffers, which
// later decisions may have used less of).
const (
	maxPooledCands   = 256
	maxPooledResults = 64
)

var decideBufs = sync.Pool{New: func() any { return new(decideBuf) }}

// release clears b's references to the engine's records and the request,
// and puts it back into decideBufs.
func (b *decideBuf) release() {
	clear(b.refs[:cap(b.refs)])
	clear(b.ops[:cap(b.ops)])
	clear(b.auds[:cap(b.auds)])
	clear(b.devs[:cap(b.devs)])
	if cap(b.results) > maxPooledResults {
		b.results = nil
	}
	clear(b.results[:cap(b.results)])
	if cap(b.used) > maxPooledCands {
		b.used = nil
	}
	clear(b.used[:cap(b.used)])
	if cap(b.cands) > maxPooledCands {
		b.cands = nil
	}
	clear(b.cands[:cap(b.cands)])
	if cap(b.byID) > maxPooledCands {
		b.byID = nil
	}
	clear(b.byID[:cap(b.byID)])
	decideBufs.Put(b)
}

// validateRequest validates r and returns its distinct device keys,
// operations and audiences, in request order.
func validateRequest(r *Request) (devKeys, ops []string, auds []string, err error) {
	var b decideBuf
	if err := b.validate(r); err != nil {
		return nil, nil, nil, err
	}
	devKeys = make([]string, len(b.refs))
	for i, d := range b.refs {
		devKeys[i] = d.key()
	}
	return devKeys, b.ops, b.auds, nil
}

// validate validates r and sets b's devices, operations and audiences to
// r's distinct ones, in request order.
func (b *decideBuf) validate(r *Request) error {
	// Room for every entry, within the limits, so that appending does not
	// grow the lists step by step.
	if n := min(len(r.Audience), token.MaxAudiences); cap(b.refs) < n || cap(b.auds) < n {
		b.refs, b.auds = make([]devRef, 0, n), make([]string, 0, n)
	}
	if n := min(len(r.Operations), token.MaxScopeItems); cap(b.ops) < n {
		b.ops = make([]string, 0, n)
	}
	b.refs, b.ops, b.auds = b.refs[:0], b.ops[:0], b.auds[:0]
	var f fieldErrs
	if r.Subject == "" {
		f.add("subject", "required")
	}
	if r.Time.IsZero() {
		f.add("time", "required")
	}
	if len(r.Audience) == 0 || len(r.Audience) > token.MaxAudiences {
		f.add("aud", "1 to %d entries", token.MaxAudiences)
	} else {
		for i, a := range r.Audience {
			d, err := parseAudienceRef(a)
			if err != nil {
				f.add(fmt.Sprintf("aud[%d]", i), "must be ep:, id:, endpoint-name: or device-id: and a device identity")
				continue
			}
			if !slices.Contains(r.Audience[:i], a) {
				b.refs = append(b.refs, d)
				b.auds = append(b.auds, a)
			}
		}
	}
	if len(r.Operations) == 0 || len(r.Operations) > token.MaxScopeItems {
		f.add("scope", "1 to %d operations", token.MaxScopeItems)
	} else {
		for i, o := range r.Operations {
			if token.ValidateName(o) != nil { // the field name is formatted only for a failure
				checkOperationName(&f, fmt.Sprintf("scope[%d]", i), o)
			}
			if !slices.Contains(b.ops, o) {
				b.ops = append(b.ops, o)
			}
		}
	}
	return f.err()
}

// Decide decides a token request. It returns an error (matching
// [ErrInvalid]) only for a malformed request; a denial is a Decision with
// Allowed false (see [Decision.Err]).
func (e *Engine) Decide(r *Request) (*Decision, error) {
	b := decideBufs.Get().(*decideBuf)
	defer b.release()
	if err := b.validate(r); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state().decideWith(r, b), nil
}

// state returns the engine's state, or an empty one. The caller holds mu.
func (e *Engine) state() *state {
	if e.st == nil {
		return emptyState
	}
	return e.st
}

// decide decides the validated request r, whose distinct device keys,
// operations and audiences are given, on st.
func (st *state) decide(r *Request, devKeys, ops, auds []string) *Decision {
	return st.decideWith(r, newDecideBuf(devKeys, ops, auds))
}

// newDecideBuf returns working memory holding the validated distinct
// device keys, operations and audiences of a request (as validateRequest
// returns them).
func newDecideBuf(devKeys, ops, auds []string) *decideBuf {
	b := &decideBuf{refs: make([]devRef, len(devKeys)), ops: ops, auds: auds}
	for i, k := range devKeys {
		b.refs[i] = refOfKey(k)
	}
	return b
}

// decideWith decides the validated request r, whose distinct devices,
// operations and audiences b holds, on st, with b's working memory.
func (st *state) decideWith(r *Request, b *decideBuf) *Decision {
	ops, auds := b.ops, b.auds
	subj := st.subjects[r.Subject]
	if subj == nil {
		return denied(auds[0], ops[0], ErrUnknownSubject, nil)
	}
	b.devs = b.devs[:0]
	for i, d := range b.refs {
		e := st.deviceOf(d)
		if e == nil {
			return denied(auds[i], ops[0], ErrUnknownDevice, nil)
		}
		b.devs = append(b.devs, e)
	}
	devs := b.devs

	n := len(devs) * len(ops)
	if cap(b.results) < n {
		b.results = make([]pairResult, n)
	}
	results := b.results[:n]
	clear(results)
	var denyStart time.Time // earliest start of a deny policy that will apply later
	for i, d := range devs {
		b.cands = st.candidates(b.cands[:0], subj, d)
		res := results[i*len(ops) : (i+1)*len(ops)]
		denyStart = earliest(denyStart, evaluate(b.cands, ops, r.Time, res))
		if dec := firstDenial(res, auds[i], ops); dec != nil {
			return dec
		}
	}
	return grant(r, len(devs), ops, auds, results, denyStart, &b.used)
}

// deviceOf returns the device d names, or nil.
func (st *state) deviceOf(d devRef) *deviceEntry {
	if d.byID {
		return st.devices[d.v]
	}
	return st.byEndpoint[d.v]
}

// device returns the device with the given device key ("i\x00id" or
// "e\x00endpoint name"), or nil.
func (st *state) device(key string) *deviceEntry { return st.deviceOf(refOfKey(key)) }

// denied returns the decision that denies the pair (aud, op) for reason,
// naming the deny policy p when not nil.
func denied(aud, op string, reason error, p *compiled) *Decision {
	d := &Denial{Audience: aud, Operation: op, Reason: reason}
	if p != nil {
		d.PolicyID = p.p.ID
	}
	return &Decision{Denied: d}
}

// earliest returns the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// firstDenial returns the decision denying the first pair of one device
// (audience aud, results res for ops) that a deny policy applies to or
// that no allow policy allows, or nil.
func firstDenial(res []pairResult, aud string, ops []string) *Decision {
	for j := range res {
		if res[j].deny != nil {
			return denied(aud, ops[j], ErrDenyPolicy, res[j].deny)
		}
		if res[j].uPolicy == nil && len(res[j].alts) == 0 {
			return denied(aud, ops[j], ErrNoAllowPolicy, nil)
		}
	}
	return nil
}

// grant decides r from the results of its nDevs devices (devices outer,
// operations inner), none of whose pairs is denied by a deny policy or
// lacks an allow policy; denyStart is the earliest start of a deny
// policy that will apply later to one of them. buf, when not nil, is
// working memory for the policies the grant rests on.
func grant(r *Request, nDevs int, ops, auds []string, results []pairResult, denyStart time.Time, buf *[]*compiled) *Decision {
	dec := &Decision{Allowed: true, Grants: make([]Grant, len(ops))}
	var used []*compiled
	if buf != nil {
		used = (*buf)[:0]
		defer func() { *buf = used }()
	}
	// chosen holds, when some policy delegates, the keys of the
	// alternatives granted per operation (nil: unconstrained).
	var chosen [][]string
	if hasDelegators(results) {
		chosen = make([][]string, len(ops))
	}
	perms := 0 // permissions in the scope so far
	use := func(b time.Time, c *compiled) {
		if dec.Expiry.IsZero() || b.Before(dec.Expiry) {
			dec.Expiry = b
		}
		if !slices.Contains(used, c) {
			used = append(used, c)
		}
	}
	for j, op := range ops {
		dec.Grants[j].Operation = op
		// Devices allowed only under constraints, in request order.
		first := -1
		for i := range nDevs {
			if results[i*len(ops)+j].uPolicy == nil {
				first = i
				break
			}
		}
		if first < 0 {
			perms++
			for i := range nDevs {
				pr := &results[i*len(ops)+j]
				use(pr.uBound, pr.uPolicy)
			}
			continue
		}
		if !r.Structured {
			return denied(auds[first], op, ErrStructuredScopeRequired, nil)
		}
		// An alternative goes into the token when every device allows it,
		// unconstrained or under exactly these constraints.
		alts := slices.Clone(results[first*len(ops)+j].alts)
		slices.SortFunc(alts, func(a, b altResult) int { return strings.Compare(a.key, b.key) })
		// A scope holds at most token.MaxScopeItems permissions: keep room
		// for one per remaining operation and drop surplus alternatives
		// (granting less is always safe).
		budget := token.MaxScopeItems - perms - (len(ops) - j - 1)
		for _, a := range alts {
			if len(dec.Grants[j].Alternatives) >= budget {
				break
			}
			ok := true
			for i := range nDevs {
				pr := &results[i*len(ops)+j]
				if pr.uPolicy == nil && pr.altIndex(a.key) < 0 {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			dec.Grants[j].Alternatives = append(dec.Grants[j].Alternatives, cloneConstraints(a.cons))
			if chosen != nil {
				chosen[j] = append(chosen[j], a.key)
			}
			for i := range nDevs {
				pr := &results[i*len(ops)+j]
				b, c := pr.uBound, pr.uPolicy
				if k := pr.altIndex(a.key); k >= 0 && better(pr.alts[k].bound, pr.alts[k].policy, b, c) {
					b, c = pr.alts[k].bound, pr.alts[k].policy
				}
				use(b, c)
			}
		}
		perms += len(dec.Grants[j].Alternatives)
		if len(dec.Grants[j].Alternatives) == 0 {
			// Report the first device that lacks one of the first device's
			// alternatives.
			for i := range nDevs {
				pr := &results[i*len(ops)+j]
				if pr.uPolicy == nil && slices.ContainsFunc(alts, func(a altResult) bool { return pr.altIndex(a.key) < 0 }) {
					return denied(auds[i], op, ErrConstraintsDiffer, nil)
				}
			}
			return denied(auds[first], op, ErrConstraintsDiffer, nil)
		}
	}
	if !denyStart.IsZero() && denyStart.Before(dec.Expiry) {
		dec.Expiry = denyStart
	}
	if chosen != nil {
		dec.Delegation = delegation(nDevs, ops, results, chosen, dec.Expiry)
	}
	dec.Policies = make([]string, len(used))
	for i, c := range used {
		dec.Policies[i] = c.p.ID
	}
	slices.Sort(dec.Policies)
	return dec
}

// hasDelegators reports whether some result has a delegating policy.
func hasDelegators(results []pairResult) bool {
	for i := range results {
		if results[i].uDel != nil || slices.ContainsFunc(results[i].alts, func(a altResult) bool { return a.del != nil }) {
			return true
		}
	}
	return false
}

// delegation returns what a token granted from results (nDevs devices
// outer, ops inner) with the alternatives chosen per operation (nil:
// unconstrained) and expiring at exp may pass on (see
// [Decision].Delegation), or nil.
func delegation(nDevs int, ops []string, results []pairResult, chosen [][]string, exp time.Time) *token.Delegation {
	var d *token.Delegation
	for j, op := range ops {
		depth := maxDelegationDepth
		for i := 0; i < nDevs && depth > 0; i++ {
			pr := &results[i*len(ops)+j]
			var u int
			if pr.uDel != nil {
				u = delegationDepth(*pr.uDel, exp)
			}
			if chosen[j] == nil {
				depth = min(depth, u)
				continue
			}
			for _, key := range chosen[j] {
				a := u
				if k := pr.altIndex(key); k >= 0 {
					a = max(a, delegationDepth(pr.alts[k].del, exp))
				}
				depth = min(depth, a)
			}
		}
		if depth == 0 {
			continue
		}
		if d == nil {
			d = &token.Delegation{Depth: depth}
		}
		d.Depth = min(d.Depth, depth)
		d.Operations = append(d.Operations, op)
	}
	return d
}

// evaluate fills res (one entry per operation of ops) with what the
// candidate policies of one (subject, device) say at now, and returns the
// earliest start of an active deny policy that will apply later to one of
// the pairs (zero: none).
func evaluate(cands []*compiled, ops []string, now time.Time, res []pairResult) (denyStart time.Time) {
	for _, c := range cands {
		applies := c.p.appliesAt(now)
		future := !applies && c.p.Effect == Deny && c.p.Status == Active && now.Before(c.p.ValidFrom)
		if !applies && !future {
			continue
		}
		b := c.bound(now)
		for i := range c.p.Operations {
			ru := c.rule(i)
			for j, op := range ops {
				if ru.name != op && ru.name != AllOperations {
					continue
				}
				pr := &res[j]
				switch {
				case future:
					if denyStart.IsZero() || c.p.ValidFrom.Before(denyStart) {
						denyStart = c.p.ValidFrom
					}
				case c.p.Effect == Deny:
					if pr.deny == nil || c.p.ID < pr.deny.p.ID {
						pr.deny = c
					}
				case ru.key == "":
					if better(b, c, pr.uBound, pr.uPolicy) {
						pr.uBound, pr.uPolicy = b, c
					}
					if c.p.Delegation != nil && c.p.delegates(op) {
						if pr.uDel == nil {
							pr.uDel = new([]delegator)
						}
						*pr.uDel = append(*pr.uDel, delegator{c.p.Delegation.MaxDepth, b})
					}
				default:
					k := pr.altIndex(ru.key)
					if k < 0 {
						pr.alts = append(pr.alts, altResult{key: ru.key, cons: ru.cons, bound: b, policy: c})
						k = len(pr.alts) - 1
					} else if better(b, c, pr.alts[k].bound, pr.alts[k].policy) {
						pr.alts[k].bound, pr.alts[k].policy = b, c
					}
					if c.p.Delegation != nil && c.p.delegates(op) {
						pr.alts[k].del = append(pr.alts[k].del, delegator{c.p.Delegation.MaxDepth, b})
					}
				}
			}
		}
	}
	return denyStart
}

var emptyState = newState()

// candidates appends the policies that may match the subject and device.
// Policies indexed by one dimension only are checked against the other
// here; the caller checks time, effect and operations.
func (st *state) candidates(out []*compiled, s *subjectEntry, d *deviceEntry) []*compiled {
	for _, sk := range s.keys {
		ki := st.keys[sk]
		if ki == nil {
			continue
		}
		if ki.pair != nil {
			for _, dk := range d.keys {
				for _, c := range ki.pair[dk] {
					if !c.checkDev || c.matchesDevice(d) {
						out = append(out, c)
					}
				}
			}
		}
		for _, c := range ki.check {
			if c.matchesDevice(d) {
				out = append(out, c)
			}
		}
	}
	if st.byDevCount > 0 {
		for _, dk := range d.keys {
			ki := st.keys[dk]
			if ki == nil {
				continue
			}
			for _, c := range ki.check {
				if c.matchesSubject(s) && (!c.checkDev || c.matchesDevice(d)) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func cloneConstraints(cs []ArgConstraint) []ArgConstraint {
	out := make([]ArgConstraint, len(cs))
	for i, c := range cs {
		out[i] = c.clone()
	}
	return out
}
