package policy

import (
	"fmt"
	"testing"
	"time"
)

// impactBenchEngine builds a fleet of subjects and devices: subjects in a
// few groups (one or two each), devices with a site (of 20) and a model
// (of 5), 200 policies granting groups operations by site and model, and
// a handful naming single users and devices.
func impactBenchEngine(b *testing.B, subjects, devices int) *Engine {
	b.Helper()
	groups := []string{"technicians", "juniors", "contractors", "operators", "auditors"}
	var changes []Change
	for i := range subjects {
		s := &Subject{ID: fmt.Sprintf("u%05d", i), Kind: User, Groups: []string{groups[i%len(groups)]}}
		if i%3 == 0 {
			s.Groups = append(s.Groups, groups[(i+1+i/3%3)%len(groups)])
		}
		changes = append(changes, PutSubject(s))
	}
	for i := range devices {
		changes = append(changes, PutDevice(&Device{ID: fmt.Sprintf("%032x", i), EndpointName: fmt.Sprintf("dev-%05d", i),
			Attributes: map[string]string{"site": fmt.Sprintf("site%d", i%20), "model": fmt.Sprintf("m%d", i%5)}}))
	}
	for i := range 200 {
		p := &Policy{ID: fmt.Sprintf("p%03d", i), Status: Active, Effect: Allow, TokenLifetime: time.Hour,
			Subjects:   Subjects{Groups: []string{groups[i%len(groups)]}},
			Operations: []OperationRule{{Name: fmt.Sprintf("op%d", i%10)}, {Name: "read"}},
			Devices:    DeviceSelector{Attributes: map[string][]string{"site": {fmt.Sprintf("site%d", i%20)}}},
		}
		if i%7 == 0 {
			p.Devices.Attributes["model"] = []string{fmt.Sprintf("m%d", i%5)}
		}
		if i%50 == 0 {
			p.Effect, p.TokenLifetime = Deny, 0
			p.Subjects = Subjects{Groups: []string{"juniors"}}
		}
		if i%40 == 1 {
			p.Subjects = Subjects{Users: []string{fmt.Sprintf("u%05d", i)}}
			p.Devices = DeviceSelector{EndpointNames: []string{fmt.Sprintf("dev-%05d", i)}}
		}
		changes = append(changes, PutPolicy(p))
	}
	var e Engine
	for len(changes) > 0 {
		n := min(len(changes), maxChangesPerApply)
		if err := e.Apply(changes[:n]...); err != nil {
			b.Fatal(err)
		}
		changes = changes[n:]
	}
	return &e
}

// BenchmarkWhatIf previews, over subjects x devices, a policy that gives
// two groups configure on ten sites (every class of those), and a change
// of one subject's groups. It reports the grants the change gains per
// run; sub-benchmarks of 1,000 x 1,000 and 10,000 x 10,000 in one run show
// how the cost grows with the fleet (about linearly in subjects plus
// devices, not in their product).
func BenchmarkWhatIf(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		e := impactBenchEngine(b, n, n)
		sites := make([]string, 10)
		for i := range sites {
			sites[i] = fmt.Sprintf("site%d", i)
		}
		change := []Change{
			PutPolicy(&Policy{ID: "roof-configure", Status: Active, Effect: Allow, TokenLifetime: time.Hour,
				Subjects:   Subjects{Groups: []string{"technicians", "operators"}},
				Operations: []OperationRule{{Name: "configure"}, {Name: "read"}},
				Devices:    DeviceSelector{Attributes: map[string][]string{"site": sites}}}),
			PutSubject(&Subject{ID: "u00007", Kind: User, Groups: []string{"auditors"}}),
		}
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		b.Run(fmt.Sprintf("subjects=%d,devices=%d", n, n), func(b *testing.B) {
			b.ReportAllocs()
			var gained int64
			for b.Loop() {
				im, err := e.WhatIf(change, at, nil)
				if err != nil {
					b.Fatal(err)
				}
				gained = im.Gained
			}
			b.ReportMetric(float64(gained), "grants-gained")
		})
	}
}
