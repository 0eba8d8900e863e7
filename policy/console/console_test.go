package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policytest"
	"github.com/securedeviceaccess/sda/token"
)

// clock is a settable clock for the console's sessions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is an authorization service with the console in front of its
// administration API, served on loopback.
type fixture struct {
	svc     *policytest.Server
	con     *Console
	srv     *httptest.Server
	clock   *clock
	userKey string
	log     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, opts *Options) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}, log: &syncBuffer{}}
	f.svc = policytest.NewServer(t, &policytest.Options{Profile: token.ProfileV2})
	f.userKey = f.svc.AddUser(t, "alice", "technicians")
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Now = f.clock.now
	o.Logger = slog.New(slog.NewTextHandler(f.log, nil))
	con, err := New(f.svc.Service.AdminHandler(), &o)
	if err != nil {
		t.Fatal(err)
	}
	f.con = con
	f.srv = httptest.NewServer(con)
	t.Cleanup(f.srv.Close)
	return f
}

// apiStatus is the status of GET /admin/v1/<path> with the administrator key.
func (f *fixture) apiStatus(t *testing.T, path string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, policy.AdminPathPrefix+path, nil)
	r.Header.Set("Authorization", "Bearer "+f.svc.AdminKey)
	w := httptest.NewRecorder()
	f.svc.Service.AdminHandler().ServeHTTP(w, r)
	return w.Code
}

// browser is a client with a cookie jar that sends what a browser sends
// with a same-origin form, and remembers the last CSRF token it saw.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, c: c, base: f.srv.URL}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is an answer: status, headers, body.
type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as a same-origin browser would, with the last CSRF
// token seen unless the form sets "csrf"; hdr overrides headers
// ("Origin", "" removes it).
func (b *browser) post(path string, form url.Values, hdr ...string) answer {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return b.do(req)
}

// signIn signs in with the administrator key and checks the redirect.
func (f *fixture) signIn(t *testing.T) *browser {
	t.Helper()
	b := f.browser(t)
	a := b.post("/console/sign-in", url.Values{"api_key": {f.svc.AdminKey}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/policies" {
		t.Fatalf("sign-in: %d %s, want 303 to /console/policies\n%s", a.status, a.header.Get("Location"), a.body)
	}
	b.get("/console/policies") // picks up the CSRF token
	if b.csrf == "" {
		t.Fatal("no CSRF token on the policies page")
	}
	return b
}

func wantStatus(t *testing.T, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d\n%s", a.status, status, a.body)
	}
}

func wantBody(t *testing.T, a answer, substrings ...string) {
	t.Helper()
	for _, s := range substrings {
		if !strings.Contains(a.body, s) {
			t.Errorf("the page lacks %q:\n%s", s, a.body)
		}
	}
}

func sessionCookie(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == cookieName {
			return ck
		}
	}
	return nil
}

func TestNew(t *testing.T) {
	t.Run("no admin handler", func(t *testing.T) {
		if _, err := New(nil, nil); !errors.Is(err, ErrNoAdminHandler) {
			t.Fatalf("err = %v, want ErrNoAdminHandler", err)
		}
	})
	t.Run("bad prefix", func(t *testing.T) {
		_, err := New(http.NotFoundHandler(), &Options{Prefix: "console"})
		var pe *PrefixError
		if !errors.Is(err, ErrInvalidOptions) || !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a PrefixError matching ErrInvalidOptions", err)
		}
	})
}

func TestSignIn(t *testing.T) {
	t.Run("administrator key starts a session", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.browser(t)
		wantStatus(t, b.get("/console/sign-in"), http.StatusOK)
		a := b.post("/console/sign-in", url.Values{"api_key": {f.svc.AdminKey}})
		wantStatus(t, a, http.StatusSeeOther)
		ck := sessionCookie(t, a.header)
		if ck == nil {
			t.Fatal("no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.Secure {
			t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, not Secure on plain HTTP", ck)
		}
		if n := len(ck.Value); n != 43 { // 32 bytes in unpadded base64url
			t.Errorf("session id of %d characters, want 43 (256 bits)", n)
		}
		if strings.Contains(a.body, f.svc.AdminKey) || strings.Contains(ck.Value, f.svc.AdminKey) {
			t.Error("the API key went back to the browser")
		}
		wantStatus(t, b.get("/console/policies"), http.StatusOK)
		if !strings.Contains(f.log.String(), "sda.console.sign_in") || strings.Contains(f.log.String(), f.svc.AdminKey) {
			t.Errorf("log: want the sign-in event without the key:\n%s", f.log.String())
		}
	})
	t.Run("secure cookie over TLS", func(t *testing.T) {
		f := newFixture(t, nil)
		srv := httptest.NewTLSServer(f.con)
		defer srv.Close()
		c := srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/console/sign-in", strings.NewReader(url.Values{"api_key": {f.svc.AdminKey}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ck := sessionCookie(t, resp.Header)
		if resp.StatusCode != http.StatusSeeOther || ck == nil || !ck.Secure {
			t.Fatalf("status %d, cookie %+v: want 303 and a Secure cookie", resp.StatusCode, ck)
		}
	})
	t.Run("non-administrator key refused", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.browser(t)
		a := b.post("/console/sign-in", url.Values{"api_key": {f.userKey}})
		wantStatus(t, a, http.StatusForbidden)
		wantBody(t, a, "not an administrator")
		if sessionCookie(t, a.header) != nil || f.con.sessions.len() != 0 {
			t.Error("a session was started")
		}
	})
	t.Run("unknown key refused", func(t *testing.T) {
		f := newFixture(t, nil)
		a := f.browser(t).post("/console/sign-in", url.Values{"api_key": {"sda_not-a-key"}})
		wantStatus(t, a, http.StatusUnauthorized)
		if sessionCookie(t, a.header) != nil {
			t.Error("a session cookie was set")
		}
	})
	t.Run("failures rate limited", func(t *testing.T) {
		f := newFixture(t, &Options{SignInFailures: 3, SignInWindow: time.Minute})
		b := f.browser(t)
		for range 3 {
			wantStatus(t, b.post("/console/sign-in", url.Values{"api_key": {"sda_wrong"}}), http.StatusUnauthorized)
		}
		a := b.post("/console/sign-in", url.Values{"api_key": {f.svc.AdminKey}})
		wantStatus(t, a, http.StatusTooManyRequests)
		if a.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		f.clock.add(time.Minute)
		wantStatus(t, b.post("/console/sign-in", url.Values{"api_key": {f.svc.AdminKey}}), http.StatusSeeOther)
	})
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	b := f.signIn(t)
	for _, path := range []string{"/console/sign-in", "/console/policies", "/console/static/console.css", "/console/nowhere", "/console/policies/nope"} {
		t.Run(path, func(t *testing.T) {
			a := b.get(path)
			h := a.header
			if got := h.Get("Content-Security-Policy"); got != contentSecurityPolicy {
				t.Errorf("CSP %q, want %q", got, contentSecurityPolicy)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v: want nosniff, DENY, no-store", h)
			}
		})
	}
	t.Run("CSP allows no script", func(t *testing.T) {
		for _, d := range []string{"default-src 'none'", "script-src 'none'", "style-src 'self'", "img-src 'self'",
			"form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(contentSecurityPolicy, d) {
				t.Errorf("CSP lacks %q", d)
			}
		}
		if strings.Contains(contentSecurityPolicy, "unsafe") {
			t.Error("CSP allows unsafe-*")
		}
	})
}

func TestCSRFAndOrigin(t *testing.T) {
	newPolicy := url.Values{"id": {"p1"}, "status": {"active"}, "effect": {"allow"}, "subjects.users": {"alice"},
		"operations": {"read-data"}, "devices.all": {"1"}, "token_lifetime_seconds": {"3600"}, "action": {"save"}}
	cases := []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"missing CSRF token", url.Values{"csrf": {""}}, nil},
		{"wrong CSRF token", url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, nil},
		{"cross-origin Origin", nil, []string{"Origin", "http://evil.example"}},
		{"cross-site Sec-Fetch-Site", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site but not same-origin", nil, []string{"Sec-Fetch-Site", "same-site"}},
		{"neither Origin nor Sec-Fetch-Site", nil, []string{"Origin", "", "Sec-Fetch-Site", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			b := f.signIn(t)
			form := url.Values{}
			for k, v := range newPolicy {
				form[k] = v
			}
			for k, v := range tc.form {
				form[k] = v
			}
			wantStatus(t, b.post("/console/new/policies", form, tc.hdr...), http.StatusForbidden)
			if f.apiStatus(t, "policies/p1") != http.StatusNotFound {
				t.Error("the policy was written")
			}
		})
	}
	t.Run("valid token and origin", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.signIn(t)
		wantStatus(t, b.post("/console/new/policies", newPolicy), http.StatusSeeOther)
	})
	t.Run("sign-in from another origin", func(t *testing.T) {
		f := newFixture(t, nil)
		a := f.browser(t).post("/console/sign-in", url.Values{"api_key": {f.svc.AdminKey}}, "Origin", "http://evil.example")
		wantStatus(t, a, http.StatusForbidden)
		if f.con.sessions.len() != 0 {
			t.Error("a session was started")
		}
	})
	t.Run("sign-out needs the token", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.signIn(t)
		wantStatus(t, b.post("/console/sign-out", url.Values{"csrf": {"x"}}), http.StatusForbidden)
		if f.con.sessions.len() != 1 {
			t.Error("the session ended")
		}
	})
}

func TestSessions(t *testing.T) {
	t.Run("sign-out ends the session and forgets the key", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.signIn(t)
		a := b.post("/console/sign-out", nil)
		wantStatus(t, a, http.StatusSeeOther)
		if ck := sessionCookie(t, a.header); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("cookie %+v: want it cleared", ck)
		}
		if f.con.sessions.len() != 0 {
			t.Error("the session is still held")
		}
		a = b.get("/console/policies")
		wantStatus(t, a, http.StatusSeeOther)
		if !strings.HasPrefix(a.header.Get("Location"), "/console/sign-in") {
			t.Errorf("redirect to %q, want the sign-in page", a.header.Get("Location"))
		}
	})
	t.Run("old cookie useless after sign-out", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.signIn(t)
		u, _ := url.Parse(f.srv.URL + "/console/")
		old := b.c.Jar.Cookies(u)
		b.post("/console/sign-out", nil)
		b.c.Jar.SetCookies(u, old)
		wantStatus(t, b.get("/console/policies"), http.StatusSeeOther)
	})
	t.Run("idle expiry", func(t *testing.T) {
		f := newFixture(t, &Options{IdleTimeout: 10 * time.Minute})
		b := f.signIn(t)
		f.clock.add(9 * time.Minute)
		wantStatus(t, b.get("/console/policies"), http.StatusOK)
		f.clock.add(10 * time.Minute)
		a := b.get("/console/policies")
		wantStatus(t, a, http.StatusSeeOther)
		if a.header.Get("Location") != "/console/sign-in?expired=1" {
			t.Errorf("redirect to %q", a.header.Get("Location"))
		}
		if f.con.sessions.len() != 0 {
			t.Error("the expired session is still held")
		}
	})
	t.Run("absolute expiry", func(t *testing.T) {
		f := newFixture(t, &Options{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour})
		b := f.signIn(t)
		for range 4 {
			f.clock.add(30 * time.Minute)
			b.get("/console/policies")
		}
		wantStatus(t, b.get("/console/policies"), http.StatusSeeOther)
	})
	t.Run("expired session refuses a form", func(t *testing.T) {
		f := newFixture(t, &Options{IdleTimeout: time.Minute})
		b := f.signIn(t)
		f.clock.add(time.Hour)
		wantStatus(t, b.post("/console/policies/x/delete", nil), http.StatusForbidden)
	})
	t.Run("bounded store", func(t *testing.T) {
		f := newFixture(t, &Options{MaxSessions: 2})
		first := f.signIn(t)
		f.clock.add(time.Second)
		f.signIn(t)
		f.clock.add(time.Second)
		f.signIn(t)
		if n := f.con.sessions.len(); n != 2 {
			t.Fatalf("%d sessions, want 2", n)
		}
		wantStatus(t, first.get("/console/policies"), http.StatusSeeOther) // the least recently used ended
	})
	t.Run("sweep drops expired sessions", func(t *testing.T) {
		f := newFixture(t, &Options{IdleTimeout: time.Minute})
		f.signIn(t)
		f.signIn(t)
		f.clock.add(2 * time.Minute)
		f.con.sessions.get("unknown", f.clock.now())
		if n := f.con.sessions.len(); n != 0 {
			t.Fatalf("%d sessions after the sweep, want 0", n)
		}
	})
	t.Run("deleted key ends the session", func(t *testing.T) {
		f := newFixture(t, nil)
		b := f.signIn(t)
		if err := f.svc.Service.Apply(context.Background(), policy.DeleteRecord(policy.KindAPIKey, "key-admin")); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, b.get("/console/policies"), http.StatusUnauthorized)
		if f.con.sessions.len() != 0 {
			t.Error("the session is still held")
		}
	})
}

func newPopKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
