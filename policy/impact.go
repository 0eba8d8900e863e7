package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// ImpactChange says whether a grant is gained or lost.
type ImpactChange string

// Impact changes.
const (
	ImpactGained ImpactChange = "gained"
	ImpactLost   ImpactChange = "lost"
)

// ImpactOptions tune [Engine.WhatIf] and [Compare]. A nil *ImpactOptions
// is the zero value.
type ImpactOptions struct {
	// Limit bounds the triples listed in [Impact].Details, 1 to
	// [MaxImpactDetails]; zero means [DefaultImpactDetails].
	Limit int
	// Structured counts the grants of operations allowed only under
	// argument constraints, which a v2 token carries. When false (the v1
	// profile), such an operation is not a grant: the service would deny it
	// with [ErrStructuredScopeRequired].
	Structured bool
}

// Impact is the difference between the grants of two states of the
// policies and directories at one time (docs/PROTOCOL.md section 9,
// "What-if and diff").
//
// A grant is a (subject, device, operation) triple that the policies allow
// at Time, decided as [Engine.Decide] decides a request for that one
// device and operation: for every pair of a subject and a device of the
// directory, each operation named by a policy that applies at Time and
// matches the pair in either of the two states, and [AllOperations] ("*")
// standing for every operation that no such policy names in either state.
// An operation named in one state only is thus decided in both: under an
// allow of "*", a deny of "read" added loses the grant of "read". An
// operation allowed only under argument constraints gives one grant per
// set of constraints, distinct from the unconstrained grant of the same
// name: a constraint tightened is the old grant lost and the new one
// gained.
type Impact struct {
	// Object is "impact".
	Object string    `json:"object"`
	Time   time.Time `json:"time"`
	// Gained and Lost count the triples.
	Gained int64 `json:"gained"`
	Lost   int64 `json:"lost"`
	// Summary groups the triples by change, operation, constraints and
	// the classes of subjects and devices that the policies involved treat
	// alike, sorted by these. At most 1000 rows: SummaryTruncated says
	// that more were left out.
	Summary          []ImpactSummary `json:"summary"`
	SummaryTruncated bool            `json:"summary_truncated,omitempty"`
	// Details lists the first triples in the order (change, subject,
	// device id, operation), at most [ImpactOptions].Limit of them;
	// DetailsTruncated says that there are more.
	Details          []ImpactDetail `json:"details"`
	DetailsTruncated bool           `json:"details_truncated"`
}

// ImpactSummary is one row of an [Impact]'s summary: Grants triples of
// one change and operation, for subjects and devices that the policies
// involved treat alike.
type ImpactSummary struct {
	Change      ImpactChange    `json:"change"`
	Operation   string          `json:"operation"`
	Constraints []ArgConstraint `json:"constraints,omitempty"`
	Subjects    ImpactClass     `json:"subjects"`
	Devices     ImpactClass     `json:"devices"`
	Grants      int64           `json:"grants"`
}

// ImpactClass describes a set of subjects or devices in the owner's terms:
// why the policies involved treat them alike ("group technicians", "user
// alice", "all devices", "ep:hvac-1", "attributes site=rooftop"), how
// many there are, and up to 5 of them, sorted (devices by endpoint name,
// else id).
type ImpactClass struct {
	Description string   `json:"description"`
	Count       int      `json:"count"`
	Sample      []string `json:"sample"`
}

// ImpactDetail is one grant gained or lost.
type ImpactDetail struct {
	Change       ImpactChange    `json:"change"`
	Subject      string          `json:"subject"`
	Device       string          `json:"device"`
	EndpointName string          `json:"endpoint_name,omitempty"`
	Operation    string          `json:"operation"`
	Constraints  []ArgConstraint `json:"constraints,omitempty"`
}

// impactSampleSize is the number of members an ImpactClass shows.
const impactSampleSize = 5

// view is what an impact reads of a state: policies and directories. Its
// entries are shared and never modified.
type view struct {
	policies map[string]*compiled
	subjects map[string]*subjectEntry
	devices  map[string]*deviceEntry
}

func (st *state) view() *view {
	return &view{policies: maps.Clone(st.policies), subjects: maps.Clone(st.subjects), devices: maps.Clone(st.devices)}
}

func (v *view) clone() *view {
	return &view{policies: maps.Clone(v.policies), subjects: maps.Clone(v.subjects), devices: maps.Clone(v.devices)}
}

// apply applies a validated change of a policy, subject or device; it
// ignores the other kinds.
func (v *view) apply(c *Change) {
	switch c.Kind {
	case KindPolicy:
		delete(v.policies, c.ID)
		if !c.Delete {
			v.policies[c.ID] = compile(c.Policy)
		}
	case KindSubject:
		delete(v.subjects, c.ID)
		if !c.Delete {
			v.subjects[c.ID] = &subjectEntry{s: c.Subject, keys: subjectKeys(c.Subject)}
		}
	case KindDevice:
		delete(v.devices, c.ID)
		if !c.Delete {
			v.devices[c.ID] = &deviceEntry{d: c.Device, keys: deviceKeys(c.Device)}
		}
	}
}

// WhatIf reports what the changes would do to the grants at time at,
// without applying them: the [Impact] between the engine's content and
// that content with the changes applied. The changes are validated as
// [Engine.Apply] validates them, and may only be of kinds policy, subject
// and device, at most [MaxImpactChanges] of them; an invalid change is a
// *[ValidationError] naming "changes[i]." and the record's field, a
// uniqueness violation matches [ErrConflict].
//
// It is computed by classes of subjects and of devices that every policy
// treats alike, and only for the classes that the changes touch, so that
// its cost depends on the number of classes rather than on the number of
// (subject, device) pairs.
func (e *Engine) WhatIf(changes []Change, at time.Time, opts *ImpactOptions) (*Impact, error) {
	if err := checkImpactArgs(at, opts); err != nil {
		return nil, err
	}
	prepared, err := prepareImpactChanges(changes)
	if err != nil {
		return nil, err
	}
	e.mu.RLock()
	st := e.st
	if st == nil {
		st = emptyState
	}
	err = st.check(prepared)
	before := st.view()
	e.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	after := before.clone()
	for i := range prepared {
		after.apply(&prepared[i])
	}
	return computeImpact(before, after, at, opts)
}

// Compare reports the [Impact] of going from the content of before to the
// content of after at time at: two stores' snapshots or export documents.
// A nil snapshot is empty. Each snapshot is validated as [Engine.Load]
// validates it; API keys and revocations are ignored.
func Compare(before, after *Snapshot, at time.Time, opts *ImpactOptions) (*Impact, error) {
	if err := checkImpactArgs(at, opts); err != nil {
		return nil, err
	}
	b, err := snapshotView(before)
	if err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	a, err := snapshotView(after)
	if err != nil {
		return nil, fmt.Errorf("after: %w", err)
	}
	return computeImpact(b, a, at, opts)
}

func snapshotView(s *Snapshot) (*view, error) {
	if s == nil {
		s = &Snapshot{}
	}
	prepared, err := prepareSnapshot(s)
	if err != nil {
		return nil, err
	}
	if err := newState().check(prepared); err != nil {
		return nil, err
	}
	v := emptyState.view()
	for i := range prepared {
		v.apply(&prepared[i])
	}
	return v, nil
}

func checkImpactArgs(at time.Time, opts *ImpactOptions) error {
	var f fieldErrs
	if at.IsZero() {
		f.add("time", "required")
	}
	if opts != nil && (opts.Limit < 0 || opts.Limit > MaxImpactDetails) {
		f.add("limit", "an integer from 1 to %d", MaxImpactDetails)
	}
	return f.err()
}

// prepareImpactChanges validates the changes of a what-if, naming the
// fields "changes[i].…".
func prepareImpactChanges(changes []Change) ([]Change, error) {
	var f fieldErrs
	if len(changes) > MaxImpactChanges {
		f.add("changes", "at most %d changes", MaxImpactChanges)
		return nil, f.err()
	}
	out := make([]Change, len(changes))
	for i := range changes {
		n := fmt.Sprintf("changes[%d].", i)
		switch changes[i].Kind {
		case KindPolicy, KindSubject, KindDevice:
		default:
			f.add(n+"kind", "must be %q, %q or %q", KindPolicy, KindSubject, KindDevice)
			continue
		}
		c, err := changes[i].validate()
		f.prefixed(n, err)
		out[i] = c
	}
	return out, f.err()
}

// impactGrant is one grant of a (subject, device) pair.
type impactGrant struct {
	op, key string // key: canonical JSON of cons, "" when unconstrained
	cons    []ArgConstraint
}

func cmpGrant(a, b impactGrant) int {
	return cmp.Or(strings.Compare(a.op, b.op), strings.Compare(a.key, b.key))
}

// opAcc is what the policies matching a pair say of one operation they
// name.
type opAcc struct {
	deny, uncon bool
	alts        []rule
}

// pairRules is what the policies matching a (subject, device) pair in one
// state say: per operation they name, and of AllOperations.
type pairRules struct {
	matched             []*compiled // the policies that select the device
	acc                 map[string]*opAcc
	starAllow, starDeny bool
}

// matchPair collects the rules of a subject whose candidate policies
// (those that apply and name the subject) are list, on device d.
func matchPair(list []*compiled, d *deviceEntry) pairRules {
	var r pairRules
	var matched []*compiled // a local, which append may start on the stack
	for _, c := range list {
		if !c.matchesDevice(d) {
			continue
		}
		matched = append(matched, c)
		deny := c.p.Effect == Deny
		for i := range c.p.Operations {
			ru := c.rule(i)
			if ru.name == AllOperations {
				if deny {
					r.starDeny = true
				} else {
					r.starAllow = true
				}
				continue
			}
			if r.acc == nil {
				r.acc = map[string]*opAcc{}
			}
			a := r.acc[ru.name]
			if a == nil {
				a = &opAcc{}
				r.acc[ru.name] = a
			}
			switch {
			case deny:
				a.deny = true
			case ru.key == "":
				a.uncon = true
			case !slices.ContainsFunc(a.alts, func(x rule) bool { return x.key == ru.key }):
				a.alts = append(a.alts, ru)
			}
		}
	}
	r.matched = matched
	return r
}

// grants returns the pair's grants, sorted: for each operation that these
// rules or other's name (the pair's in the other state, zero when that
// state lacks the subject or the device), and AllOperations for the
// operations neither names. An operation named only in the other state is
// decided here by the AllOperations rules alone, so that a deny or an
// allow of it added or removed is compared with what "*" decides of it
// (docs/PROTOCOL.md section 9).
func (r *pairRules) grants(other *pairRules, structured bool) []impactGrant {
	var out []impactGrant
	decide := func(name string, a *opAcc) {
		switch {
		case a.deny || r.starDeny:
		case a.uncon || r.starAllow:
			out = append(out, impactGrant{op: name})
		case structured:
			// As Engine.Decide: the alternatives sorted by key, as many as
			// a scope holds.
			slices.SortFunc(a.alts, func(x, y rule) int { return strings.Compare(x.key, y.key) })
			for _, ru := range a.alts[:min(len(a.alts), token.MaxScopeItems)] {
				out = append(out, impactGrant{op: name, key: ru.key, cons: ru.cons})
			}
		}
	}
	for name, a := range r.acc {
		decide(name, a)
	}
	var unnamed opAcc // what these rules say of an operation they do not name
	for name := range other.acc {
		if r.acc[name] == nil {
			decide(name, &unnamed)
		}
	}
	if r.starAllow && !r.starDeny {
		out = append(out, impactGrant{op: AllOperations})
	}
	slices.SortFunc(out, cmpGrant)
	return out
}

// subjClass is a set of subjects that every policy of both states that
// applies at the impact's time treats alike. A subject whose relevant
// keys differ between the states, or which exists in one only, is a class
// of its own ("changed").
type subjClass struct {
	rep     string
	members []string
	changed bool
	lists   [2][]*compiled // candidate policies per state, once computed
	listed  [2]bool
}

// devClass is the same for devices.
type devClass struct {
	rep     string
	members []string // device ids
	changed bool
	names   []string // sorted display names, once computed
}

// impactCalc computes one Impact.
type impactCalc struct {
	views      [2]*view // before, after
	at         time.Time
	structured bool

	subjRel map[string]bool            // subject keys some applying policy names
	devIDs  map[string]bool            // device ids some selector names
	devEPs  map[string]bool            // endpoint names some selector names
	attrs   map[string]map[string]bool // attribute key -> values some selector lists
	byKey   [2]map[string][]*compiled  // applying policies by subject key, per state
	ops     map[string]bool            // the operations whose grants can change; nil: all
	changed [2][]*compiled             // applying versions of the changed policies, per state
	subjs   []*subjClass
	sByKey  map[string][]int // unchanged subject classes by relevant key
	devs    []*devClass
	rows    map[string]*impactRow // summary rows by key
	rowsCut string                // when set, rows with a greater key were left out
	detail  detailAcc
	counts  map[ImpactChange]int64
}

type impactRow struct {
	s        ImpactSummary
	key      string // sorts as (change, operation, constraints, subjects, devices)
	sClasses map[int]bool
	dClasses map[int]bool
}

type pairDiff struct {
	change ImpactChange
	si, di int
	g      impactGrant
}

func computeImpact(b, a *view, at time.Time, opts *ImpactOptions) (*Impact, error) {
	var o ImpactOptions
	if opts != nil {
		o = *opts
	}
	if o.Limit == 0 {
		o.Limit = DefaultImpactDetails
	}
	c := &impactCalc{views: [2]*view{b, a}, at: at, structured: o.Structured,
		rows: map[string]*impactRow{}, counts: map[ImpactChange]int64{}, detail: detailAcc{limit: o.Limit}}
	c.relevance()
	c.classify()
	if err := c.evaluate(); err != nil {
		return nil, err
	}
	im := &Impact{Object: "impact", Time: at, Gained: c.counts[ImpactGained], Lost: c.counts[ImpactLost]}
	im.Summary, im.SummaryTruncated = c.summary()
	im.Details = c.details()
	im.DetailsTruncated = im.Gained+im.Lost > int64(len(im.Details))
	return im, nil
}

// relevance finds the changed policies, and collects what the applying
// policies of both states that can matter look at, indexing them by
// subject key.
//
// When only policies changed, and none of their versions has an
// AllOperations rule, only the grants of the operations they name can
// change, and those depend only on the policies that name one of these
// operations or AllOperations: the others are left out (c.ops), so that
// the classes are coarser. Otherwise every applying policy matters.
func (c *impactCalc) relevance() {
	applying := func(p *compiled) *compiled {
		if p == nil || !p.p.appliesAt(c.at) {
			return nil
		}
		return p
	}
	for id, pb := range c.views[0].policies {
		pb, pa := applying(pb), applying(c.views[1].policies[id])
		if !samePolicy(pb, pa) {
			if pb != nil {
				c.changed[0] = append(c.changed[0], pb)
			}
			if pa != nil {
				c.changed[1] = append(c.changed[1], pa)
			}
		}
	}
	for id, pa := range c.views[1].policies {
		if _, ok := c.views[0].policies[id]; !ok {
			if pa = applying(pa); pa != nil {
				c.changed[1] = append(c.changed[1], pa)
			}
		}
	}
	if !c.directoryChanged() {
		c.ops = map[string]bool{}
		for _, list := range c.changed {
			for _, p := range list {
				for _, ru := range p.p.Operations {
					if ru.Name == AllOperations {
						c.ops = nil
					} else if c.ops != nil {
						c.ops[ru.Name] = true
					}
				}
			}
		}
	}

	c.subjRel, c.devIDs, c.devEPs, c.attrs = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]map[string]bool{}
	for i, v := range c.views {
		c.byKey[i] = map[string][]*compiled{}
		for _, p := range v.policies {
			if !p.p.appliesAt(c.at) || !c.matters(p) {
				continue
			}
			for _, k := range p.subjKeys {
				c.subjRel[k] = true
				c.byKey[i][k] = append(c.byKey[i][k], p)
			}
			for _, id := range p.p.Devices.IDs {
				c.devIDs[id] = true
			}
			for _, ep := range p.p.Devices.EndpointNames {
				c.devEPs[ep] = true
			}
			for _, a := range p.attrs {
				m := c.attrs[a.key]
				if m == nil {
					m = map[string]bool{}
					c.attrs[a.key] = m
				}
				for _, v := range a.vals {
					m[v] = true
				}
			}
		}
	}
}

// directoryChanged reports whether a subject or a device differs between
// the states.
func (c *impactCalc) directoryChanged() bool {
	b, a := c.views[0], c.views[1]
	if len(b.subjects) != len(a.subjects) || len(b.devices) != len(a.devices) {
		return true
	}
	for id, eb := range b.subjects {
		ea := a.subjects[id]
		if ea == nil || ea != eb && !slices.Equal(ea.keys, eb.keys) {
			return true
		}
	}
	for id, eb := range b.devices {
		ea := a.devices[id]
		if ea == nil || ea != eb && !slices.Equal(ea.keys, eb.keys) {
			return true
		}
	}
	return false
}

// matters reports whether a policy can change a grant that the impact
// compares: it names one of c.ops or AllOperations.
func (c *impactCalc) matters(p *compiled) bool {
	return c.ops == nil || slices.ContainsFunc(p.p.Operations, func(r OperationRule) bool { return r.Name == AllOperations || c.ops[r.Name] })
}

// samePolicy reports whether two versions of a policy (nil: absent or not
// applying) are equal.
func samePolicy(a, b *compiled) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	ja, err1 := json.Marshal(a.policy())
	jb, err2 := json.Marshal(b.policy())
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// subjectSig returns the keys of the subject that some applying policy
// names, sorted; nil for an absent subject.
func (c *impactCalc) subjectSig(e *subjectEntry) []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, k := range e.keys {
		if c.subjRel[k] {
			out = append(out, k)
		}
	}
	return out
}

// deviceSig returns what the applying policies can see of the device: its
// id and endpoint name if some selector names them, and for each
// attribute some selector uses, its value if some selector lists it.
func (c *impactCalc) deviceSig(e *deviceEntry) string {
	if e == nil {
		return "\x02absent"
	}
	var b strings.Builder
	if c.devIDs[e.d.ID] {
		b.WriteString("i\x00" + e.d.ID + "\x01")
	}
	if e.d.EndpointName != "" && c.devEPs[e.d.EndpointName] {
		b.WriteString("e\x00" + e.d.EndpointName + "\x01")
	}
	for _, k := range slices.Sorted(maps.Keys(c.attrs)) {
		v, ok := e.d.Attributes[k]
		if ok && c.attrs[k][v] {
			b.WriteString("k\x00" + k + "\x00" + v + "\x01")
		} else {
			b.WriteString("k\x00" + k + "\x02\x01")
		}
	}
	return b.String()
}

// classify partitions the subjects and devices of both states.
func (c *impactCalc) classify() {
	b, a := c.views[0], c.views[1]
	bySig := map[string]int{}
	c.sByKey = map[string][]int{}
	addSubject := func(id string, eb, ea *subjectEntry) {
		sb, sa := c.subjectSig(eb), c.subjectSig(ea)
		if len(sb) == 0 && len(sa) == 0 {
			return // no applying policy names it in either state
		}
		if eb == nil || ea == nil || !slices.Equal(sb, sa) {
			c.subjs = append(c.subjs, &subjClass{rep: id, members: []string{id}, changed: true})
			return
		}
		sig := strings.Join(sb, "\x01")
		i, ok := bySig[sig]
		if !ok {
			i = len(c.subjs)
			bySig[sig] = i
			c.subjs = append(c.subjs, &subjClass{rep: id})
			for _, k := range sb {
				c.sByKey[k] = append(c.sByKey[k], i)
			}
		}
		c.subjs[i].members = append(c.subjs[i].members, id)
	}
	for id, eb := range b.subjects {
		addSubject(id, eb, a.subjects[id])
	}
	for id, ea := range a.subjects {
		if b.subjects[id] == nil {
			addSubject(id, nil, ea)
		}
	}
	for _, s := range c.subjs {
		slices.Sort(s.members)
		s.rep = s.members[0]
	}

	devBySig := map[string]int{}
	addDevice := func(id string, eb, ea *deviceEntry) {
		sb, sa := c.deviceSig(eb), c.deviceSig(ea)
		if eb == nil || ea == nil || sb != sa {
			c.devs = append(c.devs, &devClass{rep: id, members: []string{id}, changed: true})
			return
		}
		i, ok := devBySig[sb]
		if !ok {
			i = len(c.devs)
			devBySig[sb] = i
			c.devs = append(c.devs, &devClass{rep: id})
		}
		c.devs[i].members = append(c.devs[i].members, id)
	}
	for id, eb := range b.devices {
		addDevice(id, eb, a.devices[id])
	}
	for id, ea := range a.devices {
		if b.devices[id] == nil {
			addDevice(id, nil, ea)
		}
	}
	for _, d := range c.devs {
		slices.Sort(d.members)
		d.rep = d.members[0]
	}
}

// candidates returns the applying policies of state i that name the
// subject class's representative, sorted by id.
func (c *impactCalc) candidates(i int, s *subjClass) []*compiled {
	if s.listed[i] {
		return s.lists[i]
	}
	s.listed[i] = true
	e := c.views[i].subjects[s.rep]
	if e == nil {
		return nil
	}
	var out []*compiled
	for _, k := range e.keys {
		out = append(out, c.byKey[i][k]...)
	}
	slices.SortFunc(out, func(x, y *compiled) int { return strings.Compare(x.p.ID, y.p.ID) })
	s.lists[i] = slices.Compact(out)
	return s.lists[i]
}

// evaluate finds the class pairs the changes touch and compares their
// grants in both states.
func (c *impactCalc) evaluate() error {
	var changedS, changedD, unchangedD []int
	for i, s := range c.subjs {
		if s.changed {
			changedS = append(changedS, i)
		}
	}
	for i, d := range c.devs {
		if d.changed {
			changedD = append(changedD, i)
		} else {
			unchangedD = append(unchangedD, i)
		}
	}
	budget := maxImpactPairs
	spend := func(n int) error {
		budget -= n
		if budget < 0 {
			return fmt.Errorf("%w: the changes touch more than %d (subject class, device class) pairs; compare smaller changes", ErrInvalid, maxImpactPairs)
		}
		return nil
	}
	// A changed subject against every device; every unchanged subject
	// against a changed device.
	if err := spend(len(changedS)*len(c.devs) + (len(c.subjs)-len(changedS))*len(changedD)); err != nil {
		return err
	}
	for _, si := range changedS {
		for di := range c.devs {
			c.evalPair(si, di)
		}
	}
	for si, s := range c.subjs {
		if s.changed {
			continue
		}
		for _, di := range changedD {
			c.evalPair(si, di)
		}
	}
	// Unchanged classes that a changed policy matches in either state.
	touched := map[[2]int]bool{}
	for state, list := range c.changed {
		for _, p := range list {
			var ss []int
			for _, k := range p.subjKeys {
				ss = append(ss, c.sByKey[k]...)
			}
			slices.Sort(ss)
			ss = slices.Compact(ss)
			if len(ss) == 0 {
				continue
			}
			var ds []int
			for _, di := range unchangedD {
				if p.matchesDevice(c.views[state].devices[c.devs[di].rep]) {
					ds = append(ds, di)
				}
			}
			if err := spend(len(ss) * len(ds)); err != nil {
				return err
			}
			for _, si := range ss {
				for _, di := range ds {
					k := [2]int{si, di}
					if !touched[k] {
						touched[k] = true
						c.evalPair(si, di)
					}
				}
			}
		}
	}
	return nil
}

// evalPair compares the grants of one class pair in both states and
// records the differences.
func (c *impactCalc) evalPair(si, di int) {
	s, d := c.subjs[si], c.devs[di]
	var rules [2]pairRules
	var present [2]bool // the subject and the device exist in the state
	var matched [2][]*compiled
	for i, v := range c.views {
		if v.subjects[s.rep] == nil {
			continue
		}
		if e := v.devices[d.rep]; e != nil {
			rules[i], present[i] = matchPair(c.candidates(i, s), e), true
			matched[i] = rules[i].matched
		}
	}
	// Each state decides the operations named in either, so that one
	// named in only one state is compared with what "*" decides of it in
	// the other.
	var grants [2][]impactGrant
	for i := range rules {
		if !present[i] {
			continue
		}
		grants[i] = rules[i].grants(&rules[1-i], c.structured)
		if c.ops != nil {
			grants[i] = slices.DeleteFunc(grants[i], func(g impactGrant) bool { return !c.ops[g.op] })
		}
	}
	n := int64(len(s.members)) * int64(len(d.members))
	record := func(ch ImpactChange, state int, g impactGrant) {
		c.counts[ch] += n
		c.addDetails(pairDiff{change: ch, si: si, di: di, g: g})
		var involved []*compiled
		for _, list := range matched {
			for _, p := range list {
				if slices.ContainsFunc(p.p.Operations, func(r OperationRule) bool { return r.Name == g.op || r.Name == AllOperations }) &&
					!slices.Contains(involved, p) {
					involved = append(involved, p)
				}
			}
		}
		v := c.views[state]
		sd := describeSubjects(v.subjects[s.rep], involved)
		dd := describeDevice(v.devices[d.rep], involved)
		key := strings.Join([]string{string(ch), g.op, g.key, sd, dd}, "\x00")
		row := c.rows[key]
		if row == nil {
			if c.rowsCut != "" && key > c.rowsCut {
				return // beyond the rows the summary keeps
			}
			row = &impactRow{s: ImpactSummary{Change: ch, Operation: g.op, Constraints: cloneConstraintsOrNil(g.cons),
				Subjects: ImpactClass{Description: sd}, Devices: ImpactClass{Description: dd}},
				key: key, sClasses: map[int]bool{}, dClasses: map[int]bool{}}
			c.rows[key] = row
			if len(c.rows) > 4*maxImpactSummary {
				c.pruneRows()
			}
		}
		row.s.Grants += n
		row.sClasses[si] = true
		row.dClasses[di] = true
	}
	gb, ga := grants[0], grants[1]
	i, j := 0, 0
	for i < len(gb) || j < len(ga) {
		switch {
		case j == len(ga) || i < len(gb) && cmpGrant(gb[i], ga[j]) < 0:
			record(ImpactLost, 0, gb[i])
			i++
		case i == len(gb) || cmpGrant(gb[i], ga[j]) > 0:
			record(ImpactGained, 1, ga[j])
			j++
		default:
			i++
			j++
		}
	}
}

func cloneConstraintsOrNil(cs []ArgConstraint) []ArgConstraint {
	if cs == nil {
		return nil
	}
	return cloneConstraints(cs)
}

// describeSubjects says in the owner's terms which of the subject's keys
// the involved policies name: "user alice", "group technicians", "groups
// a, b", "application x".
func describeSubjects(e *subjectEntry, involved []*compiled) string {
	var users, apps, groups []string
	if e != nil {
		for _, k := range e.keys {
			if !slices.ContainsFunc(involved, func(p *compiled) bool { _, ok := slices.BinarySearch(p.subjKeys, k); return ok }) {
				continue
			}
			switch k[0] {
			case 'u':
				users = append(users, k[2:])
			case 'a':
				apps = append(apps, k[2:])
			case 'g':
				groups = append(groups, k[2:])
			}
		}
	}
	var parts []string
	for _, x := range []struct {
		one, many string
		list      []string
	}{{"user", "users", users}, {"application", "applications", apps}, {"group", "groups", groups}} {
		switch len(x.list) {
		case 0:
		case 1:
			parts = append(parts, x.one+" "+x.list[0])
		default:
			parts = append(parts, x.many+" "+strings.Join(x.list, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// describeDevice says why the involved policies select the device: "all
// devices", "id:<id>", "ep:<name>", "attributes site=roof, model=x".
func describeDevice(e *deviceEntry, involved []*compiled) string {
	if e == nil {
		return ""
	}
	var reasons []string
	for _, p := range involved {
		var r string
		switch {
		case p.p.Devices.All:
			r = "all devices"
		case slices.Contains(p.p.Devices.IDs, e.d.ID):
			r = "id:" + e.d.ID
		case e.d.EndpointName != "" && slices.Contains(p.p.Devices.EndpointNames, e.d.EndpointName):
			r = "ep:" + e.d.EndpointName
		case len(p.attrs) > 0:
			var kv []string
			for _, a := range p.attrs {
				kv = append(kv, a.key+"="+e.d.Attributes[a.key])
			}
			r = "attributes " + strings.Join(kv, ", ")
		}
		if r != "" && !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	slices.Sort(reasons)
	return strings.Join(reasons, "; ")
}

// pruneRows keeps the maxImpactSummary first rows: the summary shows no
// others, and a row's key never changes, so that the rows kept stay
// exact while those after them are no longer collected.
func (c *impactCalc) pruneRows() {
	keys := slices.Sorted(maps.Keys(c.rows))
	for _, k := range keys[maxImpactSummary:] {
		delete(c.rows, k)
	}
	c.rowsCut = keys[maxImpactSummary-1]
}

// summary returns the rows sorted, at most maxImpactSummary.
func (c *impactCalc) summary() ([]ImpactSummary, bool) {
	rows := slices.Collect(maps.Values(c.rows))
	slices.SortFunc(rows, func(x, y *impactRow) int { return strings.Compare(x.key, y.key) })
	truncated := c.rowsCut != "" || len(rows) > maxImpactSummary
	rows = rows[:min(len(rows), maxImpactSummary)]
	out := make([]ImpactSummary, len(rows))
	for i, r := range rows {
		s := r.s
		subj, dev := []string{}, []string{}
		for si := range r.sClasses {
			s.Subjects.Count += len(c.subjs[si].members)
			subj = append(subj, c.subjs[si].members[:min(impactSampleSize, len(c.subjs[si].members))]...)
		}
		for di := range r.dClasses {
			s.Devices.Count += len(c.devs[di].members)
			names := c.deviceNames(di)
			dev = append(dev, names[:min(impactSampleSize, len(names))]...)
		}
		slices.Sort(subj)
		slices.Sort(dev)
		s.Subjects.Sample = subj[:min(impactSampleSize, len(subj))]
		s.Devices.Sample = dev[:min(impactSampleSize, len(dev))]
		out[i] = s
	}
	return out, truncated
}

// deviceNames returns the display names of a device class's members
// (endpoint name, else id), sorted.
func (c *impactCalc) deviceNames(di int) []string {
	d := c.devs[di]
	if d.names != nil {
		return d.names
	}
	d.names = make([]string, len(d.members))
	for i, id := range d.members {
		d.names[i] = id
		for _, v := range c.views {
			if e := v.devices[id]; e != nil && e.d.EndpointName != "" {
				d.names[i] = e.d.EndpointName
				break
			}
		}
	}
	slices.Sort(d.names)
	return d.names
}

// detailItem is an ImpactDetail with its sort key.
type detailItem struct {
	d   ImpactDetail
	key string
}

func cmpDetail(a, b *detailItem) int {
	return cmp.Or(strings.Compare(string(a.d.Change), string(b.d.Change)), strings.Compare(a.d.Subject, b.d.Subject),
		strings.Compare(a.d.Device, b.d.Device), strings.Compare(a.d.Operation, b.d.Operation), strings.Compare(a.key, b.key))
}

// detailAcc keeps the first limit triples in order. Each class pair's
// triples are offered in order, so that offering them stops at the first
// one after the limit-th smallest kept so far: the work per pair is
// bounded by the limit, and memory by twice the limit.
type detailAcc struct {
	limit     int
	items     []*detailItem
	threshold *detailItem
}

func (a *detailAcc) trim() {
	slices.SortFunc(a.items, cmpDetail)
	if len(a.items) >= a.limit {
		a.items = a.items[:a.limit]
		a.threshold = a.items[a.limit-1]
	}
}

// add offers the triples of one class pair's difference.
func (c *impactCalc) addDetails(pd pairDiff) {
	a := &c.detail
	state := 1
	if pd.change == ImpactLost {
		state = 0
	}
	v := c.views[state]
	for _, subj := range c.subjs[pd.si].members {
		for _, dev := range c.devs[pd.di].members {
			it := &detailItem{d: ImpactDetail{Change: pd.change, Subject: subj, Device: dev, Operation: pd.g.op}, key: pd.g.key}
			if a.threshold != nil && cmpDetail(it, a.threshold) >= 0 {
				return
			}
			if e := v.devices[dev]; e != nil {
				it.d.EndpointName = e.d.EndpointName
			}
			it.d.Constraints = cloneConstraintsOrNil(pd.g.cons)
			a.items = append(a.items, it)
			if len(a.items) >= 2*a.limit {
				a.trim()
			}
		}
	}
}

// details returns the first triples in order.
func (c *impactCalc) details() []ImpactDetail {
	c.detail.trim()
	out := make([]ImpactDetail, len(c.detail.items))
	for i, it := range c.detail.items {
		out[i] = it.d
	}
	return out
}
