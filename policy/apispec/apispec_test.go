package apispec_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

// documentPath is docs/openapi.yaml, from this package's directory.
const documentPath = "../../docs/openapi.yaml"

// pending are operations of the document whose routes are not served yet
// (none now: issue 15's endpoints were described before they were
// written). The test fails when one of them is served, so that it is then
// driven like the others.
var pending = []string{}

var (
	t0   = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	dev1 = "0123456789abcdef0123456789abcdef"
	dev2 = "fedcba9876543210fedcba9876543210"
)

// spec is the loaded, validated document and its router.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(documentPath)
	if err != nil {
		t.Fatalf("loading %s: %v", documentPath, err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", documentPath, err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &spec{doc: doc, router: router}
}

// operations returns the document's operations as http.ServeMux patterns.
func (s *spec) operations() []string {
	var out []string
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestDocumentCoversTheRoutes checks that the document describes exactly
// the routes the service serves: no route missing, no operation that is
// not served (but for the pending ones, which must not be served yet).
func TestDocumentCoversTheRoutes(t *testing.T) {
	s := loadSpec(t)
	routes := (&policy.Service{}).Routes()
	if len(routes) == 0 {
		t.Fatal("the service lists no routes")
	}
	ops := s.operations()
	for _, r := range routes {
		if slices.Contains(pending, r) {
			t.Errorf("route %q is served now: remove it from pending, and drive it in TestServiceAgainstDocument", r)
		}
		if !slices.Contains(ops, r) {
			t.Errorf("route %q of the service is missing from %s", r, documentPath)
		}
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) && !slices.Contains(pending, op) {
			t.Errorf("operation %q of %s is not served", op, documentPath)
		}
	}
}

// env is a service under test, on loopback.
type env struct {
	t      *testing.T
	spec   *spec
	svc    *policy.Service
	srv    *httptest.Server
	admin  string // an administrator's key
	alice  string // a technician's key
	popPEM string
	// hits records, per route, the statuses answered and validated.
	hits map[string][]int
	// etag is the ETag of the last answer that had one, sent for the
	// header value etagHere.
	etag string
}

// etagHere in a call's header stands for the ETag of the last answer
// that had one.
const etagHere = "{etag}"

func newEnv(t *testing.T, s *spec, configure func(*policy.Service)) *env {
	t.Helper()
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	popPEM, err := token.MarshalPublicKeyPEM(&pop.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	store := policy.NewMemoryStore()
	svc := &policy.Service{
		Store:             store,
		Signer:            anchor,
		Profile:           token.ProfileV2,
		Now:               func() time.Time { return t0 },
		AnchorCreatedAt:   t0.Add(-time.Hour),
		AnchorDescription: "apispec anchor",
	}
	e := &env{t: t, spec: s, svc: svc, popPEM: string(popPEM), hits: map[string][]int{}}
	var adminKey, aliceKey *policy.APIKey
	e.admin, adminKey, err = policy.NewAPIKey(nil, "admin-key", "root", true, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.alice, aliceKey, err = policy.NewAPIKey(nil, "alice-key", "alice", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Apply(context.Background(),
		policy.PutSubject(&policy.Subject{ID: "root", Kind: policy.User}),
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"technicians"}}),
		policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
		policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-2"}),
		policy.PutPolicy(&policy.Policy{ID: "p1", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Groups: []string{"technicians"}},
			Operations:    []policy.OperationRule{{Name: "read"}, {Name: "reboot"}},
			Devices:       policy.DeviceSelector{All: true},
			TokenLifetime: time.Hour,
			Delegation:    &policy.DelegationRule{MaxDepth: 1, Operations: []string{"read"}}}),
		policy.PutPolicy(&policy.Policy{ID: "d1", Status: policy.Active, Effect: policy.Deny,
			Subjects:   policy.Subjects{Users: []string{"alice"}},
			Operations: []policy.OperationRule{{Name: "reboot"}},
			Devices:    policy.DeviceSelector{IDs: []string{dev2}}}),
		policy.PutAPIKey(adminKey), policy.PutAPIKey(aliceKey))
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(svc)
	}
	e.srv = httptest.NewServer(svc)
	t.Cleanup(e.srv.Close)
	return e
}

// call is one request and the answer expected.
type call struct {
	name         string
	method, path string
	cred         string
	body         string
	contentType  string // default application/json when there is a body
	status       int
	// malformed says that the request does not conform to the document,
	// which its validation must then find.
	malformed bool
	// header holds request headers, such as If-Match.
	header map[string]string
}

// authenticate is the check of the bearer security scheme: a credential
// is present (the service decides whether it is valid).
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return errors.New("no bearer credential")
	}
	return nil
}

func (e *env) newRequest(c call) *http.Request {
	e.t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r, err := http.NewRequest(c.method, e.srv.URL+c.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if c.cred != "" {
		r.Header.Set("Authorization", "Bearer "+c.cred)
	}
	for k, v := range c.header {
		r.Header.Set(k, strings.ReplaceAll(v, etagHere, e.etag))
	}
	switch {
	case c.contentType != "":
		r.Header.Set("Content-Type", c.contentType)
	case c.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// do sends the call, checks its status and validates the request and the
// answer against the document.
func (e *env) do(t *testing.T, c call) []byte {
	t.Helper()
	ctx := context.Background()
	opts := &openapi3filter.Options{AuthenticationFunc: authenticate, IncludeResponseStatus: true, MultiError: true}
	vreq := e.newRequest(c)
	route, params, routeErr := e.spec.router.FindRoute(vreq)
	var in *openapi3filter.RequestValidationInput
	if routeErr == nil {
		in = &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
		err := openapi3filter.ValidateRequest(ctx, in)
		switch {
		case c.malformed && err == nil:
			t.Errorf("the request is meant to be malformed, but the document accepts it")
		case !c.malformed && err != nil:
			t.Errorf("the request does not conform to the document: %v", err)
		}
	}

	resp, err := e.srv.Client().Do(e.newRequest(c))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.status {
		t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
	if et := resp.Header.Get("ETag"); et != "" {
		e.etag = et
	}
	if routeErr != nil {
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s %s is not in the document: %v", c.method, c.path, routeErr)
		}
		// Answered before any operation: the error body alone, and for
		// 405 the Allow header the document's conventions promise.
		e.validateError(t, body)
		if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
			t.Errorf("405 without an Allow header")
		}
		return body
	}
	in.Request = e.newRequest(c) // the validated one's body is read
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("the answer %d %s does not conform to the document: %v", resp.StatusCode, body, err)
	}
	pattern := c.method + " " + route.Path
	e.hits[pattern] = append(e.hits[pattern], resp.StatusCode)
	if c.method == http.MethodGet {
		// HEAD is answered wherever GET is, with GET's status and no body.
		h := e.newRequest(c)
		h.Method = http.MethodHead
		hresp, err := e.srv.Client().Do(h)
		if err != nil {
			t.Fatal(err)
		}
		hresp.Body.Close()
		if hresp.StatusCode != resp.StatusCode {
			t.Errorf("HEAD %s: %d, GET answered %d", c.path, hresp.StatusCode, resp.StatusCode)
		}
	}
	return body
}

// validateError validates an error body against the document's Error schema.
func (e *env) validateError(t *testing.T, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if err := e.spec.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		t.Errorf("error body %s does not conform to the Error schema: %v", body, err)
	}
}

// run runs the calls as subtests.
func (e *env) run(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { e.do(t, c) })
	}
}

func (e *env) tokenBody(aud []string, scope string) string {
	b, err := json.Marshal(map[string]any{"grant_type": "client_credentials", "aud": aud, "scope": scope, "cnf": e.popPEM})
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// padded returns the JSON body followed by whitespace up to n bytes: valid
// JSON, above the service's size cap.
func padded(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }

// TestServiceAgainstDocument drives every route of the service.
func TestServiceAgainstDocument(t *testing.T) {
	s := loadSpec(t)
	e := newEnv(t, s, nil)
	admin, alice := e.admin, e.alice
	const A = policy.AdminPathPrefix
	policyBody := `{"id":"p2","status":"active","effect":"allow","subjects":{"users":["bob"]},"operations":[{"name":"configure","constraints":[{"arg":0,"range":[16,28]}]}],"devices":{"attributes":{"site":["roof"]}},"token_lifetime_seconds":600,"valid_from":"2029-01-01T00:00:00Z","delegation":{"max_depth":2}}`

	t.Run("probes", func(t *testing.T) {
		e.run(t, []call{
			{name: "healthz", method: "GET", path: "/healthz", status: 200},
			{name: "readyz", method: "GET", path: "/readyz", status: 200},
		})
	})
	t.Run("token", func(t *testing.T) {
		e.run(t, []call{
			{name: "issued", method: "POST", path: policy.TokenPath, cred: alice, body: e.tokenBody([]string{"ep:hvac-1", "id:" + dev2}, "read"), status: 200},
			{name: "unknown field", method: "POST", path: policy.TokenPath, cred: alice, body: strings.Replace(e.tokenBody([]string{"ep:hvac-1"}, "read"), `{`, `{"scopes":"x",`, 1), status: 400, malformed: true},
			{name: "wrong type", method: "POST", path: policy.TokenPath, cred: alice, body: strings.Replace(e.tokenBody([]string{"ep:hvac-1"}, "read"), `"aud":["ep:hvac-1"]`, `"aud":"ep:hvac-1"`, 1), status: 400, malformed: true},
			{name: "invalid scope", method: "POST", path: policy.TokenPath, cred: alice, body: e.tokenBody([]string{"ep:hvac-1"}, "read  configure"), status: 400},
			{name: "no credential", method: "POST", path: policy.TokenPath, body: e.tokenBody([]string{"ep:hvac-1"}, "read"), status: 401, malformed: true},
			{name: "unknown credential", method: "POST", path: policy.TokenPath, cred: "sda_unknown", body: e.tokenBody([]string{"ep:hvac-1"}, "read"), status: 401},
			{name: "denied", method: "POST", path: policy.TokenPath, cred: alice, body: e.tokenBody([]string{"id:" + dev2}, "reboot"), status: 403},
			{name: "too large", method: "POST", path: policy.TokenPath, cred: alice, body: padded(e.tokenBody([]string{"ep:hvac-1"}, "read"), 65<<10), status: 413},
			{name: "media type", method: "POST", path: policy.TokenPath, cred: alice, body: e.tokenBody([]string{"ep:hvac-1"}, "read"), contentType: "text/plain", status: 415, malformed: true},
		})
	})
	t.Run("trust anchors", func(t *testing.T) {
		e.run(t, []call{
			{name: "list", method: "GET", path: policy.TrustAnchorsPath, cred: alice, status: 200},
			{name: "no credential", method: "GET", path: policy.TrustAnchorsPath, status: 401, malformed: true},
		})
	})
	t.Run("status update", func(t *testing.T) {
		e.run(t, []call{
			{name: "update", method: "GET", path: policy.StatusUpdatePath + "?aud=ep:hvac-1", cred: alice, status: 200},
			{name: "no aud", method: "GET", path: policy.StatusUpdatePath, cred: alice, status: 400, malformed: true},
			{name: "another parameter", method: "GET", path: policy.StatusUpdatePath + "?aud=ep:hvac-1&x=1", cred: alice, status: 400},
			{name: "unknown device", method: "GET", path: policy.StatusUpdatePath + "?aud=ep:nowhere", cred: alice, status: 404},
			{name: "no credential", method: "GET", path: policy.StatusUpdatePath + "?aud=ep:hvac-1", status: 401, malformed: true},
		})
	})
	for _, coll := range []struct{ name, id, body, bodyWrongID string }{
		{"policies", "p2", policyBody, strings.Replace(policyBody, `"id":"p2"`, `"id":"p3"`, 1)},
		{"subjects", "carol", `{"id":"carol","kind":"user","groups":["technicians"]}`, `{"id":"dave","kind":"user"}`},
		{"devices", "00000000000000000000000000000003", `{"id":"00000000000000000000000000000003","endpoint_name":"hvac-3","attributes":{"site":"roof"}}`, `{"id":"00000000000000000000000000000004"}`},
	} {
		t.Run(coll.name, func(t *testing.T) {
			base := A + coll.name
			one := base + "/" + coll.id
			calls := []call{
				{name: "put if none", method: "PUT", path: one, cred: admin, body: coll.body, header: map[string]string{"If-None-Match": "*"}, status: 200},
				{name: "put if none exists", method: "PUT", path: one, cred: admin, body: coll.body, header: map[string]string{"If-None-Match": "*"}, status: 412},
				{name: "put if match", method: "PUT", path: one, cred: admin, body: coll.body, header: map[string]string{"If-Match": etagHere}, status: 200},
				{name: "put if match stale", method: "PUT", path: one, cred: admin, body: coll.body, header: map[string]string{"If-Match": `"00000000000000000000000000000000"`}, status: 412},
				{name: "put if match malformed", method: "PUT", path: one, cred: admin, body: coll.body, header: map[string]string{"If-Match": "abc"}, status: 400},
				{name: "put", method: "PUT", path: one, cred: admin, body: coll.body, status: 200},
				{name: "put unknown field", method: "PUT", path: one, cred: admin, body: strings.Replace(coll.body, `{`, `{"extra":1,`, 1), status: 400, malformed: true},
				{name: "put id differs", method: "PUT", path: one, cred: admin, body: coll.bodyWrongID, status: 400},
				{name: "put too large", method: "PUT", path: one, cred: admin, body: padded(coll.body, 1<<20+1), status: 413},
				{name: "put media type", method: "PUT", path: one, cred: admin, body: coll.body, contentType: "text/plain", status: 415, malformed: true},
				{name: "put not admin", method: "PUT", path: one, cred: alice, body: coll.body, status: 403},
				{name: "put no credential", method: "PUT", path: one, body: coll.body, status: 401, malformed: true},
				{name: "list", method: "GET", path: base + "?limit=2", cred: admin, status: 200},
				{name: "list after", method: "GET", path: base + "?after=a", cred: admin, status: 200},
				{name: "list bad limit", method: "GET", path: base + "?limit=0", cred: admin, status: 400, malformed: true},
				{name: "list not admin", method: "GET", path: base, cred: alice, status: 403},
				{name: "list no credential", method: "GET", path: base, status: 401, malformed: true},
				{name: "get", method: "GET", path: one, cred: admin, status: 200},
				{name: "get not admin", method: "GET", path: one, cred: alice, status: 403},
				{name: "delete if match stale", method: "DELETE", path: one, cred: admin, header: map[string]string{"If-Match": `"00000000000000000000000000000000"`}, status: 412},
				{name: "delete if match malformed", method: "DELETE", path: one, cred: admin, header: map[string]string{"If-Match": `"x`}, status: 400},
				{name: "delete", method: "DELETE", path: one, cred: admin, header: map[string]string{"If-Match": etagHere}, status: 204},
				{name: "get deleted", method: "GET", path: one, cred: admin, status: 404},
				{name: "delete deleted", method: "DELETE", path: one, cred: admin, status: 404},
				{name: "delete no credential", method: "DELETE", path: one, status: 401, malformed: true},
				{name: "method not allowed", method: "PATCH", path: one, cred: admin, body: coll.body, status: 405},
			}
			if coll.name == "devices" {
				calls = append(calls, call{name: "put endpoint name taken", method: "PUT", path: one, cred: admin,
					body: `{"id":"00000000000000000000000000000003","endpoint_name":"hvac-1"}`, status: 409})
			}
			e.run(t, calls)
		})
	}
	t.Run("api-keys", func(t *testing.T) {
		base := A + "api-keys"
		e.run(t, []call{
			{name: "create", method: "POST", path: base, cred: admin, body: `{"id":"bob-key","subject":"bob"}`, status: 201},
			{name: "create admin", method: "POST", path: base, cred: admin, body: `{"id":"bob-admin","subject":"bob","admin":true}`, status: 201},
			{name: "create exists", method: "POST", path: base, cred: admin, body: `{"id":"bob-key","subject":"bob"}`, status: 409},
			{name: "create unknown subject", method: "POST", path: base, cred: admin, body: `{"id":"k2","subject":"nobody"}`, status: 400},
			{name: "create unknown field", method: "POST", path: base, cred: admin, body: `{"id":"k2","subject":"bob","admn":true}`, status: 400, malformed: true},
			{name: "create too large", method: "POST", path: base, cred: admin, body: padded(`{"id":"k2","subject":"bob"}`, 1<<20+1), status: 413},
			{name: "create media type", method: "POST", path: base, cred: admin, body: `{"id":"k2","subject":"bob"}`, contentType: "text/plain", status: 415, malformed: true},
			{name: "create not admin", method: "POST", path: base, cred: alice, body: `{"id":"k2","subject":"bob"}`, status: 403},
			{name: "list", method: "GET", path: base, cred: admin, status: 200},
			{name: "list bad limit", method: "GET", path: base + "?limit=x", cred: admin, status: 400, malformed: true},
			{name: "get", method: "GET", path: base + "/bob-key", cred: admin, status: 200},
			{name: "get unknown", method: "GET", path: base + "/nope", cred: admin, status: 404},
			{name: "delete if match stale", method: "DELETE", path: base + "/bob-key", cred: admin, header: map[string]string{"If-Match": `"00000000000000000000000000000000"`}, status: 412},
			{name: "delete", method: "DELETE", path: base + "/bob-key", cred: admin, header: map[string]string{"If-Match": etagHere}, status: 204},
			{name: "delete not admin", method: "DELETE", path: base + "/bob-admin", cred: alice, status: 403},
			{name: "put not allowed", method: "PUT", path: base + "/bob-admin", cred: admin, body: `{}`, status: 405},
		})
	})
	t.Run("revocations", func(t *testing.T) {
		base := A + "revocations"
		e.run(t, []call{
			{name: "revoke subject", method: "POST", path: base, cred: admin, body: `{"kind":"subject","subject":"bob","before":"2030-01-01T11:00:00Z","reason":"lost phone"}`, status: 201},
			{name: "revoke device", method: "POST", path: base, cred: admin, body: `{"kind":"device","device":"ep:hvac-1"}`, status: 201},
			{name: "device without tokens", method: "POST", path: base, cred: admin, body: `{"kind":"device","device":"ep:nowhere"}`, status: 201},
			{name: "invalid", method: "POST", path: base, cred: admin, body: `{"kind":"token"}`, status: 400},
			{name: "unknown field", method: "POST", path: base, cred: admin, body: `{"kind":"subject","subject":"bob","why":"x"}`, status: 400, malformed: true},
			{name: "too large", method: "POST", path: base, cred: admin, body: padded(`{"kind":"subject","subject":"bob"}`, 1<<20+1), status: 413},
			{name: "media type", method: "POST", path: base, cred: admin, body: `{"kind":"subject","subject":"bob"}`, contentType: "text/plain", status: 415, malformed: true},
			{name: "not admin", method: "POST", path: base, cred: alice, body: `{"kind":"subject","subject":"bob"}`, status: 403},
			{name: "list", method: "GET", path: base, cred: admin, status: 200},
			{name: "list bad limit", method: "GET", path: base + "?limit=1001", cred: admin, status: 400, malformed: true},
			{name: "list no credential", method: "GET", path: base, status: 401, malformed: true},
		})
	})
	t.Run("issued tokens", func(t *testing.T) {
		base := A + "issued-tokens"
		e.run(t, []call{
			{name: "list", method: "GET", path: base, cred: admin, status: 200},
			{name: "by subject and device", method: "GET", path: base + "?subject=alice&aud=" + dev1 + "&limit=5", cred: admin, status: 200},
			{name: "bad aud", method: "GET", path: base + "?aud=x", cred: admin, status: 400},
			{name: "not admin", method: "GET", path: base, cred: alice, status: 403},
		})
	})

	t.Run("explain", func(t *testing.T) {
		base := A + "explain"
		e.run(t, []call{
			{name: "allowed", method: "POST", path: base, cred: admin, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"time":"2030-01-01T12:00:00Z","profile":"v2"}`, status: 200},
			{name: "denied", method: "POST", path: base, cred: admin, body: `{"subject":"alice","aud":["ep:hvac-1","id:` + dev2 + `"],"operations":["read","reboot","configure"]}`, status: 200},
			{name: "unknown subject", method: "POST", path: base, cred: admin, body: `{"subject":"nobody","aud":["ep:hvac-1"],"operations":["read"],"profile":"v1"}`, status: 200},
			{name: "unknown field", method: "POST", path: base, cred: admin, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"ops":1}`, status: 400, malformed: true},
			{name: "invalid operation", method: "POST", path: base, cred: admin, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["no such op!"]}`, status: 400},
			{name: "too large", method: "POST", path: base, cred: admin, body: padded(`{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"]}`, 1<<20+1), status: 413},
			{name: "media type", method: "POST", path: base, cred: admin, body: `{}`, contentType: "text/plain", status: 415, malformed: true},
			{name: "not admin", method: "POST", path: base, cred: alice, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"]}`, status: 403},
			{name: "no credential", method: "POST", path: base, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"]}`, status: 401, malformed: true},
		})
	})
	t.Run("policy tests", func(t *testing.T) {
		base := A + "policy-tests"
		suite := `{"tests":[
			{"name":"alice reads hvac-1","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"},
			{"name":"technicians may reboot everything","group":"technicians","devices":{"all":true},"operations":["reboot"],"expect":"allow"},
			{"name":"an empty group","group":"nobody-here","devices":{"all":true},"operations":["read"],"expect":"deny"}
		],"time":"2030-01-01T12:00:00Z","profile":"v2"}`
		one := `{"tests":[{"name":"a","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"}]}`
		e.run(t, []call{
			{name: "report", method: "POST", path: base, cred: admin, body: suite, status: 200},
			{name: "unknown field", method: "POST", path: base, cred: admin, body: `{"tests":[],"tset":[]}`, status: 400, malformed: true},
			{name: "no tests", method: "POST", path: base, cred: admin, body: `{"tests":[]}`, status: 400, malformed: true},
			{name: "both subject and group", method: "POST", path: base, cred: admin, body: `{"tests":[{"name":"x","subject":"alice","group":"technicians","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"}]}`, status: 400},
			{name: "too large", method: "POST", path: base, cred: admin, body: padded(one, 1<<20+1), status: 413},
			{name: "media type", method: "POST", path: base, cred: admin, body: one, contentType: "text/plain", status: 415, malformed: true},
			{name: "not admin", method: "POST", path: base, cred: alice, body: one, status: 403},
		})
	})
	t.Run("groups", func(t *testing.T) {
		base := A + "groups"
		e.run(t, []call{
			{name: "list", method: "GET", path: base + "?limit=5", cred: admin, status: 200},
			{name: "list bad limit", method: "GET", path: base + "?limit=0", cred: admin, status: 400, malformed: true},
			{name: "list not admin", method: "GET", path: base, cred: alice, status: 403},
			{name: "get", method: "GET", path: base + "/technicians", cred: admin, status: 200},
			{name: "get unknown", method: "GET", path: base + "/nobody-here", cred: admin, status: 404},
			{name: "add member", method: "PUT", path: base + "/technicians/members/bob", cred: admin, status: 200},
			{name: "add member again", method: "PUT", path: base + "/technicians/members/bob", cred: admin, status: 200},
			{name: "add to an invalid group name", method: "PUT", path: base + "/bad!name/members/bob", cred: admin, status: 400},
			{name: "add unknown subject", method: "PUT", path: base + "/technicians/members/nobody", cred: admin, status: 404},
			{name: "add not admin", method: "PUT", path: base + "/technicians/members/bob", cred: alice, status: 403},
			{name: "remove member", method: "DELETE", path: base + "/technicians/members/bob", cred: admin, status: 204},
			{name: "remove non-member", method: "DELETE", path: base + "/technicians/members/bob", cred: admin, status: 404},
			{name: "remove no credential", method: "DELETE", path: base + "/technicians/members/bob", status: 401, malformed: true},
		})
	})
	t.Run("what-if", func(t *testing.T) {
		base := A + "what-if"
		grant := `{"changes":[{"kind":"policy","id":"p9","policy":` + strings.Replace(policyBody, `"id":"p2"`, `"id":"p9"`, 1) +
			`},{"kind":"subject","id":"alice","delete":true}],"time":"2030-06-01T00:00:00Z","profile":"v2","limit":1}`
		e.run(t, []call{
			{name: "impact", method: "POST", path: base, cred: admin, body: grant, status: 200},
			{name: "nothing", method: "POST", path: base, cred: admin, body: `{"changes":[]}`, status: 200},
			{name: "unknown field", method: "POST", path: base, cred: admin, body: `{"changes":[],"limits":1}`, status: 400, malformed: true},
			{name: "unknown field in a record", method: "POST", path: base, cred: admin, body: `{"changes":[{"kind":"subject","id":"x","subject":{"id":"x","kind":"user","group":["a"]}}]}`, status: 400, malformed: true},
			{name: "invalid change", method: "POST", path: base, cred: admin, body: `{"changes":[{"kind":"subject","id":"x y","delete":true}]}`, status: 400},
			{name: "too large", method: "POST", path: base, cred: admin, body: padded(`{"changes":[]}`, 1<<20+1), status: 413},
			{name: "media type", method: "POST", path: base, cred: admin, body: `{"changes":[]}`, contentType: "text/plain", status: 415, malformed: true},
			{name: "not admin", method: "POST", path: base, cred: alice, body: `{"changes":[]}`, status: 403},
			{name: "no credential", method: "POST", path: base, body: `{"changes":[]}`, status: 401, malformed: true},
		})
	})
	t.Run("change log and diff", func(t *testing.T) {
		// The service's history starts at the store's seq when it
		// started; the collections' writes above follow it.
		var log struct {
			Data []struct{ Seq int64 }
			Seq  int64
		}
		if err := json.Unmarshal(e.do(t, call{method: "GET", path: A + "changes", cred: admin, status: 200}), &log); err != nil || len(log.Data) == 0 {
			t.Fatalf("change log %+v: %v", log, err)
		}
		oldest := log.Data[0].Seq - 1
		since := func(n int64) string { return strconv.FormatInt(n, 10) }
		e.run(t, []call{
			{name: "changes since", method: "GET", path: A + "changes?since=" + since(oldest) + "&limit=2", cred: admin, status: 200},
			{name: "changes gone", method: "GET", path: A + "changes?since=" + since(oldest-1), cred: admin, status: 410},
			{name: "changes bad since", method: "GET", path: A + "changes?since=x", cred: admin, status: 400, malformed: true},
			{name: "changes not admin", method: "GET", path: A + "changes", cred: alice, status: 403},
			{name: "diff", method: "GET", path: A + "diff?from=" + since(oldest) + "&time=2030-06-01T00:00:00Z&profile=v1&limit=3", cred: admin, status: 200},
			{name: "diff to", method: "GET", path: A + "diff?from=" + since(oldest) + "&to=" + since(log.Seq), cred: admin, status: 200},
			{name: "diff gone", method: "GET", path: A + "diff?from=" + since(oldest-1), cred: admin, status: 410},
			{name: "diff without from", method: "GET", path: A + "diff", cred: admin, status: 400, malformed: true},
			{name: "diff bad time", method: "GET", path: A + "diff?from=" + since(oldest) + "&time=noon", cred: admin, status: 400, malformed: true},
			{name: "diff not admin", method: "GET", path: A + "diff?from=" + since(oldest), cred: alice, status: 403},
			{name: "diff no credential", method: "GET", path: A + "diff?from=" + since(oldest), status: 401, malformed: true},
		})
	})

	t.Run("every route answered with success", func(t *testing.T) {
		for _, r := range e.svc.Routes() {
			ok := slices.ContainsFunc(e.hits[r], func(code int) bool { return code >= 200 && code < 300 })
			if !ok {
				t.Errorf("route %q was not driven to a success (statuses seen: %v)", r, e.hits[r])
			}
		}
	})
}

// failingStore fails every read and write.
type failingStore struct{}

var errStoreDown = errors.New("store down")

func (failingStore) Apply(context.Context, ...policy.Change) (int64, error) { return 0, errStoreDown }
func (failingStore) Snapshot(context.Context) (*policy.Snapshot, error)     { return nil, errStoreDown }
func (failingStore) Changes(context.Context, int64) ([]policy.Change, error) {
	return nil, errStoreDown
}

// TestUnavailableAgainstDocument checks the 503 answers: a service whose
// store fails after it started.
func TestUnavailableAgainstDocument(t *testing.T) {
	s := loadSpec(t)
	e := newEnv(t, s, func(svc *policy.Service) { svc.Store = failingStore{} })
	const A = policy.AdminPathPrefix
	e.run(t, []call{
		{name: "readyz", method: "GET", path: "/readyz", status: 503},
		{name: "token", method: "POST", path: policy.TokenPath, cred: e.alice, body: e.tokenBody([]string{"ep:hvac-1"}, "read"), status: 503},
		{name: "trust anchors", method: "GET", path: policy.TrustAnchorsPath, cred: e.alice, status: 503},
		{name: "status update", method: "GET", path: policy.StatusUpdatePath + "?aud=ep:hvac-1", cred: e.alice, status: 503},
		{name: "list", method: "GET", path: A + "policies", cred: e.admin, status: 503},
		{name: "get", method: "GET", path: A + "subjects/alice", cred: e.admin, status: 503},
		{name: "put", method: "PUT", path: A + "subjects/erin", cred: e.admin, body: `{"id":"erin","kind":"user"}`, status: 503},
		{name: "delete", method: "DELETE", path: A + "devices/" + dev1, cred: e.admin, status: 503},
		{name: "create key", method: "POST", path: A + "api-keys", cred: e.admin, body: `{"id":"k","subject":"alice"}`, status: 503},
		{name: "revoke", method: "POST", path: A + "revocations", cred: e.admin, body: `{"kind":"subject","subject":"alice"}`, status: 503},
		{name: "revocations", method: "GET", path: A + "revocations", cred: e.admin, status: 503},
		{name: "issued", method: "GET", path: A + "issued-tokens", cred: e.admin, status: 503},
		{name: "what-if", method: "POST", path: A + "what-if", cred: e.admin, body: `{"changes":[]}`, status: 503},
		{name: "changes", method: "GET", path: A + "changes", cred: e.admin, status: 503},
		{name: "diff", method: "GET", path: A + "diff?from=1", cred: e.admin, status: 503},
		{name: "explain", method: "POST", path: A + "explain", cred: e.admin, body: `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"]}`, status: 503},
		{name: "policy tests", method: "POST", path: A + "policy-tests", cred: e.admin, body: `{"tests":[{"name":"a","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow"}]}`, status: 503},
		{name: "groups", method: "GET", path: A + "groups", cred: e.admin, status: 503},
		{name: "group", method: "GET", path: A + "groups/technicians", cred: e.admin, status: 503},
		{name: "add member", method: "PUT", path: A + "groups/technicians/members/bob", cred: e.admin, status: 503},
		{name: "remove member", method: "DELETE", path: A + "groups/technicians/members/alice", cred: e.admin, status: 503},
	})
}

// TestRateLimitAgainstDocument checks the 429 answer of the token endpoint.
func TestRateLimitAgainstDocument(t *testing.T) {
	s := loadSpec(t)
	// One request per key, refilled once an hour: the second is refused
	// whatever the machine's speed.
	e := newEnv(t, s, func(svc *policy.Service) {
		svc.RateLimit = &policy.RateLimit{PerKey: 1.0 / 3600, KeyBurst: 1}
	})
	body := e.tokenBody([]string{"ep:hvac-1"}, "read")
	e.run(t, []call{
		{name: "first", method: "POST", path: policy.TokenPath, cred: e.alice, body: body, status: 200},
		{name: "second", method: "POST", path: policy.TokenPath, cred: e.alice, body: body, status: 429},
	})
}
