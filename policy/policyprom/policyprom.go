package policyprom

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securedeviceaccess/sda/policy"
)

// Metrics implements [policy.Metrics] with Prometheus collectors. Create
// it with [New] and set it as policy.Service.Metrics.
type Metrics struct {
	issued    prometheus.Counter
	denied    *prometheus.CounterVec
	deniedBy  map[policy.DenyReason]prometheus.Counter
	decision  prometheus.Histogram
	signing   prometheus.Histogram
	storeTime *prometheus.HistogramVec
	storeErrs *prometheus.CounterVec
	storeOps  map[policy.StoreOp]storeOp
	changes   prometheus.Counter
	snapshots *prometheus.CounterVec
	httpCount *prometheus.CounterVec
	httpTime  *prometheus.HistogramVec
}

// storeOp holds the children of one store operation, looked up once.
type storeOp struct {
	time prometheus.Observer
	errs prometheus.Counter
}

var _ policy.Metrics = (*Metrics)(nil)

// New returns Metrics whose collectors are registered on reg (see the
// package documentation for their names). If one cannot be registered
// (the names are taken, as by a second New on reg), it returns the error
// of reg.Register and registers none.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sda_tokens_issued_total",
			Help: "Access tokens issued.",
		}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_tokens_denied_total",
			Help: "Token requests refused, by reason: policy, invalid, unauthenticated, unavailable, rate_limited, internal.",
		}, []string{"reason"}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sda_decision_duration_seconds",
			Help:    "Duration of policy decisions.",
			Buckets: decisionBuckets,
		}),
		signing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sda_signing_duration_seconds",
			Help:    "Duration of signing one token with the trust anchor key.",
			Buckets: signingBuckets,
		}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sda_store_operation_duration_seconds",
			Help:    "Duration of store and ledger operations, by operation: apply, snapshot, changes, record_issued, issued.",
			Buckets: storeBuckets,
		}, []string{"operation"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_store_errors_total",
			Help: "Store and ledger operations that failed, by operation (writes refused as invalid or conflicting are not counted).",
		}, []string{"operation"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sda_policy_changes_applied_total",
			Help: "Changes of the store taken into the service's in-memory view, its own writes and other instances'.",
		}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_policy_snapshot_loads_total",
			Help: "Snapshots of the store loaded into the service's in-memory view, by reason: initial, truncated, rejected.",
		}, []string{"reason"}),
		httpCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" for none) and status code.",
		}, []string{"route", "code"}),
		httpTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sda_http_request_duration_seconds",
			Help:    "Duration of HTTP requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	all := []prometheus.Collector{m.issued, m.denied, m.decision, m.signing, m.storeTime, m.storeErrs, m.changes, m.snapshots, m.httpCount, m.httpTime}
	for i, c := range all {
		if err := reg.Register(c); err != nil {
			for _, prev := range all[:i] {
				reg.Unregister(prev)
			}
			return nil, err
		}
	}
	// The label values known in advance are exposed from the start (at
	// zero), and their children are looked up once, not per observation.
	m.deniedBy = make(map[policy.DenyReason]prometheus.Counter, len(denyReasons))
	for _, r := range denyReasons {
		m.deniedBy[r] = m.denied.WithLabelValues(string(r))
	}
	m.storeOps = make(map[policy.StoreOp]storeOp, len(storeOps))
	for _, op := range storeOps {
		m.storeOps[op] = storeOp{m.storeTime.WithLabelValues(string(op)), m.storeErrs.WithLabelValues(string(op))}
	}
	for _, r := range snapshotReasons {
		m.snapshots.WithLabelValues(string(r))
	}
	return m, nil
}

// Histogram buckets, in seconds. A decision takes microseconds; a software
// key signs in tens of microseconds, a hardware security module in
// milliseconds; a store operation takes from microseconds (memory) to
// tens of milliseconds (an fsync, a database round trip).
var (
	decisionBuckets = prometheus.ExponentialBuckets(5e-6, 4, 9)      // 5 µs to 330 ms
	signingBuckets  = prometheus.ExponentialBuckets(2.5e-5, 2.5, 10) // 25 µs to 95 ms
	storeBuckets    = prometheus.ExponentialBuckets(1e-5, 4, 10)     // 10 µs to 2.6 s
)

var (
	denyReasons = []policy.DenyReason{policy.DenyPolicy, policy.DenyInvalid, policy.DenyUnauthenticated,
		policy.DenyUnavailable, policy.DenyRateLimited, policy.DenyInternal}
	storeOps        = []policy.StoreOp{policy.StoreApply, policy.StoreSnapshot, policy.StoreChanges, policy.StoreRecordIssued, policy.StoreIssued}
	snapshotReasons = []policy.SnapshotReason{policy.SnapshotInitial, policy.SnapshotTruncated, policy.SnapshotRejected}
)

// TokenIssued counts sda_tokens_issued_total.
func (m *Metrics) TokenIssued() { m.issued.Inc() }

// TokenDenied counts sda_tokens_denied_total{reason}.
func (m *Metrics) TokenDenied(reason policy.DenyReason) {
	if c, ok := m.deniedBy[reason]; ok {
		c.Inc()
		return
	}
	m.denied.WithLabelValues(string(reason)).Inc()
}

// Decision observes sda_decision_duration_seconds.
func (m *Metrics) Decision(d time.Duration) { m.decision.Observe(d.Seconds()) }

// Signing observes sda_signing_duration_seconds.
func (m *Metrics) Signing(d time.Duration) { m.signing.Observe(d.Seconds()) }

// StoreOperation observes sda_store_operation_duration_seconds{operation}
// and, when err is a failure of the store, counts
// sda_store_errors_total{operation}. A write refused as invalid, as
// conflicting or for a missing record ([policy.ErrInvalid],
// [policy.ErrConflict], [policy.ErrNotFound]) is the caller's error and is
// not counted.
func (m *Metrics) StoreOperation(op policy.StoreOp, d time.Duration, err error) {
	o, ok := m.storeOps[op]
	if !ok {
		o = storeOp{m.storeTime.WithLabelValues(string(op)), m.storeErrs.WithLabelValues(string(op))}
	}
	o.time.Observe(d.Seconds())
	if err != nil && !errors.Is(err, policy.ErrInvalid) && !errors.Is(err, policy.ErrConflict) && !errors.Is(err, policy.ErrNotFound) {
		o.errs.Inc()
	}
}

// ChangesApplied adds n to sda_policy_changes_applied_total.
func (m *Metrics) ChangesApplied(n int) { m.changes.Add(float64(n)) }

// SnapshotLoaded counts sda_policy_snapshot_loads_total{reason}.
func (m *Metrics) SnapshotLoaded(reason policy.SnapshotReason) {
	m.snapshots.WithLabelValues(string(reason)).Inc()
}

// HTTPRequest counts sda_http_requests_total{route,code} and observes
// sda_http_request_duration_seconds{route}.
func (m *Metrics) HTTPRequest(route string, status int, d time.Duration) {
	m.httpCount.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpTime.WithLabelValues(route).Observe(d.Seconds())
}
