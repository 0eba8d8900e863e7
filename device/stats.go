package device

import "time"

// Stats is a snapshot of the agent's state that a device exports as
// gauges (package device/deviceprom does, for Prometheus). The counters
// of its decisions and dropped connections come from Config.OnOutcome and
// Config.OnDrop.
type Stats struct {
	// NoncesOutstanding is the number of nonces issued and neither used
	// nor released, expired ones not yet pruned included (a nonce request
	// prunes them).
	NoncesOutstanding int
	// MaxNonces is the bound of NoncesOutstanding (Config.MaxNonces);
	// a device at the bound refuses nonce requests (ErrNoncesExhausted).
	MaxNonces int
	// SourcesLockedOut is the number of sources (see [Throttle]) whose
	// nonce requests are refused now after repeated verification failures.
	SourcesLockedOut int
	// Connections is the number of connections being served by
	// [Agent.Serve] and [Agent.ServeListener].
	Connections int
}

// Stats returns a snapshot of the agent's state. It takes the agent's
// locks briefly, as a nonce request does, and is safe to call
// concurrently with serving, for example on every scrape of a metrics
// endpoint.
func (a *Agent) Stats() Stats {
	return Stats{
		NoncesOutstanding: a.nonces.outstanding(),
		MaxNonces:         a.nonces.max,
		SourcesLockedOut:  a.throttle.lockedOut(a.mono()),
		Connections:       int(a.conns.Load()),
	}
}

// lockedOut returns the number of sources locked out at now.
func (t *throttle) lockedOut(now time.Time) int {
	if t == nil {
		return 0
	}
	at := now.Sub(t.epoch)
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	if t.shared.set && at < t.shared.until {
		n++
	}
	for e := t.recent.Front(); e != nil; e = e.Next() {
		if f := &e.Value.(*sourceFailures).failures; f.set && at < f.until {
			n++
		}
	}
	return n
}
