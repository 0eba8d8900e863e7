package console

import (
	"sync"
	"time"
)

// signInLimiter counts failed sign-ins per client address in fixed
// windows: after max failures within a window, the address waits for the
// window's end. It tracks at most maxTrackedIPs addresses; when they are
// all in a current window, an untracked address is refused too, so that
// a flood of addresses cannot reset the count (the console is on the
// administration listener, which few addresses reach).
type signInLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	byAddr map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

func newSignInLimiter(max int, window time.Duration) *signInLimiter {
	return &signInLimiter{max: max, window: window, byAddr: map[string]*failures{}}
}

// allowed reports whether addr may try to sign in now, and if not, how
// long it waits.
func (l *signInLimiter) allowed(addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.byAddr[addr]
	if f == nil {
		if len(l.byAddr) >= maxTrackedIPs && !l.sweepLocked(now) {
			return false, l.window
		}
		return true, 0
	}
	if now.Sub(f.start) >= l.window {
		delete(l.byAddr, addr)
		return true, 0
	}
	if f.n >= l.max {
		return false, f.start.Add(l.window).Sub(now)
	}
	return true, 0
}

// failed records a failed sign-in from addr.
func (l *signInLimiter) failed(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.byAddr[addr]
	if f == nil || now.Sub(f.start) >= l.window {
		if f == nil && len(l.byAddr) >= maxTrackedIPs && !l.sweepLocked(now) {
			return
		}
		f = &failures{start: now}
		l.byAddr[addr] = f
	}
	f.n++
}

// succeeded forgets the failures of addr.
func (l *signInLimiter) succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byAddr, addr)
}

// sweepLocked forgets the addresses whose window ended and reports
// whether there is room for another.
func (l *signInLimiter) sweepLocked(now time.Time) bool {
	for a, f := range l.byAddr {
		if now.Sub(f.start) >= l.window {
			delete(l.byAddr, a)
		}
	}
	return len(l.byAddr) < maxTrackedIPs
}
