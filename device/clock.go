package device

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// DefaultLeeway is the clock skew tolerated on exp and nbf, as in SDA v1.
const DefaultLeeway = 300 * time.Second

// ClockMode says how far the agent trusts Config.Clock as wall time.
type ClockMode uint8

// Clock modes. In every mode the agent keeps a lower bound of time: the
// newest verified issue time (iat, or nbf when a token has no iat) of an
// accepted token, persisted in [State], and at least Config.MinTime.
const (
	// ClockTrusted, the default: Config.Clock is wall time. exp and nbf are
	// checked with the leeway against max(Clock(), lower bound), so a clock
	// that jumps backwards cannot revive expired tokens.
	ClockTrusted ClockMode = iota

	// ClockLowerBound: the device has no trustworthy clock (Config.Clock
	// then only measures durations: nonce lifetime, throttling). The time
	// is the lower bound: a token is rejected if it expired (exp plus
	// leeway) before it. nbf cannot be checked. While there is no lower
	// bound at all, tokens are accepted without a time check and the
	// decision says TimeUnknown; the first accepted token sets the bound.
	ClockLowerBound

	// ClockStrict: like ClockLowerBound, but while there is no lower bound
	// every token is rejected with [ErrTimeUnknown]. Provision a bound
	// with Config.MinTime or through State.
	ClockStrict
)

// String names the mode.
func (m ClockMode) String() string {
	switch m {
	case ClockTrusted:
		return "trusted"
	case ClockLowerBound:
		return "lower-bound"
	case ClockStrict:
		return "strict"
	}
	return fmt.Sprintf("ClockMode(%d)", uint8(m))
}

// clockPolicy decides the time tokens are checked against.
type clockPolicy struct {
	mode   ClockMode
	clock  func() time.Time
	leeway time.Duration
	state  State

	mu    sync.Mutex
	floor int64 // unix seconds; 0 = unknown

	persistMu sync.Mutex
	persisted int64
}

func newClockPolicy(mode ClockMode, clock func() time.Time, leeway time.Duration, minTime time.Time, state State) (*clockPolicy, error) {
	c := &clockPolicy{mode: mode, clock: clock, leeway: leeway, state: state}
	if !minTime.IsZero() {
		c.floor = minTime.Unix()
	}
	b, err := state.Load(stateKeyTimeFloor)
	if err != nil {
		return nil, fmt.Errorf("%w: loading %s: %v", ErrState, stateKeyTimeFloor, err)
	}
	switch len(b) {
	case 0:
		if b != nil {
			// Never written: the value is 8 bytes or absent.
			return nil, fmt.Errorf("%w: empty time floor", ErrState)
		}
	case 8:
		v := int64(binary.BigEndian.Uint64(b))
		if v < 0 {
			return nil, fmt.Errorf("%w: negative time floor", ErrState)
		}
		c.persisted = v
		c.floor = max(c.floor, v)
	default:
		return nil, fmt.Errorf("%w: time floor of %d bytes", ErrState, len(b))
	}
	return c, nil
}

// lowerBound returns the lower bound of time, or the zero time.
func (c *clockPolicy) lowerBound() time.Time {
	c.mu.Lock()
	f := c.floor
	c.mu.Unlock()
	if f == 0 {
		return time.Time{}
	}
	return time.Unix(f, 0).UTC()
}

// now returns the time tokens are checked against, and false when it is
// unknown (clockless modes without a lower bound).
func (c *clockPolicy) now() (time.Time, bool) {
	floor := c.lowerBound()
	if c.mode == ClockTrusted {
		t := c.clock()
		if t.Before(floor) {
			t = floor
		}
		return t, true
	}
	return floor, !floor.IsZero()
}

// check applies the time rules to verified claims at now.
func (c *clockPolicy) check(cl *token.Claims, now time.Time, known bool) error {
	if !known {
		if c.mode == ClockStrict {
			return ErrTimeUnknown
		}
		return nil // ClockLowerBound bootstrapping; the outcome says TimeUnknown
	}
	if cl.Expiry.Add(c.leeway).Before(now) {
		return token.ErrExpired
	}
	if c.mode == ClockTrusted && !cl.NotBefore.IsZero() && cl.NotBefore.Add(-c.leeway).After(now) {
		return token.ErrNotYetValid
	}
	return nil
}

// observe raises the lower bound to the issue time of an accepted token:
// iat, or nbf when there is none, never beyond the token's exp, and with a
// trusted clock never beyond now plus the leeway (an issuer whose clock runs
// ahead must not push the device's time forward). It returns the error of
// persisting the new bound, if any; the bound is raised in memory anyway,
// which only makes the device stricter.
func (c *clockPolicy) observe(cl *token.Claims, now time.Time) error {
	t := cl.IssuedAt
	if t.IsZero() {
		t = cl.NotBefore
	}
	if t.IsZero() {
		return nil
	}
	if t.After(cl.Expiry) {
		t = cl.Expiry
	}
	return c.raise(t, now)
}

// raise raises the lower bound to t, with a trusted clock never beyond now
// plus the leeway, and persists it. It returns the error of persisting the
// new bound, if any; the bound is raised in memory anyway. Accepted
// tokens (observe) and installed status updates raise it.
func (c *clockPolicy) raise(t, now time.Time) error {
	if c.mode == ClockTrusted {
		if lim := now.Add(c.leeway); t.After(lim) {
			t = lim
		}
	}
	v := t.Unix()
	c.mu.Lock()
	raised := v > c.floor
	if raised {
		c.floor = v
	}
	c.mu.Unlock()
	if !raised {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	v = c.floor
	c.mu.Unlock()
	if v <= c.persisted {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	if err := c.state.Store(stateKeyTimeFloor, b[:]); err != nil {
		return fmt.Errorf("%w: storing %s: %v", ErrState, stateKeyTimeFloor, err)
	}
	c.persisted = v
	return nil
}
