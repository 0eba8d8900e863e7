package device

import "time"

// The external tests observe an agent's state through these methods, which
// only the tests have.

// OutstandingNonces returns the number of nonces currently held (at most
// Config.MaxNonces).
func (a *Agent) OutstandingNonces() int { return a.nonces.outstanding() }

// TimeLowerBound returns the device's lower bound of time (the newest
// verified issue time seen, or Config.MinTime), or the zero time.
func (a *Agent) TimeLowerBound() time.Time { return a.clock.lowerBound() }

// ConsumeNonce uses the outstanding nonce n as a verified request would,
// without the request: for benchmarks that keep a number of nonces
// outstanding.
func (a *Agent) ConsumeNonce(n uint64) error { return a.nonces.consume(n, a.mono()) }
