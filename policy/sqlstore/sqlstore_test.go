package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// testDB opens the database named by SDA_TEST_POSTGRES_DSN (see
// .ci/postgres.sh) and returns it with a fresh schema name that is dropped
// when the test ends. Without the variable the test is skipped, except in
// CI (CI=true), where it fails.
func testDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := os.Getenv("SDA_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Missing(t, "SDA_TEST_POSTGRES_DSN is not set; start PostgreSQL with: eval \"$(bash .ci/postgres.sh start)\"")
	}
	db := openDB(t, dsn)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
	})
	return db, schema
}

func openDB(t testing.TB, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(10)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("PostgreSQL at SDA_TEST_POSTGRES_DSN: %v", err)
	}
	return db
}

const (
	dev1 = "0123456789abcdef0123456789abcdef"
	dev2 = "fedcba9876543210fedcba9876543210"
)

func allowAll(id, user string) *policy.Policy {
	return &policy.Policy{
		ID: id, Status: policy.Active, Effect: policy.Allow,
		Subjects:      policy.Subjects{Users: []string{user}},
		Operations:    []policy.OperationRule{{Name: "read"}},
		Devices:       policy.DeviceSelector{All: true},
		TokenLifetime: 2 * time.Hour,
	}
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	// Opening again is idempotent.
	if _, err := Open(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	seven := int64(7)
	p := allowAll("p1", "alice")
	p.Operations = append(p.Operations, policy.OperationRule{Name: "set", Constraints: []policy.ArgConstraint{{Arg: 0, Equals: &policy.ArgValue{Int: &seven}}}})
	p.ValidUntil = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Delegation = &policy.DelegationRule{MaxDepth: 2, Operations: []string{"set"}}
	_, k, _ := policy.NewAPIKey(nil, "k1", "alice", false, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	seq1, err := s.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"techs"}}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
		policy.PutPolicy(p),
		policy.PutAPIKey(k),
	)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Seq != seq1 || len(snap.Policies) != 1 || len(snap.Subjects) != 1 || len(snap.Devices) != 1 || len(snap.APIKeys) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	if diff := cmp.Diff(p, snap.Policies[0]); diff != "" {
		t.Errorf("policy round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(k, snap.APIKeys[0]); diff != "" {
		t.Errorf("API key round trip (-want +got):\n%s", diff)
	}

	// Update and delete.
	p2 := allowAll("p1", "bob")
	seq2, err := s.Apply(ctx, policy.PutPolicy(p2), policy.DeleteRecord(policy.KindDevice, dev1))
	if err != nil || seq2 <= seq1 {
		t.Fatalf("Apply = %d, %v", seq2, err)
	}
	changes, err := s.Changes(ctx, seq1)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("changes %+v", changes)
	}
	for _, c := range changes {
		if c.Seq != seq2 {
			t.Errorf("change %+v has seq %d, want %d", c, c.Seq, seq2)
		}
		switch c.Kind {
		case policy.KindDevice:
			if !c.Delete || c.ID != dev1 {
				t.Errorf("device change %+v", c)
			}
		case policy.KindPolicy:
			if diff := cmp.Diff(p2, c.Policy); diff != "" {
				t.Errorf("policy change (-want +got):\n%s", diff)
			}
		}
	}
	if changes, err := s.Changes(ctx, seq2); err != nil || len(changes) != 0 {
		t.Errorf("Changes(latest) = %v, %v", changes, err)
	}
	if _, err := s.Changes(ctx, seq2+10); !errors.Is(err, policy.ErrChangesTruncated) {
		t.Errorf("Changes(future) = %v", err)
	}
	snap, _ = s.Snapshot(ctx)
	if len(snap.Devices) != 0 || snap.Policies[0].Subjects.Users[0] != "bob" {
		t.Errorf("snapshot after update %+v", snap)
	}

	// Invalid input is refused before the database sees it.
	bad := allowAll("p2", "alice")
	bad.TokenLifetime = time.Second
	if _, err := s.Apply(ctx, policy.PutPolicy(bad)); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("invalid policy: %v", err)
	}
	// A valid record that PostgreSQL's jsonb cannot hold (a NUL character)
	// is invalid input, not an internal error.
	nul := allowAll("p-nul", "alice")
	nul.Description = "a\x00b"
	if _, err := s.Apply(ctx, policy.PutPolicy(nul)); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("NUL in a policy: %v, want ErrInvalid", err)
	}
	if _, err := Open(ctx, db, `x"; DROP TABLE y; --`); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("bad schema name: %v", err)
	}
}

func TestConflictsAreAtomic(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx,
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}),
		policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-2"}),
	); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Snapshot(ctx)
	// A policy and a device stealing an endpoint name: neither is written.
	_, err = s.Apply(ctx, policy.PutPolicy(allowAll("p1", "alice")), policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-1"}))
	if !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
	after, _ := s.Snapshot(ctx)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("failed batch changed the store:\n%s", diff)
	}
	// Swapping the names within one batch is allowed.
	if _, err := s.Apply(ctx,
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-2"}),
		policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-1"}),
	); err != nil {
		t.Fatalf("swap: %v", err)
	}
	// A deleted device frees its name.
	if _, err := s.Apply(ctx, policy.DeleteRecord(policy.KindDevice, dev1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, policy.PutDevice(&policy.Device{ID: "00000000000000000000000000000003", EndpointName: "hvac-2"})); err != nil {
		t.Fatalf("reuse of a freed name: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Each batch writes two policies; one is shared by all writers.
				_, err := s.Apply(ctx,
					policy.PutPolicy(allowAll(fmt.Sprintf("w%d-%d", w, i), "alice")),
					policy.PutPolicy(allowAll("shared", fmt.Sprintf("user%d", w))),
				)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Seq != writers*each || len(snap.Policies) != writers*each+1 {
		t.Fatalf("seq %d, %d policies; want %d, %d", snap.Seq, len(snap.Policies), writers*each, writers*each+1)
	}
	// Replaying all changes gives the snapshot.
	changes, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var e policy.Engine
	if err := e.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	snap.Seq = 0
	if diff := cmp.Diff(snap, e.Snapshot()); diff != "" {
		t.Fatalf("replayed changes differ from the snapshot:\n%s", diff)
	}
}

// twoStores opens one fresh schema through two connection pools, as two
// service instances sharing a database would.
func twoStores(t *testing.T) (*Store, *Store) {
	t.Helper()
	db1, schema := testDB(t)
	db2 := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
	s1, err := Open(context.Background(), db1, schema)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), db2, schema)
	if err != nil {
		t.Fatal(err)
	}
	return s1, s2
}

// TestTwoServicesShareOneDatabase runs two service instances, each with its
// own connection pool, on one schema: a change made through either is seen
// by the other at its next decision, without restart.
func TestTwoServicesShareOneDatabase(t *testing.T) {
	ctx := context.Background()
	s1, s2 := twoStores(t)
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := &policy.Service{Store: s1, Signer: anchor}
	b := &policy.Service{Store: s2, Signer: anchor}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &pop.PublicKey}

	if err := a.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Issue(ctx, "alice", req); !errors.Is(err, policy.ErrNoAllowPolicy) {
		t.Fatalf("before the policy: %v", err)
	}
	// A policy written through a is used by b.
	if err := a.Apply(ctx, policy.PutPolicy(allowAll("p1", "alice"))); err != nil {
		t.Fatal(err)
	}
	tok, err := b.Issue(ctx, "alice", req)
	if err != nil {
		t.Fatalf("b after a's write: %v", err)
	}
	if _, err := token.Parse(tok.Token); err != nil {
		t.Fatal(err)
	}
	// A deny written through b stops a.
	deny := allowAll("d1", "alice")
	deny.Effect, deny.TokenLifetime = policy.Deny, 0
	if err := b.Apply(ctx, policy.PutPolicy(deny)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Issue(ctx, "alice", req); !errors.Is(err, policy.ErrDenyPolicy) {
		t.Fatalf("a after b's deny: %v", err)
	}
	// Deleting it through the store directly (a third writer) re-allows both.
	if _, err := s2.Apply(ctx, policy.DeleteRecord(policy.KindPolicy, "d1")); err != nil {
		t.Fatal(err)
	}
	for name, svc := range map[string]*policy.Service{"a": a, "b": b} {
		if _, err := svc.Issue(ctx, "alice", req); err != nil {
			t.Errorf("%s after delete: %v", name, err)
		}
	}
	// An API key created through a authenticates on b.
	secret, key, err := policy.NewAPIKey(nil, "k", "alice", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, policy.PutAPIKey(key)); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", policy.TrustAnchorsPath, nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("b with a key created through a: %d %s", w.Code, w.Body)
	}
}

func TestCorruptRecordFailsClosed(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, policy.PutPolicy(allowAll("p1", "alice"))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE "`+schema+`".sda_records SET body = '{"id":"p1","status":"active","extra":1}', seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE "`+schema+`".sda_meta SET seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Snapshot = %v, want ErrInvalid", err)
	}
	if _, err := s.Changes(ctx, 1); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Changes = %v, want ErrInvalid", err)
	}
	svc := &policy.Service{Store: s}
	if err := svc.Sync(ctx); !errors.Is(err, policy.ErrUnavailable) {
		t.Errorf("Sync = %v, want ErrUnavailable", err)
	}
}

// TestServiceFollowsMovedNames: a batch may move an endpoint name from one
// device to another, and a lagging instance sees only the latest version of
// each record; an instance following the store must still take the
// changes (and not stay unavailable).
func TestServiceFollowsMovedNames(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: s, Signer: anchor}
	onlyDev2 := allowAll("p1", "alice")
	onlyDev2.Devices = policy.DeviceSelector{IDs: []string{dev2}}
	if _, err := s.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}),
		policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-2"}),
		policy.PutPolicy(onlyDev2),
	); err != nil {
		t.Fatal(err)
	}
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	issue := func(aud string) error {
		_, err := svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{aud}, Scope: []string{"read"}, Key: &pop.PublicKey})
		return err
	}

	// Swap the names in one batch: hvac-1 is now dev2.
	if _, err := s.Apply(ctx,
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-2"}),
		policy.PutDevice(&policy.Device{ID: dev2, EndpointName: "hvac-1"}),
	); err != nil {
		t.Fatal(err)
	}
	if err := issue("ep:hvac-1"); err != nil {
		t.Fatalf("hvac-1 after the swap: %v", err)
	}
	if err := issue("ep:hvac-2"); !errors.Is(err, policy.ErrNoAllowPolicy) {
		t.Fatalf("hvac-2 after the swap: %v, want ErrNoAllowPolicy", err)
	}

	// Across batches: dev1 frees hvac-2, dev3 takes it, dev1 changes again.
	// The lagging instance sees dev3 (hvac-2) before dev1's last version.
	const dev3 = "00000000000000000000000000000003"
	for _, d := range []*policy.Device{
		{ID: dev1, EndpointName: "tmp"},
		{ID: dev3, EndpointName: "hvac-2"},
		{ID: dev1, EndpointName: "hvac-9"},
	} {
		if _, err := s.Apply(ctx, policy.PutDevice(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Sync(ctx); err != nil {
		t.Fatalf("Sync after moved names: %v", err)
	}
	if err := issue("ep:hvac-9"); !errors.Is(err, policy.ErrNoAllowPolicy) {
		t.Fatalf("hvac-9: %v, want ErrNoAllowPolicy", err)
	}
}

// TestCreateAcrossInstances creates one API key id from two stores with
// their own connection pools at once: exactly one creation succeeds.
func TestCreateAcrossInstances(t *testing.T) {
	ctx := context.Background()
	s1, s2 := twoStores(t)
	if _, err := s1.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User})); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, k, err := policy.NewAPIKey(nil, "dup", "alice", false, time.Now())
			if err != nil {
				errs <- err
				return
			}
			_, err = []*Store{s1, s2}[i%2].Apply(ctx, policy.CreateAPIKey(k))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	created := 0
	for err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, policy.ErrConflict):
			t.Fatalf("Apply: %v", err)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent creations of one id succeeded, want 1", created, n)
	}
	// A deleted id can be created again; the log holds plain puts.
	_, k, _ := policy.NewAPIKey(nil, "dup", "alice", false, time.Now())
	if _, err := s2.Apply(ctx, policy.DeleteRecord(policy.KindAPIKey, "dup"), policy.CreateAPIKey(k)); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	changes, err := s1.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Create {
			t.Fatalf("change log returns a creation: %+v", c)
		}
	}
}

// TestIfMatchAcrossInstances: read-modify-writes of one subject through
// two stores at once, each conditional on what it read and retried on a
// conflict, lose no update.
func TestIfMatchAcrossInstances(t *testing.T) {
	ctx := context.Background()
	s1, s2 := twoStores(t)
	alice := &policy.Subject{ID: "alice", Kind: policy.User}
	if _, err := s1.Apply(ctx, policy.PutSubject(alice)); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			st := []*Store{s1, s2}[i%2]
			for {
				snap, err := st.Snapshot(ctx)
				if err != nil {
					errs <- err
					return
				}
				var cur *policy.Subject
				for _, s := range snap.Subjects {
					if s.ID == "alice" {
						cur = s
					}
				}
				neu := *cur
				neu.Groups = append(slices.Clone(cur.Groups), fmt.Sprintf("g%02d", i))
				c := policy.PutSubject(&neu)
				m := policy.PutSubject(cur)
				c.IfMatch = &m
				_, err = st.Apply(ctx, c)
				if errors.Is(err, policy.ErrConflict) {
					continue
				}
				errs <- err
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Subjects[0].Groups; len(got) != n {
		t.Fatalf("groups %v: %d of %d updates kept", got, len(got), n)
	}
	// A stale condition, and one on a deleted record, fail and write nothing.
	stale := policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"x"}})
	m := policy.PutSubject(alice)
	stale.IfMatch = &m
	if _, err := s1.Apply(ctx, stale); !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("stale: %v", err)
	}
	if _, err := s1.Apply(ctx, policy.DeleteRecord(policy.KindSubject, "alice"), stale); !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("deleted in the batch: %v", err)
	}
	changes, err := s1.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.IfMatch != nil {
			t.Fatalf("change log returns a condition: %+v", c)
		}
	}
	if snap2, _ := s1.Snapshot(ctx); snap2.Seq != snap.Seq {
		t.Fatalf("failed batches wrote: seq %d, then %d", snap.Seq, snap2.Seq)
	}
}

// TestConditionalPutAcrossServices: two service instances, each with its
// own connection pool on one schema, update one policy through the
// administration API with the same ETag (If-Match) and create one id
// (If-None-Match: *) at once: each time exactly one write succeeds, the
// other is answered 412 and nothing is lost. Both instances send the same
// ETag for a record.
func TestConditionalPutAcrossServices(t *testing.T) {
	ctx := context.Background()
	s1, s2 := twoStores(t)
	secret, key, err := policy.NewAPIKey(nil, "admin", "root", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "root", Kind: policy.User}), policy.PutAPIKey(key)); err != nil {
		t.Fatal(err)
	}
	svcs := []*policy.Service{{Store: s1}, {Store: s2}}
	do := func(svc *policy.Service, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+secret)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		return w
	}
	policyJSON := func(id, op string) string {
		return fmt.Sprintf(`{"id":%q,"status":"active","effect":"allow","subjects":{"users":["alice"]},"operations":[{"name":%q}],"devices":{"all":true},"token_lifetime_seconds":3600}`, id, op)
	}
	oneWins := func(t *testing.T, codes []int) int {
		t.Helper()
		winner := -1
		for i, c := range codes {
			switch {
			case c == http.StatusOK && winner < 0:
				winner = i
			case c == http.StatusPreconditionFailed:
			default:
				t.Fatalf("codes %v, want one 200 and one 412", codes)
			}
		}
		if winner < 0 {
			t.Fatalf("codes %v, want one 200 and one 412", codes)
		}
		return winner
	}
	race := func(paths, bodies []string, hdr ...string) []int {
		codes := make([]int, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				<-start
				codes[i] = do(svcs[i], "PUT", paths[i], bodies[i], hdr...).Code
			})
		}
		close(start)
		wg.Wait()
		return codes
	}
	if w := do(svcs[0], "PUT", "/admin/v1/policies/p", policyJSON("p", "read")); w.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	for round := range 8 {
		w0 := do(svcs[0], "GET", "/admin/v1/policies/p", "")
		w1 := do(svcs[1], "GET", "/admin/v1/policies/p", "")
		et := w0.Header().Get("ETag")
		if et == "" || w1.Header().Get("ETag") != et || w0.Body.String() != w1.Body.String() {
			t.Fatalf("round %d: the instances disagree: %q %s, %q %s", round, et, w0.Body, w1.Header().Get("ETag"), w1.Body)
		}
		bodies := []string{policyJSON("p", fmt.Sprintf("a%d", round)), policyJSON("p", fmt.Sprintf("b%d", round))}
		winner := oneWins(t, race([]string{"/admin/v1/policies/p", "/admin/v1/policies/p"}, bodies, "If-Match", et))
		for _, svc := range svcs {
			if got := do(svc, "GET", "/admin/v1/policies/p", ""); got.Body.String() != bodies[winner] {
				t.Fatalf("round %d: %s, want the winner's %s", round, got.Body, bodies[winner])
			}
		}
		id := fmt.Sprintf("new%d", round)
		path := "/admin/v1/policies/" + id
		oneWins(t, race([]string{path, path}, []string{policyJSON(id, "x"), policyJSON(id, "y")}, "If-None-Match", "*"))
	}
}

// TestSnapshotManyRecords: a snapshot of more records than one decoding
// chunk holds lists every record once, each kind sorted by id whatever
// order the rows come in, and fails closed on a corrupt record in any
// chunk.
func TestSnapshotManyRecords(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*snapshotChunkRecords + 7
	var changes []policy.Change
	for i := range n {
		// Written in an order that is not the ids' order.
		changes = append(changes, policy.PutPolicy(allowAll(fmt.Sprintf("p%05d", (i*7919)%n), "alice")))
	}
	// Ids that a collation-aware order would place differently (en_US
	// puts "a" before "B" and ignores the "_"), written in the reverse of
	// their bytewise order.
	mixed := []string{"B", "a", "a_b", "ab"}
	for _, id := range slices.Backward(mixed) {
		changes = append(changes, policy.PutPolicy(allowAll(id, "alice")))
	}
	changes = append(changes, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}))
	if _, err := s.Apply(ctx, changes...); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Policies) != n+len(mixed) || len(snap.Subjects) != 1 {
		t.Fatalf("%d policies and %d subjects, want %d and 1", len(snap.Policies), len(snap.Subjects), n+len(mixed))
	}
	want := slices.Clone(mixed) // bytewise: "B" < "a" < "a_b" < "ab" < "p00000"
	for i := range n {
		want = append(want, fmt.Sprintf("p%05d", i))
	}
	for i, p := range snap.Policies {
		if p.ID != want[i] {
			t.Fatalf("policy %d is %q, want %q: not in bytewise order", i, p.ID, want[i])
		}
	}
	for _, id := range []string{"p00000", fmt.Sprintf("p%05d", 2*snapshotChunkRecords+1), fmt.Sprintf("p%05d", n-1)} {
		t.Run("corrupt "+id, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, `UPDATE "`+schema+`".sda_records SET body = body || '{"extra":1}' WHERE kind = 'policy' AND id = $1`, id); err != nil {
				t.Fatal(err)
			}
			defer db.ExecContext(ctx, `UPDATE "`+schema+`".sda_records SET body = body - 'extra' WHERE kind = 'policy' AND id = $1`, id)
			if _, err := s.Snapshot(ctx); !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Snapshot = %v, want ErrInvalid", err)
			}
		})
	}
}
