package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeFetcher hands out numbered tokens valid for lifetime from the clock's
// now, or fails with err.
type fakeFetcher struct {
	clock    *fakeClock
	lifetime time.Duration
	calls    atomic.Int32
	err      atomic.Pointer[error]
	gate     chan struct{} // when set, Fetch waits for it (or ctx)
}

func (f *fakeFetcher) Fetch(ctx context.Context, req *token.AccessRequest) (*AccessToken, error) {
	n := f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := f.err.Load(); e != nil {
		return nil, *e
	}
	return &AccessToken{Raw: []byte{byte(n)}, Expiry: f.clock.Now().Add(f.lifetime)}, nil
}

func newSource(lifetime, before time.Duration) (*TokenSource, *fakeFetcher, *fakeClock) {
	clock := &fakeClock{now: testNow}
	f := &fakeFetcher{clock: clock, lifetime: lifetime}
	return &TokenSource{Fetcher: f, RefreshBefore: before, Now: clock.Now}, f, clock
}

func tokenNumber(t *testing.T, s *TokenSource) int {
	t.Helper()
	tok, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(tok.Raw[0])
}

func TestTokenSourceCachesAndRefreshes(t *testing.T) {
	s, f, clock := newSource(time.Hour, 5*time.Minute)
	if n := tokenNumber(t, s); n != 1 {
		t.Fatalf("first token %d", n)
	}
	clock.advance(54 * time.Minute)
	if n := tokenNumber(t, s); n != 1 {
		t.Errorf("at 54 min: token %d, want the cached 1", n)
	}
	clock.advance(time.Minute) // 5 minutes before expiry: refresh
	if n := tokenNumber(t, s); n != 2 {
		t.Errorf("at 55 min: token %d, want a new one", n)
	}
	if c := f.calls.Load(); c != 2 {
		t.Errorf("%d fetches, want 2", c)
	}
}

// A token shorter-lived than twice RefreshBefore is refreshed at half its
// lifetime, not at every call.
func TestTokenSourceShortLifetime(t *testing.T) {
	s, f, clock := newSource(4*time.Minute, 5*time.Minute)
	tokenNumber(t, s)
	clock.advance(time.Minute)
	tokenNumber(t, s)
	if c := f.calls.Load(); c != 1 {
		t.Errorf("%d fetches within half the lifetime, want 1", c)
	}
	clock.advance(time.Minute)
	if n := tokenNumber(t, s); n != 2 {
		t.Errorf("at half the lifetime: token %d, want a new one", n)
	}
}

// When a refresh fails, the still-valid token is used, and the refresh is
// tried again only after a pause; once expired, the error surfaces.
func TestTokenSourceRefreshFailure(t *testing.T) {
	s, f, clock := newSource(time.Hour, 5*time.Minute)
	tokenNumber(t, s)
	boom := errors.New("service down")
	f.err.Store(&boom)
	clock.advance(56 * time.Minute)
	if n := tokenNumber(t, s); n != 1 {
		t.Errorf("refresh failed: token %d, want the cached 1", n)
	}
	tokenNumber(t, s)
	if c := f.calls.Load(); c != 2 {
		t.Errorf("%d fetches, want 2 (no retry right after a failure)", c)
	}
	clock.advance(refreshRetryDelay)
	tokenNumber(t, s)
	if c := f.calls.Load(); c != 3 {
		t.Errorf("%d fetches, want 3 (retry after the pause)", c)
	}
	clock.advance(5 * time.Minute) // expired
	if _, err := s.Token(context.Background()); !errors.Is(err, boom) {
		t.Errorf("expired and refresh failing: got %v", err)
	}
	f.err.Store(nil)
	if n := tokenNumber(t, s); n != 5 {
		t.Errorf("after recovery: token %d, want 5", n)
	}
}

// Concurrent callers share one fetch; a caller whose context ends stops
// waiting without disturbing the fetch.
func TestTokenSourceConcurrent(t *testing.T) {
	s, f, _ := newSource(time.Hour, 5*time.Minute)
	f.gate = make(chan struct{})
	const n = 8
	var wg sync.WaitGroup
	results := make(chan int, n)
	for range n {
		wg.Go(func() {
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			results <- int(tok.Raw[0])
		})
	}
	// Wait until one caller is inside Fetch, holding the others.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	close(f.gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r != 1 {
			t.Errorf("caller got token %d, want the shared 1", r)
		}
	}
	if c := f.calls.Load(); c != 1 {
		t.Errorf("%d fetches, want 1", c)
	}
}

func TestTokenSourceInvalid(t *testing.T) {
	if _, err := (&TokenSource{}).Token(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Errorf("no fetcher: %v", err)
	}
	s, f, _ := newSource(0, 0)
	f.lifetime = 0
	s.Fetcher = fetcherFunc(func(context.Context, *token.AccessRequest) (*AccessToken, error) {
		return &AccessToken{Raw: []byte{1}}, nil
	})
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrBadResponse) {
		t.Errorf("token without expiry: %v", err)
	}
	// The returned token is a copy: changing it does not change the cache.
	s2, _, _ := newSource(time.Hour, 0)
	tok, _ := s2.Token(context.Background())
	tok.Raw[0] = 99
	if n := tokenNumber(t, s2); n != 1 {
		t.Errorf("cache modified through a returned token: %d", n)
	}
}

type fetcherFunc func(context.Context, *token.AccessRequest) (*AccessToken, error)

func (f fetcherFunc) Fetch(ctx context.Context, r *token.AccessRequest) (*AccessToken, error) {
	return f(ctx, r)
}

// A TokenSource over a TokenClient: the whole acquisition path.
func TestTokenSourceWithTokenClient(t *testing.T) {
	a, srv := newAuthServer(t)
	pop := mustKey(t, KeyP256)
	s := &TokenSource{Fetcher: newTokenClient(a, srv), Request: token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()}}
	for range 3 {
		if _, err := s.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.requests.Load(); n != 1 {
		t.Errorf("%d requests to the service, want 1", n)
	}
}
