package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// testRoute is a path of the HTTP API with the methods it answers, as
// docs/PROTOCOL.md section 9 lists them, in the Allow header's order.
type testRoute struct {
	path  string
	allow string
	admin bool // served by AdminHandler, else by PublicHandler
}

var testRoutes = []testRoute{
	{TokenPath, "POST", false},
	{TrustAnchorsPath, "GET", false},
	{AdminPathPrefix + "policies", "GET", true},
	{AdminPathPrefix + "subjects", "GET", true},
	{AdminPathPrefix + "devices", "GET", true},
	{AdminPathPrefix + "api-keys", "GET, POST", true},
	{AdminPathPrefix + "policies/p1", "GET, PUT, DELETE", true},
	{AdminPathPrefix + "subjects/alice", "GET, PUT, DELETE", true},
	{AdminPathPrefix + "devices/" + dev2, "GET, PUT, DELETE", true},
	{AdminPathPrefix + "api-keys/alice-key", "GET, DELETE", true},
	{explainPath, "POST", true},
	{policyTestsPath, "POST", true},
	{groupsPath, "GET", true},
	{groupsPath + "/techs", "GET", true},
	{groupsPath + "/techs/members/alice", "PUT, DELETE", true},
}

// testHandlers returns the service's three handlers by name, and whether
// each serves the public endpoints and the administration API.
func testHandlers(env *testEnv) []struct {
	name          string
	h             http.Handler
	public, admin bool
} {
	return []struct {
		name          string
		h             http.Handler
		public, admin bool
	}{
		{"Service", env.svc, true, true},
		{"PublicHandler", env.svc.PublicHandler(), true, false},
		{"AdminHandler", env.svc.AdminHandler(), false, true},
	}
}

// allows reports whether an Allow value permits method; GET permits HEAD.
func allows(allow, method string) bool {
	for _, m := range strings.Split(allow, ", ") {
		if m == method || (m == "GET" && method == "HEAD") {
			return true
		}
	}
	return false
}

// TestHandlerRoutes: each handler answers the methods of its own paths,
// 405 with the Allow header for the other methods (before authenticating),
// and 404 for every method on the paths of the other handler, all in the
// JSON error format with a request id, and none of it is logged.
func TestHandlerRoutes(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "BREW"}
	for _, h := range testHandlers(env) {
		t.Run(h.name, func(t *testing.T) {
			for _, rt := range testRoutes {
				served := (rt.admin && h.admin) || (!rt.admin && h.public)
				for _, m := range methods {
					env.audit.Reset()
					w := env.doWith(h.h, m, rt.path, "", "")
					switch {
					case !served:
						if w.Code != http.StatusNotFound {
							t.Errorf("%s %s: %d, want 404 (not served by %s): %s", m, rt.path, w.Code, h.name, w.Body)
							continue
						}
						if e := decodeError(t, w); e.Type != errTypeNotFound {
							t.Errorf("%s %s: type %q, want %q", m, rt.path, e.Type, errTypeNotFound)
						}
						if a := w.Header().Get("Allow"); a != "" {
							t.Errorf("%s %s: 404 with Allow %q", m, rt.path, a)
						}
					case allows(rt.allow, m):
						// Routed: without a credential, 401.
						if w.Code != http.StatusUnauthorized {
							t.Errorf("%s %s: %d, want 401: %s", m, rt.path, w.Code, w.Body)
						}
					default:
						if w.Code != http.StatusMethodNotAllowed {
							t.Errorf("%s %s: %d, want 405: %s", m, rt.path, w.Code, w.Body)
							continue
						}
						if e := decodeError(t, w); e.Type != errTypeMethodNotAllowed || e.Message != errMethodNotAllow.msg {
							t.Errorf("%s %s: %+v, want type %q", m, rt.path, e, errTypeMethodNotAllowed)
						}
						if a := w.Header().Values("Allow"); len(a) != 1 || a[0] != rt.allow {
							t.Errorf("%s %s: Allow %q, want %q", m, rt.path, a, rt.allow)
						}
					}
					if env.audit.Len() != 0 {
						t.Errorf("%s %s: logged %s", m, rt.path, env.audit)
					}
				}
			}
		})
	}
}

// TestHandlerUnknownPaths: paths that name nothing, including unclean
// ones, are answered 404 in the JSON error format by every handler, with
// any method and never redirected.
func TestHandlerUnknownPaths(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	paths := []string{
		"/", "/nope", "/admin", "/admin/v1", "/admin/v1/", "/admin/v2/policies", "/ADMIN/v1/policies",
		"/admin/v1/widgets", "/admin/v1/widgets/x",
		"/admin/v1/policies/",      // empty id
		"/admin/v1//policies",      // unclean: not redirected to /admin/v1/policies
		"/admin/v1/policies//p1",   // unclean
		"/admin/v1/./policies/p1",  // unclean
		"/admin/v1/x/../policies",  // unclean
		"/admin/v1/policies/..",    // unclean
		"/admin/v1/policies/p1/",   // trailing slash
		"/admin/v1/policies/a/b",   // nested
		"/admin/v1/policies/a%2Fb", // an escaped slash is not part of an id
		"/admin/v1/subjects/a%2fb",
		"/admin/v1/api-keys/",
		"/ace-auth/token/", "/ace-auth//token", "/ace-auth", "/v3/trust-anchors/", "//v3/trust-anchors",
	}
	for _, h := range testHandlers(env) {
		t.Run(h.name, func(t *testing.T) {
			for _, p := range paths {
				for _, m := range []string{"GET", "PUT", "POST", "DELETE"} {
					body := ""
					if m == "PUT" || m == "POST" {
						body = `{"id":"a/b","kind":"user"}`
					}
					w := env.doWith(h.h, m, p, env.adminKey, body)
					if w.Code != http.StatusNotFound {
						t.Errorf("%s %s: %d, want 404: %s", m, p, w.Code, w.Body)
						continue
					}
					if e := decodeError(t, w); e.Type != errTypeNotFound {
						t.Errorf("%s %s: type %q, want %q", m, p, e.Type, errTypeNotFound)
					}
					if loc := w.Header().Get("Location"); loc != "" {
						t.Errorf("%s %s: Location %q", m, p, loc)
					}
				}
			}
		})
	}
}

// TestHandlerHEAD: HEAD is answered like GET where GET is, and 405 on the
// token endpoint; a server sends the headers without the body.
func TestHandlerHEAD(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	for _, tc := range []struct {
		path, cred string
		status     int
	}{
		{TrustAnchorsPath, env.aliceKey, http.StatusOK},
		{AdminPathPrefix + "policies", env.adminKey, http.StatusOK},
		{AdminPathPrefix + "policies/p1", env.adminKey, http.StatusOK},
		{AdminPathPrefix + "policies", env.aliceKey, http.StatusForbidden},
		{TokenPath, env.aliceKey, http.StatusMethodNotAllowed},
	} {
		w := env.do("HEAD", tc.path, tc.cred, "")
		if w.Code != tc.status || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("HEAD %s: %d %q, want %d application/json", tc.path, w.Code, w.Header().Get("Content-Type"), tc.status)
		}
	}
}

// TestHandlersOnTwoServers: the public endpoints on one server, the
// administration API on another, as an integrator puts the latter on an
// internal listener.
func TestHandlersOnTwoServers(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1", ops("read")))
	public := httptest.NewServer(env.svc.PublicHandler())
	defer public.Close()
	admin := httptest.NewServer(env.svc.AdminHandler())
	defer admin.Close()

	do := func(srv *httptest.Server, method, path, cred, body string) (int, http.Header, []byte) {
		t.Helper()
		r, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+cred)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	wantNotFound := func(code int, hdr http.Header, b []byte, what string) {
		t.Helper()
		var e errorBody
		if code != http.StatusNotFound || strictUnmarshal(b, &e) != nil || e.Type != errTypeNotFound || e.RequestID != hdr.Get("X-Request-Id") {
			t.Errorf("%s: %d %s, want the JSON 404", what, code, b)
		}
	}

	// The administrator creates dave, a policy for him and his API key on
	// the administration server.
	for path, body := range map[string]string{
		"subjects/dave": `{"id":"dave","kind":"user"}`,
		"policies/dave": `{"id":"dave","status":"active","effect":"allow","subjects":{"users":["dave"]},"operations":[{"name":"read"}],"devices":{"all":true},"token_lifetime_seconds":3600}`,
	} {
		if code, _, b := do(admin, "PUT", AdminPathPrefix+path, env.adminKey, body); code != http.StatusOK {
			t.Fatalf("PUT %s on the admin server: %d %s", path, code, b)
		}
	}
	code, _, b := do(admin, "POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"dave-key","subject":"dave"}`)
	var key apiKeyJSON
	if code != http.StatusCreated || json.Unmarshal(b, &key) != nil || key.Secret == "" {
		t.Fatalf("POST api-keys on the admin server: %d %s", code, b)
	}

	// Dave gets a token and the anchors from the public server.
	code, _, b = do(public, "POST", TokenPath, key.Secret, env.tokenBody([]string{"ep:hvac-1"}, "read"))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token on the public server: %d %s", code, b)
	}
	if code, _, b := do(public, "GET", TrustAnchorsPath, key.Secret, ""); code != http.StatusOK {
		t.Errorf("trust anchors on the public server: %d %s", code, b)
	}

	// Neither server answers the other's paths, whatever the credential.
	for _, p := range []string{"policies", "policies/dave", "api-keys", "subjects/dave"} {
		code, hdr, b := do(public, "GET", AdminPathPrefix+p, env.adminKey, "")
		wantNotFound(code, hdr, b, fmt.Sprintf("GET %s on the public server", p))
	}
	code, hdr, b := do(public, "POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"eve-key","subject":"dave"}`)
	wantNotFound(code, hdr, b, "POST api-keys on the public server")
	code, hdr, b = do(admin, "POST", TokenPath, key.Secret, env.tokenBody([]string{"ep:hvac-1"}, "read"))
	wantNotFound(code, hdr, b, "token on the admin server")
	code, hdr, b = do(admin, "GET", TrustAnchorsPath, key.Secret, "")
	wantNotFound(code, hdr, b, "trust anchors on the admin server")

	// An unclean path is not redirected by a real server either.
	code, hdr, b = do(admin, "GET", "/admin/v1//policies", env.adminKey, "")
	wantNotFound(code, hdr, b, "GET /admin/v1//policies on the admin server")
	if loc := hdr.Get("Location"); loc != "" {
		t.Errorf("unclean path redirected to %q", loc)
	}
	// The administration API still works after all that: the audit log
	// has the writes.
	for _, ev := range []string{"sda.admin.put", "sda.admin.create", "sda.token.issued"} {
		if !strings.Contains(env.audit.String(), `"msg":"`+ev+`"`) {
			t.Errorf("audit log lacks %s:\n%s", ev, env.audit)
		}
	}
}

// FuzzHandlerPaths: whatever the method and path, the handlers answer
// without a credential 401 (a route), 404 or 405, in the JSON error format
// and never with a redirect.
func FuzzHandlerPaths(f *testing.F) {
	for _, rt := range testRoutes {
		f.Add("GET", rt.path)
		f.Add("PATCH", rt.path)
	}
	for _, p := range []string{"/", "/admin/v1//policies", "/admin/v1/policies/a%2Fb", "/admin/v1/policies/%2E%2E", "/ace-auth/token/", "/admin/v1/x/../policies", "*"} {
		f.Add("PUT", p)
	}
	env := newTestEnv(f, token.ProfileV1)
	handlers := testHandlers(env)
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := http.NewRequest(method, "http://sda.example"+path, nil)
		if err != nil {
			return
		}
		if path == "*" {
			r.URL.Path, r.RequestURI = "*", "*"
		}
		for _, h := range handlers {
			w := httptest.NewRecorder()
			h.h.ServeHTTP(w, r)
			switch w.Code {
			case http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed:
			default:
				t.Fatalf("%s: %s %q: status %d: %s", h.name, method, path, w.Code, w.Body)
			}
			if loc := w.Header().Get("Location"); loc != "" {
				t.Fatalf("%s: %s %q: Location %q", h.name, method, path, loc)
			}
			decodeError(t, w)
		}
	})
}

// TestRoutesAreServed checks that Service.Routes lists routes the service
// serves (a request to each is not answered 404 or 405 by the router), and
// every route of the public, administration and probe maps.
func TestRoutesAreServed(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	routes := env.svc.Routes()
	if !slices.IsSorted(routes) {
		t.Errorf("Routes() not sorted: %q", routes)
	}
	want := 0
	for _, m := range []map[string]apiHandler{env.svc.publicRoutes(), env.svc.adminRoutes(), env.svc.probeRoutes()} {
		want += len(m)
		for p := range m {
			if !slices.Contains(routes, p) {
				t.Errorf("Routes() lacks %q", p)
			}
		}
	}
	if len(routes) != want {
		t.Errorf("Routes() has %d routes, want %d", len(routes), want)
	}
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Fatalf("route %q is not METHOD PATH", r)
		}
		path = strings.NewReplacer("{id}", "x", "{name}", "x", "{subject}", "x").Replace(path)
		w := env.do(method, path, "", "")
		if w.Code == http.StatusNotFound && strings.Contains(w.Body.String(), errPathNotFound.msg) || w.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s, want the route served", method, path, w.Code, w.Body)
		}
	}
}
