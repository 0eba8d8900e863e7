// Package issuebench sets up token issuance the way sdactl authserver
// serves it, for the module's issuance benchmarks (policy's and
// policy/sqlstore's BenchmarkHTTPIssue and sqlstore's BenchmarkInstances):
// a [policy.Service] with Prometheus metrics, audit logging and a rate
// limit that never refuses, and the raw HTTP/1.1 token request that
// package internal/loadgen sends to it. It is test support.
package issuebench
