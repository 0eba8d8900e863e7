package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// authServer implements the token endpoint of docs/PROTOCOL.md for the tests: it
// checks the request as the service would and issues a token bound to the
// cnf key, signed by anchor. The hooks change what it answers.
type authServer struct {
	t          testing.TB
	anchor     *ecdsa.PrivateKey
	credential string
	lifetime   time.Duration
	requests   atomic.Int32

	// Optional misbehaviours.
	grantAud   []string             // grant this audience instead
	grantScope string               // grant this scope instead
	grantKey   crypto.PublicKey     // bind to this key instead
	body       func() (int, string) // answer this instead
	lastBody   atomic.Pointer[[]byte]

	// The status update endpoint (GET StatusPath): updates by audience,
	// and an optional override of the answer.
	statusMu       sync.Mutex
	updates        map[string][]byte
	statusBody     func(aud string) (int, string)
	statusRequests atomic.Int32
}

func newAuthServer(t testing.TB) (*authServer, *httptest.Server) {
	a := &authServer{t: t, anchor: mustP256(t), credential: "s3cret", lifetime: time.Hour}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv
}

func writeError(w http.ResponseWriter, code int, typ, msg string, fields ...FieldError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"object": "error", "code": code, "type": typ, "message": msg, "fields": fields, "request_id": "req-1",
	})
}

func (a *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == StatusPath {
		a.serveStatus(w, r)
		return
	}
	a.requests.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != TokenPath {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+a.credential {
		writeError(w, http.StatusUnauthorized, "unauthorized", "bad credential")
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "bad_content_type", "want JSON")
		return
	}
	var req struct {
		GrantType string   `json:"grant_type"`
		Aud       []string `json:"aud"`
		Scope     string   `json:"scope"`
		Cnf       string   `json:"cnf"`
		CNonce    string   `json:"cnonce,omitempty"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.GrantType != "client_credentials" {
		writeError(w, http.StatusBadRequest, "validation_error", "bad body", FieldError{"grant_type", "must be client_credentials"})
		return
	}
	b, _ := json.Marshal(req)
	a.lastBody.Store(&b)
	if a.body != nil {
		code, body := a.body()
		w.WriteHeader(code)
		w.Write([]byte(body))
		return
	}
	key, err := token.ParsePublicKeyPEM([]byte(req.Cnf))
	if err != nil {
		writeError(w, http.StatusBadRequest, "validation_error", "bad cnf", FieldError{"cnf", err.Error()})
		return
	}
	aud, scope := req.Aud, req.Scope
	if a.grantAud != nil {
		aud = a.grantAud
	}
	if a.grantScope != "" {
		scope = a.grantScope
	}
	if a.grantKey != nil {
		key = a.grantKey
	}
	exp := time.Now().Add(a.lifetime).Truncate(time.Second)
	var raw []byte
	if req.CNonce != "" {
		cnonce, err := hex.DecodeString(req.CNonce)
		if err != nil || len(cnonce) != 8 {
			writeError(w, http.StatusBadRequest, "validation_error", "bad cnonce", FieldError{"cnonce", "want 16 hex digits"})
			return
		}
		raw = issueV2(a.t, a.anchor, key, aud, scope, exp, cnonce)
	} else {
		raw = issue(a.t, a.anchor, key, aud, scope, exp)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"access_token":  base64.StdEncoding.EncodeToString(raw),
		"granted_until": exp.UTC().Format(time.RFC3339),
	})
}

// anchors returns a trust store holding the service's anchor, or key under
// the anchor's issuer name when key is not nil.
func (a *authServer) anchors(t testing.TB, key crypto.PublicKey) trust.Store {
	t.Helper()
	name, err := token.AnchorName(a.anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	if key == nil {
		key = a.anchor.Public()
	}
	s, err := trust.NewMemoryStore(trust.Anchor{Issuer: name, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTokenClient(a *authServer, srv *httptest.Server) *TokenClient {
	return &TokenClient{Endpoint: srv.URL + TokenPath, Credential: a.credential, HTTPClient: srv.Client()}
}

func TestFetchToken(t *testing.T) {
	a, srv := newAuthServer(t)
	pop := mustKey(t, KeyP256)
	c := newTokenClient(a, srv)
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1", "id:0123456789abcdef0123456789abcdef"}, Scope: []string{"read-data", "configure"}, Key: pop.Public()}
	tok, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Verified || !token.EqualKeys(tok.Key, pop.Public()) || tok.Scope.String() != "read-data configure" || len(tok.Audience) != 2 {
		t.Errorf("token %+v", tok)
	}
	if d := time.Until(tok.Expiry); d < 50*time.Minute || d > time.Hour {
		t.Errorf("expiry in %v", d)
	}
	// The body is exactly the JSON of docs/PROTOCOL.md section 9.
	var body map[string]any
	if err := json.Unmarshal(*a.lastBody.Load(), &body); err != nil {
		t.Fatal(err)
	}
	pemKey, _ := token.MarshalPublicKeyPEM(pop.Public())
	if body["grant_type"] != "client_credentials" || body["scope"] != "read-data configure" || body["cnf"] != string(pemKey) {
		t.Errorf("request body %v", body)
	}
	// With anchors, the signature is verified.
	c.Anchors = a.anchors(t, nil)
	tok, err = c.Fetch(context.Background(), req)
	if err != nil || !tok.Verified {
		t.Fatalf("verified fetch: %v, %+v", err, tok)
	}
	other := mustP256(t)
	c.Anchors = a.anchors(t, other.Public())
	_, err = c.Fetch(context.Background(), req)
	var ce *TokenCheckError
	if !errors.As(err, &ce) || ce.Check != "signature" || !errors.Is(err, token.ErrSignature) {
		t.Errorf("token signed by another anchor: %v", err)
	}
	c.Anchors = &trust.MemoryStore{}
	if _, err := c.Fetch(context.Background(), req); !errors.Is(err, ErrTokenMismatch) || !errors.Is(err, trust.ErrUnknownAnchor) {
		t.Errorf("unknown anchor: %v", err)
	}
}

// The client refuses a token that is not the one it asked for.
func TestFetchTokenChecks(t *testing.T) {
	pop := mustKey(t, KeyP256)
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()}
	for _, tc := range []struct {
		check string
		setup func(a *authServer)
	}{
		{"cnf", func(a *authServer) { a.grantKey = mustKey(t, KeyP256).Public() }},
		{"aud", func(a *authServer) { a.grantAud = []string{"ep:hvac-1", "ep:hvac-2"} }},
		{"scope", func(a *authServer) { a.grantScope = "read-data configure" }},
		{"scope", func(a *authServer) { a.grantScope = "configure" }},
		{"expiry", func(a *authServer) { a.lifetime = -time.Minute }},
	} {
		t.Run(tc.check, func(t *testing.T) {
			a, srv := newAuthServer(t)
			tc.setup(a)
			_, err := newTokenClient(a, srv).Fetch(context.Background(), req)
			var ce *TokenCheckError
			if !errors.As(err, &ce) || ce.Check != tc.check || !errors.Is(err, ErrTokenMismatch) {
				t.Fatalf("got %v, want a %s check error", err, tc.check)
			}
		})
	}
}

func TestFetchTokenServiceErrors(t *testing.T) {
	pop := mustKey(t, KeyP256)
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()}
	t.Run("unauthorized", func(t *testing.T) {
		a, srv := newAuthServer(t)
		c := newTokenClient(a, srv)
		c.Credential = "wrong"
		_, err := c.Fetch(context.Background(), req)
		var se *ServiceError
		if !errors.As(err, &se) || se.StatusCode != 401 || se.Code != 401 || se.Type != "unauthorized" || se.RequestID != "req-1" {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("fields", func(t *testing.T) {
		a, srv := newAuthServer(t)
		a.body = func() (int, string) {
			return 403, `{"object":"error","code":403,"type":"access_denied","message":"not permitted","fields":[{"name":"scope","message":"configure not permitted"}],"request_id":"r2"}`
		}
		_, err := newTokenClient(a, srv).Fetch(context.Background(), req)
		var se *ServiceError
		if !errors.As(err, &se) || se.StatusCode != 403 || len(se.Fields) != 1 || se.Fields[0] != (FieldError{"scope", "configure not permitted"}) {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		a, srv := newAuthServer(t)
		a.body = func() (int, string) { return 502, "<html>bad gateway</html>" }
		_, err := newTokenClient(a, srv).Fetch(context.Background(), req)
		var se *ServiceError
		if !errors.As(err, &se) || se.StatusCode != 502 || se.Type != "" || se.Message != "" {
			t.Fatalf("got %#v", err)
		}
	})
	for name, body := range map[string]string{
		"huge":          `{"access_token":"` + strings.Repeat("A", MaxTokenResponseSize) + `","granted_until":"2030-01-01T00:00:00Z"}`,
		"not json":      `access_token=abc`,
		"no token":      `{"granted_until":"2030-01-01T00:00:00Z"}`,
		"bad base64":    `{"access_token":"***","granted_until":"2030-01-01T00:00:00Z"}`,
		"bad time":      `{"access_token":"0oA=","granted_until":"tomorrow"}`,
		"token too big": `{"access_token":"` + strings.Repeat("AAAA", token.MaxTokenSize) + `","granted_until":"2030-01-01T00:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			a, srv := newAuthServer(t)
			a.body = func() (int, string) { return 200, body }
			if _, err := newTokenClient(a, srv).Fetch(context.Background(), req); !errors.Is(err, ErrBadResponse) {
				t.Fatalf("got %v, want ErrBadResponse", err)
			}
		})
	}
	t.Run("not a token", func(t *testing.T) {
		a, srv := newAuthServer(t)
		a.body = func() (int, string) { return 200, `{"access_token":"0oA=","granted_until":"2030-01-01T00:00:00Z"}` }
		if _, err := newTokenClient(a, srv).Fetch(context.Background(), req); !errors.Is(err, ErrTokenMismatch) || !errors.Is(err, token.ErrMalformed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("granted until", func(t *testing.T) {
		// granted_until earlier than exp bounds the token's use.
		a, srv := newAuthServer(t)
		until := time.Now().Add(10 * time.Minute).Truncate(time.Second).UTC()
		raw := issue(t, a.anchor, pop.Public(), req.Audience, "read-data", time.Now().Add(time.Hour))
		a.body = func() (int, string) {
			return 200, `{"access_token":"` + base64.StdEncoding.EncodeToString(raw) + `","granted_until":"` + until.Format(time.RFC3339) + `"}`
		}
		tok, err := newTokenClient(a, srv).Fetch(context.Background(), req)
		if err != nil || !tok.Expiry.Equal(until) {
			t.Fatalf("got %v, %v; want expiry %v", tok, err, until)
		}
	})
	t.Run("context", func(t *testing.T) {
		a, srv := newAuthServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := newTokenClient(a, srv).Fetch(ctx, req); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

// Requests outside the limits of docs/PROTOCOL.md are refused before anything is
// sent (token.TestAccessRequestLimits has every limit at N and N+1).
func TestTokenRequestLimits(t *testing.T) {
	key := mustKey(t, KeyP256).Public()
	bad := map[string]*token.AccessRequest{
		"nil":           nil,
		"no audience":   {Scope: []string{"a"}, Key: key},
		"61 characters": {Audience: []string{"ep:" + strings.Repeat("A", 61)}, Scope: []string{"a"}, Key: key},
		"scope space":   {Audience: []string{"ep:a"}, Scope: []string{"a b"}, Key: key},
		"no key":        {Audience: []string{"ep:a"}, Scope: []string{"a"}},
	}
	a, srv := newAuthServer(t)
	c := newTokenClient(a, srv)
	for name, r := range bad {
		if _, err := c.Fetch(context.Background(), r); !errors.Is(err, ErrInvalid) || !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid and token.ErrInvalid", name, err)
		}
	}
	if n := a.requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestTokenClientConfig(t *testing.T) {
	req := &token.AccessRequest{Audience: []string{"ep:a"}, Scope: []string{"a"}, Key: mustKey(t, KeyP256).Public()}
	for name, c := range map[string]*TokenClient{
		"plain http":       {Endpoint: "http://auth.example.com/ace-auth/token", Credential: "x"},
		"relative":         {Endpoint: "/ace-auth/token", Credential: "x"},
		"no credential":    {Endpoint: "https://auth.example.com/ace-auth/token"},
		"header injection": {Endpoint: "https://auth.example.com/ace-auth/token", Credential: "x\r\nX-Evil: 1"},
		"ftp":              {Endpoint: "ftp://127.0.0.1/", Credential: "x"},
	} {
		if _, err := c.Fetch(context.Background(), req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	for _, ep := range []string{"https://auth.example.com/x", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://localhost/x"} {
		if _, err := (&TokenClient{Endpoint: ep}).endpoint(); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
}

func TestCheckTokenInput(t *testing.T) {
	if _, err := CheckToken(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil check: %v", err)
	}
	pop := mustKey(t, KeyEd25519)
	raw := issue(t, mustP256(t), pop.Public(), []string{"ep:a"}, "read-data", testNow.Add(time.Hour))
	tok, err := CheckToken(raw, &TokenCheck{Key: pop.Public(), Audience: []string{"ep:a"}, Scope: []string{"read-data"}, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(testNow.Add(time.Hour)) || tok.Verified {
		t.Errorf("v2 token %+v", tok)
	}
	if _, err := CheckToken(raw, &TokenCheck{Key: pop.Public(), Now: testNow.Add(2 * time.Hour)}); !errors.Is(err, ErrTokenMismatch) {
		t.Errorf("expired: %v", err)
	}
}

// TestFetchTokenRefusesInsecureRedirect: net/http keeps the Authorization
// header on a redirect to the same host, even from https to plain http. The
// client must not follow the service to an endpoint it would refuse, so that
// the bearer credential never crosses the network in clear.
func TestFetchTokenRefusesInsecureRedirect(t *testing.T) {
	var leaked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		writeError(w, http.StatusNotFound, "not_found", "nothing here")
	}))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com"+TokenPath, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(secure.Close)
	// example.com (a name the test certificate holds) is served by the two
	// test servers: https by secure, http by plain.
	tr := secure.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch addr {
		case "example.com:443":
			addr = secure.Listener.Addr().String()
		case "example.com:80":
			addr = plain.Listener.Addr().String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c := &TokenClient{Endpoint: "https://example.com" + TokenPath, Credential: "s3cret", HTTPClient: &http.Client{Transport: tr}}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: mustKey(t, KeyP256).Public()}
	_, err := c.Fetch(context.Background(), req)
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the bearer credential was sent over plain http %d times", n)
	}
	if !errors.Is(err, ErrBadResponse) {
		t.Fatalf("redirect to plain http: %v, want ErrBadResponse", err)
	}
}

// TestFetchTokenGrantedUntilPast: the token is used until the earlier of
// its exp and granted_until, so a token whose grant has already ended is
// refused like an expired one rather than handed out.
func TestFetchTokenGrantedUntilPast(t *testing.T) {
	a, srv := newAuthServer(t)
	pop := mustKey(t, KeyP256)
	a.body = func() (int, string) {
		raw := issue(t, a.anchor, pop.Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour))
		b, _ := json.Marshal(map[string]string{
			"access_token":  base64.StdEncoding.EncodeToString(raw),
			"granted_until": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		})
		return http.StatusOK, string(b)
	}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()}
	tok, err := newTokenClient(a, srv).Fetch(context.Background(), req)
	var ce *TokenCheckError
	if !errors.As(err, &ce) || ce.Check != "expiry" || !errors.Is(err, ErrTokenMismatch) {
		t.Fatalf("got %+v, %v; want an expiry check error", tok, err)
	}
}
