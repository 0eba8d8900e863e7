// Package loadgen drives an HTTP/1.1 service from a few persistent
// loopback connections for the module's benchmarks, at as little cost to
// the shared cores as it can: each [Conn] writes a pre-encoded request and
// reads the answer's status line and headers by hand, [Run] spreads a
// number of calls over a number of goroutines, and [Interleave] runs two
// kinds of calls in turn, batch by batch, alternating which goes first, so
// that their rates compare. It is test support, not a general HTTP client:
// it understands only answers framed by a Content-Length.
package loadgen
