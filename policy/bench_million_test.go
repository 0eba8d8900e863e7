package policy

import (
	"flag"
	"sync"
	"testing"
	"time"
)

// million enables the benchmarks at 1,000,000 policies, which take about a
// minute and a few GiB each: go test ./policy -run '^$' -bench Million
// -policy.million.
var million = flag.Bool("policy.million", false, "run the benchmarks at 1,000,000 policies (BenchmarkMillion)")

// millionSnapshot builds benchSnapshot(1,000,000) once per process.
var millionSnapshot = sync.OnceValue(func() *Snapshot { return benchSnapshot(1000000) })

// BenchmarkMillion measures the engine at 1,000,000 policies (with
// -policy.million only; skipped otherwise), each figure with the ratio
// that its target is stated in, measured in the same run:
//
//   - decide: one decision at 10, at 100,000 and at 1,000,000 policies,
//     interleaved in batches of 256 (targets: ns-1m/decision <= 2000,
//     ratio-1m/10 <= 1.3; ratio-1m/100k is the growth over one order of
//     magnitude, for the README);
//   - load: Engine.Load of the snapshot (target: s/load <= 10);
//   - memory: the heap the loaded engine holds per policy, its copies of
//     the policies and directory, their compiled forms and the indexes
//     (target: bytes/policy < 1024);
//   - explain: Explain against Decide on the allowed benchmark request
//     and on a denied one, interleaved (target: explain/decide <= 5).
func BenchmarkMillion(b *testing.B) {
	if !*million {
		b.Skip("run with -policy.million")
	}
	snap := millionSnapshot()
	var large *Engine
	loadOnce := func(b *testing.B) *Engine {
		if large == nil {
			large = &Engine{}
			if err := large.Load(snap); err != nil {
				b.Fatal(err)
			}
		}
		return large
	}

	b.Run("load", func(b *testing.B) {
		var total time.Duration
		k := 0
		for b.Loop() {
			start := time.Now()
			var e Engine
			if err := e.Load(snap); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			k++
		}
		b.ReportMetric(total.Seconds()/float64(k), "s/load")
	})

	b.Run("memory", func(b *testing.B) {
		large = nil
		var perPolicy float64
		for b.Loop() {
			large, perPolicy = loadMeasured(b, snap)
		}
		b.ReportMetric(perPolicy, "bytes/policy")
	})

	b.Run("decide", func(b *testing.B) {
		small, mid, large := benchEngine(b, 10), benchEngine(b, 100000), loadOnce(b)
		req := benchRequest()
		if d, err := large.Decide(req); err != nil || !d.Allowed {
			b.Fatalf("benchmark request not allowed: %+v %v", d, err)
		}
		var tSmall, tMid, tLarge time.Duration
		const batch = 256
		k := 0
		for b.Loop() {
			t0 := time.Now()
			for range batch {
				small.Decide(req)
			}
			t1 := time.Now()
			for range batch {
				mid.Decide(req)
			}
			t2 := time.Now()
			for range batch {
				large.Decide(req)
			}
			tLarge += time.Since(t2)
			tMid += t2.Sub(t1)
			tSmall += t1.Sub(t0)
			k += batch
		}
		ns10 := float64(tSmall.Nanoseconds()) / float64(k)
		ns100k := float64(tMid.Nanoseconds()) / float64(k)
		ns1m := float64(tLarge.Nanoseconds()) / float64(k)
		b.ReportMetric(ns10, "ns-10/decision")
		b.ReportMetric(ns100k, "ns-100k/decision")
		b.ReportMetric(ns1m, "ns-1m/decision")
		b.ReportMetric(ns1m/ns10, "ratio-1m/10")
		b.ReportMetric(ns1m/ns100k, "ratio-1m/100k")
	})

	b.Run("explain", func(b *testing.B) {
		benchExplainVsDecide(b, loadOnce(b), "")
	})
}
