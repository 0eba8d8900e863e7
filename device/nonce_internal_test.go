package device

import (
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// The nonce store's index (seen) holds exactly the live nonces, with their
// place in live, and those in the ring of forgotten ones, with the reason
// they went,
// through any sequence of issues, uses, replays, expiries, quota releases
// and closed connections; no live nonce expires before earliest; and consume answers exactly as a scan of live
// and the ring made before the call says, nil included.
func TestNonceIndex(t *testing.T) {
	const max = 4
	s := newNonceStore(max, time.Minute, rand.Reader)
	srcs := []*source{nil, {quota: 2}, {quota: 1}}
	now := time.Unix(1700000000, 0)
	rng := mrand.New(mrand.NewPCG(1, 2))
	var issued []uint64
	for step := range 5000 {
		switch k := rng.IntN(10); {
		case k < 4:
			if n, err := s.issue(now, srcs[rng.IntN(len(srcs))]); err == nil {
				issued = append(issued, n)
			} else if !errors.Is(err, ErrNoncesExhausted) {
				t.Fatal(err)
			}
		case k < 8 && len(issued) > 0:
			n := issued[rng.IntN(len(issued))]
			want := scanConsume(s, n, now) // before consume changes the store
			if err := s.consume(n, now); !sameNonceErr(err, want) {
				t.Fatalf("step %d: consume(%x): %v, a scan before it says %v", step, n, err, want)
			}
		case k == 8:
			now = now.Add(time.Duration(rng.IntN(40)) * time.Second)
		default:
			s.release(srcs[1+rng.IntN(len(srcs)-1)])
		}
		want := map[uint64]seenNonce{}
		for _, g := range s.gone {
			if g.n != 0 {
				want[g.n] = seenNonce{why: g.why}
			}
		}
		for i, e := range s.live {
			if e.expires.Before(s.earliest) {
				t.Fatalf("step %d: %x expires at %v, before earliest %v", step, e.n, e.expires, s.earliest)
			}
			if _, dup := want[e.n]; dup {
				t.Fatalf("step %d: %x both live and forgotten", step, e.n)
			}
			want[e.n] = seenNonce{at: i}
		}
		if len(s.seen) != len(want) {
			t.Fatalf("step %d: index of %d values, live and ring hold %d", step, len(s.seen), len(want))
		}
		for n, why := range want {
			if got, ok := s.seen[n]; !ok || got != why {
				t.Fatalf("step %d: index has %x as %v (%v), want %v", step, n, got, ok, why)
			}
		}
	}
}

// scanConsume returns what consume(n, now) must answer, from a scan of live
// and the ring (not the index): nil for a live unexpired nonce,
// ErrNonceExpired for a live expired one, the reason the newest ring entry
// for n gives, ErrNonceUnknown otherwise. It changes nothing.
func scanConsume(s *nonceStore, n uint64, now time.Time) error {
	for _, e := range s.live {
		if e.n == n {
			if now.Before(e.expires) {
				return nil
			}
			return ErrNonceExpired
		}
	}
	for i := len(s.gone) - 1; i >= 0; i-- {
		if g := s.gone[(s.next+i)%len(s.gone)]; g.n == n {
			return g.why
		}
	}
	return ErrNonceUnknown
}

// sameNonceErr reports whether err is want: both nil, or err is want.
func sameNonceErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// Issuing does not scan the live nonces while none of them has expired:
// with MaxMaxNonces-1 unexpired nonces outstanding, issuing and using
// another many times examines no live entry; once they expire, one issue
// prunes them all in one scan.
func TestNonceIssueNoScan(t *testing.T) {
	s := newNonceStore(MaxMaxNonces, time.Minute, rand.Reader)
	now := time.Unix(1700000000, 0)
	for range MaxMaxNonces - 1 {
		if _, err := s.issue(now, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.scanned = 0
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		n, err := s.issue(now, nil)
		if err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
		if err := s.consume(n, now); err != nil {
			t.Fatalf("consume %d: %v", i, err)
		}
	}
	if s.scanned != 0 {
		t.Fatalf("1000 issues examined %d live entries, want 0", s.scanned)
	}
	now = now.Add(time.Minute)
	if _, err := s.issue(now, nil); err != nil {
		t.Fatal(err)
	}
	if s.scanned != MaxMaxNonces-1 || s.outstanding() != 1 {
		t.Fatalf("after expiry: %d entries examined, %d outstanding; want %d and 1", s.scanned, s.outstanding(), MaxMaxNonces-1)
	}
}
