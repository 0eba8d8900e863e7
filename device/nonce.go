package device

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// Nonce defaults (docs/PROTOCOL.md section 8: the original device keeps 10 nonces).
const (
	DefaultMaxNonces     = 10
	DefaultNonceLifetime = 5 * time.Minute
	MaxMaxNonces         = 1024 // upper bound of Config.MaxNonces
)

// nonceStore holds the outstanding nonces: at most max, each single use and
// valid for life. It never evicts an unexpired nonce to make room: when all
// slots hold unexpired nonces, issue fails with ErrNoncesExhausted. A flood
// of nonce requests can therefore delay new sessions but can never
// invalidate a nonce a technician already holds. What keeps one flooding
// connection from taking every slot is its source's quota: a source that
// holds as many as it may and asks for another gives up its own oldest
// (ErrNonceReleased), never another source's. A source's nonces are released
// when its connection closes.
//
// Consumed and expired nonces are remembered in a ring of 2*max entries so
// that a rejection can say "replayed" or "expired" rather than "unknown",
// and so that a recently used value is never issued again. The index seen
// holds every value in live and in the ring, so that neither issuing,
// using nor rejecting a nonce searches live or the ring (3*max entries at
// most). Issuing prunes expired nonces, but scans live only once the
// earliest expiry among them has passed: while nonces are used before they
// expire, issuing costs about as much whatever max is. What scans live are
// that prune (each scan forgets a nonce or makes earliest exact), a source at its
// quota releasing its oldest nonce (releaseOldest), and a closed
// connection releasing its nonces.
type nonceStore struct {
	mu   sync.Mutex
	max  int
	life time.Duration
	rand io.Reader
	live []liveNonce
	gone []goneNonce // ring
	next int         // next write position in gone
	seen map[uint64]seenNonce
	buf  [8]byte
	// earliest is at or before the expiry of every live nonce, so that
	// prune need not scan live before it.
	earliest time.Time
	// scanned counts the live entries keep has examined, for the tests
	// that check issuing does not scan live.
	scanned int
}

// seenNonce is what the index knows of a value: live at live[at] (why is
// nil), or in the ring, forgotten for why.
type seenNonce struct {
	why error
	at  int
}

type liveNonce struct {
	n       uint64
	expires time.Time // on the agent's monotonic clock
	owner   *source   // nil: the shared source
}

// drop removes e from its owner's count. The caller holds mu.
func (e *liveNonce) drop() {
	if e.owner != nil {
		e.owner.held.Add(-1)
	}
}

type goneNonce struct {
	n   uint64
	why error // ErrNonceReplayed or ErrNonceExpired
}

func newNonceStore(max int, life time.Duration, rand io.Reader) *nonceStore {
	return &nonceStore{max: max, life: life, rand: rand, live: make([]liveNonce, 0, max), gone: make([]goneNonce, 2*max), seen: make(map[uint64]seenNonce, 3*max)}
}

// forget moves n, a nonce taken out of live, to the ring (why is not nil),
// and drops from the index the value the ring forgets to make room. The
// caller holds mu.
func (s *nonceStore) forget(n uint64, why error) {
	if old := s.gone[s.next].n; old != 0 {
		delete(s.seen, old)
	}
	s.gone[s.next] = goneNonce{n, why}
	s.next = (s.next + 1) % len(s.gone)
	s.seen[n] = seenNonce{why: why}
}

// keep keeps the live nonces for which keep reports true, in their order,
// and forgets the others for why. The caller holds mu.
func (s *nonceStore) keep(keep func(*liveNonce) bool, why error) {
	kept := s.live[:0]
	s.scanned += len(s.live)
	for i, e := range s.live {
		if keep(&e) {
			if at := len(kept); at != i { // moved down
				s.seen[e.n] = seenNonce{at: at}
			}
			kept = append(kept, e)
		} else {
			e.drop()
			s.forget(e.n, why)
		}
	}
	clear(s.live[len(kept):])
	s.live = kept
}

// removeLive takes live[i] out of live, moving the last one in its place,
// and returns it. The caller holds mu and forgets it.
func (s *nonceStore) removeLive(i int) liveNonce {
	e := s.live[i]
	last := len(s.live) - 1
	if i != last {
		s.live[i] = s.live[last]
		s.seen[s.live[i].n] = seenNonce{at: i}
	}
	s.live[last] = liveNonce{}
	s.live = s.live[:last]
	e.drop()
	return e
}

// prune moves expired nonces to the ring, scanning live only when now is
// not before earliest, and sets earliest to the earliest expiry of those
// kept. The caller holds mu.
func (s *nonceStore) prune(now time.Time) {
	if len(s.live) == 0 || now.Before(s.earliest) {
		return
	}
	var earliest time.Time
	s.keep(func(e *liveNonce) bool {
		if !now.Before(e.expires) {
			return false
		}
		if earliest.IsZero() || e.expires.Before(earliest) {
			earliest = e.expires
		}
		return true
	}, ErrNonceExpired)
	s.earliest = earliest
}

// known reports whether n is live or in the ring. The caller holds mu.
func (s *nonceStore) known(n uint64) bool {
	_, ok := s.seen[n]
	return ok
}

// issue returns a fresh nonce for src (nil: the shared source): 64 random
// bits, never 0, not outstanding and not recently used.
func (s *nonceStore) issue(now time.Time, src *source) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	if src != nil && src.quota > 0 && int(src.held.Load()) >= src.quota {
		s.releaseOldest(src)
	}
	if len(s.live) >= s.max {
		return 0, fmt.Errorf("%w: %d unexpired nonces outstanding", ErrNoncesExhausted, len(s.live))
	}
	for range 8 {
		if _, err := io.ReadFull(s.rand, s.buf[:]); err != nil {
			return 0, fmt.Errorf("%w: random source: %v", ErrInternal, err)
		}
		n := binary.BigEndian.Uint64(s.buf[:])
		if n == 0 || s.known(n) {
			continue
		}
		expires := now.Add(s.life)
		if len(s.live) == 0 || expires.Before(s.earliest) {
			s.earliest = expires
		}
		s.seen[n] = seenNonce{at: len(s.live)}
		s.live = append(s.live, liveNonce{n: n, expires: expires, owner: src})
		if src != nil {
			src.held.Add(1)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: random source keeps repeating itself", ErrInternal)
}

// consume checks that n is outstanding and unexpired and removes it.
func (s *nonceStore) consume(n uint64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.seen[n]
	switch {
	case !ok:
		return ErrNonceUnknown
	case seen.why != nil:
		return seen.why
	}
	e := s.removeLive(seen.at)
	if !now.Before(e.expires) {
		s.forget(n, ErrNonceExpired)
		return ErrNonceExpired
	}
	s.forget(n, ErrNonceReplayed)
	return nil
}

// releaseOldest forgets the oldest nonce issued to src, to make room in its
// quota. The caller holds mu.
func (s *nonceStore) releaseOldest(src *source) {
	oldest := -1
	for i := range s.live {
		if s.live[i].owner == src && (oldest < 0 || s.live[i].expires.Before(s.live[oldest].expires)) {
			oldest = i
		}
	}
	if oldest < 0 {
		return
	}
	s.forget(s.removeLive(oldest).n, ErrNonceReleased)
}

// release forgets the nonces issued to src, whose connection has closed.
func (s *nonceStore) release(src *source) {
	if src == nil || src.held.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep(func(e *liveNonce) bool { return e.owner != src }, ErrNonceReleased)
}

// outstanding returns the number of nonces held, expired ones not yet
// pruned included.
func (s *nonceStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
