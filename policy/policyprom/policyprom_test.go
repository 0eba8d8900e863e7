package policyprom_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securedeviceaccess/sda/internal/promtest"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policyprom"
	"github.com/securedeviceaccess/sda/token"
)

// flakyStore is a MemoryStore whose writes fail while fail is set.
type flakyStore struct {
	*policy.MemoryStore
	fail atomic.Bool
}

var errDiskGone = errors.New("disk gone")

func (s *flakyStore) Apply(ctx context.Context, changes ...policy.Change) (int64, error) {
	if s.fail.Load() {
		return 0, errDiskGone
	}
	return s.MemoryStore.Apply(ctx, changes...)
}

// testService is a Service that lets alice read hvac-1, with alice's and
// an administrator's API keys.
type testService struct {
	svc          *policy.Service
	store        *flakyStore
	alice, admin string // API key secrets
	pop          *ecdsa.PrivateKey
}

func newTestService(t testing.TB) *testService {
	t.Helper()
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testService{store: &flakyStore{MemoryStore: policy.NewMemoryStore()}, pop: pop}
	now := time.Now()
	aliceSecret, aliceKey, err := policy.NewAPIKey(nil, "alice-key", "alice", false, now)
	if err != nil {
		t.Fatal(err)
	}
	adminSecret, adminKey, err := policy.NewAPIKey(nil, "admin-key", "root", true, now)
	if err != nil {
		t.Fatal(err)
	}
	ts.alice, ts.admin = aliceSecret, adminSecret
	if _, err := ts.store.Apply(context.Background(),
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutSubject(&policy.Subject{ID: "root", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: strings.Repeat("0", 31) + "1", EndpointName: "hvac-1"}),
		policy.PutPolicy(&policy.Policy{
			ID: "read", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Users: []string{"alice"}},
			Operations:    []policy.OperationRule{{Name: "read"}, {Name: "op1"}},
			Devices:       policy.DeviceSelector{All: true},
			TokenLifetime: time.Hour,
		}),
		policy.PutAPIKey(aliceKey), policy.PutAPIKey(adminKey),
	); err != nil {
		t.Fatal(err)
	}
	ts.svc = &policy.Service{Store: ts.store, Signer: anchor, MaxIssued: 1 << 30}
	return ts
}

// request is an access request of alice for hvac-1.
func (ts *testService) request(scope ...string) *token.AccessRequest {
	return &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: scope, Key: &ts.pop.PublicKey}
}

func (ts *testService) tokenBody(t testing.TB, scope string) string {
	pemBytes, err := token.MarshalPublicKeyPEM(&ts.pop.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"grant_type": "client_credentials", "aud": []string{"ep:hvac-1"}, "scope": scope, "cnf": string(pemBytes)})
	return string(b)
}

func post(t *testing.T, url, method, credential, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestScrape runs real issuances, denials and store errors through the
// service's HTTP API, scrapes the metrics endpoint and checks what the
// Prometheus text parser reads there.
func TestScrape(t *testing.T) {
	ts := newTestService(t)
	reg := prometheus.NewRegistry()
	m, err := policyprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ts.svc.Metrics = m
	api := httptest.NewServer(ts.svc)
	defer api.Close()
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()

	for _, tc := range []struct {
		method, path, cred, body string
		want                     int
	}{
		{"POST", policy.TokenPath, ts.alice, ts.tokenBody(t, "read"), 200},
		{"POST", policy.TokenPath, ts.alice, ts.tokenBody(t, "read op1"), 200},
		{"POST", policy.TokenPath, ts.alice, ts.tokenBody(t, "write"), 403},
		{"POST", policy.TokenPath, "wrong", ts.tokenBody(t, "read"), 401},
		{"POST", policy.TokenPath, ts.alice, `{"grant_type":"password"}`, 400},
		{"PUT", "/admin/v1/subjects/bob", ts.admin, `{"id":"bob","kind":"user"}`, 200},
		{"GET", "/admin/v1/nowhere", ts.admin, "", 404},
	} {
		if got := post(t, api.URL+tc.path, tc.method, tc.cred, tc.body); got != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	ts.store.fail.Store(true)
	if got := post(t, api.URL+"/admin/v1/subjects/carol", "PUT", ts.admin, `{"id":"carol","kind":"user"}`); got != 503 {
		t.Fatalf("PUT with the store failing: %d, want 503", got)
	}
	ts.store.fail.Store(false)

	f := promtest.Scrape(t, nil, metrics.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sda_tokens_issued_total", nil, 2},
		{"sda_tokens_denied_total", []string{"reason", "policy"}, 1},
		{"sda_tokens_denied_total", []string{"reason", "unauthenticated"}, 1},
		{"sda_tokens_denied_total", []string{"reason", "invalid"}, 1},
		{"sda_tokens_denied_total", []string{"reason", "unavailable"}, 0},
		{"sda_tokens_denied_total", []string{"reason", "rate_limited"}, 0},
		{"sda_decision_duration_seconds", nil, 3},
		{"sda_signing_duration_seconds", nil, 2},
		{"sda_store_operation_duration_seconds", []string{"operation", "record_issued"}, 2},
		{"sda_store_operation_duration_seconds", []string{"operation", "apply"}, 2},
		{"sda_store_operation_duration_seconds", []string{"operation", "snapshot"}, 1},
		{"sda_store_errors_total", []string{"operation", "apply"}, 1},
		{"sda_store_errors_total", []string{"operation", "record_issued"}, 0},
		{"sda_policy_changes_applied_total", nil, 1},
		{"sda_policy_snapshot_loads_total", []string{"reason", "initial"}, 1},
		{"sda_http_requests_total", []string{"route", "POST /ace-auth/token", "code", "200"}, 2},
		{"sda_http_requests_total", []string{"route", "POST /ace-auth/token", "code", "403"}, 1},
		{"sda_http_requests_total", []string{"route", "PUT /admin/v1/subjects/{id}", "code", "200"}, 1},
		{"sda_http_requests_total", []string{"route", "PUT /admin/v1/subjects/{id}", "code", "503"}, 1},
		{"sda_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"sda_http_request_duration_seconds", []string{"route", "POST /ace-auth/token"}, 5},
	} {
		if got := f.Value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if typ := f["sda_signing_duration_seconds"].GetType().String(); typ != "HISTOGRAM" {
		t.Errorf("sda_signing_duration_seconds is a %s", typ)
	}
}

// TestStoreRefusalsAreNoStoreErrors: a write the store refuses (a
// conflict) is the caller's error, not the store's.
func TestStoreRefusalsAreNoStoreErrors(t *testing.T) {
	ts := newTestService(t)
	reg := prometheus.NewRegistry()
	m, err := policyprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ts.svc.Metrics = m
	ctx := context.Background()
	if err := ts.svc.Apply(ctx, policy.PutDevice(&policy.Device{ID: strings.Repeat("0", 31) + "2", EndpointName: "hvac-1"})); !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("Apply: %v", err)
	}
	ts.store.fail.Store(true)
	if err := ts.svc.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "x", Kind: policy.User})); !errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("Apply: %v", err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != "sda_store_errors_total" {
			continue
		}
		for _, s := range fam.GetMetric() {
			if s.GetLabel()[0].GetValue() == "apply" && s.GetCounter().GetValue() != 1 {
				t.Errorf("apply errors = %v, want 1 (the failure, not the conflict)", s.GetCounter().GetValue())
			}
		}
		return
	}
	t.Error("no sda_store_errors_total")
}

// TestRegisterTwice: registering a second adapter on one registry fails
// and registers nothing of it.
func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := policyprom.New(reg); err != nil {
		t.Fatal(err)
	}
	before, _ := reg.Gather()
	var are prometheus.AlreadyRegisteredError
	if _, err := policyprom.New(reg); !errors.As(err, &are) {
		t.Fatalf("second New: %v, want an AlreadyRegisteredError", err)
	}
	after, _ := reg.Gather()
	if len(before) != len(after) {
		t.Errorf("%d families before, %d after", len(before), len(after))
	}
	// A registry that takes some collectors and refuses one keeps none.
	partial := prometheus.NewRegistry()
	partial.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sda_policy_changes_applied_total", Help: "taken"}))
	if _, err := policyprom.New(partial); err == nil {
		t.Fatal("New on a registry with a clashing name succeeded")
	}
	if fams, _ := partial.Gather(); len(fams) != 1 {
		t.Errorf("%d families after a failed New, want the 1 registered before", len(fams))
	}
}
