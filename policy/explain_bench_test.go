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
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var e Engine
		if err := e.Load(snap); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perPolicy = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(&e)
	}
	b.ReportMetric(perPolicy, "bytes/policy")
}

// BenchmarkExplain measures Explain against Decide on the same request,
// interleaved in one run, at 1,000 and 100,000 policies: for the
// benchmark's allowed request (2 devices x 2 operations) and for a denied
// one, whose pairs look for near misses. It reports both and their ratio
// (target: a few times a decision).
func BenchmarkExplain(b *testing.B) {
	denied := benchRequest()
	denied.Operations = []string{"read", "op-none"}
	for _, n := range []int{1000, 100000} {
		e := benchEngine(b, n)
		for _, c := range []struct {
			name string
			r    *Request
		}{{"allowed", benchRequest()}, {"denied", denied}} {
			b.Run(fmt.Sprintf("policies=%d/%s", n, c.name), func(b *testing.B) {
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
}
