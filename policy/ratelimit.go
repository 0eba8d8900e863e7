package policy

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RateLimit limits the token endpoint (POST [TokenPath]) with token
// buckets: one per client address and one per API key. A request takes
// one token from each bucket it meets; when one is empty the request is
// refused with HTTP 429 (type "too_many_requests") and a Retry-After
// header in whole seconds, before any decision or signature. A [Service]
// without a RateLimit (the default) limits nothing.
//
// The address bucket is checked first, before the credential is looked at,
// so that failed logins from one address are limited too. Its key is the
// host of [http.Request].RemoteAddr: behind a reverse proxy that is the
// proxy's address, so limit per address at the proxy, or set PerAddress
// to zero. The API key bucket is checked once the caller is authenticated
// and belongs to the credential (the Authorization header's value; the
// subject for an [Authenticator] that uses none), so a flood of wrong keys
// creates no bucket.
//
// Memory is bounded: at most MaxTracked addresses and MaxTracked keys are
// tracked; beyond that the least recently seen is forgotten, and when it
// comes back its bucket starts full again.
type RateLimit struct {
	// PerAddress is the rate, in requests per second, that one client
	// address may sustain; zero (or less) means no limit per address.
	PerAddress float64
	// AddressBurst is how many requests one address may make at once;
	// zero means the rate rounded up, at least 1.
	AddressBurst int
	// PerKey is the rate, in requests per second, that one API key may
	// sustain; zero (or less) means no limit per key.
	PerKey float64
	// KeyBurst is how many requests one API key may make at once; zero
	// means the rate rounded up, at least 1.
	KeyBurst int
	// MaxTracked bounds the addresses, and the keys, tracked at once;
	// zero means [DefaultMaxRateTracked].
	MaxTracked int
}

// RateLimitError reports a request refused by a [RateLimit]. It matches
// [ErrRateLimited].
type RateLimitError struct {
	// By is what ran out: "address" or "api_key".
	By string
	// RetryAfter is when the bucket holds a token again.
	RetryAfter time.Duration
}

// Error says which limit refused the request and when to retry.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: per %s; retry after %v", ErrRateLimited, e.By, e.RetryAfter)
}

// Unwrap returns [ErrRateLimited].
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// retryAfterSeconds is the Retry-After value of e: whole seconds, rounded
// up, at least 1 (RFC 9110, section 10.2.3).
func (e *RateLimitError) retryAfterSeconds() string {
	s := int64(math.Ceil(e.RetryAfter.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}

// servingState is the Service's state for serving HTTP: rate limiters and
// the readiness probe.
type servingState struct {
	once  sync.Once
	addrs *buckets // nil: no limit per address
	keys  *buckets // nil: no limit per key
	ready readiness
}

// limiters returns the rate limiters, created from RateLimit on first use.
func (s *Service) limiters() (addrs, keys *buckets) {
	s.serving.once.Do(func() {
		rl := s.RateLimit
		if rl == nil {
			return
		}
		n := rl.MaxTracked
		if n <= 0 {
			n = DefaultMaxRateTracked
		}
		s.serving.addrs = newBuckets(rl.PerAddress, rl.AddressBurst, n)
		s.serving.keys = newBuckets(rl.PerKey, rl.KeyBurst, n)
	})
	return s.serving.addrs, s.serving.keys
}

// limitAddress takes a token from the bucket of r's client address.
func (s *Service) limitAddress(r *http.Request) error {
	addrs, _ := s.limiters()
	if addrs == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return addrs.take("address", host, s.now())
}

// limitKey takes a token from the bucket of the authenticated credential.
func (s *Service) limitKey(r *http.Request, p Principal) error {
	_, keys := s.limiters()
	if keys == nil {
		return nil
	}
	key := "subject\x00" + p.Subject
	if a := r.Header.Get("Authorization"); a != "" {
		sum := sha256.Sum256([]byte(a)) // the secret is not kept in memory
		key = string(sum[:])
	}
	return keys.take("api_key", key, s.now())
}

// buckets are token buckets by key, at most max of them, the least
// recently used forgotten first.
type buckets struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu  sync.Mutex
	m   map[string]*list.Element // of *bucket
	lru list.List                // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// newBuckets returns buckets of rate and burst, or nil for no limit.
func newBuckets(rate float64, burst, max int) *buckets {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil
	}
	if burst <= 0 {
		burst = int(min(math.Ceil(rate), math.MaxInt32))
	}
	return &buckets{rate: rate, burst: float64(burst), max: max, m: make(map[string]*list.Element)}
}

func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// take takes a token from key's bucket at now, or returns a
// *RateLimitError saying when one will be there.
func (b *buckets) take(by, key string, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var bk *bucket
	if e, ok := b.m[key]; ok {
		b.lru.MoveToFront(e)
		bk = e.Value.(*bucket)
		if dt := now.Sub(bk.last); dt > 0 { // a clock set back refills nothing
			bk.tokens = min(b.burst, bk.tokens+dt.Seconds()*b.rate)
			bk.last = now
		}
	} else {
		for len(b.m) >= b.max {
			old := b.lru.Back()
			delete(b.m, old.Value.(*bucket).key)
			b.lru.Remove(old)
		}
		bk = &bucket{key: key, tokens: b.burst, last: now}
		b.m[key] = b.lru.PushFront(bk)
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return nil
	}
	wait := time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
	return &RateLimitError{By: by, RetryAfter: wait}
}
