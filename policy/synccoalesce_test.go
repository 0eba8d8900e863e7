package policy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// gatedStore is a countingStore whose next Changes call, once gate is
// set, reads the changes, then signals entered and waits for release
// before returning them.
type gatedStore struct {
	*countingStore
	mu      sync.Mutex
	gate    bool
	entered chan struct{}
	release chan struct{}
}

func (s *gatedStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	s.mu.Lock()
	gated := s.gate
	s.gate = false
	s.mu.Unlock()
	changes, err := s.countingStore.Changes(ctx, since)
	if gated { // the read is done: what is committed now is not in it
		close(s.entered)
		<-s.release
	}
	return changes, err
}

// TestSyncCoalesces: callers that arrive while a sync is reading the
// Store share the one sync that starts after them (MaxStaleness 0): the
// Store is read twice for nine callers, not nine times, and every caller
// sees what was committed before it arrived.
func TestSyncCoalesces(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv(t, token.ProfileV1)
	store := &gatedStore{countingStore: &countingStore{MemoryStore: env.store}, entered: make(chan struct{}), release: make(chan struct{})}
	env.svc.Store = store
	if err := env.svc.sync(ctx); err != nil { // loads the snapshot
		t.Fatal(err)
	}
	store.mu.Lock()
	store.gate = true
	store.mu.Unlock()
	first := make(chan error, 1)
	go func() { first <- env.svc.sync(ctx) }()
	<-store.entered // the first sync is reading the Store
	if _, err := env.store.Apply(ctx, PutPolicy(pol("late"))); err != nil {
		t.Fatal(err)
	}
	before := store.changes.Load() // the first sync's read included
	const waiters = 8
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		// Each waiter arrives now, after the write and after the first
		// sync started (syncMark is what sync records on arrival).
		mark := env.svc.syncMark()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- env.svc.syncAfter(ctx, mark)
		}()
	}
	close(store.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := store.changes.Load() - before; got != 1 {
		t.Errorf("%d waiters read the Store's changes %d times; want once", waiters, got)
	}
	if _, err := env.svc.engine.lookupPolicy("late"); err != nil {
		t.Error("the policy committed before the waiters arrived is not in the engine")
	}
}

// applyOnRead is a request body that applies changes to a store on its
// first Read: a write committed while the body arrives.
type applyOnRead struct {
	store   *MemoryStore
	changes []Change
	body    io.Reader
	done    bool
}

func (r *applyOnRead) Read(p []byte) (int, error) {
	if !r.done {
		r.done = true
		if _, err := r.store.Apply(context.Background(), r.changes...); err != nil {
			return 0, err
		}
	}
	return r.body.Read(p)
}

// TestTokenDecisionSeesChangesDuringBody: a policy deleted while a token
// request's body is still arriving (acknowledged before the request is
// complete) is no longer in force for its decision, however slowly the
// client sends the body.
func TestTokenDecisionSeesChangesDuringBody(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	body := env.tokenBody([]string{"ep:hvac-1"}, "read")
	if w := env.do("POST", TokenPath, env.aliceKey, body); w.Code != http.StatusOK {
		t.Fatalf("before the deletion: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("POST", TokenPath, &applyOnRead{store: env.store, changes: []Change{DeleteRecord(KindPolicy, "p1")}, body: strings.NewReader(body)})
	r.Header.Set("Authorization", "Bearer "+env.aliceKey)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	env.svc.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("policy deleted while the body arrived: %d %s; want 403", w.Code, w.Body)
	}
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	r io.Reader
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestTokenUnauthenticatedBodyNotRead: the token endpoint refuses a
// request without a valid credential, or from a key at its rate limit,
// without reading its body (which a client without a key could otherwise
// make the service buffer, up to the body limit, as slowly as it likes).
func TestTokenUnauthenticatedBodyNotRead(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	env.svc.RateLimit = &RateLimit{PerAddress: 1e9, AddressBurst: 1 << 20, PerKey: 1e-9, KeyBurst: 1}
	body := env.tokenBody([]string{"ep:hvac-1"}, "read") + strings.Repeat(" ", 60<<10)
	send := func(credential string) (int, int) {
		b := &countingBody{r: strings.NewReader(body)}
		r := httptest.NewRequest("POST", TokenPath, b)
		if credential != "" {
			r.Header.Set("Authorization", "Bearer "+credential)
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		env.svc.ServeHTTP(w, r)
		return w.Code, b.n
	}
	if code, _ := send(env.aliceKey); code != http.StatusOK { // spends the key's one token
		t.Fatalf("first request: %d", code)
	}
	for _, tc := range []struct {
		name, credential string
		want             int
	}{
		{"no credential", "", http.StatusUnauthorized},
		{"unknown key", "not-a-key", http.StatusUnauthorized},
		{"key at its rate limit", env.aliceKey, http.StatusTooManyRequests},
	} {
		if code, n := send(tc.credential); code != tc.want || n != 0 {
			t.Errorf("%s: %d after reading %d bytes of the body; want %d after none", tc.name, code, n, tc.want)
		}
	}
}
