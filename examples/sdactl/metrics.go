package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policyprom"
)

// metricsPath is where -metrics-listen serves the metrics.
const metricsPath = "/metrics"

// serviceMetrics, for a -metrics-listen address, sets svc.Metrics to the
// Prometheus adapter (package policyprom) and returns the listener that
// serves GET /metrics in the Prometheus exposition format, with the Go
// runtime's and the process's metrics; for an empty address it does
// nothing and returns none.
func serviceMetrics(svc *policy.Service, addr string) ([]httpListener, error) {
	if addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	m, err := policyprom.New(reg)
	if err != nil {
		return nil, err
	}
	svc.Metrics = m
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return []httpListener{{name: "metrics ", addr: addr, handler: mux}}, nil
}
