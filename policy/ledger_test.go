package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// issueReq is alice's request for "read" on hvac-1.
func (env *testEnv) issueReq(aud ...string) *token.AccessRequest {
	if len(aud) == 0 {
		aud = []string{"ep:hvac-1"}
	}
	return &token.AccessRequest{Audience: aud, Scope: []string{"read"}, Key: &env.pop.PublicKey}
}

// failingLedger is a MemoryStore whose ledger fails every write.
type failingLedger struct{ *MemoryStore }

func (failingLedger) RecordIssued(context.Context, *IssuedRecord, time.Time, int) error {
	return errStoreDown
}

// storeWithoutLedger is a Store that keeps no ledger.
type storeWithoutLedger struct{ s *MemoryStore }

func (w storeWithoutLedger) Apply(ctx context.Context, c ...Change) (int64, error) {
	return w.s.Apply(ctx, c...)
}
func (w storeWithoutLedger) Snapshot(ctx context.Context) (*Snapshot, error) {
	return w.s.Snapshot(ctx)
}
func (w storeWithoutLedger) Changes(ctx context.Context, since int64) ([]Change, error) {
	return w.s.Changes(ctx, since)
}

func TestIssueRecordsTheTokenFirst(t *testing.T) {
	ctx := context.Background()
	t.Run("the record", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2, pol("p1", ops("read", "write")))
		env.svc.KeyID = []byte{0xa1, 0xb2}
		tok, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1", "id:" + dev2, "ep:hvac-1"}, Scope: []string{"read", "write"}, Key: &env.pop.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		list, err := env.store.Issued(ctx, &IssuedFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if list.Total != 1 || len(list.Records) != 1 {
			t.Fatalf("ledger holds %d records, want 1", list.Total)
		}
		rec := list.Records[0]
		sum := sha256.Sum256(tok.Token)
		rh, _ := token.RevocationHash(tok.Token)
		want := IssuedRecord{
			TokenID: hex.EncodeToString(tok.Claims.ID), TokenHash: hex.EncodeToString(sum[:]),
			RevocationHash: hex.EncodeToString(rh[:]), Subject: "alice",
			Audience: []string{"ep:hvac-1", "id:" + dev2}, Scope: []string{"read", "write"},
			Issuer: tok.Claims.Issuer, AnchorKeyID: "a1b2", IssuedAt: t0.Truncate(time.Second), Expiry: tok.Claims.Expiry,
		}
		if fmt.Sprint(*rec) != fmt.Sprint(want) {
			t.Errorf("record\n%+v\nwant\n%+v", *rec, want)
		}
	})
	t.Run("the anchor key id without KeyID is the thumbprint", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		if _, err := env.svc.Issue(ctx, "alice", env.issueReq()); err != nil {
			t.Fatal(err)
		}
		list, _ := env.store.Issued(ctx, &IssuedFilter{Limit: 1})
		tp, _ := token.Thumbprint(env.anchor.Public())
		if len(list.Records) != 1 || list.Records[0].AnchorKeyID != hex.EncodeToString(tp) {
			t.Errorf("records %+v, want anchor %x", list.Records, tp)
		}
	})
	t.Run("a failed ledger write issues nothing", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		env.svc.Store = failingLedger{env.store}
		tok, err := env.svc.Issue(ctx, "alice", env.issueReq())
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStoreDown) || tok != nil {
			t.Fatalf("Issue = %v, %v; want no token and ErrUnavailable", tok, err)
		}
		w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "read"))
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "access_token") {
			t.Fatalf("HTTP %d %s, want 503 without a token", w.Code, w.Body)
		}
		if strings.Contains(env.audit.String(), `"msg":"sda.token.issued"`) {
			t.Errorf("a token was logged as issued: %s", env.audit)
		}
	})
	t.Run("a store without a ledger issues nothing", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV1, pol("p1"))
		env.svc.Store = storeWithoutLedger{env.store}
		_, err := env.svc.Issue(ctx, "alice", env.issueReq())
		if !errors.Is(err, ErrConfig) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Issue = %v, want ErrConfig and ErrUnavailable", err)
		}
		// An explicit Ledger serves instead.
		env.svc.Ledger = env.store
		if _, err := env.svc.Issue(ctx, "alice", env.issueReq()); err != nil {
			t.Fatal(err)
		}
		if n := env.store.ledger.len(); n != 1 {
			t.Errorf("ledger holds %d records, want 1", n)
		}
	})
}

func TestLedgerBoundAndPruning(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv(t, token.ProfileV1, pol("p1", lifetime(time.Hour)))
	now := t0
	env.svc.Now = func() time.Time { return now }
	env.svc.MaxIssued = 2
	for i := range 2 {
		if _, err := env.svc.Issue(ctx, "alice", env.issueReq()); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	_, err := env.svc.Issue(ctx, "alice", env.issueReq())
	if !errors.Is(err, ErrLedgerFull) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third token: %v, want ErrLedgerFull", err)
	}
	if w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "read")); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d at the bound, want 503", w.Code)
	}
	// Expired but within the retention: still held, still full.
	now = t0.Add(time.Hour + IssuedRetention)
	if _, err := env.svc.Issue(ctx, "alice", env.issueReq()); !errors.Is(err, ErrLedgerFull) {
		t.Fatalf("at expiry + retention: %v, want ErrLedgerFull", err)
	}
	// One second later both are pruned and issuance goes on.
	now = now.Add(time.Second)
	if _, err := env.svc.Issue(ctx, "alice", env.issueReq()); err != nil {
		t.Fatalf("after pruning: %v", err)
	}
	if n := env.store.ledger.len(); n != 1 {
		t.Errorf("ledger holds %d records, want 1", n)
	}
}

func TestLedgerPruneIssued(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) Ledger{
		"memory": func(*testing.T) Ledger { return NewMemoryStore() },
		"file":   func(t *testing.T) Ledger { return openTestFileStore(t, filepath.Join(t.TempDir(), "s.json")) },
	} {
		t.Run(name, func(t *testing.T) {
			l := open(t)
			for i := range 3 {
				if err := l.RecordIssued(ctx, testRecord(i, t0.Add(time.Duration(i)*time.Hour)), t0, 10); err != nil {
					t.Fatal(err)
				}
			}
			// Record i expires at t0 + i h + 1 h.
			if err := l.PruneIssued(ctx, t0.Add(2*time.Hour+IssuedRetention)); err != nil {
				t.Fatal(err)
			}
			list, _ := l.Issued(ctx, &IssuedFilter{Limit: 10})
			if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(1), ctiOf(2)}) {
				t.Errorf("after pruning at the first expiry + retention: %v", got)
			}
			if err := l.PruneIssued(ctx, t0.Add(2*time.Hour+IssuedRetention+time.Second)); err != nil {
				t.Fatal(err)
			}
			list, _ = l.Issued(ctx, &IssuedFilter{Limit: 10})
			if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(2)}) {
				t.Errorf("one second later: %v", got)
			}
		})
	}
}

func TestLedgerFilters(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	for i := range 6 {
		r := testRecord(i, t0.Add(time.Duration(i)*time.Minute))
		if i%2 == 1 {
			r.Subject, r.Audience = "bob", []string{"id:" + dev2}
		}
		if err := s.RecordIssued(ctx, r, t0, 100); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		f     IssuedFilter
		want  []int
		total int
		more  bool
	}{
		{"all", IssuedFilter{Limit: 10}, []int{0, 1, 2, 3, 4, 5}, 6, false},
		{"a page", IssuedFilter{Limit: 2, After: ctiOf(1)}, []int{2, 3}, 6, true},
		{"a subject", IssuedFilter{Limit: 10, Subject: "bob"}, []int{1, 3, 5}, 3, false},
		{"an audience", IssuedFilter{Limit: 10, Audiences: []string{"ep:hvac-2", "id:" + dev2}}, []int{1, 3, 5}, 3, false},
		{"issued before", IssuedFilter{Limit: 10, IssuedBefore: t0.Add(2 * time.Minute)}, []int{0, 1, 2}, 3, false},
		{"expires after", IssuedFilter{Limit: 10, ExpiresAfter: t0.Add(time.Hour + 3*time.Minute)}, []int{4, 5}, 2, false},
		{"totals only", IssuedFilter{Subject: "alice"}, nil, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.Issued(ctx, &tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, ctiOf(i))
			}
			if got := recordIDs(list); !slices.Equal(got, want) || list.Total != tc.total || list.HasMore != tc.more {
				t.Errorf("got %v total %d more %v, want %v total %d more %v", got, list.Total, list.HasMore, want, tc.total, tc.more)
			}
		})
	}
	list, _ := s.Issued(ctx, &IssuedFilter{Subject: "alice"})
	if want := t0.Add(4*time.Minute + time.Hour); !list.LatestExpiry.Equal(want) {
		t.Errorf("LatestExpiry %v, want %v", list.LatestExpiry, want)
	}
}

func ctiOf(i int) string { return fmt.Sprintf("%032x", i+1) }

// testRecord returns a valid record of alice on hvac-1 issued at iat for an hour.
func testRecord(i int, iat time.Time) *IssuedRecord {
	h := sha256.Sum256([]byte{byte(i)})
	r := sha256.Sum256([]byte{byte(i), 1})
	return &IssuedRecord{
		TokenID: ctiOf(i), TokenHash: hex.EncodeToString(h[:]), RevocationHash: hex.EncodeToString(r[:]),
		Subject: "alice", Audience: []string{"ep:hvac-1"}, Scope: []string{"read"},
		Issuer: "mbed.ta.TEST", AnchorKeyID: "a1b2", IssuedAt: iat, Expiry: iat.Add(time.Hour),
	}
}

func recordIDs(l *IssuedList) []string {
	var out []string
	for _, r := range l.Records {
		out = append(out, r.TokenID)
	}
	return out
}

func openTestFileStore(t testing.TB, path string) *FileStore {
	t.Helper()
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFileStoreLedger(t *testing.T) {
	ctx := context.Background()
	// Records are checked against the wall clock at opening: give them a
	// time that has not expired.
	base := time.Now().Truncate(time.Second)
	t.Run("survives reopening", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		for i := range 3 {
			if err := s.RecordIssued(ctx, testRecord(i, base), base, 10); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		s = openTestFileStore(t, path)
		list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
		if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(0), ctiOf(1), ctiOf(2)}) {
			t.Fatalf("after reopening: %v", got)
		}
		if fmt.Sprint(*list.Records[1]) != fmt.Sprint(*testRecord(1, base)) {
			t.Errorf("record read back %+v", *list.Records[1])
		}
	})
	t.Run("a torn last line is ignored", func(t *testing.T) {
		for name, tail := range map[string]string{
			"without its newline": `{"cti":"00`,
			"garbage with one":    "\x00\x00\x00\n",
		} {
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.json")
				s := openTestFileStore(t, path)
				if err := s.RecordIssued(ctx, testRecord(0, base), base, 10); err != nil {
					t.Fatal(err)
				}
				s.Close()
				f, err := os.OpenFile(path+issuedSuffix, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(tail)
				f.Close()
				s = openTestFileStore(t, path)
				if err := s.RecordIssued(ctx, testRecord(1, base), base, 10); err != nil {
					t.Fatal(err)
				}
				s.Close()
				s = openTestFileStore(t, path)
				list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
				if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(0), ctiOf(1)}) {
					t.Fatalf("records %v", got)
				}
			})
		}
	})
	t.Run("a corrupt line before the last fails the opening", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		line := `{"cti":"zz"}` + "\n"
		if err := os.WriteFile(path+issuedSuffix, []byte(line+line), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFileStore(path); !errors.Is(err, ErrInvalid) {
			t.Fatalf("OpenFileStore = %v, want ErrInvalid", err)
		}
	})
	t.Run("opening drops expired records", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		old := base.Add(-2*time.Hour - IssuedRetention)
		s.RecordIssued(ctx, testRecord(0, old), old, 10)
		s.RecordIssued(ctx, testRecord(1, base), base, 10)
		s.Close()
		s = openTestFileStore(t, path)
		list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
		if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(1)}) {
			t.Fatalf("records %v", got)
		}
		if b, _ := os.ReadFile(path + issuedSuffix); strings.Count(string(b), "\n") != 1 {
			t.Errorf("the file was not compacted:\n%s", b)
		}
	})
	t.Run("a failed write records nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		s.RecordIssued(ctx, testRecord(0, base), base, 10)
		s.issued.hook = func(int) error { return errStoreDown }
		if err := s.RecordIssued(ctx, testRecord(1, base), base, 10); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("RecordIssued = %v, want ErrUnavailable", err)
		}
		s.issued.hook = nil
		if err := s.RecordIssued(ctx, testRecord(2, base), base, 2); err != nil {
			t.Fatalf("the failed record still holds a slot: %v", err)
		}
		s.Close()
		s = openTestFileStore(t, path)
		list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
		if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(0), ctiOf(2)}) {
			t.Fatalf("records %v", got)
		}
	})
	t.Run("group commit", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		const n = 32
		// The first write waits until every other writer has queued its
		// record, so that they all share the second write.
		var writes atomic.Int32
		release := make(chan struct{})
		s.issued.hook = func(lines int) error {
			if writes.Add(1) == 1 {
				<-release
			}
			return nil
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.RecordIssued(ctx, testRecord(0, base), base, 1000)
		}()
		for s.issued.flushing() == false {
			time.Sleep(time.Millisecond)
		}
		for i := 1; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.RecordIssued(ctx, testRecord(i, base), base, 1000)
			}()
		}
		for s.issued.queued() < n-1 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if w := writes.Load(); w != 2 {
			t.Errorf("%d records took %d writes, want 2", n, w)
		}
		s.Close()
		s = openTestFileStore(t, path)
		if list, _ := s.Issued(ctx, &IssuedFilter{}); list.Total != n {
			t.Errorf("%d records after reopening, want %d", list.Total, n)
		}
	})
	t.Run("a writer answers once its own batch is committed", func(t *testing.T) {
		// The writer of the first batch must not go on to write the
		// batches that gathered meanwhile before it answers: under
		// steady load there always is one, and its caller would wait
		// without bound. The second batch's write waits until the first
		// writer has answered.
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		var writes atomic.Int32
		release := make(chan struct{})
		firstDone := make(chan error, 1)
		secondWrite := make(chan bool, 1)
		var firstErr error
		s.issued.hook = func(lines int) error {
			switch writes.Add(1) {
			case 1:
				<-release
			case 2:
				select {
				case firstErr = <-firstDone:
					secondWrite <- true
				case <-time.After(10 * time.Second):
					secondWrite <- false
				}
			}
			return nil
		}
		go func() { firstDone <- s.RecordIssued(ctx, testRecord(0, base), base, 100) }()
		for !s.issued.flushing() {
			time.Sleep(time.Millisecond)
		}
		secondDone := make(chan error, 1)
		go func() { secondDone <- s.RecordIssued(ctx, testRecord(1, base), base, 100) }()
		for s.issued.queued() < 1 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		if !<-secondWrite {
			t.Fatal("the first writer had not answered while the second batch was written")
		}
		if firstErr != nil {
			t.Fatal(firstErr)
		}
		if err := <-secondDone; err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openTestFileStore(t, path)
		list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
		if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(0), ctiOf(1)}) {
			t.Fatalf("records %v", got)
		}
	})
	t.Run("compaction while open", func(t *testing.T) {
		defer func(n int) { minCompactLines = n }(minCompactLines)
		minCompactLines = 4
		path := filepath.Join(t.TempDir(), "s.json")
		s := openTestFileStore(t, path)
		old := base.Add(-2*time.Hour - IssuedRetention)
		for i := range 4 {
			s.RecordIssued(ctx, testRecord(i, old), old, 100)
		}
		s.PruneIssued(ctx, base)
		s.RecordIssued(ctx, testRecord(4, base), base, 100)
		b, _ := os.ReadFile(path + issuedSuffix)
		if got := strings.Count(string(b), "\n"); got != 1 {
			t.Errorf("file holds %d lines after compaction, want 1", got)
		}
		s.RecordIssued(ctx, testRecord(5, base), base, 100)
		s.Close()
		s = openTestFileStore(t, path)
		list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
		if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(4), ctiOf(5)}) {
			t.Fatalf("records %v", got)
		}
	})
}

// flushing reports whether a batch is being written.
func (l *issuedLog) flushing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writing
}

// queued returns the records waiting for the next write.
func (l *issuedLog) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur.recs)
}

// FuzzIssuedLog: opening a ledger file of any content never panics, and
// what it loads are valid records.
func FuzzIssuedLog(f *testing.F) {
	good, _ := json.Marshal(testRecord(0, time.Now()))
	f.Add(append(good, '\n'))
	f.Add(append(append(good, '\n'), good[:10]...))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "s.json"+issuedSuffix)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := openIssuedLog(path, time.Now())
		if err != nil {
			return
		}
		defer l.close()
		for _, r := range l.mem.recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("loaded an invalid record: %v", err)
			}
		}
	})
}
