package policyprom_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policyprom"
)

// BenchmarkIssueMetrics measures the cost of the metrics hook on the
// issuance path: two services alike but for Service.Metrics (nil, and
// this package's adapter) issue tokens in turn in the same loop, through
// the Go API (go) and through the HTTP handler without a network (http),
// and it reports both times and their ratio (target: ratio-on/off <= 1.02).
func BenchmarkIssueMetrics(b *testing.B) {
	off, on := newTestService(b), newTestService(b)
	m, err := policyprom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	on.svc.Metrics = m
	ctx := context.Background()
	b.Run("go", func(b *testing.B) {
		issue := func(ts *testService) {
			if _, err := ts.svc.Issue(ctx, "alice", ts.request("read", "op1")); err != nil {
				b.Fatal(err)
			}
		}
		benchPair(b, func() { issue(off) }, func() { issue(on) })
	})
	b.Run("http", func(b *testing.B) {
		issue := func(ts *testService, body string) func() {
			return func() {
				r := httptest.NewRequest("POST", policy.TokenPath, strings.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+ts.alice)
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				ts.svc.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		}
		benchPair(b, issue(off, off.tokenBody(b, "read op1")), issue(on, on.tokenBody(b, "read op1")))
	})
}

// benchPair runs off and on in turn, alternating which goes first, and
// reports the median time of each and the ratio of the medians on/off:
// medians, because on a shared machine a burst of load slows some calls
// many times over, which would swamp a difference of a few percent in
// the means.
func benchPair(b *testing.B, off, on func()) {
	var tOff, tOn []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		first, second, tFirst, tSecond := off, on, &tOff, &tOn
		if len(tOff)%2 == 1 {
			first, second, tFirst, tSecond = on, off, &tOn, &tOff
		}
		start := time.Now()
		first()
		mid := time.Now()
		second()
		end := time.Now()
		*tFirst = append(*tFirst, mid.Sub(start))
		*tSecond = append(*tSecond, end.Sub(mid))
	}
	mOff, mOn := median(tOff), median(tOn)
	b.ReportMetric(float64(mOff.Nanoseconds()), "ns-off")
	b.ReportMetric(float64(mOn.Nanoseconds()), "ns-on")
	b.ReportMetric(float64(mOn)/float64(mOff), "ratio-on/off")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
