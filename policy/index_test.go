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
		st := e.st
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
	if n := len(e.st.keyNames); n != 0 {
		t.Errorf("%d index keys kept after every policy was deleted", n)
	}
}
