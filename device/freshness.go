package device

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Freshness is a requirement that a token be proven fresh (v2,
// docs/PROTOCOL.md section 12, "Freshness on demand"), met by either of the
// ways it enables. The zero value requires nothing.
//
// A device sets it for all operations (Config.Freshness), per issuer
// (Config.IssuerFreshness) and per operation ([Registry.RegisterFresh]);
// a request must meet every requirement that applies to it.
type Freshness struct {
	// MaxStatusAge, if positive, accepts a token when a status update of
	// its issuer was installed no longer ago than this, measured on the
	// agent's monotonic clock (Config.Clock) since installation. The time
	// of installation is not persisted: after a restart the way fails until
	// a new update arrives.
	MaxStatusAge time.Duration
	// CNonce accepts a token whose cnonce (claim 39) is the nonce of the
	// request, which the device issued and consumes now; the device then
	// remembers the token as fresh (at most MaxFreshTokens, in memory) for
	// the session's later requests. v1 tokens carry no cnonce, and a
	// delegated request (one with a delegation chain) never meets it: the
	// token's cnonce is its holder's, not the delegate's.
	CNonce bool
}

func (f Freshness) required() bool { return f.MaxStatusAge > 0 || f.CNonce }

func (f Freshness) validate() error {
	if f.MaxStatusAge < 0 {
		return configError("negative Freshness.MaxStatusAge %v", f.MaxStatusAge)
	}
	return nil
}

// FreshnessError is the reason of a request refused by a freshness
// requirement: which requirement, and why each way it enables failed. It
// matches [ErrNotFresh], and the reasons of the ways ([ErrStatusTooOld],
// [ErrCNonce]).
type FreshnessError struct {
	// Requirement names the requirement: "device" (Config.Freshness),
	// "issuer" (Config.IssuerFreshness) or "operation"
	// ([Registry.RegisterFresh]).
	Requirement string
	Freshness   Freshness
	// Status says why the recent-update way failed; nil when not enabled.
	Status error
	// CNonce says why the cnonce way failed; nil when not enabled.
	CNonce error
}

// Error describes the failed requirement.
func (e *FreshnessError) Error() string {
	s := fmt.Sprintf("%v: %s requirement", ErrNotFresh, e.Requirement)
	if e.Status != nil {
		s += "; " + e.Status.Error()
	}
	if e.CNonce != nil {
		s += "; " + e.CNonce.Error()
	}
	return s
}

// Unwrap returns ErrNotFresh and the reasons of the ways.
func (e *FreshnessError) Unwrap() []error {
	out := []error{ErrNotFresh}
	for _, err := range []error{e.Status, e.CNonce} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// freshTokens remembers, by revocation hash, the tokens proven fresh by
// their cnonce, until they expire; at most MaxFreshTokens, the oldest
// forgotten first.
type freshTokens struct {
	mu    sync.Mutex
	m     map[[32]byte]time.Time // -> exp plus leeway
	order [][32]byte             // insertion ring
	next  int
}

func (f *freshTokens) has(h *[32]byte, now time.Time, known bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.m[*h]
	return ok && (!known || !now.After(exp))
}

func (f *freshTokens) add(h *[32]byte, exp time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[[32]byte]time.Time, MaxFreshTokens)
	}
	if _, ok := f.m[*h]; ok {
		f.m[*h] = exp
		return
	}
	if len(f.order) < MaxFreshTokens {
		f.order = append(f.order, *h)
	} else {
		delete(f.m, f.order[f.next])
		f.order[f.next] = *h
		f.next = (f.next + 1) % MaxFreshTokens
	}
	f.m[*h] = exp
}

// checkFreshness applies the freshness requirements of the device, of the
// token's issuer and of the operation (op) to a request whose nonce was
// just consumed. revHash returns the token's revocation hash; delegated
// says the request came with a delegation chain.
func (a *Agent) checkFreshness(c *token.Claims, nonce uint64, op Freshness, revHash func() *[32]byte, delegated bool) error {
	reqs := [3]struct {
		name string
		f    Freshness
	}{{"device", a.freshness}, {"issuer", a.issuerFresh[c.Issuer]}, {"operation", op}}
	var statusErr, cnonceErr error
	var age time.Duration
	statusDone, cnonceDone := false, false
	for _, r := range reqs {
		if !r.f.required() {
			continue
		}
		e := &FreshnessError{Requirement: r.name, Freshness: r.f}
		if r.f.CNonce {
			if !cnonceDone {
				cnonceErr, cnonceDone = a.cnonceFresh(c, nonce, revHash, delegated), true
			}
			if cnonceErr == nil {
				continue
			}
			e.CNonce = cnonceErr
		}
		if r.f.MaxStatusAge > 0 {
			if !statusDone {
				age, statusErr = a.statusAge(c.Issuer)
				statusDone = true
			}
			if e.Status = statusAgeWithin(statusErr, r.f.MaxStatusAge, age); e.Status == nil {
				continue
			}
		}
		return e
	}
	return nil
}

// statusAge returns the age of the update of issuer installed in this
// run, or ErrStatusTooOld when there is none.
func (a *Agent) statusAge(issuer string) (time.Duration, error) {
	h := a.status.get(issuer)
	if h == nil || h.installed.IsZero() {
		return 0, fmt.Errorf("%w: none installed since the device started", ErrStatusTooOld)
	}
	return a.mono().Sub(h.installed), nil
}

// statusAgeWithin applies a MaxStatusAge of max to what statusAge
// returned.
func statusAgeWithin(err error, max, age time.Duration) error {
	if err != nil {
		return err
	}
	if age > max {
		return fmt.Errorf("%w: installed %v ago, more than %v", ErrStatusTooOld, age, max)
	}
	return nil
}

// cnonceFresh reports whether the token is proven fresh by its cnonce:
// now (its cnonce is nonce, the request's nonce, just consumed) or
// earlier (remembered). A delegated request never is: the token's cnonce
// is the nonce of its holder's session, not the delegate's, and a token
// remembered fresh is remembered for that session.
func (a *Agent) cnonceFresh(c *token.Claims, nonce uint64, revHash func() *[32]byte, delegated bool) error {
	if delegated {
		return fmt.Errorf("%w: a delegated token cannot be proven fresh by its cnonce", ErrCNonce)
	}
	rh := revHash()
	now, known := a.clock.now()
	if a.fresh.has(rh, now, known) {
		return nil
	}
	switch {
	case c.CNonce == nil:
		return fmt.Errorf("%w: the token has none", ErrCNonce)
	case len(c.CNonce) != 8 || binary.BigEndian.Uint64(c.CNonce) != nonce:
		return fmt.Errorf("%w: cnonce %x, request nonce %016x", ErrCNonce, c.CNonce, nonce)
	}
	a.fresh.add(rh, c.Expiry.Add(a.leeway))
	return nil
}
