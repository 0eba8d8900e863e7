package policy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/securedeviceaccess/sda/token"
)

// recordingMetrics records what a Service reports to its Metrics.
type recordingMetrics struct {
	mu        sync.Mutex
	issued    int
	denied    map[DenyReason]int
	decisions int
	signings  int
	storeOps  map[StoreOp]int
	storeErrs map[StoreOp][]error
	changes   int
	snapshots map[SnapshotReason]int
	http      map[string]int // "route status"
	negative  bool           // a negative duration was reported
}

func newRecordingMetrics() *recordingMetrics {
	return &recordingMetrics{
		denied:    map[DenyReason]int{},
		storeOps:  map[StoreOp]int{},
		storeErrs: map[StoreOp][]error{},
		snapshots: map[SnapshotReason]int{},
		http:      map[string]int{},
	}
}

func (m *recordingMetrics) duration(d time.Duration) {
	if d < 0 {
		m.negative = true
	}
}

func (m *recordingMetrics) TokenIssued() { m.mu.Lock(); m.issued++; m.mu.Unlock() }
func (m *recordingMetrics) TokenDenied(r DenyReason) {
	m.mu.Lock()
	m.denied[r]++
	m.mu.Unlock()
}
func (m *recordingMetrics) Decision(d time.Duration) {
	m.mu.Lock()
	m.decisions++
	m.duration(d)
	m.mu.Unlock()
}
func (m *recordingMetrics) Signing(d time.Duration) {
	m.mu.Lock()
	m.signings++
	m.duration(d)
	m.mu.Unlock()
}
func (m *recordingMetrics) StoreOperation(op StoreOp, d time.Duration, err error) {
	m.mu.Lock()
	m.storeOps[op]++
	if err != nil {
		m.storeErrs[op] = append(m.storeErrs[op], err)
	}
	m.duration(d)
	m.mu.Unlock()
}
func (m *recordingMetrics) ChangesApplied(n int) { m.mu.Lock(); m.changes += n; m.mu.Unlock() }
func (m *recordingMetrics) SnapshotLoaded(r SnapshotReason) {
	m.mu.Lock()
	m.snapshots[r]++
	m.mu.Unlock()
}
func (m *recordingMetrics) HTTPRequest(route string, status int, d time.Duration) {
	m.mu.Lock()
	m.http[route+" "+http.StatusText(status)]++
	m.duration(d)
	m.mu.Unlock()
}

func TestMetricsIssueAndDeny(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	m := newRecordingMetrics()
	env.svc.Metrics = m
	ctx := context.Background()
	read := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
	for range 2 {
		if _, err := env.svc.Issue(ctx, "alice", read); err != nil {
			t.Fatal(err)
		}
	}
	write := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"write"}, Key: &env.pop.PublicKey}
	if _, err := env.svc.Issue(ctx, "alice", write); !errors.Is(err, ErrDenied) {
		t.Fatalf("write: %v", err)
	}
	if _, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no key: %v", err)
	}

	if m.issued != 2 {
		t.Errorf("issued = %d, want 2", m.issued)
	}
	if diff := cmp.Diff(map[DenyReason]int{DenyPolicy: 1, DenyInvalid: 1}, m.denied); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	// The invalid request is refused before any decision.
	if m.decisions != 3 || m.signings != 2 {
		t.Errorf("decisions, signings = %d, %d; want 3, 2", m.decisions, m.signings)
	}
	if m.storeOps[StoreRecordIssued] != 2 || m.storeOps[StoreSnapshot] != 1 || m.storeOps[StoreChanges] != 2 {
		t.Errorf("store operations = %v, want 2 record_issued, 1 snapshot, 2 changes", m.storeOps)
	}
	if _, err := env.svc.Issued(ctx, &IssuedFilter{}); err != nil {
		t.Fatal(err)
	}
	if m.storeOps[StoreIssued] != 1 {
		t.Errorf("ledger queries = %d, want 1", m.storeOps[StoreIssued])
	}
	if m.snapshots[SnapshotInitial] != 1 || len(m.storeErrs) != 0 || m.negative {
		t.Errorf("snapshots %v, store errors %v, negative duration %v", m.snapshots, m.storeErrs, m.negative)
	}
}

func TestMetricsStoreErrors(t *testing.T) {
	t.Run("unreachable store", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		m := newRecordingMetrics()
		svc := &Service{Store: failingStore{}, Ledger: NewMemoryStore(), Signer: env.anchor, Metrics: m}
		_, err := svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Issue: %v", err)
		}
		if err := svc.Apply(context.Background(), PutSubject(&Subject{ID: "bob", Kind: User})); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Apply: %v", err)
		}
		if m.denied[DenyUnavailable] != 1 || m.issued != 0 {
			t.Errorf("denied %v, issued %d; want 1 unavailable", m.denied, m.issued)
		}
		for _, op := range []StoreOp{StoreSnapshot, StoreApply} {
			if errs := m.storeErrs[op]; len(errs) != 1 || !errors.Is(errs[0], errStoreDown) {
				t.Errorf("%s errors = %v, want the store's error once", op, errs)
			}
		}
	})
	t.Run("ledger full", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		m := newRecordingMetrics()
		env.svc.Metrics, env.svc.MaxIssued = m, 1
		req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
		if _, err := env.svc.Issue(context.Background(), "alice", req); err != nil {
			t.Fatal(err)
		}
		if _, err := env.svc.Issue(context.Background(), "alice", req); !errors.Is(err, ErrLedgerFull) {
			t.Fatalf("second Issue: %v", err)
		}
		if errs := m.storeErrs[StoreRecordIssued]; len(errs) != 1 || !errors.Is(errs[0], ErrLedgerFull) {
			t.Errorf("record_issued errors = %v, want ErrLedgerFull once", errs)
		}
		if m.issued != 1 || m.denied[DenyUnavailable] != 1 || m.signings != 2 {
			t.Errorf("issued %d, denied %v, signings %d", m.issued, m.denied, m.signings)
		}
	})
	t.Run("truncated change log is no error", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		m := newRecordingMetrics()
		env.svc.Store, env.svc.Ledger, env.svc.Metrics = truncatedStore{&countingStore{MemoryStore: env.store}}, env.store, m
		req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey}
		for range 2 {
			if _, err := env.svc.Issue(context.Background(), "alice", req); err != nil {
				t.Fatal(err)
			}
		}
		if len(m.storeErrs) != 0 {
			t.Errorf("store errors %v", m.storeErrs)
		}
		if diff := cmp.Diff(map[SnapshotReason]int{SnapshotInitial: 1, SnapshotTruncated: 1}, m.snapshots); diff != "" {
			t.Errorf("snapshots (-want +got):\n%s", diff)
		}
	})
}

func TestMetricsChangesAndReloads(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	m := newRecordingMetrics()
	cs := &countingStore{MemoryStore: env.store}
	env.svc.Store, env.svc.Ledger, env.svc.Metrics = collapsingStore{cs}, env.store, m
	ctx := context.Background()
	if err := env.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Two changes through the service, one through the store directly
	// (another instance): three changes taken into the view.
	if err := env.svc.Apply(ctx, PutSubject(&Subject{ID: "bob", Kind: User}), PutSubject(&Subject{ID: "carol", Kind: User})); err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Apply(ctx, PutSubject(&Subject{ID: "dave", Kind: User})); err != nil {
		t.Fatal(err)
	}
	if err := env.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if m.changes != 3 || m.storeOps[StoreApply] != 1 {
		t.Errorf("changes applied %d, store applies %d; want 3, 1", m.changes, m.storeOps[StoreApply])
	}
	// An endpoint name that moves from one device to another in batches
	// of another instance: the collapsed change log gives dev2 the name
	// while dev1 still holds it, the engine refuses it, and a snapshot is
	// loaded instead.
	for _, c := range []Change{
		PutDevice(&Device{ID: dev1, EndpointName: "moving"}),
		PutDevice(&Device{ID: dev2, EndpointName: "hvac-1"}),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-1b"}),
	} {
		if _, err := env.store.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if m.changes != 3 {
		t.Errorf("changes applied %d after the refused log, want still 3", m.changes)
	}
	if diff := cmp.Diff(map[SnapshotReason]int{SnapshotInitial: 1, SnapshotRejected: 1}, m.snapshots); diff != "" {
		t.Errorf("snapshots (-want +got):\n%s", diff)
	}
}

func TestMetricsHTTP(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	m := newRecordingMetrics()
	env.svc.Metrics = m
	ok := env.tokenBody([]string{"ep:hvac-1"}, "read")
	for _, tc := range []struct {
		h                        http.Handler
		method, path, cred, body string
		want                     int
	}{
		{env.svc, "POST", TokenPath, env.aliceKey, ok, 200},
		{env.svc, "POST", TokenPath, env.aliceKey, ok, 200},
		{env.svc, "POST", TokenPath, "", ok, 401},
		{env.svc, "POST", TokenPath, env.aliceKey, `{"grant_type":`, 400},
		{env.svc, "POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "write"), 403},
		{env.svc, "GET", TrustAnchorsPath, env.aliceKey, "", 200},
		{env.svc, "GET", "/admin/v1/policies/p1", env.adminKey, "", 200},
		{env.svc, "GET", "/admin/v1/policies/nope", env.adminKey, "", 404},
		{env.svc, "GET", "/nowhere", "", "", 404},
		{env.svc, "DELETE", TokenPath, "", "", 405},
		{env.svc.PublicHandler(), "GET", "/admin/v1/policies/p1", env.adminKey, "", 404},
	} {
		if w := env.doWith(tc.h, tc.method, tc.path, tc.cred, tc.body); w.Code != tc.want {
			t.Fatalf("%s %s: %d, want %d: %s", tc.method, tc.path, w.Code, tc.want, w.Body)
		}
	}
	want := map[string]int{
		"POST /ace-auth/token OK":               2,
		"POST /ace-auth/token Unauthorized":     1,
		"POST /ace-auth/token Bad Request":      1,
		"POST /ace-auth/token Forbidden":        1,
		"GET /v3/trust-anchors OK":              1,
		"GET /admin/v1/policies/{id} OK":        1,
		"GET /admin/v1/policies/{id} Not Found": 1,
		RouteUnmatched + " Not Found":           2,
		RouteUnmatched + " Method Not Allowed":  1,
	}
	if diff := cmp.Diff(want, m.http); diff != "" {
		t.Errorf("HTTP requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[DenyReason]int{DenyUnauthenticated: 1, DenyInvalid: 1, DenyPolicy: 1}, m.denied); diff != "" {
		t.Errorf("denied (-want +got):\n%s", diff)
	}
	if m.issued != 2 {
		t.Errorf("issued %d, want 2", m.issued)
	}
}

func TestDenyReasonOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want DenyReason
	}{
		{&DeniedError{Decision: &Decision{}}, DenyPolicy},
		{&ValidationError{}, DenyInvalid},
		{errTooLarge, DenyInvalid},
		{errMediaType, DenyInvalid},
		{ErrUnauthenticated, DenyUnauthenticated},
		{ErrLedgerFull, DenyUnavailable},
		{context.DeadlineExceeded, DenyUnavailable},
		{&httpError{status: http.StatusTooManyRequests}, DenyRateLimited},
		{errors.New("something else"), DenyInternal},
	} {
		if got := DenyReasonOf(tc.err); got != tc.want {
			t.Errorf("DenyReasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
