package device

import (
	"sync"
	"time"
)

// Throttle defaults: 5 verification failures within a minute refuse new
// nonces for a minute.
const (
	DefaultThrottleFailures = 5
	DefaultThrottleWindow   = time.Minute
	DefaultThrottleLockout  = time.Minute

	// MaxThrottleFailures bounds Throttle.Failures (the agent keeps the
	// times of that many failures).
	MaxThrottleFailures = 1000
)

// Throttle configures how the agent blunts online guessing: after Failures
// verification failures (requests answered with StatusVerificationError)
// within Window, nonce requests are refused with StatusBusy for Lockout.
// Requests carrying a nonce issued before the lockout are still processed.
// Zero fields take the defaults; Failures < 0 disables throttling.
type Throttle struct {
	Failures int
	Window   time.Duration
	Lockout  time.Duration
}

type throttle struct {
	mu      sync.Mutex
	limit   int
	window  time.Duration
	lockout time.Duration
	times   []time.Time // ring of the last limit failures
	next    int
	until   time.Time
}

func newThrottle(c Throttle) *throttle {
	if c.Failures < 0 {
		return nil
	}
	t := &throttle{limit: c.Failures, window: c.Window, lockout: c.Lockout}
	if t.limit == 0 {
		t.limit = DefaultThrottleFailures
	}
	if t.window <= 0 {
		t.window = DefaultThrottleWindow
	}
	if t.lockout <= 0 {
		t.lockout = DefaultThrottleLockout
	}
	t.times = make([]time.Time, t.limit)
	return t
}

// fail records a verification failure at now.
func (t *throttle) fail(now time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.times[t.next] = now
	t.next = (t.next + 1) % t.limit
	oldest := t.times[t.next] // the failure limit-1 failures ago
	if !oldest.IsZero() && now.Sub(oldest) < t.window {
		t.until = now.Add(t.lockout)
		clear(t.times)
	}
}

// blocked reports whether nonce requests are refused at now.
func (t *throttle) blocked(now time.Time) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Before(t.until)
}
