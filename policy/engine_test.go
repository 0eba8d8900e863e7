package policy

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decide asks e whether alice may have op on aud at t0 and returns the
// decision's error: nil when allowed.
func decide(t *testing.T, e *Engine, aud string, op string) error {
	t.Helper()
	d, err := e.Decide(&Request{Subject: "alice", Audience: []string{aud}, Operations: []string{op}, Time: t0})
	if err != nil {
		t.Fatalf("Decide(%s, %s): %v", aud, op, err)
	}
	return d.Err()
}

// TestDeviceIdentityChanges: an audience resolves to the device that holds
// the name now, never to one that held it before.
func TestDeviceIdentityChanges(t *testing.T) {
	var e Engine
	err := e.Apply(append(testDirectory(), PutPolicy(pol("p1", devices(DeviceSelector{IDs: []string{dev1}}))))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := decide(t, &e, "ep:hvac-1", "read"); err != nil {
		t.Fatalf("before the rename: %v", err)
	}
	t.Run("renamed", func(t *testing.T) {
		if err := e.Apply(PutDevice(&Device{ID: dev1, EndpointName: "hvac-1b"})); err != nil {
			t.Fatal(err)
		}
		if err := decide(t, &e, "ep:hvac-1", "read"); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("the old name: %v, want ErrUnknownDevice", err)
		}
		if err := decide(t, &e, "ep:hvac-1b", "read"); err != nil {
			t.Errorf("the new name: %v", err)
		}
	})
	t.Run("old name taken by another device", func(t *testing.T) {
		if err := e.Apply(PutDevice(&Device{ID: dev3, EndpointName: "hvac-1"})); err != nil {
			t.Fatal(err)
		}
		if err := decide(t, &e, "ep:hvac-1", "read"); !errors.Is(err, ErrNoAllowPolicy) {
			t.Errorf("the old name, now another device's: %v, want ErrNoAllowPolicy", err)
		}
	})
	t.Run("name removed", func(t *testing.T) {
		if err := e.Apply(PutDevice(&Device{ID: dev1})); err != nil {
			t.Fatal(err)
		}
		if err := decide(t, &e, "ep:hvac-1b", "read"); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("the removed name: %v, want ErrUnknownDevice", err)
		}
		if err := decide(t, &e, "id:"+dev1, "read"); err != nil {
			t.Errorf("by id: %v", err)
		}
		// The freed name can be given to another device.
		if err := e.Apply(PutDevice(&Device{ID: dev2, EndpointName: "hvac-1b"})); err != nil {
			t.Errorf("taking the freed name: %v", err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		if err := e.Apply(DeleteRecord(KindDevice, dev3)); err != nil {
			t.Fatal(err)
		}
		for _, aud := range []string{"ep:hvac-1", "id:" + dev3} {
			if err := decide(t, &e, aud, "read"); !errors.Is(err, ErrUnknownDevice) {
				t.Errorf("%s of a deleted device: %v, want ErrUnknownDevice", aud, err)
			}
		}
		if err := e.Apply(PutDevice(&Device{ID: dev1, EndpointName: "hvac-1"})); err != nil {
			t.Errorf("taking the deleted device's name: %v", err)
		}
	})
}

// TestIndexPairLimit: a policy of exactly indexPairLimit subject x device
// keys and one of one more (indexed by one dimension) decide alike and
// are removed from the index when deleted or replaced.
func TestIndexPairLimit(t *testing.T) {
	for _, tc := range []struct{ users, eps int }{{8, 8}, {1, indexPairLimit}, {5, 13}, {1, indexPairLimit + 1}, {13, 5}, {indexPairLimit + 1, 1}} {
		t.Run(fmt.Sprintf("%dx%d", tc.users, tc.eps), func(t *testing.T) {
			var e Engine
			sel := DeviceSelector{EndpointNames: append(names("ep-", tc.eps-1), "hvac-1")}
			p := pol("p", users(append(names("u", tc.users-1), "alice")...), devices(sel))
			if err := e.Apply(append(testDirectory(), PutPolicy(p))...); err != nil {
				t.Fatal(err)
			}
			if err := decide(t, &e, "ep:hvac-1", "read"); err != nil {
				t.Errorf("selected device: %v", err)
			}
			if err := decide(t, &e, "ep:hvac-2", "read"); !errors.Is(err, ErrNoAllowPolicy) {
				t.Errorf("other device: %v, want ErrNoAllowPolicy", err)
			}
			// Replaced by a policy for another device: the old one is gone.
			p2 := pol("p", users(p.Subjects.Users...), devices(DeviceSelector{EndpointNames: append(names("ep-", tc.eps-1), "hvac-2")}))
			if err := e.Apply(PutPolicy(p2)); err != nil {
				t.Fatal(err)
			}
			if err := decide(t, &e, "ep:hvac-1", "read"); !errors.Is(err, ErrNoAllowPolicy) {
				t.Errorf("device of the replaced policy: %v, want ErrNoAllowPolicy", err)
			}
			if err := decide(t, &e, "ep:hvac-2", "read"); err != nil {
				t.Errorf("device of the new policy: %v", err)
			}
			if err := e.Apply(DeleteRecord(KindPolicy, "p")); err != nil {
				t.Fatal(err)
			}
			if err := decide(t, &e, "ep:hvac-2", "read"); !errors.Is(err, ErrNoAllowPolicy) {
				t.Errorf("after delete: %v, want ErrNoAllowPolicy", err)
			}
		})
	}
}

// TestIndexBySmallerDimension: a policy too large for the pair index is
// indexed by its smaller dimension, so that its index entries stay few.
func TestIndexBySmallerDimension(t *testing.T) {
	for _, tc := range []struct {
		users, eps       int
		bySubj, byDev, n int
	}{
		{users: 10, eps: 20, bySubj: 10},
		{users: 20, eps: 10, byDev: 10},
		{users: 10, eps: 10, bySubj: 10},
		{users: 8, eps: 8, n: 64},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.users, tc.eps), func(t *testing.T) {
			var e Engine
			p := pol("p", users(names("u", tc.users)...), devices(DeviceSelector{EndpointNames: names("ep-", tc.eps)}))
			if err := e.Apply(PutPolicy(p)); err != nil {
				t.Fatal(err)
			}
			v := views(e.st)
			pairs := 0
			for _, m := range v.pair {
				pairs += len(m)
			}
			if len(v.bySubj) != tc.bySubj || len(v.byDev) != tc.byDev || pairs != tc.n {
				t.Errorf("index entries: %d by subject, %d by device, %d pairs; want %d, %d, %d",
					len(v.bySubj), len(v.byDev), pairs, tc.bySubj, tc.byDev, tc.n)
			}
		})
	}
}

// TestDeleteKeepsOtherPolicies: policies sharing index entries stay when
// one of them is deleted, whichever index holds them.
func TestDeleteKeepsOtherPolicies(t *testing.T) {
	many := names("ep-", 100)
	for _, tc := range []struct {
		name string
		opts []polOpt
	}{
		{"pair index", nil},
		{"by subject", []polOpt{devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: many})}},
		{"by device", []polOpt{users(append(names("u", 100), "alice")...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Engine
			changes := testDirectory()
			operations := []string{"read", "write", "reboot", "reset"}
			for i, op := range operations {
				changes = append(changes, PutPolicy(pol(fmt.Sprint("p", i), append(tc.opts, ops(op))...)))
			}
			if err := e.Apply(changes...); err != nil {
				t.Fatal(err)
			}
			// Delete the first, the last and a middle one of the list.
			deleted := map[string]bool{}
			for _, i := range []int{0, 3, 1} {
				if err := e.Apply(DeleteRecord(KindPolicy, fmt.Sprint("p", i))); err != nil {
					t.Fatal(err)
				}
				deleted[operations[i]] = true
				for _, op := range operations {
					err := decide(t, &e, "ep:hvac-1", op)
					if deleted[op] != errors.Is(err, ErrNoAllowPolicy) || !deleted[op] && err != nil {
						t.Errorf("after deleting %v: %s: %v", deleted, op, err)
					}
				}
			}
		})
	}
}

// TestDeviceWithManyAttributes: a device with the most attributes allowed
// is indexed by each of them.
func TestDeviceWithManyAttributes(t *testing.T) {
	attrs := map[string]string{}
	for i := range maxAttributes {
		attrs[fmt.Sprint("k", i)] = fmt.Sprint("v", i)
	}
	var e Engine
	err := e.Apply(append(testDirectory(),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-1", Attributes: attrs}),
		PutPolicy(pol("p1", devices(DeviceSelector{Attributes: map[string][]string{fmt.Sprint("k", maxAttributes-1): {fmt.Sprint("v", maxAttributes-1)}}}))))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := decide(t, &e, "ep:hvac-1", "read"); err != nil {
		t.Error(err)
	}
}

// TestEngineLoad: Load replaces the whole content with a snapshot, of
// whatever kinds of records, or changes nothing when the snapshot is invalid.
func TestEngineLoad(t *testing.T) {
	key := func(id, subject string) *APIKey {
		_, k, err := NewAPIKey(nil, id, subject, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for name, snap := range map[string]*Snapshot{
		"empty":         {},
		"policies only": {Policies: []*Policy{pol("p1"), pol("p2")}},
		"subjects only": {Subjects: []*Subject{{ID: "a", Kind: User}, {ID: "b", Kind: Application}}},
		"devices only":  {Devices: []*Device{{ID: dev1, EndpointName: "x"}, {ID: dev2}}},
		"API keys only": {APIKeys: []*APIKey{key("k1", "a"), key("k2", "b")}},
		"all kinds": {Policies: []*Policy{pol("p1")}, Subjects: []*Subject{{ID: "a", Kind: User}},
			Devices: []*Device{{ID: dev1}}, APIKeys: []*APIKey{key("k1", "a")}},
	} {
		t.Run(name, func(t *testing.T) {
			var e Engine
			if err := e.Apply(append(testDirectory(), PutPolicy(pol("old")))...); err != nil {
				t.Fatal(err)
			}
			if err := e.Load(snap); err != nil {
				t.Fatal(err)
			}
			got := e.Snapshot()
			if len(got.Policies) != len(snap.Policies) || len(got.Subjects) != len(snap.Subjects) ||
				len(got.Devices) != len(snap.Devices) || len(got.APIKeys) != len(snap.APIKeys) {
				t.Errorf("loaded %+v, want %+v", got, snap)
			}
		})
	}
	for name, tc := range map[string]struct {
		snap *Snapshot
		want error
	}{
		"invalid record":          {&Snapshot{Policies: []*Policy{pol("p1", lifetime(59*time.Second))}}, ErrInvalid},
		"one id twice":            {&Snapshot{Subjects: []*Subject{{ID: "a", Kind: User}, {ID: "a", Kind: User}}}, ErrInvalid},
		"one policy twice":        {&Snapshot{Subjects: []*Subject{{ID: "alice", Kind: User}}, Policies: []*Policy{pol("p1"), pol("p2"), pol("p1", users("bob"))}}, ErrInvalid},
		"one device twice":        {&Snapshot{Devices: []*Device{{ID: dev1, EndpointName: "x"}, {ID: dev1, EndpointName: "y"}}}, ErrInvalid},
		"one endpoint name twice": {&Snapshot{Devices: []*Device{{ID: dev1, EndpointName: "x"}, {ID: dev2, EndpointName: "x"}}}, ErrConflict},
		// The second copy of dev1 would take dev2's endpoint name: the
		// duplicate, not the name, is what is wrong.
		"one device twice, the copy conflicting": {&Snapshot{Devices: []*Device{{ID: dev1, EndpointName: "x"}, {ID: dev2, EndpointName: "y"}, {ID: dev1, EndpointName: "y"}}}, ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			var e Engine
			if err := e.Apply(testDirectory()...); err != nil {
				t.Fatal(err)
			}
			before := e.Snapshot()
			if err := e.Load(tc.snap); !errors.Is(err, tc.want) {
				t.Errorf("Load = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(before, e.Snapshot()); diff != "" {
				t.Errorf("a refused Load changed the engine:\n%s", diff)
			}
		})
	}
}

// TestEngineSnapshotSorted: Snapshot lists each kind of record sorted by id.
func TestEngineSnapshotSorted(t *testing.T) {
	var e Engine
	changes := testDirectory()
	for _, id := range []string{"p3", "p1", "p4", "p2"} {
		changes = append(changes, PutPolicy(pol(id)))
	}
	for _, id := range []string{"k3", "k1", "k4", "k2"} {
		_, k, err := NewAPIKey(nil, id, "alice", false, t0)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, PutAPIKey(k))
	}
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	s := e.Snapshot()
	ids := func(n int, id func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	for kind, list := range map[Kind][]string{
		KindPolicy:  ids(len(s.Policies), func(i int) string { return s.Policies[i].ID }),
		KindSubject: ids(len(s.Subjects), func(i int) string { return s.Subjects[i].ID }),
		KindDevice:  ids(len(s.Devices), func(i int) string { return s.Devices[i].ID }),
		KindAPIKey:  ids(len(s.APIKeys), func(i int) string { return s.APIKeys[i].ID }),
	} {
		if len(list) < 3 || !slices.IsSorted(list) {
			t.Errorf("%s ids %v, want at least 3, sorted", kind, list)
		}
	}
}

// TestEnginePolicy: Policy returns a copy of the stored policy, which
// shares nothing with the policy applied or with other copies.
func TestEnginePolicy(t *testing.T) {
	var zero Engine
	if _, err := zero.lookupPolicy("p1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("zero Engine: %v, want ErrNotFound", err)
	}
	var e Engine
	newPolicy := func() *Policy {
		return pol("p1", constrained("set", rangeArg(0, 1, 2)), devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}}))
	}
	p, want := newPolicy(), newPolicy()
	if err := e.Apply(append(testDirectory(), PutPolicy(p))...); err != nil {
		t.Fatal(err)
	}
	// Changing what was applied does not change what is stored.
	p.Devices.Attributes["site"][0] = "basement"
	p.Devices.Attributes["model"] = []string{"x"}
	p.Operations[1].Constraints[0].Range[1] = 99
	got, err := e.lookupPolicy("p1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stored policy changed through the applied one:\n%s", diff)
	}
	// Nor does changing a copy.
	got.Devices.Attributes["site"] = nil
	got.Subjects.Users[0] = "mallory"
	if again, _ := e.lookupPolicy("p1"); !cmp.Equal(want, again) {
		t.Errorf("stored policy changed through a copy: %+v", again)
	}
	if _, err := e.lookupPolicy("p2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown policy: %v, want ErrNotFound", err)
	}
}

// TestCreate: a change with Create set fails the batch with ErrConflict
// when a record of its kind and id exists, counting the batch's earlier
// changes, for every kind of record.
func TestCreate(t *testing.T) {
	_, k1, err := NewAPIKey(nil, "k1", "alice", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := NewAPIKey(nil, "k2", "alice", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	create := func(c Change) Change { c.Create = true; return c }
	for _, tc := range []struct {
		kind            Kind
		existing, fresh Change
	}{
		{KindPolicy, PutPolicy(pol("p1")), PutPolicy(pol("p2"))},
		{KindSubject, PutSubject(&Subject{ID: "alice", Kind: User}), PutSubject(&Subject{ID: "erin", Kind: User})},
		{KindDevice, PutDevice(&Device{ID: dev1}), PutDevice(&Device{ID: "0000000000000000000000000000000a"})},
		{KindAPIKey, PutAPIKey(k1), PutAPIKey(k2)},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			var e Engine
			if err := e.Apply(append(testDirectory(), PutPolicy(pol("p1")), PutAPIKey(k1))...); err != nil {
				t.Fatal(err)
			}
			if err := e.Apply(create(tc.existing)); !errors.Is(err, ErrConflict) {
				t.Errorf("creating an existing record: %v, want ErrConflict", err)
			}
			if err := e.Apply(DeleteRecord(tc.kind, tc.existing.ID), create(tc.existing)); err != nil {
				t.Errorf("creating a record deleted earlier in the batch: %v", err)
			}
			if err := e.Apply(create(tc.fresh)); err != nil {
				t.Errorf("creating a new record: %v", err)
			}
		})
	}
}

// TestEnginePolicyAttributesReadBack: a policy selecting devices by
// attributes (several keys, values out of order) reads back from the
// engine equal to what was applied, through every way out: lookup,
// Snapshot, the undo record (current) and a reload of the snapshot.
func TestEnginePolicyAttributesReadBack(t *testing.T) {
	newPolicy := func() *Policy {
		return pol("p1", constrained("set", rangeArg(0, 1, 2)), devices(DeviceSelector{
			Attributes: map[string][]string{"site": {"roof", "basement"}, "model": {"x"}},
		}))
	}
	var e Engine
	if err := e.Apply(append(testDirectory(), PutPolicy(newPolicy()))...); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, e *Engine) {
		t.Helper()
		want := newPolicy()
		got, err := e.lookupPolicy("p1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lookup:\n%s", diff)
		}
		cur := e.current(KindPolicy, "p1")
		if diff := cmp.Diff(want, cur.Policy); diff != "" {
			t.Errorf("current:\n%s", diff)
		}
		s := e.Snapshot()
		if len(s.Policies) != 1 {
			t.Fatalf("snapshot holds %d policies", len(s.Policies))
		}
		if diff := cmp.Diff(want, s.Policies[0]); diff != "" {
			t.Errorf("snapshot:\n%s", diff)
		}
	}
	check(t, &e)
	var e2 Engine
	snap := e.Snapshot()
	if err := e2.Load(snap); err != nil {
		t.Fatal(err)
	}
	check(t, &e2)
	// Load drops the map from its own copy, not from the caller's.
	if diff := cmp.Diff(newPolicy(), snap.Policies[0]); diff != "" {
		t.Errorf("snapshot loaded:\n%s", diff)
	}
}

// TestSelectorListsOutOfOrder: a policy whose device ids or endpoint
// names are not listed in order selects every device it names, as one
// listing them in order does (the compiled policy searches sorted lists),
// also when the lists are too long for the pair index, so that the policy
// is indexed by subject and its devices checked.
func TestSelectorListsOutOfOrder(t *testing.T) {
	many := names("ep-", indexPairLimit)
	for _, sel := range []DeviceSelector{
		{EndpointNames: []string{"pump-1", "hvac-2", "hvac-1"}},
		{EndpointNames: []string{"hvac-1", "hvac-2", "pump-1"}},
		{IDs: []string{dev2, dev1}, EndpointNames: []string{"pump-1", "hvac-2"}},
		{EndpointNames: append(slices.Clone(many), "pump-1", "hvac-2", "hvac-1")},
		{EndpointNames: slices.Sorted(slices.Values(append(slices.Clone(many), "pump-1", "hvac-2", "hvac-1")))},
		{IDs: []string{dev2, dev1}, EndpointNames: append(slices.Clone(many), "pump-1", "hvac-2")},
	} {
		var e Engine
		if err := e.Apply(append(testDirectory(), PutPolicy(pol("p1", devices(sel))))...); err != nil {
			t.Fatal(err)
		}
		for _, aud := range []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"} {
			if err := decide(t, &e, aud, "read"); err != nil {
				t.Errorf("%v %v, %s: %v", sel.IDs, sel.EndpointNames[len(sel.EndpointNames)-2:], aud, err)
			}
		}
	}
}
