package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// bruteGrants returns the grants of every (subject, device) pair of the
// engine's directory at t, triple by triple, as an impact between the
// engine's state and the other one compares them: for each operation named
// by a policy that applies at t and matches the pair in either state
// (other's records of that subject and device, when it has them),
// Engine.Decide on that one (device, operation); and "*" for an operation
// no such policy names in either state. Matching is done here from the
// records, not with the engine's indexes.
func bruteGrants(t *testing.T, e *Engine, other *Snapshot, at time.Time, structured bool) map[string]bool {
	t.Helper()
	snap := e.Snapshot()
	out := map[string]bool{}
	for _, s := range snap.Subjects {
		for _, d := range snap.Devices {
			named := map[string]bool{}
			addNamed := func(st *Snapshot, s *Subject, d *Device) {
				for _, p := range st.Policies {
					if !p.appliesAt(at) || !bruteSubject(p, s) || !bruteDevice(p, d) {
						continue
					}
					for _, r := range p.Operations {
						if r.Name != AllOperations {
							named[r.Name] = true
						}
					}
				}
			}
			addNamed(snap, s, d)
			os := slices.IndexFunc(other.Subjects, func(x *Subject) bool { return x.ID == s.ID })
			od := slices.IndexFunc(other.Devices, func(x *Device) bool { return x.ID == d.ID })
			if os >= 0 && od >= 0 {
				addNamed(other, other.Subjects[os], other.Devices[od])
			}
			ops := slices.Sorted(mapsKeys(named))
			unnamed := "zz-unnamed" // no test policy names it
			for _, op := range append(ops, unnamed) {
				dec, err := e.Decide(&Request{Subject: s.ID, Audience: []string{"id:" + d.ID}, Operations: []string{op}, Time: at, Structured: structured})
				if err != nil {
					t.Fatal(err)
				}
				if !dec.Allowed {
					continue
				}
				name := op
				if op == unnamed {
					name = AllOperations
				}
				if dec.Grants[0].Alternatives == nil {
					out[s.ID+" "+d.ID+" "+name+" "] = true
					continue
				}
				for _, alt := range dec.Grants[0].Alternatives {
					b, _ := json.Marshal(alt)
					out[s.ID+" "+d.ID+" "+name+" "+string(b)] = true
				}
			}
		}
	}
	return out
}

func bruteSubject(p *Policy, s *Subject) bool {
	if s.Kind == User && slices.Contains(p.Subjects.Users, s.ID) || s.Kind == Application && slices.Contains(p.Subjects.Applications, s.ID) {
		return true
	}
	for _, g := range s.Groups {
		if slices.Contains(p.Subjects.Groups, g) {
			return true
		}
	}
	return false
}

func bruteDevice(p *Policy, d *Device) bool {
	sel := p.Devices
	if sel.All || slices.Contains(sel.IDs, d.ID) || d.EndpointName != "" && slices.Contains(sel.EndpointNames, d.EndpointName) {
		return true
	}
	if len(sel.Attributes) == 0 {
		return false
	}
	for k, vs := range sel.Attributes {
		v, ok := d.Attributes[k]
		if !ok || !slices.Contains(vs, v) {
			return false
		}
	}
	return true
}

// detailKey is the brute force's key of an impact detail.
func detailKey(d ImpactDetail) string {
	cons := ""
	if d.Constraints != nil {
		b, _ := json.Marshal(d.Constraints)
		cons = string(b)
	}
	return d.Subject + " " + d.Device + " " + d.Operation + " " + cons
}

// randomWorld is a generator of small random stores and changes.
type randomWorld struct {
	r *rand.Rand
}

func (w randomWorld) pick(list ...string) string { return list[w.r.IntN(len(list))] }

func (w randomWorld) subset(list ...string) []string {
	var out []string
	for _, x := range list {
		if w.r.IntN(3) == 0 {
			out = append(out, x)
		}
	}
	return out
}

var rwDevices = []string{dev1, dev2, dev3, "44444444444444444444444444444444", "55555555555555555555555555555555"}

func (w randomWorld) subject(id string) *Subject {
	s := &Subject{ID: id, Kind: User, Groups: w.subset("g1", "g2", "g3")}
	if w.r.IntN(4) == 0 {
		s.Kind = Application
	}
	return s
}

func (w randomWorld) device(id string) *Device {
	d := &Device{ID: id, Attributes: map[string]string{}}
	if w.r.IntN(2) == 0 {
		d.EndpointName = "ep-" + id[:1] + w.pick("", "b") // may collide: a conflict the test skips
	}
	if w.r.IntN(4) != 0 {
		d.Attributes["site"] = w.pick("roof", "cellar", "yard")
	}
	if w.r.IntN(2) == 0 {
		d.Attributes["model"] = w.pick("x", "y")
	}
	return d
}

func (w randomWorld) policy(id string) *Policy {
	p := &Policy{ID: id, Status: Active, Effect: Allow, TokenLifetime: time.Hour}
	if w.r.IntN(4) == 0 {
		p.Effect, p.TokenLifetime = Deny, 0
	}
	if w.r.IntN(8) == 0 {
		p.Status = Inactive
	}
	switch w.r.IntN(6) {
	case 0:
		p.ValidUntil = t0.Add(-time.Hour)
	case 1:
		p.ValidFrom = t0.Add(time.Hour)
	case 2:
		p.ValidFrom, p.ValidUntil = t0.Add(-time.Hour), t0.Add(time.Hour)
	}
	p.Subjects = Subjects{Users: w.subset("s1", "s2", "s3"), Groups: w.subset("g1", "g2", "g3"), Applications: w.subset("s1", "s4")}
	if len(p.Subjects.Users)+len(p.Subjects.Groups)+len(p.Subjects.Applications) == 0 {
		p.Subjects.Groups = []string{w.pick("g1", "g2")}
	}
	switch w.r.IntN(4) {
	case 0:
		p.Devices.All = true
	case 1:
		p.Devices.IDs = w.subset(rwDevices...)
		p.Devices.EndpointNames = w.subset("ep-0", "ep-fb", "ep-4")
	default:
		p.Devices.Attributes = map[string][]string{"site": w.subset("roof", "cellar", "yard", "moon")}
		if len(p.Devices.Attributes["site"]) == 0 {
			p.Devices.Attributes["site"] = []string{"roof"}
		}
		if w.r.IntN(2) == 0 {
			p.Devices.Attributes["model"] = []string{w.pick("x", "y")}
		}
	}
	if len(p.Devices.IDs)+len(p.Devices.EndpointNames) == 0 && !p.Devices.All && len(p.Devices.Attributes) == 0 {
		p.Devices.All = true
	}
	for _, op := range w.subset("read", "write", "configure", AllOperations) {
		p.Operations = append(p.Operations, OperationRule{Name: op})
	}
	// Often a deny of one operation, and an allow of "*": the pair whose
	// grant of that operation an impact must compare explicitly.
	switch {
	case p.Effect == Deny && w.r.IntN(2) == 0:
		p.Operations = []OperationRule{{Name: w.pick("read", "write", "configure")}}
	case p.Effect == Allow && w.r.IntN(3) == 0 && !slices.ContainsFunc(p.Operations, func(r OperationRule) bool { return r.Name == AllOperations }):
		p.Operations = append(p.Operations, OperationRule{Name: AllOperations})
	}
	if p.Effect == Allow && w.r.IntN(2) == 0 {
		lo := int64(w.r.IntN(3))
		p.Operations = append(p.Operations, OperationRule{Name: w.pick("read", "configure"),
			Constraints: []ArgConstraint{{Arg: 0, Range: &[2]int64{lo, lo + 10}}}})
	}
	if len(p.Operations) == 0 {
		p.Operations = []OperationRule{{Name: "read"}}
	}
	return p
}

func (w randomWorld) store() []Change {
	var out []Change
	for i := range 1 + w.r.IntN(4) {
		out = append(out, PutSubject(w.subject(fmt.Sprintf("s%d", i+1))))
	}
	for i := range 1 + w.r.IntN(5) {
		out = append(out, PutDevice(w.device(rwDevices[i])))
	}
	for i := range w.r.IntN(6) {
		out = append(out, PutPolicy(w.policy(fmt.Sprintf("p%d", i+1))))
	}
	return out
}

func (w randomWorld) changes() []Change {
	var out []Change
	for range 1 + w.r.IntN(3) {
		switch w.r.IntN(7) {
		case 0:
			out = append(out, DeleteRecord(KindPolicy, fmt.Sprintf("p%d", 1+w.r.IntN(6))))
		case 1:
			out = append(out, DeleteRecord(KindSubject, fmt.Sprintf("s%d", 1+w.r.IntN(4))))
		case 2:
			out = append(out, DeleteRecord(KindDevice, rwDevices[w.r.IntN(5)]))
		case 3:
			out = append(out, PutSubject(w.subject(fmt.Sprintf("s%d", 1+w.r.IntN(4)))))
		case 4:
			out = append(out, PutDevice(w.device(rwDevices[w.r.IntN(5)])))
		default:
			out = append(out, PutPolicy(w.policy(fmt.Sprintf("p%d", 1+w.r.IntN(6)))))
		}
	}
	return out
}

// TestWhatIfMatchesBruteForce checks, on random small stores and random
// changes, that WhatIf and Compare report exactly the grants gained and
// lost that a triple-by-triple evaluation with Engine.Decide finds.
func TestWhatIfMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2))
	checked := 0
	for iter := 0; iter < 600; iter++ {
		w := randomWorld{r}
		var before Engine
		if err := before.Apply(w.store()...); err != nil {
			continue // a random endpoint name collision
		}
		changes := w.changes()
		after := Engine{}
		if err := after.Load(before.Snapshot()); err != nil {
			t.Fatal(err)
		}
		if err := after.Apply(changes...); err != nil {
			if _, werr := before.WhatIf(changes, t0, nil); !errors.Is(werr, ErrConflict) {
				t.Fatalf("iteration %d: Apply: %v; WhatIf: %v", iter, err, werr)
			}
			continue
		}
		structured := iter%3 != 0
		opts := &ImpactOptions{Limit: MaxImpactDetails, Structured: structured}
		gb, ga := bruteGrants(t, &before, after.Snapshot(), t0, structured), bruteGrants(t, &after, before.Snapshot(), t0, structured)
		want := map[string]bool{}
		for k := range ga {
			if !gb[k] {
				want["gained "+k] = true
			}
		}
		for k := range gb {
			if !ga[k] {
				want["lost "+k] = true
			}
		}
		whatIf, err := before.WhatIf(changes, t0, opts)
		if err != nil {
			t.Fatalf("iteration %d: WhatIf: %v", iter, err)
		}
		compared, err := Compare(before.Snapshot(), after.Snapshot(), t0, opts)
		if err != nil {
			t.Fatalf("iteration %d: Compare: %v", iter, err)
		}
		for name, im := range map[string]*Impact{"WhatIf": whatIf, "Compare": compared} {
			got := map[string]bool{}
			for _, d := range im.Details {
				got[string(d.Change)+" "+detailKey(d)] = true
			}
			var gained, lost, summed int64
			for k := range want {
				if strings.HasPrefix(k, "gained ") {
					gained++
				} else {
					lost++
				}
			}
			for _, s := range im.Summary {
				summed += s.Grants
			}
			if im.Gained != gained || im.Lost != lost || summed != gained+lost || im.DetailsTruncated {
				t.Errorf("iteration %d: %s: gained %d lost %d (summary %d, truncated %v), want gained %d lost %d",
					iter, name, im.Gained, im.Lost, summed, im.DetailsTruncated, gained, lost)
			}
			for k := range want {
				if !got[k] {
					t.Errorf("iteration %d: %s misses %q", iter, name, k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("iteration %d: %s reports %q, which brute force does not", iter, name, k)
				}
			}
			if t.Failed() {
				b, _ := json.MarshalIndent(struct {
					Before  *Snapshot
					Changes []Change
				}{before.Snapshot(), changes}, "", " ")
				t.Fatalf("%s", b)
			}
		}
		if len(want) > 0 {
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d iterations had an impact; the generator is too tame", checked)
	}
}

// TestWhatIfNamedInOneState: an operation that a policy relevant to the
// pair names in only one of the two states is compared explicitly in
// both: under an allow of "*", a deny of "read" loses read (Decide denies
// it after), removing that deny gains it, and an allow of an operation
// that "*" already grants changes nothing.
func TestWhatIfNamedInOneState(t *testing.T) {
	star := pol("star", func(p *Policy) { p.Operations = []OperationRule{{Name: AllOperations}} })
	denyRead := pol("deny-read", denyEffect)
	allowWrite := pol("allow-write", func(p *Policy) { p.Operations = []OperationRule{{Name: "write"}} })
	dev4 := "44444444444444444444444444444444"
	newDevice := PutDevice(&Device{ID: dev4, EndpointName: "hvac-4"})
	type triple struct {
		change    ImpactChange
		device    string
		operation string
	}
	for _, tc := range []struct {
		name    string
		before  []*Policy
		changes []Change
		want    []triple
	}{
		{"deny added", []*Policy{star}, []Change{PutPolicy(denyRead)},
			[]triple{{ImpactLost, dev1, "read"}, {ImpactLost, dev2, "read"}, {ImpactLost, dev3, "read"}}},
		{"deny removed", []*Policy{star, denyRead}, []Change{DeleteRecord(KindPolicy, "deny-read")},
			[]triple{{ImpactGained, dev1, "read"}, {ImpactGained, dev2, "read"}, {ImpactGained, dev3, "read"}}},
		{"deny added with a directory change", []*Policy{star}, []Change{PutPolicy(denyRead), newDevice},
			[]triple{{ImpactGained, dev4, AllOperations}, {ImpactLost, dev1, "read"}, {ImpactLost, dev2, "read"}, {ImpactLost, dev3, "read"}}},
		{"allow of an operation * grants", []*Policy{star}, []Change{PutPolicy(allowWrite)}, nil},
		{"allow of an operation * granted removed", []*Policy{star, allowWrite}, []Change{DeleteRecord(KindPolicy, "allow-write")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before Engine
			setup := testDirectory()
			for _, p := range tc.before {
				setup = append(setup, PutPolicy(p))
			}
			if err := before.Apply(setup...); err != nil {
				t.Fatal(err)
			}
			var after Engine
			if err := after.Load(before.Snapshot()); err != nil {
				t.Fatal(err)
			}
			if err := after.Apply(tc.changes...); err != nil {
				t.Fatal(err)
			}
			// The expectation agrees with Decide in both states.
			for _, w := range tc.want {
				if w.operation == AllOperations {
					continue
				}
				for i, e := range []*Engine{&before, &after} {
					dec, err := e.Decide(&Request{Subject: "alice", Audience: []string{"id:" + w.device}, Operations: []string{w.operation}, Time: t0})
					if err != nil {
						t.Fatal(err)
					}
					if allowed := (i == 1) == (w.change == ImpactGained); dec.Allowed != allowed {
						t.Fatalf("state %d: Decide(%s on %s) allowed %v, the test expects %v", i, w.operation, w.device, dec.Allowed, allowed)
					}
				}
			}
			whatIf, err := before.WhatIf(tc.changes, t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			compared, err := Compare(before.Snapshot(), after.Snapshot(), t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for name, im := range map[string]*Impact{"WhatIf": whatIf, "Compare": compared} {
				var got []triple
				for _, d := range im.Details {
					if d.Subject != "alice" {
						t.Errorf("%s: detail %+v for a subject no policy names", name, d)
					}
					got = append(got, triple{d.Change, d.Device, d.Operation})
				}
				var gained, lost int64
				for _, w := range tc.want {
					if w.change == ImpactGained {
						gained++
					} else {
						lost++
					}
				}
				byKey := func(a, b triple) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
				slices.SortFunc(got, byKey)
				want := slices.SortedFunc(slices.Values(tc.want), byKey)
				if im.Gained != gained || im.Lost != lost || !slices.Equal(got, want) {
					t.Errorf("%s: gained %d lost %d, details %v; want gained %d lost %d, details %v",
						name, im.Gained, im.Lost, got, gained, lost, want)
				}
			}
		})
	}
}

func TestWhatIfValidation(t *testing.T) {
	var e Engine
	if err := e.Apply(testDirectory()...); err != nil {
		t.Fatal(err)
	}
	fieldNames := func(err error) []string {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("error %v is not a *ValidationError", err)
		}
		var out []string
		for _, f := range ve.Fields {
			out = append(out, f.Name)
		}
		return out
	}
	t.Run("a bad policy field is named under changes[i]", func(t *testing.T) {
		bad := pol("p1")
		bad.Subjects = Subjects{Users: []string{"ok", "not an id"}}
		_, err := e.WhatIf([]Change{PutSubject(&Subject{ID: "zed", Kind: User}), PutPolicy(bad)}, t0, nil)
		if got := fieldNames(err); !slices.Contains(got, "changes[1].policy.subjects.users[1]") {
			t.Errorf("fields %v, want changes[1].policy.subjects.users[1]", got)
		}
	})
	t.Run("only policies, subjects and devices", func(t *testing.T) {
		_, key, err := NewAPIKey(nil, "k", "alice", false, t0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.WhatIf([]Change{PutAPIKey(key)}, t0, nil)
		if got := fieldNames(err); !slices.Equal(got, []string{"changes[0].kind"}) {
			t.Errorf("fields %v, want changes[0].kind", got)
		}
	})
	t.Run("at most MaxImpactChanges", func(t *testing.T) {
		many := make([]Change, MaxImpactChanges+1)
		for i := range many {
			many[i] = DeleteRecord(KindSubject, fmt.Sprintf("s%d", i))
		}
		_, err := e.WhatIf(many, t0, nil)
		if got := fieldNames(err); !slices.Equal(got, []string{"changes"}) {
			t.Errorf("fields %v, want changes", got)
		}
		if _, err := e.WhatIf(many[:MaxImpactChanges], t0, nil); err != nil {
			t.Errorf("%d changes: %v", MaxImpactChanges, err)
		}
	})
	t.Run("limit and time", func(t *testing.T) {
		_, err := e.WhatIf(nil, time.Time{}, &ImpactOptions{Limit: MaxImpactDetails + 1})
		if got := fieldNames(err); !slices.Equal(got, []string{"time", "limit"}) {
			t.Errorf("fields %v, want time, limit", got)
		}
	})
	t.Run("a uniqueness violation is a conflict", func(t *testing.T) {
		_, err := e.WhatIf([]Change{PutDevice(&Device{ID: "44444444444444444444444444444444", EndpointName: "hvac-1"})}, t0, nil)
		if !errors.Is(err, ErrConflict) {
			t.Errorf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("nothing is applied", func(t *testing.T) {
		before := e.Snapshot()
		if _, err := e.WhatIf([]Change{DeleteRecord(KindSubject, "alice"), PutPolicy(pol("p9"))}, t0, nil); err != nil {
			t.Fatal(err)
		}
		if after := e.Snapshot(); len(after.Subjects) != len(before.Subjects) || len(after.Policies) != 0 {
			t.Errorf("WhatIf changed the engine: %d subjects, %d policies", len(after.Subjects), len(after.Policies))
		}
	})
}

// TestWhatIfSummary checks the summary's classes and descriptions on a
// story: technicians get configure on the rooftop devices.
func TestWhatIfSummary(t *testing.T) {
	var e Engine
	changes := []Change{PutPolicy(pol("reads", func(p *Policy) { p.Subjects = Subjects{Groups: []string{"techs", "contractors"}} }))}
	for i := range 12 {
		changes = append(changes, PutSubject(&Subject{ID: fmt.Sprintf("tech%02d", i), Kind: User, Groups: []string{"techs"}}))
	}
	changes = append(changes, PutSubject(&Subject{ID: "bob", Kind: User, Groups: []string{"techs", "contractors"}}))
	for i := range 7 {
		changes = append(changes, PutDevice(&Device{ID: fmt.Sprintf("%032x", i+1), EndpointName: fmt.Sprintf("roof-%d", i),
			Attributes: map[string]string{"site": "roof"}}))
	}
	changes = append(changes, PutDevice(&Device{ID: fmt.Sprintf("%032x", 100), Attributes: map[string]string{"site": "cellar"}}))
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	configure := pol("roof-configure", func(p *Policy) {
		p.Subjects = Subjects{Groups: []string{"techs"}}
		p.Operations = []OperationRule{{Name: "configure"}}
		p.Devices = DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}}
	})
	im, err := e.WhatIf([]Change{PutPolicy(configure)}, t0, &ImpactOptions{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if im.Gained != 13*7 || im.Lost != 0 {
		t.Fatalf("gained %d lost %d, want %d 0", im.Gained, im.Lost, 13*7)
	}
	want := []ImpactSummary{{
		Change: ImpactGained, Operation: "configure",
		Subjects: ImpactClass{Description: "group techs", Count: 13, Sample: []string{"bob", "tech00", "tech01", "tech02", "tech03"}},
		Devices:  ImpactClass{Description: "attributes site=roof", Count: 7, Sample: []string{"roof-0", "roof-1", "roof-2", "roof-3", "roof-4"}},
		Grants:   13 * 7,
	}}
	if got, _ := json.Marshal(im.Summary); string(got) != mustJSON(t, want) {
		t.Errorf("summary\n%s\nwant\n%s", got, mustJSON(t, want))
	}
	wantDetails := []ImpactDetail{
		{Change: ImpactGained, Subject: "bob", Device: fmt.Sprintf("%032x", 1), EndpointName: "roof-0", Operation: "configure"},
		{Change: ImpactGained, Subject: "bob", Device: fmt.Sprintf("%032x", 2), EndpointName: "roof-1", Operation: "configure"},
		{Change: ImpactGained, Subject: "bob", Device: fmt.Sprintf("%032x", 3), EndpointName: "roof-2", Operation: "configure"},
	}
	if !slices.EqualFunc(im.Details, wantDetails, func(a, b ImpactDetail) bool { return mustJSON(t, a) == mustJSON(t, b) }) || !im.DetailsTruncated {
		t.Errorf("details %+v (truncated %v), want %+v (truncated)", im.Details, im.DetailsTruncated, wantDetails)
	}

	// Removing bob from the techs loses his configure grants, and the
	// reads he keeps as a contractor do not show.
	im, err = e.WhatIf([]Change{PutPolicy(configure), PutSubject(&Subject{ID: "bob", Kind: User, Groups: []string{"contractors"}})}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Gained != 12*7 || im.Lost != 0 {
		t.Errorf("gained %d lost %d, want %d 0", im.Gained, im.Lost, 12*7)
	}
	im, err = e.WhatIf([]Change{DeleteRecord(KindSubject, "tech03")}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Lost != 8 || len(im.Summary) != 1 || im.Summary[0].Subjects.Description != "group techs" || im.Summary[0].Devices.Description != "all devices" {
		t.Errorf("deleting tech03: lost %d, summary %+v", im.Lost, im.Summary)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImpactSummaryBound: at most 1000 summary rows, the first ones in
// order, each exact, when many more differ.
func TestImpactSummaryBound(t *testing.T) {
	const users = 4100 // enough to prune the rows collected
	before := &Snapshot{Devices: []*Device{{ID: dev1}}}
	for i := range users {
		id := fmt.Sprintf("u%04d", i)
		before.Subjects = append(before.Subjects, &Subject{ID: id, Kind: User})
		before.Policies = append(before.Policies, pol("p"+id, func(p *Policy) { p.Subjects = Subjects{Users: []string{id}} }))
	}
	after := &Snapshot{Subjects: before.Subjects, Devices: before.Devices}
	im, err := Compare(before, after, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Lost != users || len(im.Summary) != maxImpactSummary || !im.SummaryTruncated {
		t.Fatalf("lost %d, %d rows (truncated %v)", im.Lost, len(im.Summary), im.SummaryTruncated)
	}
	// The rows collected stay bounded.
	b, _ := snapshotView(before)
	a, _ := snapshotView(after)
	c := &impactCalc{views: [2]*view{b, a}, at: t0, rows: map[string]*impactRow{}, counts: map[ImpactChange]int64{}, detail: detailAcc{limit: 1}}
	c.relevance()
	c.classify()
	if err := c.evaluate(); err != nil || len(c.rows) > 4*maxImpactSummary {
		t.Fatalf("%d rows collected (%v), want at most %d", len(c.rows), err, 4*maxImpactSummary)
	}
	for i, s := range im.Summary {
		if want := fmt.Sprintf("user u%04d", i); s.Subjects.Description != want || s.Grants != 1 || s.Subjects.Count != 1 || s.Devices.Description != "all devices" {
			t.Fatalf("row %d: %+v, want %s", i, s, want)
		}
	}
}
