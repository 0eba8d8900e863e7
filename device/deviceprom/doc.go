// Package deviceprom exports what a device agent decides and holds in the
// Prometheus exposition format, for an OEM whose device (or its gateway)
// serves metrics. It lives apart from package device so that the agent
// does not depend on github.com/prometheus/client_golang.
//
//	reg := prometheus.NewRegistry()
//	m, err := deviceprom.New(reg)
//	...
//	cfg.OnOutcome, cfg.OnDrop = m.OnOutcome, m.OnDrop
//	agent, err := device.New(cfg)
//	...
//	m.Watch(agent)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
//   - sda_device_requests_total{request,result,check}: requests answered,
//     by kind (nonce, operation, unknown), result (allowed, rejected) and
//     the check that rejected it ([device.Check]; none when allowed).
//   - sda_device_throttled_total: nonce requests refused by throttling
//     ([device.ErrThrottled]).
//   - sda_device_connections_dropped_total{reason}: connections the agent
//     closed of its own accord ([device.DropReason]).
//   - sda_device_nonces_outstanding, sda_device_nonces_max,
//     sda_device_sources_locked_out, sda_device_connections: gauges of
//     [device.Agent.Stats], read at each scrape.
//
// The label values are bounded: they are the names of fixed lists.
//
// # Security considerations
//
// The metrics name no subject, token or peer address. A rising count of
// rejections at the token-signature or proof-of-possession check, or of
// locked-out sources, tells of someone guessing; an operator may alert on
// them. Serve them where only the operator's monitoring reaches them.
package deviceprom
