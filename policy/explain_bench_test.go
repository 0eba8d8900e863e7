package policy

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkEngineMemory reports the heap an Engine holding 100,000
// generated policies (and their directory) uses, per policy: what the
// policies, their compiled forms and the indexes cost together.
func BenchmarkEngineMemory(b *testing.B) {
	const n = 100000
	snap := benchSnapshot(n)
	var perPolicy float64
	for b.Loop() {
		var e *Engine
		e, perPolicy = loadMeasured(b, snap)
		runtime.KeepAlive(e)
	}
	b.ReportMetric(perPolicy, "bytes/policy")
}

// loadMeasured loads snap into a new Engine and returns it with the heap
// it holds per policy of snap: the policies, their compiled forms and the
// indexes together.
func loadMeasured(b *testing.B, snap *Snapshot) (*Engine, float64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := &Engine{}
	if err := e.Load(snap); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return e, (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(len(snap.Policies))
}

// BenchmarkExplain measures Explain against Decide on the same request,
// interleaved in one run, at 1,000 and 100,000 policies: for the
// benchmark's allowed request (2 devices x 2 operations) and for a denied
// one, whose pairs look for near misses. It reports both and their ratio
// (target: a few times a decision).
func BenchmarkExplain(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		e := benchEngine(b, n)
		benchExplainVsDecide(b, e, fmt.Sprintf("policies=%d/", n))
	}
}

// benchExplainVsDecide runs, as sub-benchmarks prefix+"allowed" and
// prefix+"denied", Explain against Decide on e, interleaved in batches:
// for the benchmark's allowed request and for a denied one, whose pairs
// look for near misses. It reports both costs and their ratio.
func benchExplainVsDecide(b *testing.B, e *Engine, prefix string) {
	denied := benchRequest()
	denied.Operations = []string{"read", "op-none"}
	for _, c := range []struct {
		name string
		r    *Request
	}{{"allowed", benchRequest()}, {"denied", denied}} {
		b.Run(prefix+c.name, func(b *testing.B) {
			if d, _ := e.Decide(c.r); d.Allowed != (c.name == "allowed") {
				b.Fatalf("decision %+v", d)
			}
			var tDecide, tExplain time.Duration
			const batch = 64
			k := 0
			for b.Loop() {
				start := time.Now()
				for range batch {
					e.Decide(c.r)
				}
				mid := time.Now()
				for range batch {
					if _, err := e.Explain(c.r); err != nil {
						b.Fatal(err)
					}
				}
				tExplain += time.Since(mid)
				tDecide += mid.Sub(start)
				k += batch
			}
			nsD := float64(tDecide.Nanoseconds()) / float64(k)
			nsX := float64(tExplain.Nanoseconds()) / float64(k)
			b.ReportMetric(nsD, "ns/decide")
			b.ReportMetric(nsX, "ns/explain")
			b.ReportMetric(nsX/nsD, "explain/decide")
		})
	}
}

// sharedKeyEngine returns an engine holding n policies that all name the
// group "technicians", half of them selecting one device each and half
// the devices with attribute site=roof, so that the indexes by subject
// key, by device key and by (subject, device) key each hold lists of n/2
// to n policies; and the changes that delete 1,000 of them, spread over
// the lists, and that put them back.
func sharedKeyEngine(b *testing.B, n int) (e *Engine, del, put []Change) {
	b.Helper()
	s := &Snapshot{Subjects: []*Subject{{ID: "tech", Kind: User, Groups: []string{"technicians"}}}}
	for i := range n {
		p := &Policy{ID: fmt.Sprintf("p%07d", i), Status: Active, Effect: Allow,
			Subjects:   Subjects{Groups: []string{"technicians"}},
			Operations: []OperationRule{{Name: "read"}}, TokenLifetime: time.Hour}
		if i%2 == 0 {
			p.Devices.IDs = []string{fmt.Sprintf("%032x", i)}
		} else {
			p.Devices.Attributes = map[string][]string{"site": {"roof"}}
		}
		s.Policies = append(s.Policies, p)
	}
	e = &Engine{}
	if err := e.Load(s); err != nil {
		b.Fatal(err)
	}
	const k = 1000
	for i := range k {
		p := s.Policies[i*(n/k)+n/(2*k)]
		del = append(del, DeleteRecord(KindPolicy, p.ID))
		put = append(put, PutPolicy(p))
	}
	return e, del, put
}

// BenchmarkDeleteSharedKey deletes 1,000 policies in one batch (and puts
// them back in another) from an engine where 10,000, and one where
// 100,000, policies name the same group, interleaved in one run, and
// reports both costs and their ratio: about 1 when a deletion costs the
// same whatever the length of the index lists it is removed from, about
// 10 when it scans them.
func BenchmarkDeleteSharedKey(b *testing.B) {
	small, delS, putS := sharedKeyEngine(b, 10000)
	large, delL, putL := sharedKeyEngine(b, 100000)
	var tSmall, tLarge time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		if err := small.Apply(delS...); err != nil {
			b.Fatal(err)
		}
		if err := small.Apply(putS...); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := large.Apply(delL...); err != nil {
			b.Fatal(err)
		}
		if err := large.Apply(putL...); err != nil {
			b.Fatal(err)
		}
		tLarge += time.Since(mid)
		tSmall += mid.Sub(start)
		n++
	}
	nsS := float64(tSmall.Nanoseconds()) / float64(n)
	nsL := float64(tLarge.Nanoseconds()) / float64(n)
	b.ReportMetric(nsS/1e6, "ms-10k/batch")
	b.ReportMetric(nsL/1e6, "ms-100k/batch")
	b.ReportMetric(nsL/nsS, "ratio-100k/10k")
}
