package policy

import (
	"fmt"
	"testing"
	"time"
)

// impactBenchChange is the change BenchmarkWhatIf previews: a policy
// giving two groups configure on ten sites (every class of those), and one
// subject moved to another group.
func impactBenchChange() []Change {
	sites := make([]string, 10)
	for i := range sites {
		sites[i] = fmt.Sprintf("site%d", i)
	}
	return []Change{
		PutPolicy(&Policy{ID: "roof-configure", Status: Active, Effect: Allow, TokenLifetime: time.Hour,
			Subjects:   Subjects{Groups: []string{"technicians", "operators"}},
			Operations: []OperationRule{{Name: "configure"}, {Name: "read"}},
			Devices:    DeviceSelector{Attributes: map[string][]string{"site": sites}}}),
		PutSubject(&Subject{ID: "u00007", Kind: User, Groups: []string{"auditors"}}),
	}
}

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

// BenchmarkWhatIf previews impactBenchChange over n subjects x n
// devices and reports the grants it gains per run.
func BenchmarkWhatIf(b *testing.B) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1000, 10000} {
		e := impactBenchEngine(b, n, n)
		b.Run(fmt.Sprintf("subjects=%d,devices=%d", n, n), func(b *testing.B) {
			b.ReportAllocs()
			var gained int64
			for b.Loop() {
				im, err := e.WhatIf(impactBenchChange(), at, nil)
				if err != nil {
					b.Fatal(err)
				}
				gained = im.Gained
			}
			b.ReportMetric(float64(gained), "grants-gained")
		})
	}
}

// BenchmarkWhatIfScaling previews the same change over 1,000 x 1,000 and
// 10,000 x 10,000, interleaved in one run, and reports the ratio of their
// costs: 100 times the (subject, device) pairs cost about 10 times as
// much (linear in subjects plus devices), since the computation is by
// classes, not by pairs.
func BenchmarkWhatIfScaling(b *testing.B) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	small, large := impactBenchEngine(b, 1000, 1000), impactBenchEngine(b, 10000, 10000)
	var ts, tl time.Duration
	for b.Loop() {
		for _, x := range []struct {
			e *Engine
			d *time.Duration
		}{{small, &ts}, {large, &tl}} {
			start := time.Now()
			if _, err := x.e.WhatIf(impactBenchChange(), at, nil); err != nil {
				b.Fatal(err)
			}
			*x.d += time.Since(start)
		}
	}
	b.ReportMetric(float64(ts.Nanoseconds())/float64(b.N), "ns/1k-x-1k")
	b.ReportMetric(float64(tl.Nanoseconds())/float64(b.N), "ns/10k-x-10k")
	b.ReportMetric(float64(tl)/float64(ts), "ratio-10k/1k")
}

// BenchmarkWhatIfLargeStore previews, in the store of BenchmarkDecide at
// 100,000 policies (10,000 users, 10,000 devices, most policies naming
// single users and devices, so that most classes hold one member), a
// policy giving a group an operation on all devices. Only the policies
// naming that operation (or "*") shape the classes.
func BenchmarkWhatIfLargeStore(b *testing.B) {
	e := benchEngine(b, 100000)
	change := []Change{PutPolicy(&Policy{ID: "new", Status: Active, Effect: Allow, TokenLifetime: time.Hour,
		Subjects: Subjects{Groups: []string{"g3"}}, Operations: []OperationRule{{Name: "op3"}},
		Devices: DeviceSelector{All: true}})}
	b.ReportAllocs()
	var gained int64
	for b.Loop() {
		im, err := e.WhatIf(change, t0, nil)
		if err != nil {
			b.Fatal(err)
		}
		gained = im.Gained
	}
	b.ReportMetric(float64(gained), "grants-gained")
}
