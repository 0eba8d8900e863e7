package device

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// Throttle defaults: 5 verification failures within a minute refuse new
// nonces to their source for a minute.
const (
	DefaultThrottleFailures = 5
	DefaultThrottleWindow   = time.Minute
	DefaultThrottleLockout  = time.Minute

	// MaxThrottleFailures bounds Throttle.Failures (the agent keeps the
	// times of that many failures per source).
	MaxThrottleFailures = 1000
)

// maxThrottleSources bounds the addresses whose failures the agent
// remembers; beyond, the least recently failing one is forgotten.
const maxThrottleSources = 256

// Throttle configures how the agent blunts online guessing: after Failures
// verification failures from one source within Window, that source's nonce
// requests are refused with token.StatusBusy for Lockout. Requests carrying a
// nonce issued before the lockout are still processed. Zero fields take the
// defaults; Failures < 0 disables throttling.
//
// Only failures that cost the device a signature verification count:
// requests answered with token.StatusVerificationError from the token signature
// check on (their token names an issuer the device trusts). A request
// naming an unknown issuer, a malformed one or a scope denial costs nothing
// and locks no one out.
//
// A source is the peer's address for connections whose transport tells it
// (TCP through [Agent.ServeListener] or [Agent.Serve]): an IPv4 address,
// the /64 prefix of a global IPv6 address, or a link-local IPv6 address.
// All other requests ([Agent.Process], [Agent.Handle], a serial line, a
// pipe) come from one device-wide source. The agent remembers the failures
// of the 256 most recently failing addresses.
type Throttle struct {
	Failures int
	Window   time.Duration
	Lockout  time.Duration
}

// throttle keeps the failure history of every source.
type throttle struct {
	limit   int
	window  time.Duration
	lockout time.Duration
	epoch   time.Time // times are kept as offsets from it

	mu       sync.Mutex
	shared   failures
	bySource map[netip.Prefix]*list.Element // of *sourceFailures
	recent   list.List                      // of *sourceFailures, most recently failing first
}

// failures is the history of one source: the times of its last limit
// failures and the end of its lockout.
type failures struct {
	times []time.Duration // ring, as offsets from the epoch
	n     int             // failures recorded in the ring, at most limit
	next  int
	until time.Duration // end of the lockout; locked while now < until
	set   bool          // until is set
}

type sourceFailures struct {
	key netip.Prefix
	failures
}

func newThrottle(c Throttle, epoch time.Time) *throttle {
	if c.Failures < 0 {
		return nil
	}
	t := &throttle{limit: c.Failures, window: c.Window, lockout: c.Lockout, epoch: epoch}
	if t.limit == 0 {
		t.limit = DefaultThrottleFailures
	}
	if t.window <= 0 {
		t.window = DefaultThrottleWindow
	}
	if t.lockout <= 0 {
		t.lockout = DefaultThrottleLockout
	}
	t.shared.times = make([]time.Duration, t.limit)
	t.bySource = make(map[netip.Prefix]*list.Element)
	return t
}

// history returns the failures of src, creating them when create is set
// (and forgetting the least recently failing source when there are too
// many), or nil. The caller holds mu.
func (t *throttle) history(src *source, create bool) *failures {
	if src == nil || !src.addr.IsValid() {
		return &t.shared
	}
	if e := t.bySource[src.addr]; e != nil {
		t.recent.MoveToFront(e)
		return &e.Value.(*sourceFailures).failures
	}
	if !create {
		return nil
	}
	var sf *sourceFailures
	if len(t.bySource) >= maxThrottleSources {
		e := t.recent.Back()
		sf = t.recent.Remove(e).(*sourceFailures)
		delete(t.bySource, sf.key)
		clear(sf.times)
		sf.failures = failures{times: sf.times}
	} else {
		sf = &sourceFailures{failures: failures{times: make([]time.Duration, t.limit)}}
	}
	sf.key = src.addr
	t.bySource[src.addr] = t.recent.PushFront(sf)
	return &sf.failures
}

// fail records a verification failure from src at now.
func (t *throttle) fail(src *source, now time.Time) {
	if t == nil {
		return
	}
	at := now.Sub(t.epoch)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.history(src, true)
	f.times[f.next] = at
	f.next = (f.next + 1) % t.limit
	f.n = min(f.n+1, t.limit)
	oldest := f.times[f.next] // the failure limit-1 failures ago
	if f.n == t.limit && at-oldest < t.window {
		f.until, f.set = at+t.lockout, true
		f.n = 0
	}
}

// blocked reports whether nonce requests from src are refused at now.
func (t *throttle) blocked(src *source, now time.Time) bool {
	if t == nil {
		return false
	}
	at := now.Sub(t.epoch)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.history(src, false)
	return f != nil && f.set && at < f.until
}
