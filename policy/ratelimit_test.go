package policy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// clock is an injected clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tokenFrom posts a token request for alice's read on hvac-1 from addr
// with the credential.
func (env *testEnv) tokenFrom(addr, credential string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", TokenPath, strings.NewReader(env.tokenBody([]string{"ep:hvac-1"}, "read")))
	r.RemoteAddr = addr
	r.Header.Set("Content-Type", "application/json")
	if credential != "" {
		r.Header.Set("Authorization", "Bearer "+credential)
	}
	w := httptest.NewRecorder()
	env.svc.ServeHTTP(w, r)
	return w
}

// want429 checks a 429 answer: Retry-After in whole seconds, the JSON error.
func want429(t *testing.T, w *httptest.ResponseRecorder, retryAfter string) {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("HTTP %d, want 429: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Object != "error" || body.Code != 429 || body.Type != errTypeTooManyRequests || body.RequestID == "" {
		t.Fatalf("body %s", w.Body)
	}
}

func wantCode(t *testing.T, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("HTTP %d, want %d: %s", w.Code, code, w.Body)
	}
}

func TestRateLimit(t *testing.T) {
	newEnv := func(t *testing.T, rl *RateLimit) (*testEnv, *clock) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		c := &clock{now: t0}
		env.svc.Now = c.Now
		env.svc.RateLimit = rl
		return env, c
	}
	const a1, a2 = "192.0.2.1:1000", "192.0.2.2:1000"

	t.Run("off by default", func(t *testing.T) {
		env, _ := newEnv(t, nil)
		for range 50 {
			wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		}
	})
	t.Run("per address", func(t *testing.T) {
		env, c := newEnv(t, &RateLimit{PerAddress: 1, AddressBurst: 2})
		wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		wantCode(t, env.tokenFrom("192.0.2.1:2000", env.aliceKey), http.StatusOK) // same host, other port
		want429(t, env.tokenFrom(a1, env.aliceKey), "1")
		// Unauthenticated requests count too, and are refused first.
		want429(t, env.tokenFrom(a1, "sda_wrong"), "1")
		wantCode(t, env.tokenFrom(a2, env.aliceKey), http.StatusOK)
		c.Add(999 * time.Millisecond)
		want429(t, env.tokenFrom(a1, env.aliceKey), "1")
		c.Add(time.Millisecond)
		wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		want429(t, env.tokenFrom(a1, env.aliceKey), "1")
		// The bucket refills up to the burst only.
		c.Add(time.Hour)
		wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		want429(t, env.tokenFrom(a1, env.aliceKey), "1")
		// A clock set back refills nothing and breaks nothing.
		c.Add(-time.Hour)
		want429(t, env.tokenFrom(a1, env.aliceKey), "1")
		// The other endpoints are not limited.
		if w := env.do("GET", TrustAnchorsPath, env.aliceKey, ""); w.Code != http.StatusOK {
			t.Fatalf("trust anchors: HTTP %d", w.Code)
		}
		if strings.Contains(env.audit.String(), "sda.http.error") {
			t.Fatalf("a 429 was logged as an error: %s", env.audit)
		}
	})
	t.Run("per API key", func(t *testing.T) {
		env, c := newEnv(t, &RateLimit{PerKey: 0.1, KeyBurst: 1})
		wantCode(t, env.tokenFrom(a1, env.aliceKey), http.StatusOK)
		want429(t, env.tokenFrom(a2, env.aliceKey), "10")
		c.Add(2500 * time.Millisecond)
		want429(t, env.tokenFrom(a2, env.aliceKey), "8") // 7.5 s, rounded up
		// Another key is not limited by alice's, nor are failed logins.
		wantCode(t, env.tokenFrom(a1, env.adminKey), http.StatusForbidden)
		for range 5 {
			wantCode(t, env.tokenFrom(a1, "sda_wrong"), http.StatusUnauthorized)
		}
		c.Add(7500 * time.Millisecond)
		wantCode(t, env.tokenFrom(a2, env.aliceKey), http.StatusOK)
	})
	t.Run("bounded memory", func(t *testing.T) {
		env, c := newEnv(t, &RateLimit{PerAddress: 1, AddressBurst: 1, PerKey: 1000, KeyBurst: 1000, MaxTracked: 3})
		for i := range 10 {
			wantCode(t, env.tokenFrom(fmt.Sprintf("198.51.100.%d:1", i), env.aliceKey), http.StatusOK)
			if n := env.svc.serving.addrs.len(); n > 3 {
				t.Fatalf("%d addresses tracked, want at most 3", n)
			}
		}
		// The most recent addresses are still limited; the first one was
		// forgotten (it was the least recently seen) and starts afresh.
		want429(t, env.tokenFrom("198.51.100.9:1", env.aliceKey), "1")
		wantCode(t, env.tokenFrom("198.51.100.0:1", env.aliceKey), http.StatusOK)
		if n := env.svc.serving.keys.len(); n != 1 {
			t.Fatalf("%d keys tracked, want 1", n)
		}
		c.Add(time.Second)
	})
	t.Run("default bound", func(t *testing.T) {
		env, _ := newEnv(t, &RateLimit{PerAddress: 1})
		env.tokenFrom(a1, env.aliceKey)
		if got := env.svc.serving.addrs.max; got != DefaultMaxRateTracked {
			t.Fatalf("MaxTracked 0 tracks %d, want DefaultMaxRateTracked", got)
		}
	})
}
