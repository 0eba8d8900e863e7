package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// The tests in this file insert the record of the first RecordIssued from
// another transaction, left open, so that the first call's INSERT waits
// for that transaction while the following calls gather behind it; rolling
// it back lets them through.

// openLedger opens a store on a fresh schema and records one token in it,
// so that its first count and pruning are done. The store writes one
// batch at a time, so that calls gather behind a blocked one.
func openLedger(t *testing.T) (*sql.DB, *Store, string) {
	t.Helper()
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIssued(ctx, ledgerRecord(200, "alice", lt0), lt0, 1000); err != nil {
		t.Fatal(err)
	}
	s.issuedWriters = 1
	return db, s, schema
}

// lockIssued writes the record of ledgerRecord(0, ...) into the ledger of
// schema in a transaction on its own connection, left open, and returns
// the function that rolls it back.
func lockIssued(t *testing.T, schema string) (release func()) {
	t.Helper()
	ctx := context.Background()
	admin := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := ledgerRecord(0, "alice", lt0)
	if _, err := tx.ExecContext(ctx, `INSERT INTO "`+schema+`".sda_issued (cti, subject, aud, anchor, issued_at, expires_at, body, token_hash, revocation_hash)
		VALUES ($1, 'x', '{}', 'x', now(), now(), '{}', 'x', 'x')`, r.TokenID); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// lockWaiters returns how many server processes wait for a lock in a
// statement on schema's ledger table.
func lockWaiters(t *testing.T, db *sql.DB, schema string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0 AND pid <> pg_backend_pid()`, `"`+schema+`".sda_issued`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// gather starts first, waits until its INSERT waits for the lock, then
// starts the others and waits until they are queued behind it.
func gather(t *testing.T, s *Store, schema string, first func(), others ...func()) {
	t.Helper()
	admin := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
	go first()
	waitFor(t, "the first INSERT to wait for the lock", func() bool { return lockWaiters(t, admin, schema) >= 1 })
	for _, f := range others {
		go f()
	}
	waitFor(t, fmt.Sprintf("%d calls to queue", len(others)), func() bool { return s.issuedQueued() == len(others) })
}

// ctiCommitted reports whether the ledger holds cti, asked on a connection
// of its own.
func ctiCommitted(t *testing.T, db *sql.DB, schema, cti string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM "`+schema+`".sda_issued WHERE cti = $1`, cti).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestRecordIssuedGroupCommit(t *testing.T) {
	ctx := context.Background()
	const callers = 24
	t.Run("callers share commits and are durable when they return", func(t *testing.T) {
		_, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		errs := make(chan error, callers)
		call := func(i int) func() {
			return func() {
				rec := ledgerRecord(i, "alice", lt0)
				err := s.RecordIssued(ctx, rec, lt0, 1000)
				if err == nil {
					var n int
					err = other.QueryRow(`SELECT count(*) FROM "`+schema+`".sda_issued WHERE cti = $1`, rec.TokenID).Scan(&n)
					if err == nil && n != 1 {
						err = fmt.Errorf("record %d: RecordIssued returned before its record was committed", i)
					}
				}
				errs <- err
			}
		}
		var others []func()
		for i := 1; i < callers; i++ {
			others = append(others, call(i))
		}
		gather(t, s, schema, call(0), others...)
		release()
		for range callers {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		// The first call's commit, then the others' in as few as the
		// batch size allows.
		var commits, rows int
		if err := other.QueryRow(`SELECT count(DISTINCT xmin::text), count(*) FROM "`+schema+`".sda_issued`).Scan(&commits, &rows); err != nil {
			t.Fatal(err)
		}
		if rows != callers+1 || commits > 3 {
			t.Fatalf("%d records in %d transactions; want %d in at most 3", rows, commits, callers+1)
		}
	})
	t.Run("one cti twice in a batch", func(t *testing.T) {
		_, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		errs := make(chan error, 3)
		call := func(i int, sub string) func() {
			return func() { errs <- s.RecordIssued(ctx, ledgerRecord(i, sub, lt0), lt0, 1000) }
		}
		gather(t, s, schema, call(0, "alice"), call(5, "bob"), call(5, "carol"))
		release()
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var sub string
		if err := other.QueryRow(`SELECT subject FROM "`+schema+`".sda_issued WHERE cti = $1`, ledgerRecord(5, "", lt0).TokenID).Scan(&sub); err != nil {
			t.Fatal(err)
		}
		if sub != "bob" && sub != "carol" {
			t.Fatalf("subject %q", sub)
		}
	})
	t.Run("a blocked batch does not hold the next", func(t *testing.T) {
		_, s, schema := openLedger(t)
		s.issuedWriters = 0 // the default
		admin := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		first := make(chan error, 1)
		go func() { first <- s.RecordIssued(ctx, ledgerRecord(0, "alice", lt0), lt0, 1000) }()
		waitFor(t, "the first INSERT to wait for the lock", func() bool { return lockWaiters(t, admin, schema) >= 1 })
		if err := s.RecordIssued(ctx, ledgerRecord(1, "alice", lt0), lt0, 1000); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-first:
			t.Fatalf("the blocked call returned %v", err)
		default:
		}
		release()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("batches take the oldest calls first", func(t *testing.T) {
		_, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		admin := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		const queued = maxIssuedBatch + 10
		errs := make(chan error, queued+1)
		go func() { errs <- s.RecordIssued(ctx, ledgerRecord(0, "alice", lt0), lt0, 1000) }()
		waitFor(t, "the first INSERT to wait for the lock", func() bool { return lockWaiters(t, admin, schema) >= 1 })
		// One at a time, so that the order of arrival is known.
		for i := 1; i <= queued; i++ {
			go func() { errs <- s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, 1000) }()
			waitFor(t, fmt.Sprintf("call %d to queue", i), func() bool { return s.issuedQueued() == i })
		}
		release()
		for range queued + 1 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		xmin := func(i int) string {
			var x string
			if err := other.QueryRow(`SELECT xmin::text FROM "`+schema+`".sda_issued WHERE cti = $1`, ledgerRecord(i, "", lt0).TokenID).Scan(&x); err != nil {
				t.Fatal(err)
			}
			return x
		}
		first, second := xmin(1), xmin(maxIssuedBatch+1)
		for i := 1; i <= queued; i++ {
			want := first
			if i > maxIssuedBatch {
				want = second
			}
			if got := xmin(i); got != want {
				t.Fatalf("call %d committed in transaction %s, want %s: batches did not take the oldest calls", i, got, want)
			}
		}
		if first == second {
			t.Fatalf("%d calls in one batch", queued)
		}
	})
	t.Run("a failed batch fails every caller in it", func(t *testing.T) {
		db, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		errs := make(chan error, callers)
		call := func(i int) func() {
			return func() { errs <- s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, 1000) }
		}
		var others []func()
		for i := 1; i < callers; i++ {
			others = append(others, call(i))
		}
		first := make(chan error, 1)
		gather(t, s, schema, func() { first <- s.RecordIssued(ctx, ledgerRecord(0, "alice", lt0), lt0, 1000) }, others...)
		db.Close() // the queued batch finds the database closed
		release()
		<-first // the first call's INSERT was under way: it may commit or fail
		for i := 1; i < callers; i++ {
			if err := <-errs; !errors.Is(err, policy.ErrUnavailable) {
				t.Errorf("caller of the failed batch: %v, want ErrUnavailable", err)
			}
		}
		for i := 1; i < callers; i++ {
			if ctiCommitted(t, other, schema, ledgerRecord(i, "alice", lt0).TokenID) {
				t.Errorf("record %d of the failed batch was committed", i)
			}
		}
	})
	t.Run("a caller whose context ends returns", func(t *testing.T) {
		_, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		firstCtx, cancelFirst := context.WithCancel(ctx)
		queuedCtx, cancelQueued := context.WithCancel(ctx)
		first, queued, next := make(chan error, 1), make(chan error, 1), make(chan error, 1)
		gather(t, s, schema,
			func() { first <- s.RecordIssued(firstCtx, ledgerRecord(0, "alice", lt0), lt0, 1000) },
			func() { queued <- s.RecordIssued(queuedCtx, ledgerRecord(1, "alice", lt0), lt0, 1000) },
			func() { next <- s.RecordIssued(ctx, ledgerRecord(2, "alice", lt0), lt0, 1000) })
		// Both return while the table is still locked: the first while its
		// batch is being written, the other while queued.
		cancelFirst()
		cancelQueued()
		for name, ch := range map[string]chan error{"writing": first, "queued": queued} {
			if err := <-ch; !errors.Is(err, context.Canceled) || !errors.Is(err, policy.ErrUnavailable) {
				t.Errorf("%s caller after its context ended: %v, want context.Canceled and ErrUnavailable", name, err)
			}
		}
		release()
		if err := <-next; err != nil {
			t.Fatalf("the caller queued with the cancelled one: %v", err)
		}
		if ctiCommitted(t, other, schema, ledgerRecord(1, "alice", lt0).TokenID) {
			t.Error("the record of a call cancelled while queued was committed")
		}
		if !ctiCommitted(t, other, schema, ledgerRecord(2, "alice", lt0).TokenID) {
			t.Error("the record of the call queued with it is missing")
		}
		// The ledger goes on.
		if err := s.RecordIssued(ctx, ledgerRecord(3, "alice", lt0), lt0, 1000); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("concurrent callers do not exceed the bound", func(t *testing.T) {
		_, s, schema := openLedger(t)
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		const max = 6 // openLedger's record and 5
		release := lockIssued(t, schema)
		errs := make(chan error, callers)
		call := func(i int) func() {
			return func() { errs <- s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, max) }
		}
		var others []func()
		for i := 1; i < max-1; i++ {
			others = append(others, call(i))
		}
		gather(t, s, schema, call(0), others...)
		// The ledger is full with the records under way: the next callers
		// are refused at once, although none is committed yet.
		for i := max - 1; i < callers; i++ {
			if err := s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, max); !errors.Is(err, policy.ErrLedgerFull) {
				t.Errorf("call %d beyond the bound: %v, want ErrLedgerFull", i, err)
			}
		}
		release()
		for range max - 1 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		var rows int
		if err := other.QueryRow(`SELECT count(*) FROM "` + schema + `".sda_issued`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != max {
			t.Fatalf("%d records, want the bound %d", rows, max)
		}
	})
}

// issuedQueueLen returns the length of the queue of records waiting for a
// batch, including those whose callers left.
func (s *Store) issuedQueueLen() int {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	return len(s.queue)
}

func TestRecordIssuedQueueBound(t *testing.T) {
	ctx := context.Background()
	const bound = 8
	t.Run("callers beyond the bound are refused at once", func(t *testing.T) {
		_, s, schema := openLedger(t)
		s.issuedQueueMax = bound
		other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		release := lockIssued(t, schema)
		errs := make(chan error, bound+1)
		call := func(i int) func() {
			return func() { errs <- s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, 1000) }
		}
		var others []func()
		for i := 1; i <= bound; i++ {
			others = append(others, call(i))
		}
		gather(t, s, schema, call(0), others...)
		// The table is still locked: these return without waiting for it.
		for i := bound + 1; i < bound+4; i++ {
			if err := s.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, 1000); !errors.Is(err, policy.ErrUnavailable) || !errors.Is(err, ErrIssuedQueueFull) {
				t.Errorf("call %d beyond the queue's bound: %v, want ErrIssuedQueueFull matching ErrUnavailable", i, err)
			}
		}
		release()
		for range bound + 1 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for i := bound + 1; i < bound+4; i++ {
			if ctiCommitted(t, other, schema, ledgerRecord(i, "alice", lt0).TokenID) {
				t.Errorf("the record of refused call %d was committed", i)
			}
		}
		// The refused calls gave back their places in the ledger.
		if err := s.RecordIssued(ctx, ledgerRecord(bound+1, "alice", lt0), lt0, bound+3); err != nil {
			t.Fatalf("after the refusals: %v", err)
		}
	})
	t.Run("callers that leave shrink the queue", func(t *testing.T) {
		_, s, schema := openLedger(t)
		s.issuedQueueMax = bound
		release := lockIssued(t, schema)
		qctx, cancel := context.WithCancel(ctx)
		first := make(chan error, 1)
		errs := make(chan error, bound)
		var others []func()
		for i := 1; i <= bound; i++ {
			others = append(others, func() { errs <- s.RecordIssued(qctx, ledgerRecord(i, "alice", lt0), lt0, 1000) })
		}
		gather(t, s, schema, func() { first <- s.RecordIssued(ctx, ledgerRecord(0, "alice", lt0), lt0, 1000) }, others...)
		cancel()
		for range bound {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: %v", err)
			}
		}
		if n := s.issuedQueueLen(); n != 0 {
			t.Errorf("%d entries left in the queue after every queued caller left", n)
		}
		// Their places are free again while the table is still locked.
		next := make(chan error, 1)
		go func() { next <- s.RecordIssued(ctx, ledgerRecord(bound+1, "alice", lt0), lt0, 1000) }()
		waitFor(t, "the next call to queue", func() bool { return s.issuedQueued() == 1 })
		release()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-next; err != nil {
			t.Fatal(err)
		}
	})
}

func TestRecordIssuedBadRecordInBatch(t *testing.T) {
	ctx := context.Background()
	_, s, schema := openLedger(t)
	other := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
	release := lockIssued(t, schema)
	const good = 6
	bad := ledgerRecord(good+1, "alice", lt0)
	bad.Scope = []string{"re\u0000ad"} // jsonb holds no NUL
	errs := make([]chan error, good+2)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	call := func(i int, rec *policy.IssuedRecord) func() {
		return func() { errs[i] <- s.RecordIssued(ctx, rec, lt0, 1000) }
	}
	var others []func()
	for i := 1; i <= good; i++ {
		others = append(others, call(i, ledgerRecord(i, "alice", lt0)))
		if i == good/2 {
			others = append(others, call(good+1, bad))
		}
	}
	gather(t, s, schema, call(0, ledgerRecord(0, "alice", lt0)), others...)
	release()
	for i := 0; i <= good; i++ {
		if err := <-errs[i]; err != nil {
			t.Errorf("good record %d: %v", i, err)
		} else if !ctiCommitted(t, other, schema, ledgerRecord(i, "alice", lt0).TokenID) {
			t.Errorf("good record %d reported committed is missing", i)
		}
	}
	if err := <-errs[good+1]; !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("bad record: %v, want ErrInvalid", err)
	}
	if ctiCommitted(t, other, schema, bad.TokenID) {
		t.Error("the bad record was committed")
	}
}
