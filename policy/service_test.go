package policy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

type testEnv struct {
	svc      *Service
	store    *MemoryStore
	anchor   *ecdsa.PrivateKey
	pop      *ecdsa.PrivateKey
	popPEM   string
	aliceKey string // API key secret of alice
	adminKey string // API key secret of an administrator
	audit    *bytes.Buffer
}

func mustKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestEnv(t testing.TB, profile token.Profile, policies ...*Policy) *testEnv {
	t.Helper()
	env := &testEnv{store: NewMemoryStore(), anchor: mustKey(t, elliptic.P256()), pop: mustKey(t, elliptic.P256()), audit: new(bytes.Buffer)}
	pemBytes, err := token.MarshalPublicKeyPEM(&env.pop.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	env.popPEM = string(pemBytes)
	env.svc = &Service{
		Store:             env.store,
		Signer:            env.anchor,
		Profile:           profile,
		Logger:            slog.New(slog.NewJSONHandler(env.audit, nil)),
		Now:               func() time.Time { return t0 },
		AnchorCreatedAt:   t0.Add(-time.Hour),
		AnchorDescription: "test anchor",
	}
	changes := testDirectory()
	for _, p := range policies {
		changes = append(changes, PutPolicy(p))
	}
	var k1, k2 *APIKey
	env.aliceKey, k1, err = NewAPIKey(nil, "alice-key", "alice", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	env.adminKey, k2, err = NewAPIKey(nil, "admin-key", "root", true, t0)
	if err != nil {
		t.Fatal(err)
	}
	changes = append(changes, PutAPIKey(k1), PutAPIKey(k2), PutSubject(&Subject{ID: "root", Kind: User}))
	if _, err := env.store.Apply(context.Background(), changes...); err != nil {
		t.Fatal(err)
	}
	return env
}

func (env *testEnv) tokenBody(aud []string, scope string) string {
	b, _ := json.Marshal(map[string]any{"grant_type": "client_credentials", "aud": aud, "scope": scope, "cnf": env.popPEM})
	return string(b)
}

func (env *testEnv) do(method, path, credential, body string, hdr ...string) *httptest.ResponseRecorder {
	return env.doWith(env.svc, method, path, credential, body, hdr...)
}

// doWith sends a request to h, which is env.svc or one of its handlers.
func (env *testEnv) doWith(h http.Handler, method, path, credential, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if credential != "" {
		r.Header.Set("Authorization", "Bearer "+credential)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decodeError checks that a response is in the JSON error format and
// returns it.
func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	for _, k := range []string{"object", "code", "type", "message", "fields", "request_id"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("error body lacks %q: %s", k, w.Body.String())
		}
	}
	if string(raw["fields"]) == "null" {
		t.Errorf("error body has fields null, want a list: %s", w.Body.String())
	}
	var e errorBody
	if err := strictUnmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Object != "error" || e.Code != w.Code || e.RequestID == "" || e.RequestID != w.Header().Get("X-Request-Id") {
		t.Errorf("error body %+v does not match status %d / request id %q", e, w.Code, w.Header().Get("X-Request-Id"))
	}
	return e
}

func TestTokenEndpointV1(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1", ops("read", "configure"), lifetime(10*time.Hour)))
	w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1", "id:" + dev2}, "read configure"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// The response has exactly the two fields of the original service.
	var raw map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || len(raw) != 2 {
		t.Fatalf("response %s: %v", w.Body, err)
	}
	wantUntil := t0.Add(10 * time.Hour).Format(time.RFC3339)
	if raw["granted_until"] != wantUntil {
		t.Errorf("granted_until = %q, want %q", raw["granted_until"], wantUntil)
	}
	if !bytes.HasPrefix(w.Body.Bytes(), []byte(`{"access_token":"`)) {
		t.Errorf("field order: %s", w.Body)
	}
	tb, err := base64.StdEncoding.DecodeString(raw["access_token"])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Parse(tb)
	if err != nil {
		t.Fatal(err)
	}
	anchorName, _ := token.AnchorName(&env.anchor.PublicKey)
	if tok.UnverifiedIssuer() != anchorName {
		t.Errorf("iss = %q, want %q", tok.UnverifiedIssuer(), anchorName)
	}
	c, err := tok.Verify(&env.anchor.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile != token.ProfileV1 || c.Subject != "alice" || !slices.Equal(c.Audience, []string{"ep:hvac-1", "id:" + dev2}) ||
		!c.Expiry.Equal(t0.Add(10*time.Hour)) || !c.NotBefore.Equal(t0) || !token.EqualKeys(c.Key, &env.pop.PublicKey) || len(c.ID) != 16 {
		t.Errorf("claims = %+v", c)
	}
	if txt, ok := c.Scope.Text(); !ok || txt != "read configure" {
		t.Errorf("scope = %v", c.Scope)
	}
	if err := c.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: t0.Add(time.Hour)}); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if !strings.Contains(env.audit.String(), `"msg":"sda.token.issued"`) {
		t.Errorf("no audit event: %s", env.audit)
	}
}

// TestV1OneCharacterScope: deployed devices refuse a v1 token whose scope
// is one byte, so a v1 service answers a request for a single one-character
// operation with 400 validation_error on scope (not a 5xx), issues no token,
// and a v2 service grants it.
func TestV1OneCharacterScope(t *testing.T) {
	for _, p := range []token.Profile{token.ProfileV1, token.ProfileV2} {
		t.Run(p.String(), func(t *testing.T) {
			env := newTestEnv(t, p, pol("p1", ops("r", "s")))
			for _, scope := range []string{"r", "r r"} {
				w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, scope))
				if p == token.ProfileV2 {
					if w.Code != http.StatusOK {
						t.Errorf("scope %q: status %d: %s", scope, w.Code, w.Body)
					}
					continue
				}
				if w.Code != http.StatusBadRequest {
					t.Fatalf("scope %q: status %d, want 400: %s", scope, w.Code, w.Body)
				}
				e := decodeError(t, w)
				if e.Type != errTypeValidation || !slices.ContainsFunc(e.Fields, func(f FieldError) bool { return f.Name == "scope" }) {
					t.Errorf("scope %q: %+v, want validation_error on scope", scope, e)
				}
				_, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: strings.Split(scope, " "), Key: &env.pop.PublicKey})
				var ve *ValidationError
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
					t.Errorf("Issue with scope %q: %v, want a *ValidationError", scope, err)
				}
			}
			if w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "r s")); w.Code != http.StatusOK {
				t.Errorf("scope \"r s\": status %d: %s", w.Code, w.Body)
			}
		})
	}
}

// issueClaims issues a token for alice on ep:hvac-1 with scope and returns
// its verified claims.
func (env *testEnv) issueClaims(t *testing.T, scope string) *token.Claims {
	t.Helper()
	got, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: strings.Split(scope, " "), Key: &env.pop.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Parse(got.Token)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Verify(&env.anchor.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueV2StructuredScope(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops("read"), constrained("set-temp", rangeArg(0, 16, 28))))
	c := env.issueClaims(t, "read set-temp")
	if c.Profile != token.ProfileV2 {
		t.Errorf("profile %v", c.Profile)
	}
	if err := c.Scope.Check(token.Operation{Name: "set-temp", Args: []token.Arg{token.Int(20)}}); err != nil {
		t.Errorf("20 not permitted: %v", err)
	}
	if err := c.Scope.Check(token.Operation{Name: "set-temp", Args: []token.Arg{token.Int(30)}}); !errors.Is(err, token.ErrOutOfScope) {
		t.Errorf("30 permitted: %v", err)
	}
	if err := c.Scope.Check(token.Operation{Name: "read"}); err != nil {
		t.Errorf("read: %v", err)
	}

	// The same request in v1 is denied: the constraint cannot be carried.
	env.svc.Profile = token.ProfileV1
	_, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read", "set-temp"}, Key: &env.pop.PublicKey})
	if !errors.Is(err, ErrDenied) || !errors.Is(err, ErrStructuredScopeRequired) {
		t.Errorf("v1: %v, want ErrStructuredScopeRequired", err)
	}
}

func TestIssueErrors(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	p384 := mustKey(t, elliptic.P384())
	ctx := context.Background()
	for name, tc := range map[string]struct {
		req  *token.AccessRequest
		want error
	}{
		"no key":      {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}}, ErrInvalid},
		"p384 in v1":  {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &p384.PublicKey}, ErrInvalid},
		"rsa-ish key": {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: "not a key"}, ErrInvalid},
		"no point":    {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &ecdsa.PublicKey{Curve: elliptic.P256()}}, ErrInvalid},
		"bad scope":   {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read", "", "write"}, Key: &env.pop.PublicKey}, ErrInvalid},
		"spaced name": {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read write"}, Key: &env.pop.PublicKey}, ErrInvalid},
		"no scope":    {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Key: &env.pop.PublicKey}, ErrInvalid},
		"denied":      {&token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"write"}, Key: &env.pop.PublicKey}, ErrNoAllowPolicy},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := env.svc.Issue(ctx, "alice", tc.req)
			if !errors.Is(err, tc.want) || got != nil {
				t.Errorf("Issue = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	// A point off the curve is rejected.
	//lint:ignore SA1019 building an invalid key on purpose needs the raw coordinates
	bad := &ecdsa.PublicKey{Curve: elliptic.P256(), X: env.pop.X, Y: new(bigInt).Add(env.pop.Y, oneInt)}
	if _, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: bad}); !errors.Is(err, ErrInvalid) {
		t.Errorf("off-curve key: %v", err)
	}
	if !strings.Contains(env.audit.String(), `"msg":"sda.token.denied"`) {
		t.Errorf("no denial audit event")
	}
}

// TestDegenerateCnfKey: a cnf key with which a request "signed" without
// any private key verifies (an Ed25519 point of small order) is refused by
// the token endpoint with 400 validation_error on cnf, and by Issue; no
// token is issued.
func TestDegenerateCnfKey(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1"))
	order8, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	for name, key := range map[string]ed25519.PublicKey{
		"identity": append([]byte{1}, make([]byte, 31)...),
		"order 8":  order8,
	} {
		t.Run(name, func(t *testing.T) {
			spki := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, key...)
			b, _ := json.Marshal(map[string]any{"grant_type": "client_credentials", "aud": []string{"ep:hvac-1"}, "scope": "read",
				"cnf": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))})
			w := env.do("POST", TokenPath, env.aliceKey, string(b))
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			e := decodeError(t, w)
			if e.Type != errTypeValidation || !slices.ContainsFunc(e.Fields, func(f FieldError) bool { return f.Name == "cnf" }) {
				t.Errorf("%+v, want validation_error on cnf", e)
			}
			_, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: key})
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || !slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Name == "cnf" }) {
				t.Errorf("Issue: %v, want a validation error on cnf", err)
			}
		})
	}
	if strings.Contains(env.audit.String(), `"msg":"sda.token.issued"`) {
		t.Errorf("a token was issued: %s", env.audit)
	}
}

// failingStore fails every call.
type failingStore struct{}

var errStoreDown = errors.New("store down")

func (failingStore) Apply(context.Context, ...Change) (int64, error)  { return 0, errStoreDown }
func (failingStore) Snapshot(context.Context) (*Snapshot, error)      { return nil, errStoreDown }
func (failingStore) Changes(context.Context, int64) ([]Change, error) { return nil, errStoreDown }

func TestHTTPErrors(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"), pol("d", denyEffect, ops("reboot")), pol("p2", ops("reboot")))
	p384PEM, _ := token.MarshalPublicKeyPEM(&mustKey(t, elliptic.P384()).PublicKey)
	otherPEM, _ := token.MarshalPublicKeyPEM(&mustKey(t, elliptic.P256()).PublicKey)
	body := func(m map[string]any) string {
		v := map[string]any{"grant_type": "client_credentials", "aud": []string{"ep:hvac-1"}, "scope": "read", "cnf": env.popPEM}
		for k, x := range m {
			if x == nil {
				delete(v, k)
			} else {
				v[k] = x
			}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	longScope := strings.TrimSpace(strings.Repeat("read ", token.MaxScopeItems+1))
	tests := []struct {
		name         string
		method, path string
		cred, body   string
		hdr          []string
		status       int
		typ          string
		field        string
	}{
		{"unknown path", "GET", "/nope", "", "", nil, 404, errTypeNotFound, ""},
		{"token GET", "GET", TokenPath, env.aliceKey, "", nil, 405, errTypeMethodNotAllowed, ""},
		{"no credential", "POST", TokenPath, "", body(nil), nil, 401, errTypeUnauthorized, ""},
		{"unknown credential", "POST", TokenPath, "sda_nope", body(nil), nil, 401, errTypeUnauthorized, ""},
		{"basic auth", "POST", TokenPath, "", body(nil), []string{"Authorization", "Basic " + env.aliceKey}, 401, errTypeUnauthorized, ""},
		{"media type", "POST", TokenPath, env.aliceKey, body(nil), []string{"Content-Type", "text/plain"}, 415, errTypeMediaType, ""},
		{"too large", "POST", TokenPath, env.aliceKey, `{"scope":"` + strings.Repeat("a", maxTokenBodyBytes) + `"}`, nil, 413, errTypeTooLarge, ""},
		{"not json", "POST", TokenPath, env.aliceKey, "{", nil, 400, errTypeBadRequest, ""},
		{"empty body", "POST", TokenPath, env.aliceKey, "", nil, 400, errTypeBadRequest, ""},
		{"unknown field", "POST", TokenPath, env.aliceKey, body(map[string]any{"extra": 1}), nil, 400, errTypeBadRequest, ""},
		{"trailing data", "POST", TokenPath, env.aliceKey, body(nil) + "{}", nil, 400, errTypeBadRequest, ""},
		{"trailing brace", "POST", TokenPath, env.aliceKey, body(nil) + "}", nil, 400, errTypeBadRequest, ""},
		{"trailing bracket", "POST", TokenPath, env.aliceKey, body(nil) + " ]", nil, 400, errTypeBadRequest, ""},
		{"admin put trailing brace", "PUT", AdminPathPrefix + "subjects/s", env.adminKey, `{"id":"s","kind":"user"}}`, nil, 400, errTypeBadRequest, ""},
		{"aud not array", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": "ep:hvac-1"}), nil, 400, errTypeBadRequest, ""},
		{"grant type", "POST", TokenPath, env.aliceKey, body(map[string]any{"grant_type": "password"}), nil, 400, errTypeValidation, "grant_type"},
		{"no cnf", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": nil}), nil, 400, errTypeValidation, "cnf"},
		{"garbage cnf", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}), nil, 400, errTypeValidation, "cnf"},
		{"huge cnf", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": strings.Repeat("A", maxCnfPEMBytes+1)}), nil, 400, errTypeValidation, "cnf"},
		{"p384 cnf in v1", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": string(p384PEM)}), nil, 400, errTypeValidation, "cnf"},
		{"two cnf keys", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": env.popPEM + string(otherPEM)}), nil, 400, errTypeValidation, "cnf"},
		{"cnf key and text", "POST", TokenPath, env.aliceKey, body(map[string]any{"cnf": env.popPEM + "and more"}), nil, 400, errTypeValidation, "cnf"},
		{"no aud", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": []string{}}), nil, 400, errTypeValidation, "aud"},
		{"too many aud", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": many(token.MaxAudiences+1, "ep:hvac-1")}), nil, 400, errTypeValidation, "aud"},
		{"aud prefix", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": []string{"hvac-1"}}), nil, 400, errTypeValidation, "aud[0]"},
		{"aud too long", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": []string{"ep:" + strings.Repeat("a", 61)}}), nil, 400, errTypeValidation, "aud[0]"},
		{"aud charset", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": []string{"ep:a\u00e9"}}), nil, 400, errTypeValidation, "aud[0]"},
		{"no scope", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": ""}), nil, 400, errTypeValidation, "scope"},
		{"too many scopes", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": longScope}), nil, 400, errTypeValidation, "scope"},
		{"scope name", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": "read 9lives"}), nil, 400, errTypeValidation, "scope"},
		{"scope name too long", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": "a" + strings.Repeat("b", 60)}), nil, 400, errTypeValidation, "scope"},
		{"no policy", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": "write"}), nil, 403, errTypeAccessDenied, ""},
		{"deny policy", "POST", TokenPath, env.aliceKey, body(map[string]any{"scope": "read reboot"}), nil, 403, errTypeAccessDenied, ""},
		{"unknown device", "POST", TokenPath, env.aliceKey, body(map[string]any{"aud": []string{"ep:hvac-1", "ep:ghost"}}), nil, 403, errTypeAccessDenied, ""},
		{"anchors POST", "POST", TrustAnchorsPath, env.aliceKey, "", nil, 405, errTypeMethodNotAllowed, ""},
		{"anchors no credential", "GET", TrustAnchorsPath, "", "", nil, 401, errTypeUnauthorized, ""},
		{"admin no credential", "GET", AdminPathPrefix + "policies", "", "", nil, 401, errTypeUnauthorized, ""},
		{"admin not admin", "GET", AdminPathPrefix + "policies", env.aliceKey, "", nil, 403, errTypeForbidden, ""},
		{"admin unknown collection", "GET", AdminPathPrefix + "widgets", env.adminKey, "", nil, 404, errTypeNotFound, ""},
		{"admin nested path", "GET", AdminPathPrefix + "policies/a/b", env.adminKey, "", nil, 404, errTypeNotFound, ""},
		{"admin empty id", "GET", AdminPathPrefix + "policies/", env.adminKey, "", nil, 404, errTypeNotFound, ""},
		{"admin method", "PATCH", AdminPathPrefix + "policies/p1", env.adminKey, "", nil, 405, errTypeMethodNotAllowed, ""},
		{"admin PUT collection", "PUT", AdminPathPrefix + "policies", env.adminKey, "{}", nil, 405, errTypeMethodNotAllowed, ""},
		{"admin PUT api key", "PUT", AdminPathPrefix + "api-keys/k", env.adminKey, "{}", nil, 405, errTypeMethodNotAllowed, ""},
		{"admin get missing", "GET", AdminPathPrefix + "policies/missing", env.adminKey, "", nil, 404, errTypeNotFound, ""},
		{"admin delete missing", "DELETE", AdminPathPrefix + "devices/" + strings.Repeat("ab", 16), env.adminKey, "", nil, 404, errTypeNotFound, ""},
		{"admin put malformed", "PUT", AdminPathPrefix + "policies/p9", env.adminKey, `{"id":`, nil, 400, errTypeBadRequest, ""},
		{"admin put unknown field", "PUT", AdminPathPrefix + "subjects/s", env.adminKey, `{"id":"s","kind":"user","color":"red"}`, nil, 400, errTypeBadRequest, ""},
		{"admin put invalid", "PUT", AdminPathPrefix + "subjects/s", env.adminKey, `{"id":"s","kind":"robot"}`, nil, 400, errTypeValidation, "subject.kind"},
		{"admin put id mismatch", "PUT", AdminPathPrefix + "subjects/s", env.adminKey, `{"id":"t","kind":"user"}`, nil, 400, errTypeValidation, "id"},
		{"admin put policy invalid", "PUT", AdminPathPrefix + "policies/p9", env.adminKey, `{"id":"p9","status":"active","effect":"allow","subjects":{},"operations":[],"devices":{}}`, nil, 400, errTypeValidation, "policy.subjects"},
		{"admin put conflict", "PUT", AdminPathPrefix + "devices/" + dev3, env.adminKey, `{"id":"` + dev3 + `","endpoint_name":"hvac-1"}`, nil, 409, errTypeConflict, ""},
		{"admin put too large", "PUT", AdminPathPrefix + "subjects/s", env.adminKey, `{"id":"` + strings.Repeat("s", maxAdminBodyBytes) + `"}`, nil, 413, errTypeTooLarge, ""},
		{"admin create key exists", "POST", AdminPathPrefix + "api-keys", env.adminKey, `{"id":"alice-key","subject":"alice"}`, nil, 409, errTypeConflict, ""},
		{"admin create key invalid", "POST", AdminPathPrefix + "api-keys", env.adminKey, `{"id":"","subject":"alice"}`, nil, 400, errTypeValidation, "id"},
		{"admin list bad limit", "GET", AdminPathPrefix + "policies?limit=0", env.adminKey, "", nil, 400, errTypeValidation, "limit"},
		{"admin list huge limit", "GET", AdminPathPrefix + "policies?limit=99999999999999999999", env.adminKey, "", nil, 400, errTypeValidation, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(tt.method, tt.path, tt.cred, tt.body, tt.hdr...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			e := decodeError(t, w)
			if e.Type != tt.typ {
				t.Errorf("type %q, want %q", e.Type, tt.typ)
			}
			if tt.field != "" && !slices.ContainsFunc(e.Fields, func(f FieldError) bool { return f.Name == tt.field }) {
				t.Errorf("fields %+v lack %q", e.Fields, tt.field)
			}
			if tt.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tt.status == 405 && w.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}

	// A store that fails makes the service unavailable, never allow.
	broken := &Service{Store: failingStore{}, Signer: env.anchor, Now: env.svc.Now, Authenticator: staticAuth{Principal{Subject: "alice", Admin: true}}}
	env2 := &testEnv{svc: broken}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", TokenPath, body(nil)},
		{"GET", AdminPathPrefix + "policies", ""},
	} {
		w := env2.do(tc.method, tc.path, "x", tc.body)
		if w.Code != http.StatusServiceUnavailable || decodeError(t, w).Type != errTypeUnavailable {
			t.Errorf("%s %s with a failing store: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
}

type staticAuth struct{ p Principal }

func (a staticAuth) Authenticate(context.Context, *http.Request) (Principal, error) { return a.p, nil }

func TestTrustAnchors(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	w := env.do("GET", TrustAnchorsPath, env.aliceKey, "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var list listJSON[trustAnchorJSON]
	if err := strictUnmarshal(w.Body.Bytes(), &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("%s: %v", w.Body, err)
	}
	a := list.Data[0]
	der, err := base64.StdEncoding.DecodeString(a.PublicKeyDER)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.ParsePublicKeyDER(der)
	if err != nil || !token.EqualKeys(pub, &env.anchor.PublicKey) {
		t.Fatalf("public_key_der: %v", err)
	}
	pub2, err := token.ParsePublicKeyPEM([]byte(a.PublicKey))
	if err != nil || !token.EqualKeys(pub2, &env.anchor.PublicKey) {
		t.Fatalf("public_key: %v", err)
	}
	name, _ := token.AnchorName(pub)
	if "mbed.ta."+a.Fingerprint != name || len(a.ID) != 32 || a.Description != "test anchor" || a.CreatedAt != t0.Add(-time.Hour).Format(time.RFC3339) || a.Etag == "" {
		t.Errorf("anchor %+v (name %s)", a, name)
	}
}

// TestAdminFlow drives the administration API end to end: directory,
// policy, API key, token, then revocation of the policy.
func TestAdminFlow(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	put := func(path, body string) {
		t.Helper()
		if w := env.do("PUT", AdminPathPrefix+path, env.adminKey, body); w.Code != 200 {
			t.Fatalf("PUT %s: %d %s", path, w.Code, w.Body)
		}
	}
	put("subjects/dave", `{"id":"dave","kind":"user","groups":["night-shift"]}`)
	put("devices/"+dev3, `{"id":"`+dev3+`","endpoint_name":"pump-9","attributes":{"site":"roof"}}`)
	put("policies/night", `{"id":"night","status":"active","effect":"allow","subjects":{"groups":["night-shift"]},
		"operations":[{"name":"read"}],"devices":{"attributes":{"site":["roof"]}},"token_lifetime_seconds":7200}`)

	w := env.do("GET", AdminPathPrefix+"policies/night", env.adminKey, "")
	var got Policy
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.TokenLifetime != 2*time.Hour {
		t.Fatalf("GET policy: %d %s", w.Code, w.Body)
	}
	w = env.do("POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"dave-key","subject":"dave"}`)
	var key apiKeyJSON
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &key) != nil || !strings.HasPrefix(key.Secret, apiKeyPrefix) {
		t.Fatalf("create key: %d %s", w.Code, w.Body)
	}
	w = env.do("GET", AdminPathPrefix+"api-keys/dave-key", env.adminKey, "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "hash") {
		t.Fatalf("GET key shows secret material: %s", w.Body)
	}
	if w := env.do("POST", TokenPath, key.Secret, env.tokenBody([]string{"ep:pump-9"}, "read")); w.Code != 200 {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	// Listing with pagination.
	w = env.do("GET", AdminPathPrefix+"devices?limit=2", env.adminKey, "")
	var list listJSON[Device]
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Data) != 2 || !list.HasMore || list.TotalCount != 3 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	w = env.do("GET", AdminPathPrefix+"devices?limit=2&after="+list.Data[1].ID, env.adminKey, "")
	if json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Data) != 1 || list.HasMore {
		t.Fatalf("list page 2: %d %s", w.Code, w.Body)
	}
	// Deleting the policy takes effect at once.
	if w := env.do("DELETE", AdminPathPrefix+"policies/night", env.adminKey, ""); w.Code != 204 {
		t.Fatalf("DELETE: %d %s", w.Code, w.Body)
	}
	w = env.do("POST", TokenPath, key.Secret, env.tokenBody([]string{"ep:pump-9"}, "read"))
	if w.Code != 403 || decodeError(t, w).Type != errTypeAccessDenied {
		t.Fatalf("token after delete: %d %s", w.Code, w.Body)
	}
	// Deleting the API key revokes it.
	if w := env.do("DELETE", AdminPathPrefix+"api-keys/dave-key", env.adminKey, ""); w.Code != 204 {
		t.Fatalf("DELETE key: %d %s", w.Code, w.Body)
	}
	if w := env.do("POST", TokenPath, key.Secret, env.tokenBody([]string{"ep:pump-9"}, "read")); w.Code != 401 {
		t.Fatalf("revoked key: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(env.audit.String(), `"msg":"sda.admin.put"`) || !strings.Contains(env.audit.String(), `"msg":"sda.admin.delete"`) {
		t.Errorf("admin writes not audited")
	}
}

func TestAdminSubjectsAndTheirKeys(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	// A key for a subject that is not in the directory is refused.
	w := env.do("POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"ghost-key","subject":"ghost"}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "subject") {
		t.Fatalf("key for an unknown subject: %d %s", w.Code, w.Body)
	}
	w = env.do("POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"alice-2","subject":"alice","admin":true}`)
	var key apiKeyJSON
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &key) != nil {
		t.Fatalf("create key: %d %s", w.Code, w.Body)
	}
	if w := env.do("GET", AdminPathPrefix+"policies", key.Secret, ""); w.Code != 200 {
		t.Fatalf("admin key before the subject is deleted: %d %s", w.Code, w.Body)
	}

	// Deleting a subject through the store alone leaves its keys, which
	// then no longer authenticate, admin or not.
	ctx := context.Background()
	if err := env.svc.Apply(ctx, DeleteRecord(KindSubject, "alice")); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{key.Secret, env.aliceKey} {
		if w := env.do("GET", AdminPathPrefix+"policies", secret, ""); w.Code != 401 {
			t.Errorf("admin API with a deleted subject's key: %d %s", w.Code, w.Body)
		}
		if w := env.do("POST", TokenPath, secret, env.tokenBody([]string{"ep:hvac-1"}, "read")); w.Code != 401 {
			t.Errorf("token with a deleted subject's key: %d %s", w.Code, w.Body)
		}
	}

	// Deleting a subject through the administration API deletes its keys
	// in the same batch, so that re-creating the id does not revive them.
	if err := env.svc.Apply(ctx, PutSubject(&Subject{ID: "alice", Kind: User})); err != nil {
		t.Fatal(err)
	}
	if w := env.do("GET", AdminPathPrefix+"policies", key.Secret, ""); w.Code != 200 {
		t.Fatalf("key of the re-created subject: %d %s", w.Code, w.Body)
	}
	if w := env.do("DELETE", AdminPathPrefix+"subjects/alice", env.adminKey, ""); w.Code != 204 {
		t.Fatalf("DELETE subject: %d %s", w.Code, w.Body)
	}
	for _, id := range []string{"alice-key", "alice-2"} {
		if w := env.do("GET", AdminPathPrefix+"api-keys/"+id, env.adminKey, ""); w.Code != 404 {
			t.Errorf("API key %s after its subject was deleted: %d %s", id, w.Code, w.Body)
		}
		if !strings.Contains(env.audit.String(), `"kind":"api_key","id":"`+id+`"`) {
			t.Errorf("deletion of %s not audited", id)
		}
	}
	if err := env.svc.Apply(ctx, PutSubject(&Subject{ID: "alice", Kind: User})); err != nil {
		t.Fatal(err)
	}
	if w := env.do("GET", AdminPathPrefix+"policies", key.Secret, ""); w.Code != 401 {
		t.Fatalf("deleted key after its subject id was reused: %d %s", w.Code, w.Body)
	}
}

func TestAdminConcurrentKeyCreation(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			codes <- env.do("POST", AdminPathPrefix+"api-keys", env.adminKey, `{"id":"dup","subject":"alice"}`).Code
		})
	}
	wg.Wait()
	close(codes)
	created := 0
	for c := range codes {
		switch c {
		case 201:
			created++
		case 409:
		default:
			t.Errorf("status %d", c)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent creates of one id succeeded, want 1", created, n)
	}
}

// readFailingStore is a MemoryStore whose reads can be made to fail.
type readFailingStore struct {
	*MemoryStore
	down atomic.Bool
}

func (s *readFailingStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.MemoryStore.Snapshot(ctx)
}

func (s *readFailingStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.MemoryStore.Changes(ctx, since)
}

func TestApplyReportsTheCommitNotTheReadBack(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	store := &readFailingStore{MemoryStore: env.store}
	env.svc.Store = store
	env.svc.MaxStaleness = time.Hour
	ctx := context.Background()
	if err := env.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
	if _, err := env.svc.Issue(ctx, "alice", req); !errors.Is(err, ErrDenied) {
		t.Fatalf("Issue before the policy: %v", err)
	}

	// The store commits but cannot be read back: Apply reports the commit.
	store.down.Store(true)
	if err := env.svc.Apply(ctx, PutPolicy(pol("p1"))); err != nil {
		t.Fatalf("Apply of a committed change: %v", err)
	}
	if !strings.Contains(env.audit.String(), "sda.store.sync_failed") {
		t.Error("failed read-back not logged")
	}
	if _, err := env.svc.Issue(ctx, "alice", req); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Issue while the store cannot be read: %v, want ErrUnavailable", err)
	}
	// Once the store can be read, the next decision sees the change, even
	// though MaxStaleness has not passed.
	store.down.Store(false)
	if _, err := env.svc.Issue(ctx, "alice", req); err != nil {
		t.Fatalf("Issue after the store recovered: %v", err)
	}

	// The administration API answers a committed PUT with the record as
	// written, not 503. (Authentication uses the view read just above,
	// which MaxStaleness lets it trust.)
	store.down.Store(true)
	w := env.do("PUT", AdminPathPrefix+"subjects/erin", env.adminKey, `{"id":"erin","kind":"user"}`)
	store.down.Store(false)
	var got Subject
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.ID != "erin" {
		t.Fatalf("PUT committed while the store could not be read back: %d %s", w.Code, w.Body)
	}
	if w := env.do("GET", AdminPathPrefix+"subjects/erin", env.adminKey, ""); w.Code != 200 {
		t.Fatalf("GET after the store recovered: %d %s", w.Code, w.Body)
	}
}

// writeFailingStore is a MemoryStore whose writes fail with err.
type writeFailingStore struct {
	*MemoryStore
	err error
}

func (s *writeFailingStore) Apply(context.Context, ...Change) (int64, error) { return 0, s.err }

// TestStoreWriteFailures: a store's failure to write is ErrUnavailable
// (HTTP 503), whatever error the store returned, unless it is about the
// request (ErrConflict, ErrInvalid) or says that the outcome is unknown,
// which has its own error type.
func TestStoreWriteFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		err      error
		want     error
		status   int
		typ      string
		notMatch error
	}{
		{"plain error", errStoreDown, ErrUnavailable, 503, errTypeUnavailable, nil},
		{"context", context.DeadlineExceeded, ErrUnavailable, 503, errTypeUnavailable, nil},
		{"unavailable", fmt.Errorf("%w: connection reset", ErrUnavailable), ErrUnavailable, 503, errTypeUnavailable, nil},
		{"outcome unknown", fmt.Errorf("%w: commit", ErrOutcomeUnknown), ErrOutcomeUnknown, 503, errTypeOutcomeUnknown, ErrUnavailable},
		{"conflict", fmt.Errorf("%w: endpoint name", ErrConflict), ErrConflict, 409, errTypeConflict, ErrUnavailable},
		{"invalid", fmt.Errorf("%w: NUL", ErrInvalid), ErrInvalid, 400, errTypeValidation, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, token.ProfileV1)
			env.svc.Store = &writeFailingStore{MemoryStore: env.store, err: tc.err}
			err := env.svc.Apply(ctx, PutSubject(&Subject{ID: "erin", Kind: User}))
			if !errors.Is(err, tc.want) || !errors.Is(err, tc.err) || tc.notMatch != nil && errors.Is(err, tc.notMatch) {
				t.Fatalf("Apply = %v, want %v wrapping %v (and not %v)", err, tc.want, tc.err, tc.notMatch)
			}
			w := env.do("PUT", AdminPathPrefix+"subjects/erin", env.adminKey, `{"id":"erin","kind":"user"}`)
			if w.Code != tc.status || decodeError(t, w).Type != tc.typ {
				t.Fatalf("PUT: %d %s, want %d %s", w.Code, w.Body, tc.status, tc.typ)
			}
		})
	}
}

func FuzzDecodeTokenRequest(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemBytes, _ := token.MarshalPublicKeyPEM(&k.PublicKey)
	valid, _ := json.Marshal(wire.TokenRequest{GrantType: "client_credentials", Aud: []string{"ep:hvac-1", "id:" + dev1}, Scope: "read configure", Cnf: string(pemBytes)})
	f.Add(valid)
	f.Add([]byte(`{"grant_type":"client_credentials","aud":["ep:x"],"scope":"a","cnf":"x"}`))
	f.Add([]byte(`{"grant_type":"client_credentials","aud":null,"scope":null,"cnf":null}`))
	f.Add([]byte(`{"aud":[1,2]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"grant_type":"client_credentials","grant_type":"x"}`))
	keys := newCnfKeyCache(4)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeTokenRequest(body)
		// Through the cache of cnf keys, twice (the second time from the
		// cache when the first kept the key): the same outcome.
		for range 2 {
			cached, cerr := decodeTokenRequestKeys(body, keys)
			if fmt.Sprint(cerr) != fmt.Sprint(err) || fmt.Sprintf("%#v", toHTTPError(cerr)) != fmt.Sprintf("%#v", toHTTPError(err)) {
				t.Fatalf("with the key cache: %v, without: %v", cerr, err)
			}
			if (req == nil) != (cached == nil) {
				t.Fatalf("with the key cache: %+v, without: %+v", cached, req)
			}
			if req != nil {
				a, b := *req, *cached
				sameKey := a.Key == nil && b.Key == nil ||
					a.Key != nil && b.Key != nil && a.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(b.Key)
				a.Key, b.Key = nil, nil
				if !sameKey || fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("with the key cache: %+v, without: %+v", cached, req)
				}
			}
		}
		if err != nil {
			var he *httpError
			var ve *ValidationError
			var je *JSONError
			if !errors.As(err, &he) && !errors.As(err, &ve) && !errors.As(err, &je) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if toHTTPError(err).status != http.StatusBadRequest && toHTTPError(err).status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for a decoding error", toHTTPError(err).status)
			}
			return
		}
		if req.Key == nil {
			t.Fatal("decoded without a key")
		}
		if _, err := token.AlgorithmFor(req.Key); err != nil {
			t.Fatalf("decoded an unsupported key: %v", err)
		}
	})
}

type bigInt = big.Int

var oneInt = big.NewInt(1)

// countingStore counts the reads of a MemoryStore.
type countingStore struct {
	*MemoryStore
	snapshots, changes atomic.Int32
}

func (s *countingStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	s.snapshots.Add(1)
	return s.MemoryStore.Snapshot(ctx)
}

func (s *countingStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	s.changes.Add(1)
	return s.MemoryStore.Changes(ctx, since)
}

// collapsingStore answers Changes like a store that keeps only the latest
// version of each record: one change per record, the latest, in commit
// order. The engine may refuse such a list (a unique name that moves
// between records), and the service then loads a snapshot.
type collapsingStore struct{ *countingStore }

func (s collapsingStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	all, err := s.countingStore.Changes(ctx, since)
	if err != nil {
		return nil, err
	}
	last := map[recordKey]int{}
	for i, c := range all {
		last[recordKey{c.Kind, c.ID}] = i
	}
	var out []Change
	for i, c := range all {
		if last[recordKey{c.Kind, c.ID}] == i {
			out = append(out, c)
		}
	}
	return out, nil
}

// truncatedStore has lost its change log.
type truncatedStore struct{ *countingStore }

func (truncatedStore) Changes(context.Context, int64) ([]Change, error) {
	return nil, ErrChangesTruncated
}

// TestServiceFollowsTheStore: a Service decides with the changes that
// another instance wrote to their shared Store, read before the decision:
// from the change log after the first snapshot, or from a new snapshot
// when the log is lost or the engine refuses its changes.
func TestServiceFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		wrap      func(*countingStore) Store
		snapshots func(decisions int32) int32 // snapshots read for that many decisions
	}{
		{"change log", func(s *countingStore) Store { return s }, func(int32) int32 { return 1 }},
		{"truncated log", func(s *countingStore) Store { return truncatedStore{s} }, func(n int32) int32 { return n }},
		{"collapsed log", func(s *countingStore) Store { return collapsingStore{s} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, token.ProfileV1, pol("p1", devices(DeviceSelector{IDs: []string{dev2}})))
			store := &countingStore{MemoryStore: env.store}
			env.svc.Store = tc.wrap(store)
			other := &Service{Store: env.store, Signer: env.anchor}
			var writes, decisions int32
			write := func(changes ...Change) {
				t.Helper()
				if err := other.Apply(ctx, changes...); err != nil {
					t.Fatal(err)
				}
				writes++
			}
			check := func(aud string, want error) {
				t.Helper()
				req := &token.AccessRequest{Audience: []string{aud}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
				if _, err := env.svc.Issue(ctx, "alice", req); !errors.Is(err, want) || (want == nil) != (err == nil) {
					t.Fatalf("Issue for %s after %d writes: %v, want %v", aud, writes, err, want)
				}
				decisions++
				if tc.snapshots != nil {
					if got, want := store.snapshots.Load(), tc.snapshots(decisions); got != want {
						t.Errorf("after %d decisions: %d snapshots read, want %d", decisions, got, want)
					}
				}
			}
			check("id:"+dev2, nil)
			write(DeleteRecord(KindPolicy, "p1"))
			check("id:"+dev2, ErrNoAllowPolicy)
			// Several batches between two decisions.
			write(PutPolicy(pol("p1", devices(DeviceSelector{IDs: []string{dev2}}))))
			write(PutPolicy(pol("d1", denyEffect, devices(DeviceSelector{IDs: []string{dev2}}))))
			check("id:"+dev2, ErrDenyPolicy)
			write(DeleteRecord(KindPolicy, "d1"))
			// An endpoint name that moves from one device to another: a
			// collapsed log gives dev2 the name while dev1 still holds it.
			write(PutDevice(&Device{ID: dev1, EndpointName: "moving"}))
			write(PutDevice(&Device{ID: dev2, EndpointName: "hvac-1"}))
			write(PutDevice(&Device{ID: dev1, EndpointName: "hvac-1b"}))
			check("ep:hvac-1", nil)
			check("ep:hvac-2", ErrUnknownDevice)
			check("ep:hvac-1b", ErrNoAllowPolicy)
			if tc.name == "collapsed log" && store.snapshots.Load() != 2 {
				t.Errorf("%d snapshots read; want 2: the refused log is replaced by one snapshot", store.snapshots.Load())
			}
		})
	}
}

// TestMaxStaleness: with MaxStaleness set, the service reads the Store
// again only once its view is that old.
func TestMaxStaleness(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv(t, token.ProfileV1)
	store := &countingStore{MemoryStore: env.store}
	env.svc.Store = store
	env.svc.MaxStaleness = time.Minute
	clock := t0
	env.svc.monotonic = func() time.Time { return clock }
	other := &Service{Store: env.store, Signer: env.anchor}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
	issue := func() error {
		_, err := env.svc.Issue(ctx, "alice", req)
		return err
	}
	if err := issue(); !errors.Is(err, ErrNoAllowPolicy) {
		t.Fatalf("before the policy: %v", err)
	}
	if err := other.Apply(ctx, PutPolicy(pol("p1"))); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute - time.Nanosecond)
	if err := issue(); !errors.Is(err, ErrNoAllowPolicy) {
		t.Fatalf("a view younger than MaxStaleness was read again: %v", err)
	}
	if n := store.snapshots.Load() + store.changes.Load(); n != 1 {
		t.Fatalf("%d reads of the store, want 1", n)
	}
	clock = clock.Add(time.Nanosecond)
	if err := issue(); err != nil {
		t.Fatalf("a view as old as MaxStaleness was not read again: %v", err)
	}
	// Sync reads the store at once.
	if err := other.Apply(ctx, DeleteRecord(KindPolicy, "p1")); err != nil {
		t.Fatal(err)
	}
	if err := issue(); err != nil {
		t.Fatalf("a fresh view was read again: %v", err)
	}
	if err := env.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := issue(); !errors.Is(err, ErrNoAllowPolicy) {
		t.Fatalf("after Sync: %v", err)
	}
}

// TestIssueOneOfAndEquals: one_of and equals constraints, on integer, text
// and byte-string values, reach the token's scope and bind there.
func TestIssueOneOfAndEquals(t *testing.T) {
	i7, auto, eco := int64(7), "auto", "eco"
	i1 := int64(1)
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops(),
		constrained("set-mode",
			ArgConstraint{Arg: 0, OneOf: []ArgValue{{Int: &i1}, {Text: &auto}, {Bytes: []byte{1, 2}}}},
			ArgConstraint{Arg: 1, Equals: &ArgValue{Text: &eco}}),
		constrained("calibrate",
			ArgConstraint{Arg: 0, Equals: &ArgValue{Int: &i7}},
			ArgConstraint{Arg: 1, Equals: &ArgValue{Bytes: []byte{0xca}}})))
	c := env.issueClaims(t, "set-mode calibrate")
	op := func(name string, args ...token.Arg) token.Operation { return token.Operation{Name: name, Args: args} }
	for _, o := range []token.Operation{
		op("set-mode", token.Int(1), token.Text("eco")),
		op("set-mode", token.Text("auto"), token.Text("eco")),
		op("set-mode", token.Bytes([]byte{1, 2}), token.Text("eco")),
		op("calibrate", token.Int(7), token.Bytes([]byte{0xca})),
	} {
		if err := c.Scope.Check(o); err != nil {
			t.Errorf("%v: %v, want permitted", o, err)
		}
	}
	for _, o := range []token.Operation{
		op("set-mode", token.Int(2), token.Text("eco")),
		op("set-mode", token.Text("manual"), token.Text("eco")),
		op("set-mode", token.Text("\x01\x02"), token.Text("eco")),
		op("set-mode", token.Bytes([]byte{1}), token.Text("eco")),
		op("set-mode", token.Int(1), token.Text("boost")),
		op("set-mode", token.Int(1), token.Bytes([]byte("eco"))),
		op("calibrate", token.Int(8), token.Bytes([]byte{0xca})),
		op("calibrate", token.Text("7"), token.Bytes([]byte{0xca})),
		op("calibrate", token.Int(7), token.Bytes([]byte{0xcb})),
		op("calibrate", token.Int(7), token.Text("\xca")),
	} {
		if err := c.Scope.Check(o); !errors.Is(err, token.ErrOutOfScope) {
			t.Errorf("%v: %v, want ErrOutOfScope", o, err)
		}
	}
}

// auditEvents returns the JSON log records in buf, in order.
func auditEvents(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log record %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAuditEvents: every token request is logged, issued at INFO and
// denied at WARN, with what an auditor needs to trace it; a logger that
// keeps warnings only still gets every denial.
func TestAuditEvents(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1", ops("read", "reboot")), pol("d", denyEffect, ops("reboot")))
	last := func() map[string]any {
		t.Helper()
		ev := auditEvents(t, env.audit)
		if len(ev) == 0 {
			t.Fatal("no audit event")
		}
		return ev[len(ev)-1]
	}
	want := func(ev map[string]any, fields map[string]any, absent ...string) {
		t.Helper()
		for k, v := range fields {
			if fmt.Sprint(ev[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %v, want %v (event %v)", k, ev[k], v, ev)
			}
		}
		for _, k := range absent {
			if _, ok := ev[k]; ok {
				t.Errorf("event has %s: %v", k, ev)
			}
		}
	}

	w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1", "ep:hvac-1"}, "read"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	ev := last()
	want(ev, map[string]any{"msg": "sda.token.issued", "level": "INFO", "subject": "alice", "aud": []any{"ep:hvac-1", "ep:hvac-1"},
		"scope": "read", "request_id": w.Header().Get("X-Request-Id"), "granted_scope": "read", "policies": "p1",
		"expiry": t0.Add(24 * time.Hour).Format(time.RFC3339)}, "error")
	var answer wire.TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(answer.AccessToken)
	issued, err := token.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := ev["token_id"].(string); id != hex.EncodeToString(issued.UnverifiedClaims().ID) {
		t.Errorf("token_id = %v, want the token's cti %x in hex", ev["token_id"], issued.UnverifiedClaims().ID)
	}

	w = env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "read reboot"))
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want(last(), map[string]any{"msg": "sda.token.denied", "level": "WARN", "subject": "alice", "scope": "read reboot",
		"request_id": w.Header().Get("X-Request-Id"), "denied_audience": "ep:hvac-1", "denied_operation": "reboot", "deny_policy": "d"}, "token_id")
	if e, _ := last()["error"].(string); e == "" {
		t.Error("denial without its error")
	}

	ctx := context.Background()
	_, err = env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-2"}, Scope: []string{"write"}, Key: &env.pop.PublicKey})
	if !errors.Is(err, ErrNoAllowPolicy) {
		t.Fatalf("Issue: %v", err)
	}
	want(last(), map[string]any{"msg": "sda.token.denied", "denied_audience": "ep:hvac-2", "denied_operation": "write"}, "deny_policy", "request_id")

	// A malformed request is denied before any decision.
	_, err = env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-2"}, Scope: []string{"9"}, Key: &env.pop.PublicKey})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Issue: %v", err)
	}
	want(last(), map[string]any{"msg": "sda.token.denied", "level": "WARN"}, "denied_audience", "request_id")

	// A logger that keeps warnings only.
	warn := new(bytes.Buffer)
	env.svc.Logger = slog.New(slog.NewJSONHandler(warn, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"reboot"}, Key: &env.pop.PublicKey}); !errors.Is(err, ErrDenyPolicy) {
		t.Fatal(err)
	}
	if ev := auditEvents(t, warn); len(ev) != 1 || ev[0]["msg"] != "sda.token.denied" {
		t.Errorf("a WARN logger got %v, want the denial only", ev)
	}
}

// errorAuth fails every authentication with err.
type errorAuth struct{ err error }

func (a errorAuth) Authenticate(context.Context, *http.Request) (Principal, error) {
	return Principal{}, a.err
}

// TestHTTPResponses: the headers and logging of HTTP answers.
func TestHTTPResponses(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	t.Run("Allow", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{"GET", TokenPath, "POST"},
			{"POST", TrustAnchorsPath, "GET"},
			{"PUT", AdminPathPrefix + "api-keys", "GET, POST"},
			{"PUT", AdminPathPrefix + "api-keys/k", "GET, DELETE"},
			{"POST", AdminPathPrefix + "policies", "GET"},
			{"PATCH", AdminPathPrefix + "policies/p1", "GET, PUT, DELETE"},
		} {
			w := env.do(tc.method, tc.path, env.adminKey, "")
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tc.allow {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), tc.allow)
			}
		}
	})
	t.Run("request ids", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			id := env.do("GET", TrustAnchorsPath, env.aliceKey, "").Header().Get("X-Request-Id")
			if b, err := hex.DecodeString(id); err != nil || len(b) != 16 || seen[id] {
				t.Errorf("request id %q: want 16 random bytes in hex, each new", id)
			}
			seen[id] = true
		}
	})
	t.Run("server errors are logged, client errors not", func(t *testing.T) {
		for _, tc := range []struct {
			err    error
			status int
			logged bool
		}{
			{errors.New("authenticator broke"), http.StatusInternalServerError, true},
			{fmt.Errorf("%w: directory down", ErrUnavailable), http.StatusServiceUnavailable, true},
			{fmt.Errorf("%w: no", ErrUnauthenticated), http.StatusUnauthorized, false},
			{fmt.Errorf("%w: bad", ErrInvalid), http.StatusBadRequest, false},
		} {
			env.audit.Reset()
			env.svc.Authenticator = errorAuth{tc.err}
			w := env.do("GET", TrustAnchorsPath, "x", "")
			if w.Code != tc.status {
				t.Errorf("%v: status %d, want %d", tc.err, w.Code, tc.status)
			}
			logged := strings.Contains(env.audit.String(), `"msg":"sda.http.error"`)
			if logged != tc.logged {
				t.Errorf("%v: logged %v, want %v: %s", tc.err, logged, tc.logged, env.audit)
			}
		}
	})
	t.Run("a principal without a subject", func(t *testing.T) {
		env.svc.Authenticator = staticAuth{Principal{Admin: true}}
		if w := env.do("GET", AdminPathPrefix+"policies", "x", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
}

// TestAdminListPages: list pages hold at most limit records after the
// given id, and has_more says whether another page follows.
func TestAdminListPages(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	page := func(query string) listJSON[Subject] {
		t.Helper()
		w := env.do("GET", AdminPathPrefix+"subjects?"+query, env.adminKey, "")
		var l listJSON[Subject]
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &l) != nil {
			t.Fatalf("GET ?%s: %d %s", query, w.Code, w.Body)
		}
		return l
	}
	ids := func(l listJSON[Subject]) string {
		var s []string
		for _, x := range l.Data {
			s = append(s, x.ID)
		}
		return strings.Join(s, " ")
	}
	// The directory holds alice, bob, carol, root and tool.
	for _, tc := range []struct {
		query, ids string
		more       bool
	}{
		{"limit=5", "alice bob carol root tool", false},
		{"limit=4", "alice bob carol root", true},
		{"limit=2&after=bob", "carol root", true},
		{"limit=3&after=bob", "carol root tool", false},
		{"after=carol", "root tool", false},
		{"after=tool", "", false},
		{"after=b", "bob carol root tool", false},
	} {
		l := page(tc.query)
		if ids(l) != tc.ids || l.HasMore != tc.more || l.TotalCount != 5 {
			t.Errorf("?%s: %q, has_more %v, total %d; want %q, %v, 5", tc.query, ids(l), l.HasMore, l.TotalCount, tc.ids, tc.more)
		}
	}
	// Without a limit, a page holds defaultListLimit records.
	var more []Change
	for i := range defaultListLimit {
		more = append(more, PutSubject(&Subject{ID: fmt.Sprint("x", i), Kind: User}))
	}
	if err := env.svc.Apply(context.Background(), more...); err != nil {
		t.Fatal(err)
	}
	if l := page(""); len(l.Data) != defaultListLimit || !l.HasMore || l.Limit != defaultListLimit {
		t.Errorf("default page: %d records, has_more %v, limit %d; want %d, true, %d", len(l.Data), l.HasMore, l.Limit, defaultListLimit, defaultListLimit)
	}
}
