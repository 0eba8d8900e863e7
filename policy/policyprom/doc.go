// Package policyprom exports the measurements of a policy.Service in the
// Prometheus exposition format: [New] registers the collectors on a
// prometheus.Registerer and returns the [policy.Metrics] hook to set as
// Service.Metrics; serve the registry with promhttp. It lives apart from
// package policy so that the SDK's core does not depend on
// github.com/prometheus/client_golang.
//
//	reg := prometheus.NewRegistry()
//	m, err := policyprom.New(reg)
//	...
//	svc := &policy.Service{Store: store, Signer: key, Metrics: m}
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// Counters:
//
//   - sda_tokens_issued_total: tokens issued.
//   - sda_tokens_denied_total{reason}: token requests refused, by reason
//     (policy, invalid, unauthenticated, unavailable, rate_limited,
//     internal; see [policy.DenyReason]).
//   - sda_store_errors_total{operation}: store and ledger operations that
//     failed (apply, snapshot, changes, record_issued, issued); writes the
//     store refused as invalid or conflicting are not failures.
//   - sda_policy_changes_applied_total: changes of the store taken into
//     the service's view (its own writes and other instances').
//   - sda_policy_snapshot_loads_total{reason}: whole snapshots loaded
//     (initial, truncated, rejected; see [policy.SnapshotReason]).
//   - sda_http_requests_total{route,code}: HTTP requests by route pattern
//     (such as "POST /ace-auth/token", "PUT /admin/v1/policies/{id}", or
//     "unmatched") and status code.
//
// Histograms, in seconds:
//
//   - sda_decision_duration_seconds: policy decisions.
//   - sda_signing_duration_seconds: signing one token.
//   - sda_store_operation_duration_seconds{operation}: store and ledger
//     operations.
//   - sda_http_request_duration_seconds{route}: HTTP requests.
//
// The label values are bounded: reasons and operations are fixed lists,
// routes the patterns of the service's routes, never raw paths.
//
// # Security considerations
//
// The metrics name no subject, device, token or credential; they do tell
// the rate of issuances and denials and the service's routes. Serve them
// where only the operator's monitoring reaches them (a loopback or
// internal listener), not with the token endpoint.
package policyprom
