package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// TestIndexRemoval applies random puts, replacements and deletions of
// policies and compares the engine's index lists with a model that
// removes a policy by finding it in the list and moving the last entry
// into its place: the same lists, in the same order (the near-miss
// search depends on it), and each policy's recorded positions right.
func TestIndexRemoval(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	type model map[string][]string // "index\x00key" -> policy ids
	add := func(m model, k, id string) { m[k] = append(m[k], id) }
	remove := func(m model, k, id string) {
		list := m[k]
		i := slices.Index(list, id)
		list[i] = list[len(list)-1]
		if list = list[:len(list)-1]; len(list) == 0 {
			delete(m, k)
		} else {
			m[k] = list
		}
	}
	each := func(c *compiled, f func(k string)) {
		for _, s := range c.subjKeys {
			f("subjkey\x00" + s)
		}
		for _, d := range c.devKeys {
			f("devkey\x00" + d)
		}
		switch n := len(c.subjKeys) * len(c.devKeys); {
		case n <= indexPairLimit:
			for _, s := range c.subjKeys {
				for _, d := range c.devKeys {
					f("pair\x00" + s + "\x00" + d)
				}
			}
		case len(c.subjKeys) <= len(c.devKeys):
			for _, s := range c.subjKeys {
				f("bysubj\x00" + s)
			}
		default:
			for _, d := range c.devKeys {
				f("bydev\x00" + d)
			}
		}
	}
	randomPolicy := func(id string) *Policy {
		p := pol(id, lifetime(time.Hour))
		p.Subjects = Subjects{Groups: []string{"techs"}}
		if rng.IntN(2) == 0 {
			p.Subjects.Users = []string{fmt.Sprintf("u%d", rng.IntN(3))}
		}
		switch rng.IntN(4) {
		case 0:
			p.Devices = DeviceSelector{All: true}
		case 1:
			p.Devices = DeviceSelector{IDs: []string{fmt.Sprintf("%032x", rng.IntN(3))}, Attributes: map[string][]string{"site": {"roof"}}}
		case 2:
			// Indexed by subject only, or by device only.
			var ids []string
			for i := range 40 {
				ids = append(ids, fmt.Sprintf("%032x", i))
			}
			p.Devices = DeviceSelector{IDs: ids}
			if rng.IntN(2) == 0 {
				p.Subjects = Subjects{Users: []string{"u0", "u1"}, Groups: []string{"techs"}}
			} else {
				var users []string
				for i := range 40 {
					users = append(users, fmt.Sprintf("u%d", i))
				}
				p.Subjects = Subjects{Users: users}
				p.Devices = DeviceSelector{IDs: ids[:2]}
			}
		default:
			p.Devices = DeviceSelector{Attributes: map[string][]string{"site": {"roof", "basement"}, "model": {"x"}}}
		}
		return p
	}
	var e Engine
	m := model{}
	current := map[string]*compiled{}
	allKinds := 0 // rounds with policies in the three kinds of main index
	for range 200 {
		var batch []Change
		for range 1 + rng.IntN(20) {
			id := fmt.Sprintf("p%02d", rng.IntN(60))
			if rng.IntN(3) == 0 {
				batch = append(batch, DeleteRecord(KindPolicy, id))
			} else {
				batch = append(batch, PutPolicy(randomPolicy(id)))
			}
		}
		if err := e.Apply(batch...); err != nil {
			t.Fatal(err)
		}
		for _, ch := range batch {
			if old := current[ch.ID]; old != nil {
				each(old, func(k string) { remove(m, k, ch.ID) })
				delete(current, ch.ID)
			}
			if !ch.Delete {
				c := compile(ch.Policy)
				current[ch.ID] = c
				each(c, func(k string) { add(m, k, ch.ID) })
			}
		}
		got := model{}
		check := func(prefix, k string, list []*compiled, kind int, sk, dk string) {
			for i, c := range list {
				got[prefix+k] = append(got[prefix+k], c.p.ID)
				if p := c.pos[c.slot(kind, sk, dk)]; int(p) != i {
					t.Fatalf("%s at %d of %q records position %d", c.p.ID, i, prefix+k, p)
				}
			}
		}
		st := views(e.st)
		for k, ki := range e.st.keys {
			if ki.name != k {
				t.Fatalf("key %q holds the name %q", k, ki.name)
			}
			if ki.all == nil {
				t.Fatalf("key %q is kept with no policy naming it", k)
			}
			if ki.pair != nil && len(ki.pair) == 0 {
				t.Fatalf("key %q holds an empty pair index", k)
			}
		}
		for k, list := range st.bySubjKey {
			check("subjkey\x00", k, list, inBySubjKey, k, "")
		}
		for k, list := range st.byDevKey {
			check("devkey\x00", k, list, inByDevKey, "", k)
		}
		for s, m := range st.pair {
			if len(m) == 0 {
				t.Fatalf("pair index holds subject key %q with no device key", s)
			}
			for d, list := range m {
				check("pair\x00", s+"\x00"+d, list, inPair, s, d)
			}
		}
		for k, list := range st.bySubj {
			check("bysubj\x00", k, list, inBySubj, k, "")
		}
		for k, list := range st.byDev {
			check("bydev\x00", k, list, inByDev, "", k)
		}
		if len(st.pair) > 0 && len(st.bySubj) > 0 && len(st.byDev) > 0 {
			allKinds++
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Fatalf("index lists (-model +engine):\n%s", diff)
		}
	}
	if allKinds < 100 {
		t.Errorf("only %d rounds with the three kinds of index", allKinds)
	}
}

// TestIndexKeysShared: policies that name the same subject or device share
// one copy of its index key, rather than each holding its own, and the
// engine keeps no key once no policy names it.
func TestIndexKeysShared(t *testing.T) {
	id := fmt.Sprintf("%032x", 7)
	var e Engine
	var changes []Change
	for i := range 3 {
		changes = append(changes, PutPolicy(pol(fmt.Sprintf("p%d", i), users("alice"), devices(DeviceSelector{IDs: []string{id}}))))
	}
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	p0, p1, p2 := e.st.policies["p0"], e.st.policies["p1"], e.st.policies["p2"]
	for _, c := range []*compiled{p1, p2} {
		if unsafe.StringData(c.subjKeys[0]) != unsafe.StringData(p0.subjKeys[0]) {
			t.Errorf("policy %s holds its own copy of subject key %q", c.p.ID, c.subjKeys[0])
		}
		if unsafe.StringData(c.devKeys[0]) != unsafe.StringData(p0.devKeys[0]) {
			t.Errorf("policy %s holds its own copy of device key %q", c.p.ID, c.devKeys[0])
		}
	}
	if err := e.Apply(DeleteRecord(KindPolicy, "p0"), DeleteRecord(KindPolicy, "p1"), DeleteRecord(KindPolicy, "p2")); err != nil {
		t.Fatal(err)
	}
	if n := len(e.st.keys); n != 0 {
		t.Errorf("%d index keys kept after every policy was deleted", n)
	}
}

// indexViews is the engine's index as separate maps, for the tests: every
// policy by subject key and by device key, the pair index, and the
// policies indexed by subject or device only (check lists).
type indexViews struct {
	bySubjKey, byDevKey map[string][]*compiled
	pair                map[string]map[string][]*compiled
	bySubj, byDev       map[string][]*compiled
}

// views returns st's index as separate maps, holding only non-empty
// entries.
func views(st *state) indexViews {
	v := indexViews{
		bySubjKey: map[string][]*compiled{}, byDevKey: map[string][]*compiled{},
		pair:   map[string]map[string][]*compiled{},
		bySubj: map[string][]*compiled{}, byDev: map[string][]*compiled{},
	}
	for k, ki := range st.keys {
		subj := k[0] == 'u' || k[0] == 'a' || k[0] == 'g'
		all, check := v.byDevKey, v.byDev
		if subj {
			all, check = v.bySubjKey, v.bySubj
		}
		if len(ki.all) > 0 {
			all[k] = ki.all
		}
		if len(ki.check) > 0 {
			check[k] = ki.check
		}
		if ki.pair != nil {
			v.pair[k] = ki.pair
		}
	}
	return v
}

// TestCandidatesMatchLinearScan compares the candidates that the index
// finds for each (subject, device) with a linear scan of every policy,
// on random stores whose policies are indexed by pair, by subject only
// and by device only, after random replacements and deletions: the same
// policies (the index may find one through several of its keys), each of
// whose selectors matches.
func TestCandidatesMatchLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 5))
	users := []string{"u0", "u1", "u2", "u3"}
	groups := []string{"techs", "admins"}
	var devs []*Device
	for i := range 6 {
		devs = append(devs, &Device{ID: fmt.Sprintf("%032x", i), EndpointName: fmt.Sprintf("ep-%d", i),
			Attributes: map[string]string{"site": []string{"roof", "basement"}[i%2], "model": []string{"x", "y", "z"}[i%3]}})
	}
	var many []string // enough names for a policy to leave the pair index
	for i := range 70 {
		many = append(many, fmt.Sprintf("w%d", i))
	}
	randomPolicy := func(id string) *Policy {
		p := pol(id, lifetime(time.Hour))
		p.Subjects = Subjects{}
		switch rng.IntN(4) {
		case 0:
			p.Subjects.Users = []string{users[rng.IntN(len(users))]}
		case 1:
			p.Subjects.Groups = []string{groups[rng.IntN(len(groups))]}
		case 2:
			p.Subjects.Users = []string{users[rng.IntN(len(users))]}
			p.Subjects.Groups = []string{groups[rng.IntN(len(groups))]}
		default: // by device only, unless the device list is longer still
			p.Subjects.Users = append([]string{users[rng.IntN(len(users))]}, many...)
		}
		d := devs[rng.IntN(len(devs))]
		switch rng.IntN(5) {
		case 0:
			p.Devices = DeviceSelector{All: true}
		case 1:
			p.Devices = DeviceSelector{IDs: []string{d.ID}, EndpointNames: []string{devs[rng.IntN(len(devs))].EndpointName}}
		case 2:
			p.Devices = DeviceSelector{Attributes: map[string][]string{"site": {d.Attributes["site"]}}}
		case 3:
			p.Devices = DeviceSelector{Attributes: map[string][]string{"site": {"roof", "basement"}, "model": {d.Attributes["model"]}}}
		default: // by subject only, unless the subject list is longer still
			var ids []string
			for i := range 70 {
				ids = append(ids, fmt.Sprintf("%032x", 100+i))
			}
			p.Devices = DeviceSelector{IDs: append(ids, d.ID)}
		}
		return p
	}
	var e Engine
	dir := []Change{}
	for i, u := range users {
		dir = append(dir, PutSubject(&Subject{ID: u, Kind: User, Groups: groups[:i%3]}))
	}
	for _, d := range devs {
		dir = append(dir, PutDevice(d))
	}
	if err := e.Apply(dir...); err != nil {
		t.Fatal(err)
	}
	modes := map[string]int{}
	for round := range 100 {
		var batch []Change
		for range 10 {
			id := fmt.Sprintf("p%d", rng.IntN(40))
			if rng.IntN(5) == 0 {
				if e.st.policies[id] != nil {
					batch = append(batch, DeleteRecord(KindPolicy, id))
				}
				continue
			}
			batch = append(batch, PutPolicy(randomPolicy(id)))
		}
		if err := e.Apply(batch...); err != nil {
			t.Fatal(err)
		}
		st := e.st
		for _, c := range st.policies {
			switch {
			case c.checkSubj:
				modes["device only"]++
			case len(c.subjKeys)*len(c.devKeys) > indexPairLimit:
				modes["subject only"]++
			default:
				modes["pair"]++
			}
		}
		for _, u := range users {
			s := st.subjects[u]
			for _, d := range devs {
				de := st.devices[d.ID]
				var got []string
				for _, c := range st.candidates(nil, s, de) {
					if !slices.Contains(got, c.p.ID) {
						got = append(got, c.p.ID)
					}
				}
				var want []string
				for id, c := range st.policies {
					p := c.policy()
					if slices.ContainsFunc(s.keys, func(k string) bool { return slices.Contains(c.subjKeys, k) }) &&
						refMatchesDevice(&p.Devices, d) {
						want = append(want, id)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("round %d, %s on %s: candidates %v, linear scan %v", round, u, d.EndpointName, got, want)
				}
			}
		}
	}
	for _, m := range []string{"pair", "subject only", "device only"} {
		if modes[m] < 100 {
			t.Errorf("only %d policies indexed by %s", modes[m], m)
		}
	}
}
