package deviceprom

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securedeviceaccess/sda/device"
)

// Metrics exports a device agent's decisions, dropped connections and
// state to Prometheus. Create it with [New], set its OnOutcome and OnDrop
// methods as the agent's Config.OnOutcome and Config.OnDrop, and, once the
// agent is built, call [Metrics.Watch] for the gauges.
type Metrics struct {
	requests  *prometheus.CounterVec
	throttled prometheus.Counter
	dropped   *prometheus.CounterVec
	stats     *statsCollector
}

// New returns Metrics whose collectors are registered on reg (see the
// package documentation for their names). If one cannot be registered
// (the names are taken, as by a second New on reg), it returns the error
// of reg.Register and registers none.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_device_requests_total",
			Help: "Requests the device answered, by kind (nonce, operation, unknown), result (allowed, rejected) and the check that rejected it (none when allowed).",
		}, []string{"request", "result", "check"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sda_device_throttled_total",
			Help: "Nonce requests refused because their source was locked out after repeated verification failures.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sda_device_connections_dropped_total",
			Help: "Connections the device closed of its own accord, by reason.",
		}, []string{"reason"}),
		stats: newStatsCollector(),
	}
	all := []prometheus.Collector{m.requests, m.throttled, m.dropped, m.stats}
	for i, c := range all {
		if err := reg.Register(c); err != nil {
			for _, prev := range all[:i] {
				reg.Unregister(prev)
			}
			return nil, err
		}
	}
	for r := device.DropIdle; r <= device.DropReceiveErrors; r++ {
		m.dropped.WithLabelValues(r.String())
	}
	return m, nil
}

// OnOutcome counts the decision o: sda_device_requests_total and, for a
// nonce request refused by throttling, sda_device_throttled_total. Set it
// as Config.OnOutcome.
func (m *Metrics) OnOutcome(o device.Outcome) {
	result := "rejected"
	if o.Allowed() {
		result = "allowed"
	}
	m.requests.WithLabelValues(o.Request.String(), result, o.Check.String()).Inc()
	if errors.Is(o.Err, device.ErrThrottled) {
		m.throttled.Inc()
	}
}

// OnDrop counts the dropped connection d in
// sda_device_connections_dropped_total{reason}. Set it as Config.OnDrop.
func (m *Metrics) OnDrop(d device.Drop) {
	m.dropped.WithLabelValues(d.Reason.String()).Inc()
}

// Watch makes the gauges report a's [device.Agent.Stats], read at every
// scrape. Before Watch the gauges are absent; a later Watch replaces the
// agent watched.
func (m *Metrics) Watch(a *device.Agent) { m.stats.agent.Store(a) }

// statsCollector reports an agent's Stats as gauges.
type statsCollector struct {
	agent                                 atomic.Pointer[device.Agent]
	outstanding, maxNonces, locked, conns *prometheus.Desc
}

func newStatsCollector() *statsCollector {
	return &statsCollector{
		outstanding: prometheus.NewDesc("sda_device_nonces_outstanding", "Nonces issued and neither used nor released.", nil, nil),
		maxNonces:   prometheus.NewDesc("sda_device_nonces_max", "Bound of the nonces outstanding; at the bound nonce requests are refused.", nil, nil),
		locked:      prometheus.NewDesc("sda_device_sources_locked_out", "Sources whose nonce requests are refused now by throttling.", nil, nil),
		conns:       prometheus.NewDesc("sda_device_connections", "Connections being served.", nil, nil),
	}
}

// Describe sends the gauges' descriptions.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.outstanding
	ch <- c.maxNonces
	ch <- c.locked
	ch <- c.conns
}

// Collect sends the watched agent's Stats, if there is one.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.agent.Load()
	if a == nil {
		return
	}
	s := a.Stats()
	ch <- prometheus.MustNewConstMetric(c.outstanding, prometheus.GaugeValue, float64(s.NoncesOutstanding))
	ch <- prometheus.MustNewConstMetric(c.maxNonces, prometheus.GaugeValue, float64(s.MaxNonces))
	ch <- prometheus.MustNewConstMetric(c.locked, prometheus.GaugeValue, float64(s.SourcesLockedOut))
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Connections))
}
