package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Engine holds policies and directories in memory, indexed for decisions.
// It does no I/O: a [Service] fills it from a [Store], and programs that
// keep policies elsewhere fill it with [Engine.Apply] or [Engine.Load].
// The zero Engine is empty and ready to use; an Engine is safe for
// concurrent use, and decisions run concurrently with each other.
type Engine struct {
	mu sync.RWMutex
	st *state
}

// indexPairLimit bounds the subject x device index entries of one policy.
// Larger policies are indexed by the smaller of the two dimensions only and
// checked against the other.
const indexPairLimit = 64

type state struct {
	policies   map[string]*compiled
	subjects   map[string]*subjectEntry
	devices    map[string]*deviceEntry // by device id
	byEndpoint map[string]*deviceEntry
	apiKeys    map[string]*APIKey
	byHash     map[string]*APIKey
	revs       map[string]*Revocation

	// keys holds the policies by index key, subject keys ("u\x00id",
	// "a\x00id", "g\x00group") and device keys ("*", "i\x00id",
	// "e\x00endpoint", "k\x00key\x00value") alike, which their prefixes
	// tell apart: one look-up finds a key's copy, every policy naming it
	// and the index lists under it. A key is present only while a policy
	// names it.
	keys map[string]*keyIndex
	// kis is working memory: the indexes of the keys of the policy that
	// compileIn compiled last, for index.
	kis []*keyIndex
	// byDevCount counts the entries of the device keys' check lists, so
	// that a decision looks them up only when some policy is indexed by
	// device only.
	byDevCount int
}

// keyIndex holds what the engine indexes under one key.
type keyIndex struct {
	// name is the one copy of the key that the policies, subjects and
	// devices naming it share (a million policies name a few hundred
	// thousand keys).
	name string
	// all holds every policy naming the key, whatever its other
	// dimension: Explain looks up the policies that almost match with
	// them (explain.go).
	all []*compiled
	// pair (subject keys only) holds the policies indexed by (this key,
	// device key), by device key: a decision looks each of the subject's
	// keys up once in the large map of keys and each device key in the
	// subject key's small map, which stays in cache across the device
	// keys, so that its cost grows little with the number of policies.
	// Nil when empty.
	pair map[string][]*compiled
	// check holds, under a subject key, the policies indexed by subject
	// only, whose device selector a decision checks; under a device key,
	// those indexed by device only, whose subjects it checks.
	check []*compiled
}

func newState() *state { return newStateFor(&Snapshot{}) }

// newStateFor returns an empty state whose maps are sized for the
// snapshot s, so that loading it does not grow them step by step (each
// step rehashes the whole map). The index maps are sized for one entry per
// policy, their usual order of magnitude.
func newStateFor(s *Snapshot) *state {
	n := len(s.Policies)
	return &state{
		policies:   make(map[string]*compiled, n),
		subjects:   make(map[string]*subjectEntry, len(s.Subjects)),
		devices:    make(map[string]*deviceEntry, len(s.Devices)),
		byEndpoint: make(map[string]*deviceEntry, len(s.Devices)),
		apiKeys:    make(map[string]*APIKey, len(s.APIKeys)),
		byHash:     make(map[string]*APIKey, len(s.APIKeys)),
		revs:       make(map[string]*Revocation, len(s.Revocations)),
		keys:       make(map[string]*keyIndex, n/4),
	}
}

// key returns the index key made of parts: st's copy of it, made when st
// has none, or when st is nil a new string. Looking the key up builds it
// in a buffer, without allocating. With st, it appends the key's index to
// st.kis.
func (st *state) key(parts ...string) string {
	if st == nil {
		return strings.Join(parts, "")
	}
	var buf [96]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	ki := st.keys[string(b)]
	if ki == nil {
		s := string(b)
		ki = &keyIndex{name: s}
		st.keys[s] = ki
	}
	st.kis = append(st.kis, ki)
	return ki.name
}

// shareKeys replaces the keys of a subject or device entry with the
// state's copies of them, where it has one.
func (st *state) shareKeys(keys []string) {
	for i, k := range keys {
		if ki := st.keys[k]; ki != nil {
			keys[i] = ki.name
		}
	}
}

type subjectEntry struct {
	s    *Subject
	keys []string // sorted: "u\x00id" or "a\x00id", and "g\x00group" per group
}

type deviceEntry struct {
	d    *Device
	keys []string // "*", "i\x00id", "e\x00endpoint", "k\x00key\x00value" per attribute
}

func subjectKeys(s *Subject) []string {
	keys := make([]string, 0, 1+len(s.Groups))
	if s.Kind == User {
		keys = append(keys, "u\x00"+s.ID)
	} else {
		keys = append(keys, "a\x00"+s.ID)
	}
	for _, g := range s.Groups {
		keys = append(keys, "g\x00"+g)
	}
	slices.Sort(keys)
	return keys
}

func deviceKeys(d *Device) []string {
	keys := make([]string, 0, 3+len(d.Attributes))
	keys = append(keys, "*", "i\x00"+d.ID)
	if d.EndpointName != "" {
		keys = append(keys, "e\x00"+d.EndpointName)
	}
	var buf [4]string
	for _, k := range sortedKeys(buf[:0], d.Attributes) {
		keys = append(keys, "k\x00"+k+"\x00"+d.Attributes[k])
	}
	return keys
}

// compiled is a validated policy prepared for evaluation.
type compiled struct {
	p        *Policy
	subjKeys []string // sorted
	devKeys  []string
	// checkDev: candidates must be checked against the whole device
	// selector (several attribute keys, or indexed by subject only).
	checkDev  bool
	checkSubj bool // indexed by device only
	// keys holds, for each of p.Operations, the canonical JSON of its
	// constraints ("" when unconstrained); nil when no rule has any. The
	// rules themselves are p's (see rule), not copied.
	keys []string
	// sorted holds sorted copies of the device selector's ids and
	// endpoint names when the policy does not list them in order; nil
	// otherwise (the common case), when c reads the policy's own lists
	// (see sortedIDs).
	sorted *sortedLists
	attrs  []attrVals // sorted by key
	// pos holds the policy's position in each index list it is in, so
	// that removing it does not scan the list: in the list of all
	// policies per subject key, then per device key (keyIndex.all), then
	// in the pair index per (subject key, device key), or in the check
	// list per subject key, or per device key (see slot).
	pos []int32
}

// sortedLists holds a device selector's ids and endpoint names, sorted.
type sortedLists struct{ ids, eps []string }

// sortedIDs returns the device ids c's policy selects, sorted.
func (c *compiled) sortedIDs() []string {
	if c.sorted != nil {
		return c.sorted.ids
	}
	return c.p.Devices.IDs
}

// sortedEPs returns the endpoint names c's policy selects, sorted.
func (c *compiled) sortedEPs() []string {
	if c.sorted != nil {
		return c.sorted.eps
	}
	return c.p.Devices.EndpointNames
}

// attrVals is one attribute of a device selector and its values, sorted.
type attrVals struct {
	key  string
	vals []string
	// orig holds the values in the policy's order when that is not
	// sorted (vals is then a sorted copy), so that policy can rebuild the
	// selector exactly; nil otherwise.
	orig []string
}

type rule struct {
	name string
	cons []ArgConstraint
	key  string // canonical JSON of cons; "" when unconstrained
}

func compile(p *Policy) *compiled { return compileIn(p, nil) }

// compileIn compiles p. When st is not nil, p's index keys are st's
// copies of them (see state.key), made when st has none: loading a
// million policies then builds a key string only for the keys not seen
// before, instead of one per key and policy.
func compileIn(p *Policy, st *state) *compiled {
	c := &compiled{p: p}
	sel := &p.Devices
	var attrKeys []string // sorted
	var k0 string         // the attribute indexed
	if len(sel.Attributes) > 0 {
		// Index by the attribute with the fewest values; check the others.
		var buf [4]string
		attrKeys = sortedKeys(buf[:0], sel.Attributes)
		k0 = slices.MinFunc(attrKeys, func(a, b string) int {
			return cmp.Or(cmp.Compare(len(sel.Attributes[a]), len(sel.Attributes[b])), cmp.Compare(a, b))
		})
	}
	// The subject and device keys share one array.
	ns := len(p.Subjects.Users) + len(p.Subjects.Applications) + len(p.Subjects.Groups)
	nd := len(sel.IDs) + len(sel.EndpointNames) + len(sel.Attributes[k0])
	if sel.All {
		nd++
	}
	keys := make([]string, 0, ns+nd)
	if st != nil {
		st.kis = st.kis[:0]
	}
	for _, u := range p.Subjects.Users {
		keys = append(keys, st.key("u\x00", u))
	}
	for _, a := range p.Subjects.Applications {
		keys = append(keys, st.key("a\x00", a))
	}
	for _, g := range p.Subjects.Groups {
		keys = append(keys, st.key("g\x00", g))
	}
	c.subjKeys = keys[:ns:ns]
	if st != nil {
		// Sort the keys' indexes with them.
		slices.SortFunc(st.kis, func(a, b *keyIndex) int { return strings.Compare(a.name, b.name) })
		for i, ki := range st.kis {
			c.subjKeys[i] = ki.name
		}
	} else {
		slices.Sort(c.subjKeys)
	}

	if sel.All {
		keys = append(keys, st.key("*"))
	}
	for _, id := range sel.IDs {
		keys = append(keys, st.key("i\x00", id))
	}
	for _, ep := range sel.EndpointNames {
		keys = append(keys, st.key("e\x00", ep))
	}
	if len(sel.Attributes) > 0 {
		for _, v := range sel.Attributes[k0] {
			keys = append(keys, st.key("k\x00", k0, "\x00", v))
		}
		c.checkDev = len(sel.Attributes) > 1
		c.attrs = make([]attrVals, len(attrKeys))
		for i, k := range attrKeys {
			v := sel.Attributes[k]
			c.attrs[i] = attrVals{key: k, vals: sortedView(v)}
			if !slices.IsSorted(v) {
				c.attrs[i].orig = v
			}
		}
	}
	if c.devKeys = keys[ns:]; len(c.devKeys) == 0 {
		c.devKeys = nil
	}
	if !slices.IsSorted(sel.IDs) || !slices.IsSorted(sel.EndpointNames) {
		c.sorted = &sortedLists{ids: sortedView(sel.IDs), eps: sortedView(sel.EndpointNames)}
	}

	for i, r := range p.Operations {
		if len(r.Constraints) > 0 {
			if c.keys == nil {
				c.keys = make([]string, len(p.Operations))
			}
			b, _ := json.Marshal(r.Constraints) // plain data: cannot fail
			c.keys[i] = string(b)
		}
	}
	return c
}

// shed drops the map of device attributes from c's policy: c.attrs holds
// the same keys and values, and a map costs hundreds of bytes per policy.
// Unless owned, c's policy is replaced with a shallow copy without the
// map, and the policy compiled is left as it was (an undo record or a
// history entry may hold it); when owned (nothing but c refers to the
// policy, as when Load compiles its own copies), the map is dropped in
// place. Whatever hands c's policy out, or reads its selector, goes
// through policy, which rebuilds the map.
func (c *compiled) shed(owned bool) {
	if c.p.Devices.Attributes == nil {
		return
	}
	if owned {
		c.p.Devices.Attributes = nil
		return
	}
	p := *c.p
	p.Devices.Attributes = nil
	c.p = &p
}

// policy returns c's policy as it was compiled: c.p itself, or when shed
// dropped its map of device attributes, a shallow copy with the map
// rebuilt from c.attrs. The result shares its slices with c: callers that
// hand it out clone it.
func (c *compiled) policy() *Policy {
	if len(c.attrs) == 0 || c.p.Devices.Attributes != nil {
		return c.p
	}
	p := *c.p
	p.Devices.Attributes = make(map[string][]string, len(c.attrs))
	for _, a := range c.attrs {
		v := a.vals
		if a.orig != nil {
			v = a.orig
		}
		p.Devices.Attributes[a.key] = v
	}
	return &p
}

// rule returns c's i-th operation rule, 0 <= i < len(c.p.Operations).
func (c *compiled) rule(i int) rule {
	r := rule{name: c.p.Operations[i].Name, cons: c.p.Operations[i].Constraints}
	if c.keys != nil {
		r.key = c.keys[i]
	}
	return r
}

// sortedView returns s when it is sorted, and a sorted copy otherwise:
// compiled policies only read their selectors' lists, so most of them (in
// a store, names are often listed in order) share the policy's own.
func sortedView(s []string) []string {
	if slices.IsSorted(s) {
		return s
	}
	return slices.Sorted(slices.Values(s))
}

func (c *compiled) matchesDevice(d *deviceEntry) bool {
	if c.p.Devices.All {
		return true
	}
	if _, ok := slices.BinarySearch(c.sortedIDs(), d.d.ID); ok {
		return true
	}
	if d.d.EndpointName != "" {
		if _, ok := slices.BinarySearch(c.sortedEPs(), d.d.EndpointName); ok {
			return true
		}
	}
	if len(c.attrs) == 0 {
		return false
	}
	for i := range c.attrs {
		v, ok := d.d.Attributes[c.attrs[i].key]
		if !ok {
			return false
		}
		if _, ok := slices.BinarySearch(c.attrs[i].vals, v); !ok {
			return false
		}
	}
	return true
}

func (c *compiled) matchesSubject(s *subjectEntry) bool {
	for _, k := range s.keys {
		if _, ok := slices.BinarySearch(c.subjKeys, k); ok {
			return true
		}
	}
	return false
}

// Kinds of index lists, for slot.
const (
	inBySubjKey = iota // a subject key's all
	inByDevKey         // a device key's all
	inPair             // a subject key's pair, under a device key
	inBySubj           // a subject key's check
	inByDev            // a device key's check
)

// slot returns the index in c.pos of c's position in the list of kind
// kind for subject key sk and device key dk (one of them unused but for
// inPair).
func (c *compiled) slot(kind int, sk, dk string) int {
	si := func() int { i, _ := slices.BinarySearch(c.subjKeys, sk); return i }
	di := func() int { return slices.Index(c.devKeys, dk) }
	base := len(c.subjKeys) + len(c.devKeys)
	switch kind {
	case inBySubjKey:
		return si()
	case inByDevKey:
		return len(c.subjKeys) + di()
	case inPair:
		return base + si()*len(c.devKeys) + di()
	case inBySubj:
		return base + si()
	default: // inByDev
		return base + di()
	}
}

// addTo appends c to list, its slot-th index list, and records its
// position.
func addTo(list *[]*compiled, c *compiled, slot int) {
	c.pos[slot] = int32(len(*list))
	*list = append(*list, c)
}

// removeFrom removes c from list, its index list of kind kind for subject
// key sk and device key dk, in constant time: the last policy of the list
// takes its place.
func removeFrom(list *[]*compiled, c *compiled, kind int, sk, dk string) {
	l := *list
	i, last := int(c.pos[c.slot(kind, sk, dk)]), len(l)-1
	if i != last {
		moved := l[last]
		l[i] = moved
		moved.pos[moved.slot(kind, sk, dk)] = int32(i)
	}
	l[last] = nil
	if l = l[:last]; len(l) == 0 {
		l = nil
	}
	*list = l
}

// index adds c, compiled by compileIn with st (its keys are in st.keys),
// to st's indexes; kis holds the indexes of c's subject keys, then of its
// device keys, in order, as compileIn leaves them in st.kis, so that no
// key is looked up again.
func (st *state) index(c *compiled, kis []*keyIndex) {
	n := len(c.subjKeys) * len(c.devKeys)
	switch {
	case n <= indexPairLimit:
	case len(c.subjKeys) <= len(c.devKeys):
		c.checkDev = true
		n = len(c.subjKeys)
	default:
		c.checkSubj = true
		n = len(c.devKeys)
	}
	c.pos = make([]int32, len(c.subjKeys)+len(c.devKeys)+n)
	sk, dk := kis[:len(c.subjKeys)], kis[len(c.subjKeys):]
	slot := 0
	for _, ki := range kis {
		addTo(&ki.all, c, slot)
		slot++
	}
	switch {
	case c.checkSubj:
		for _, ki := range dk {
			addTo(&ki.check, c, slot)
			slot++
		}
		st.byDevCount += len(dk)
	case len(sk)*len(dk) > indexPairLimit:
		for _, ki := range sk {
			addTo(&ki.check, c, slot)
			slot++
		}
	default:
		for _, ki := range sk {
			if ki.pair == nil {
				ki.pair = make(map[string][]*compiled, len(c.devKeys))
			}
			for _, d := range c.devKeys {
				list := ki.pair[d]
				addTo(&list, c, slot)
				ki.pair[d] = list
				slot++
			}
		}
	}
}

func (st *state) unindex(c *compiled) {
	for _, s := range c.subjKeys {
		removeFrom(&st.keys[s].all, c, inBySubjKey, s, "")
	}
	for _, d := range c.devKeys {
		removeFrom(&st.keys[d].all, c, inByDevKey, "", d)
	}
	switch {
	case c.checkSubj:
		for _, d := range c.devKeys {
			removeFrom(&st.keys[d].check, c, inByDev, "", d)
		}
		st.byDevCount -= len(c.devKeys)
	case len(c.subjKeys)*len(c.devKeys) > indexPairLimit:
		for _, s := range c.subjKeys {
			removeFrom(&st.keys[s].check, c, inBySubj, s, "")
		}
	default:
		for _, s := range c.subjKeys {
			ki := st.keys[s]
			for _, d := range c.devKeys {
				list := ki.pair[d]
				removeFrom(&list, c, inPair, s, d)
				if list == nil {
					delete(ki.pair, d)
				} else {
					ki.pair[d] = list
				}
			}
			if len(ki.pair) == 0 {
				ki.pair = nil
			}
		}
	}
	// A key leaves with its last policy (every policy naming it is in all).
	for _, k := range c.subjKeys {
		if st.keys[k].all == nil {
			delete(st.keys, k)
		}
	}
	for _, k := range c.devKeys {
		if ki := st.keys[k]; ki != nil && ki.all == nil {
			delete(st.keys, k)
		}
	}
}

// policiesByKey returns every policy naming the index key k.
func (st *state) policiesByKey(k string) []*compiled {
	if ki := st.keys[k]; ki != nil {
		return ki.all
	}
	return nil
}

// apply applies a validated change. It never fails: conflicts are
// checked beforehand by check.
func (st *state) apply(c *Change) { st.applyChange(c, false) }

// applyChange applies a validated change, and reports whether it
// replaced or deleted a record. When owned, c's record belongs to st
// alone (nothing else refers to it, as with Load's copies), so that st may
// modify it.
func (st *state) applyChange(c *Change, owned bool) (existed bool) {
	switch c.Kind {
	case KindPolicy:
		if old := st.policies[c.ID]; old != nil {
			existed = true
			st.unindex(old)
			delete(st.policies, c.ID)
		}
		if !c.Delete {
			pc := compileIn(c.Policy, st)
			pc.shed(owned)
			st.policies[c.ID] = pc
			st.index(pc, st.kis)
		}
	case KindSubject:
		if st.subjects[c.ID] != nil {
			existed = true
			delete(st.subjects, c.ID)
		}
		if !c.Delete {
			e := &subjectEntry{s: c.Subject, keys: subjectKeys(c.Subject)}
			st.shareKeys(e.keys)
			st.subjects[c.ID] = e
		}
	case KindDevice:
		if old := st.devices[c.ID]; old != nil {
			existed = true
			delete(st.devices, c.ID)
			if old.d.EndpointName != "" {
				delete(st.byEndpoint, old.d.EndpointName)
			}
		}
		if !c.Delete {
			e := &deviceEntry{d: c.Device, keys: deviceKeys(c.Device)}
			st.shareKeys(e.keys)
			st.devices[c.ID] = e
			if c.Device.EndpointName != "" {
				st.byEndpoint[c.Device.EndpointName] = e
			}
		}
	case KindAPIKey:
		if old := st.apiKeys[c.ID]; old != nil {
			existed = true
			delete(st.apiKeys, c.ID)
			delete(st.byHash, string(old.Hash))
		}
		if !c.Delete {
			st.apiKeys[c.ID] = c.APIKey
			st.byHash[string(c.APIKey.Hash)] = c.APIKey
		}
	case KindRevocation:
		if st.revs[c.ID] != nil {
			existed = true
			delete(st.revs, c.ID)
		}
		if !c.Delete {
			st.revs[c.ID] = c.Revocation
		}
	}
	return existed
}

// check validates a batch against the state it would apply to, without
// changing it: uniqueness of endpoint names and API key hashes.
func (st *state) check(changes []Change) error {
	// The batch's view of the unique names: owner by name ("" when freed)
	// and name by owner, for the records the batch touches.
	epOwner, idEP := map[string]string{}, map[string]string{}
	hashOwner, idHash := map[string]string{}, map[string]string{}
	claim := func(owner, name map[string]string, id, old, neu string, current func(string) string) (string, bool) {
		if prev, ok := name[id]; ok {
			old = prev
		}
		if old != "" {
			owner[old] = ""
		}
		name[id] = neu
		if neu == "" {
			return "", true
		}
		o, seen := owner[neu]
		if !seen {
			o = current(neu)
		}
		if o != "" && o != id {
			return o, false
		}
		owner[neu] = id
		return "", true
	}
	var touched map[recordKey]bool   // records the batch has written so far, when a change is a creation
	var latest map[recordKey]*Change // the batch's last change of each record, when a change has IfMatch
	for i := range changes {
		if changes[i].IfMatch != nil && latest == nil {
			latest = map[recordKey]*Change{}
		}
		if changes[i].Create && touched == nil {
			touched = map[recordKey]bool{}
		}
	}
	for i := range changes {
		c := &changes[i]
		k := recordKey{c.Kind, c.ID}
		if c.IfMatch != nil {
			cur, seen := latest[k]
			if !seen {
				now := st.current(c.Kind, c.ID)
				cur = &now
			}
			if !sameRecord(cur, c.IfMatch) {
				return fmt.Errorf("%w: %s %q changed meanwhile", ErrConflict, c.Kind, c.ID)
			}
		}
		if latest != nil {
			latest[k] = c
		}
		if c.Create {
			exists, seen := touched[k]
			if !seen {
				exists = st.exists(c.Kind, c.ID)
			}
			if exists {
				return fmt.Errorf("%w: %s %q exists", ErrConflict, c.Kind, c.ID)
			}
		}
		if touched != nil {
			touched[k] = !c.Delete
		}
		switch c.Kind {
		case KindDevice:
			var old, neu string
			if e := st.devices[c.ID]; e != nil {
				old = e.d.EndpointName
			}
			if !c.Delete {
				neu = c.Device.EndpointName
			}
			if o, ok := claim(epOwner, idEP, c.ID, old, neu, func(ep string) string {
				if e := st.byEndpoint[ep]; e != nil {
					return e.d.ID
				}
				return ""
			}); !ok {
				return fmt.Errorf("%w: endpoint name %q belongs to device %s", ErrConflict, neu, o)
			}
		case KindAPIKey:
			var old, neu string
			if k := st.apiKeys[c.ID]; k != nil {
				old = string(k.Hash)
			}
			if !c.Delete {
				neu = string(c.APIKey.Hash)
			}
			if o, ok := claim(hashOwner, idHash, c.ID, old, neu, func(h string) string {
				if k := st.byHash[h]; k != nil {
					return k.ID
				}
				return ""
			}); !ok {
				return fmt.Errorf("%w: API key hash already used by key %s", ErrConflict, o)
			}
		}
	}
	return nil
}

// sameRecord reports whether the change cur (a put or a delete) puts the
// record that the put want does, compared by JSON encoding.
func sameRecord(cur, want *Change) bool {
	if cur.Delete {
		return false
	}
	a, err1 := cur.record()
	b, err2 := want.record()
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// PrepareChanges validates a batch of changes and returns copies that share
// nothing with the caller. Stores call it before writing.
func PrepareChanges(changes []Change) ([]Change, error) {
	if len(changes) > maxChangesPerApply {
		return nil, fmt.Errorf("%w: more than %d changes in one batch", ErrInvalid, maxChangesPerApply)
	}
	out := make([]Change, len(changes))
	for i := range changes {
		c, err := changes[i].validate()
		if err != nil {
			return nil, fmt.Errorf("change %d (%s %q): %w", i, changes[i].Kind, changes[i].ID, err)
		}
		out[i] = c
	}
	return out, nil
}

// Apply validates the changes and applies them all, or none when one is
// invalid (an error matching [ErrInvalid]) or breaks a uniqueness rule
// ([ErrConflict]).
func (e *Engine) Apply(changes ...Change) error {
	_, err := e.applyRecording(changes) // history.go
	return err
}

// Load replaces the whole content of the engine with the snapshot, or
// leaves it unchanged when the snapshot is invalid.
func (e *Engine) Load(s *Snapshot) error {
	prepared, err := validateSnapshot(s)
	if err != nil {
		return err
	}
	st := newStateFor(s)
	if err := st.check(prepared); err != nil {
		// check takes a record given twice for a replacement: a
		// duplicate is what is wrong then, if there is one.
		if dup := findDuplicate(s, prepared); dup != nil {
			return dup
		}
		return err
	}
	// A record given twice is found as it is applied, by the look-up that
	// applying makes anyway, instead of in a set of every id beforehand:
	// st is new, and is dropped.
	for i := range prepared {
		c := &prepared[i]
		if st.applyChange(c, true) { // prepared holds copies of s's records
			return duplicateRecord(c)
		}
	}
	e.mu.Lock()
	e.st = st
	e.mu.Unlock()
	return nil
}

// validateSnapshot validates the records of s and returns puts of copies
// of them that share nothing with s.
func validateSnapshot(s *Snapshot) ([]Change, error) {
	changes := s.changes()
	for i := range changes {
		c, err := changes[i].validate()
		if err != nil {
			return nil, fmt.Errorf("snapshot %s %q: %w", changes[i].Kind, changes[i].ID, err)
		}
		changes[i] = c
	}
	return changes, nil
}

// duplicateRecord returns the error for a snapshot that holds the record
// of c twice.
func duplicateRecord(c *Change) error {
	return fmt.Errorf("%w: snapshot holds %s %q twice", ErrInvalid, c.Kind, c.ID)
}

// prepareSnapshot validates the records of s, checks that no id is given
// twice, and returns puts of copies of them that share nothing with s.
func prepareSnapshot(s *Snapshot) ([]Change, error) {
	out, err := validateSnapshot(s)
	if err != nil {
		return nil, err
	}
	if err := findDuplicate(s, out); err != nil {
		return nil, err
	}
	return out, nil
}

// findDuplicate returns the error for the first record of changes, the
// records of s, whose id an earlier one has, or nil.
func findDuplicate(s *Snapshot, changes []Change) error {
	seen := map[Kind]map[string]struct{}{
		KindPolicy:     make(map[string]struct{}, len(s.Policies)),
		KindSubject:    make(map[string]struct{}, len(s.Subjects)),
		KindDevice:     make(map[string]struct{}, len(s.Devices)),
		KindAPIKey:     make(map[string]struct{}, len(s.APIKeys)),
		KindRevocation: make(map[string]struct{}, len(s.Revocations)),
	}
	for i := range changes {
		c := &changes[i]
		if _, dup := seen[c.Kind][c.ID]; dup {
			return duplicateRecord(c)
		}
		seen[c.Kind][c.ID] = struct{}{}
	}
	return nil
}

// lookupPolicy returns a copy of the policy with the given id, or an error
// matching [ErrNotFound].
func (e *Engine) lookupPolicy(id string) (*Policy, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st != nil {
		if c := e.st.policies[id]; c != nil {
			return c.policy().clone(), nil
		}
	}
	return nil, fmt.Errorf("%w: policy %q", ErrNotFound, id)
}

// Snapshot returns a copy of the whole content, each list sorted by id.
// Its Seq is zero.
func (e *Engine) Snapshot() *Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return emptyState.snapshot()
	}
	return e.st.snapshot()
}

func (st *state) snapshot() *Snapshot {
	s := &Snapshot{
		Policies: make([]*Policy, 0, len(st.policies)),
		Subjects: make([]*Subject, 0, len(st.subjects)),
		Devices:  make([]*Device, 0, len(st.devices)),
		APIKeys:  make([]*APIKey, 0, len(st.apiKeys)),
	}
	for _, x := range st.revs {
		s.Revocations = append(s.Revocations, x.clone())
	}
	sort.Slice(s.Revocations, func(i, j int) bool { return s.Revocations[i].ID < s.Revocations[j].ID })
	for _, c := range st.policies {
		s.Policies = append(s.Policies, c.policy().clone())
	}
	for _, x := range st.subjects {
		s.Subjects = append(s.Subjects, x.s.clone())
	}
	for _, x := range st.devices {
		s.Devices = append(s.Devices, x.d.clone())
	}
	for _, x := range st.apiKeys {
		s.APIKeys = append(s.APIKeys, x.clone())
	}
	sort.Slice(s.Policies, func(i, j int) bool { return s.Policies[i].ID < s.Policies[j].ID })
	sort.Slice(s.Subjects, func(i, j int) bool { return s.Subjects[i].ID < s.Subjects[j].ID })
	sort.Slice(s.Devices, func(i, j int) bool { return s.Devices[i].ID < s.Devices[j].ID })
	sort.Slice(s.APIKeys, func(i, j int) bool { return s.APIKeys[i].ID < s.APIKeys[j].ID })
	return s
}

// recordKey names a record.
type recordKey struct {
	kind Kind
	id   string
}

// exists reports whether the record of kind and id exists.
func (st *state) exists(kind Kind, id string) bool {
	switch kind {
	case KindPolicy:
		return st.policies[id] != nil
	case KindSubject:
		return st.subjects[id] != nil
	case KindDevice:
		return st.devices[id] != nil
	case KindAPIKey:
		return st.apiKeys[id] != nil
	case KindRevocation:
		return st.revs[id] != nil
	}
	return false
}

// current returns the change that would restore the present value of the
// record that c touches: a put of the old record, or a delete.
func (st *state) current(kind Kind, id string) Change {
	switch kind {
	case KindPolicy:
		if c := st.policies[id]; c != nil {
			return PutPolicy(c.policy())
		}
	case KindSubject:
		if x := st.subjects[id]; x != nil {
			return PutSubject(x.s)
		}
	case KindDevice:
		if x := st.devices[id]; x != nil {
			return PutDevice(x.d)
		}
	case KindAPIKey:
		if x := st.apiKeys[id]; x != nil {
			return PutAPIKey(x)
		}
	case KindRevocation:
		if x := st.revs[id]; x != nil {
			return Change{Kind: KindRevocation, ID: id, Revocation: x}
		}
	}
	return DeleteRecord(kind, id)
}

// lookupAPIKey returns the key whose hash is h, provided its subject is in
// the directory: the keys of a deleted subject do not authenticate.
func (e *Engine) lookupAPIKey(h []byte) *APIKey {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return nil
	}
	k := e.st.byHash[string(h)]
	if k == nil || e.st.subjects[k.Subject] == nil {
		return nil
	}
	return k
}

// apiKeysOf returns the ids of the API keys of subject, sorted.
func (e *Engine) apiKeysOf(subject string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var ids []string
	if e.st != nil {
		for id, k := range e.st.apiKeys {
			if k.Subject == subject {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// get returns a copy of one record, for the administration API.
func (e *Engine) get(kind Kind, id string) (any, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st != nil {
		switch kind {
		case KindPolicy:
			if c := e.st.policies[id]; c != nil {
				return c.policy().clone(), nil
			}
		case KindSubject:
			if x := e.st.subjects[id]; x != nil {
				return x.s.clone(), nil
			}
		case KindDevice:
			if x := e.st.devices[id]; x != nil {
				return x.d.clone(), nil
			}
		case KindAPIKey:
			if x := e.st.apiKeys[id]; x != nil {
				return x.clone(), nil
			}
		case KindRevocation:
			if x := e.st.revs[id]; x != nil {
				return x.clone(), nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s %q", ErrNotFound, kind, id)
}

// current returns the put of the present record of the given kind and
// id, or its deletion when there is none. The record is the engine's own:
// callers read it and never modify it.
func (e *Engine) current(kind Kind, id string) Change {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.st == nil {
		return DeleteRecord(kind, id)
	}
	return e.st.current(kind, id)
}
