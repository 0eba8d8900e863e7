package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/securedeviceaccess/sda/policy"
)

// Store is a [policy.Store] in a PostgreSQL schema.
type Store struct {
	db    *sql.DB
	q     queries
	table string // the ledger's table, qualified

	issuedMu      sync.Mutex // guards the fields below
	issuedCount   int64      // records in the ledger when last counted, plus those added since
	issuedPending int64      // records reserved and not yet written or given up
	sinceCount    int        // records this Store added since it last counted; -1: not counted yet
	lastPrune     time.Time

	batchMu sync.Mutex     // guards the fields below
	queue   []*issuedEntry // records waiting for the next batch of the ledger, oldest first
	writers int            // writeIssued goroutines running

	// issuedWriters, when set by a test, replaces maxIssuedWriters.
	issuedWriters int
	// issuedQueueMax, when set by a test, replaces maxIssuedQueued.
	issuedQueueMax int

	// hook, when set by a test, is called inside Apply's transaction at
	// the named step: "bumped" after the sequence number was taken,
	// "commit" just before the commit.
	hook func(ctx context.Context, tx *sql.Tx, step string)
	// outcomeTimeout, when set by a test, replaces commitOutcomeTimeout.
	outcomeTimeout time.Duration
}

var _ policy.Store = (*Store)(nil)

type queries struct {
	bump, clearUniq, upsert, create, tombstone, metaSeq, changes, snapshot string
	match                                                                  string
	xactStatus, terminate                                                  string
	recordIssuedHead, recordIssuedTail, countIssued, pruneIssued           string
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open brings the schema to [SchemaVersion], creating it and its tables
// when they do not exist, and returns a store using them. schema is a
// lower-case SQL identifier. Migrations run in one transaction under an
// advisory lock, so that instances opening one database at once migrate it
// once; a schema created before versions were recorded is version 1. A
// schema newer than SchemaVersion fails with a *[SchemaVersionError]
// (matching [ErrSchemaTooNew]) and is left untouched; a failure to use the
// database matches [policy.ErrUnavailable].
func Open(ctx context.Context, db *sql.DB, schema string) (*Store, error) {
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("%w: schema name %q: want %s", policy.ErrInvalid, schema, schemaRE)
	}
	if err := migrate(ctx, db, schema); err != nil {
		return nil, err
	}
	return newStore(db, schema), nil
}

// newStore returns a store using the tables of schema, as they are.
func newStore(db *sql.DB, schema string) *Store {
	t := `"` + schema + `".`
	return &Store{db: db, sinceCount: -1, table: t + `sda_issued`, q: queries{
		// bump also returns what identifies the transaction, should its
		// commit fail: its id and its server process.
		bump:      `UPDATE ` + t + `sda_meta SET seq = seq + 1 WHERE id = 1 RETURNING seq, pg_current_xact_id()::text, pg_backend_pid()`,
		clearUniq: `UPDATE ` + t + `sda_records SET uniq = NULL WHERE kind = $1 AND id = $2`,
		upsert: `INSERT INTO ` + t + `sda_records (kind, id, seq, deleted, body, uniq) VALUES ($1, $2, $3, false, $4, $5)
			ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, deleted = false, body = excluded.body, uniq = excluded.uniq`,
		// create writes only over a missing or deleted record: it affects
		// no row when a live record has the id.
		create: `INSERT INTO ` + t + `sda_records AS r (kind, id, seq, deleted, body, uniq) VALUES ($1, $2, $3, false, $4, $5)
			ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, deleted = false, body = excluded.body, uniq = excluded.uniq
			WHERE r.deleted`,
		// match finds the live record of a kind and id whose body equals
		// $3 as jsonb (key order and spacing aside).
		match: `SELECT 1 FROM ` + t + `sda_records WHERE kind = $1 AND id = $2 AND NOT deleted AND body = $3::jsonb`,
		tombstone: `INSERT INTO ` + t + `sda_records (kind, id, seq, deleted, body, uniq) VALUES ($1, $2, $3, true, NULL, NULL)
			ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, deleted = true, body = NULL, uniq = NULL`,
		metaSeq: `SELECT seq FROM ` + t + `sda_meta WHERE id = 1`,
		changes: `SELECT seq, kind, id, deleted, body::text FROM ` + t + `sda_records WHERE seq > $1 ORDER BY seq, kind, id`,
		// snapshot reads in the table's order, without a sort on the
		// server (which spills to disk at a million records):
		// readSnapshot sorts by id.
		snapshot: `SELECT kind, body::text FROM ` + t + `sda_records WHERE NOT deleted`,
		// xactStatus is "committed", "aborted", "in progress" or NULL (a
		// transaction too old to be known).
		xactStatus: `SELECT pg_xact_status($1::xid8)`,
		// terminate ends the server process $1 if it still runs the
		// transaction whose 32-bit id is $2, and no other.
		terminate: `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_xid::text = $2`,
		// recordIssuedHead, rows of 9 values, then recordIssuedTail.
		recordIssuedHead: `INSERT INTO ` + t + `sda_issued (cti, subject, aud, anchor, issued_at, expires_at, body, token_hash, revocation_hash) VALUES `,
		recordIssuedTail: ` ON CONFLICT (cti) DO UPDATE SET token_hash = excluded.token_hash, revocation_hash = excluded.revocation_hash, subject = excluded.subject, aud = excluded.aud, anchor = excluded.anchor,
			issued_at = excluded.issued_at, expires_at = excluded.expires_at, body = excluded.body`,
		countIssued: `SELECT count(*) FROM ` + t + `sda_issued`,
		pruneIssued: `DELETE FROM ` + t + `sda_issued WHERE expires_at < $1`,
	}}
}

// uniqueKey returns the value that must be unique among live records of
// the change's kind, or nil.
func uniqueKey(c *policy.Change) any {
	switch {
	case c.Device != nil && c.Device.EndpointName != "":
		return "ep:" + c.Device.EndpointName
	case c.APIKey != nil:
		return fmt.Sprintf("hash:%x", c.APIKey.Hash)
	}
	return nil
}

// Apply implements [policy.Store]: one transaction per batch.
//
// A failure to use the database (the connection fails or is closed, the
// context ends, the server shuts down, refuses connections or the
// transaction) matches [policy.ErrUnavailable], and then nothing was
// written. When the commit itself fails that way, the server may have
// committed the batch and lost only its answer: Apply asks the database,
// on another connection, whether the transaction committed (returning the
// batch's sequence number if it did), and reports
// [policy.ErrOutcomeUnknown] if it cannot learn it within 10 seconds.
func (s *Store) Apply(ctx context.Context, changes ...policy.Change) (int64, error) {
	prepared, err := policy.PrepareChanges(changes)
	if err != nil {
		return 0, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, mapErr(err)
	}
	defer tx.Rollback()
	var (
		seq int64
		xid string
		pid int64
	)
	if err := tx.QueryRowContext(ctx, s.q.bump).Scan(&seq, &xid, &pid); err != nil {
		return 0, mapErr(err)
	}
	if s.hook != nil {
		s.hook(ctx, tx, "bumped")
	}
	// Free the unique names of every touched record first, so that a batch
	// may move a name from one record to another.
	for i := range prepared {
		c := &prepared[i]
		if _, err := tx.ExecContext(ctx, s.q.clearUniq, string(c.Kind), c.ID); err != nil {
			return 0, mapErr(err)
		}
	}
	for i := range prepared {
		c := &prepared[i]
		if c.IfMatch != nil {
			if err := s.match(ctx, tx, c); err != nil {
				return 0, err
			}
		}
		if c.Delete {
			_, err = tx.ExecContext(ctx, s.q.tombstone, string(c.Kind), c.ID, seq)
		} else {
			var body []byte
			if body, err = policy.EncodeRecord(c); err != nil {
				return 0, fmt.Errorf("sqlstore: %w", err)
			}
			if !c.Create {
				_, err = tx.ExecContext(ctx, s.q.upsert, string(c.Kind), c.ID, seq, string(body), uniqueKey(c))
			} else if err = s.create(ctx, tx, c, seq, body); err != nil {
				return 0, err
			}
		}
		if err != nil {
			return 0, mapErr(err)
		}
	}
	if s.hook != nil {
		s.hook(ctx, tx, "commit")
	}
	if err := tx.Commit(); err != nil {
		return s.commitFailed(ctx, seq, xid, pid, err)
	}
	return seq, nil
}

// commitFailed decides what the failed commit of batch seq (transaction
// xid, server process pid) means. A server that answered the COMMIT with
// an error rolled the transaction back. Otherwise the connection or the
// context failed while the COMMIT was in flight, and only the database
// knows whether it committed.
func (s *Store) commitFailed(ctx context.Context, seq int64, xid string, pid int64, err error) (int64, error) {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.SeverityUnlocalized == "ERROR" {
		return 0, mapErr(err)
	}
	committed, oerr := s.commitOutcome(ctx, xid, pid)
	switch {
	case oerr != nil:
		return 0, fmt.Errorf("%w: sqlstore: the commit of batch %d failed (%v) and its outcome could not be learnt: %v",
			policy.ErrOutcomeUnknown, seq, err, oerr)
	case committed:
		return seq, nil
	}
	return 0, mapErr(err)
}

// commitOutcome asks the database, on another connection, whether the
// transaction xid committed, waiting while it is in progress. A
// transaction still in progress after commitSettleTime belongs to a
// connection that the server has not yet seen fail, and its COMMIT may
// still be on the way: its server process pid is then terminated, which
// settles the outcome. It asks even if ctx has ended (the caller needs the
// answer), and while the database cannot be reached (it may be
// restarting), for at most commitOutcomeTimeout.
func (s *Store) commitOutcome(ctx context.Context, xid string, pid int64) (committed bool, err error) {
	timeout := commitOutcomeTimeout
	if s.outcomeTimeout > 0 {
		timeout = s.outcomeTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	x, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return false, fmt.Errorf("transaction id %q: %v", xid, err)
	}
	start := time.Now()
	wait := commitPollMin
	terminated := false
	var lastErr error
	for ; ; wait = min(2*wait, commitPollMax) {
		if err := sleep(ctx, wait); err != nil {
			if lastErr != nil {
				return false, lastErr
			}
			return false, err
		}
		var status sql.NullString
		if err := s.db.QueryRowContext(ctx, s.q.xactStatus, xid).Scan(&status); err != nil {
			// The pool's other connections may have failed too, or the
			// server is restarting: ask again.
			lastErr = err
			continue
		}
		switch status.String {
		case "committed":
			return true, nil
		case "aborted":
			return false, nil
		case "in progress":
		default:
			return false, fmt.Errorf("transaction %s: status %q", xid, status.String)
		}
		if !terminated && time.Since(start) >= commitSettleTime {
			// xid8 is the epoch and the 32-bit xid that pg_stat_activity shows.
			if _, err := s.db.ExecContext(ctx, s.q.terminate, pid, strconv.FormatUint(x&0xffff_ffff, 10)); err == nil {
				terminated = true
			}
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// create writes the record of a creation, failing with ErrConflict when a
// live record has its id. Apply's first statement locked the sequence row,
// so no other batch commits between this check and this transaction's
// commit.
func (s *Store) create(ctx context.Context, tx *sql.Tx, c *policy.Change, seq int64, body []byte) error {
	res, err := tx.ExecContext(ctx, s.q.create, string(c.Kind), c.ID, seq, string(body), uniqueKey(c))
	if err != nil {
		return mapErr(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s %q exists", policy.ErrConflict, c.Kind, c.ID)
	}
	return nil
}

// match checks the condition of a change with IfMatch: its record is
// live and equals IfMatch's, counting the batch's earlier changes (this
// transaction's writes). Apply's first statement locked the sequence row,
// so no other batch commits between this check and this transaction's
// commit.
func (s *Store) match(ctx context.Context, tx *sql.Tx, c *policy.Change) error {
	want, err := policy.EncodeRecord(c.IfMatch)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	var one int
	switch err := tx.QueryRowContext(ctx, s.q.match, string(c.Kind), c.ID, string(want)).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %s %q changed meanwhile", policy.ErrConflict, c.Kind, c.ID)
	case err != nil:
		return mapErr(err)
	}
	return nil
}

// mapErr maps an error of a statement that did not commit: the server's
// answers about the data to ErrConflict (a unique name taken) and
// ErrInvalid (a character jsonb cannot hold), and every other failure to
// ErrUnavailable. Those are failures to use the database, not answers
// about the request: the connection failed, was closed or timed out, the
// context ended, the server is shutting down, refuses connections, is a
// read-only standby, ran out of resources, cancelled the transaction
// (serialization failure, deadlock), or lacks the schema. Nothing was
// written, and the same request may succeed later.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s: %w", policy.ErrConflict, pe.Detail, err)
		case "22P05": // untranslatable_character: jsonb holds no NUL (\u0000)
			return fmt.Errorf("%w: a record holds a character PostgreSQL cannot store: %w", policy.ErrInvalid, err)
		}
	}
	return fmt.Errorf("%w: sqlstore: %w", policy.ErrUnavailable, err)
}

// Snapshot implements [policy.Store], reading in one repeatable-read
// transaction.
func (s *Store) Snapshot(ctx context.Context) (*policy.Snapshot, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, mapErr(err)
	}
	defer tx.Rollback()
	snap := &policy.Snapshot{Policies: []*policy.Policy{}, Subjects: []*policy.Subject{}, Devices: []*policy.Device{}, APIKeys: []*policy.APIKey{}}
	if err := tx.QueryRowContext(ctx, s.q.metaSeq).Scan(&snap.Seq); err != nil {
		return nil, mapErr(err)
	}
	if err := s.readSnapshot(ctx, tx, snap); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, mapErr(err)
	}
	return snap, nil
}

// snapshotChunk is a run of records read for Snapshot, decoded by a
// goroutine of its own.
type snapshotChunk struct {
	kinds  []policy.Kind
	ends   []int  // the end of each record's body in buf
	buf    []byte // the bodies, one after the other
	out    []policy.Change
	err    error
	n      int // records in the chunk
	decode sync.WaitGroup
}

// readSnapshot reads the live records into snap, each kind sorted by id.
// It reads rows on this
// goroutine and hands them in chunks of [snapshotChunkRecords] to up to
// GOMAXPROCS goroutines that decode them (strictly, as DecodeChange does),
// so that decoding runs alongside reading and on every core; the records
// keep the query's order.
func (s *Store) readSnapshot(ctx context.Context, tx *sql.Tx, snap *policy.Snapshot) error {
	rows, err := tx.QueryContext(ctx, s.q.snapshot)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	var (
		chunks   []*snapshotChunk
		workers  = make(chan struct{}, runtime.GOMAXPROCS(0))
		bufSize  = 64 << 10
		newChunk = func() *snapshotChunk {
			return &snapshotChunk{
				kinds: make([]policy.Kind, 0, snapshotChunkRecords),
				ends:  make([]int, 0, snapshotChunkRecords),
				buf:   make([]byte, 0, bufSize),
			}
		}
		cur = newChunk()
	)
	// Every decoding goroutine ends before readSnapshot returns.
	defer func() {
		for _, c := range chunks {
			c.decode.Wait()
		}
	}()
	dispatch := func(c *snapshotChunk) {
		chunks = append(chunks, c)
		c.decode.Add(1)
		workers <- struct{}{}
		go func() {
			defer c.decode.Done()
			defer func() { <-workers }()
			c.decodeAll()
		}()
	}
	for rows.Next() {
		var kind, body sql.RawBytes
		if err := rows.Scan(&kind, &body); err != nil {
			return mapErr(err)
		}
		cur.kinds = append(cur.kinds, kindOf(kind))
		cur.buf = append(cur.buf, body...)
		cur.ends = append(cur.ends, len(cur.buf))
		if cur.n++; cur.n == snapshotChunkRecords {
			bufSize = max(bufSize, len(cur.buf)+len(cur.buf)/8) // the next chunk's bodies are likely of the same size
			dispatch(cur)
			cur = newChunk()
		}
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	if cur.n > 0 {
		dispatch(cur)
	}
	for _, c := range chunks {
		c.decode.Wait()
		if c.err != nil {
			return fmt.Errorf("sqlstore: stored record: %w", c.err)
		}
		for i := range c.out {
			switch ch := &c.out[i]; {
			case ch.Policy != nil:
				snap.Policies = append(snap.Policies, ch.Policy)
			case ch.Subject != nil:
				snap.Subjects = append(snap.Subjects, ch.Subject)
			case ch.Device != nil:
				snap.Devices = append(snap.Devices, ch.Device)
			case ch.APIKey != nil:
				snap.APIKeys = append(snap.APIKeys, ch.APIKey)
			case ch.Revocation != nil:
				snap.Revocations = append(snap.Revocations, ch.Revocation)
			}
		}
		c.out = nil
	}
	// By id, bytewise, as the other stores list them, whatever the
	// database's collation.
	sortByID(snap.Policies, func(p *policy.Policy) string { return p.ID })
	sortByID(snap.Subjects, func(x *policy.Subject) string { return x.ID })
	sortByID(snap.Devices, func(x *policy.Device) string { return x.ID })
	sortByID(snap.APIKeys, func(x *policy.APIKey) string { return x.ID })
	sortByID(snap.Revocations, func(x *policy.Revocation) string { return x.ID })
	return nil
}

// sortByID sorts s by id, bytewise, unless it is sorted already (as the
// table's order often is: rows are stored in the order they were written).
func sortByID[T any](s []T, id func(T) string) {
	cmp := func(a, b T) int { return strings.Compare(id(a), id(b)) }
	if !slices.IsSortedFunc(s, cmp) {
		slices.SortFunc(s, cmp)
	}
}

// decodeAll decodes the chunk's records into out, stopping at the first
// that fails (err).
func (c *snapshotChunk) decodeAll() {
	c.out = make([]policy.Change, c.n)
	start := 0
	for i := range c.n {
		ch, err := policy.DecodeChange(c.kinds[i], c.buf[start:c.ends[i]])
		if err != nil {
			c.err, c.out = err, nil
			return
		}
		c.out[i] = ch
		start = c.ends[i]
	}
	c.buf, c.ends, c.kinds = nil, nil, nil
}

// kinds are the record kinds, which kindOf returns without allocating.
var kinds = []policy.Kind{policy.KindPolicy, policy.KindSubject, policy.KindDevice, policy.KindAPIKey, policy.KindRevocation}

// kindOf returns the Kind named b.
func kindOf(b []byte) policy.Kind {
	for _, k := range kinds {
		if string(k) == string(b) {
			return k
		}
	}
	return policy.Kind(b) // unknown: DecodeChange refuses it
}

// Changes implements [policy.Store]. When nothing changed it costs one
// primary-key lookup.
func (s *Store) Changes(ctx context.Context, since int64) ([]policy.Change, error) {
	var cur int64
	if err := s.db.QueryRowContext(ctx, s.q.metaSeq).Scan(&cur); err != nil {
		return nil, mapErr(err)
	}
	switch {
	case cur == since:
		return nil, nil
	case cur < since:
		return nil, policy.ErrChangesTruncated // the database was reset
	}
	rows, err := s.db.QueryContext(ctx, s.q.changes, since)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []policy.Change
	for rows.Next() {
		var (
			seq     int64
			kind    string
			id      string
			deleted bool
			body    []byte
		)
		if err := rows.Scan(&seq, &kind, &id, &deleted, &body); err != nil {
			return nil, mapErr(err)
		}
		var c policy.Change
		if deleted {
			c = policy.DeleteRecord(policy.Kind(kind), id)
		} else {
			if c, err = policy.DecodeChange(policy.Kind(kind), body); err != nil {
				return nil, fmt.Errorf("sqlstore: stored record %s %q: %w", kind, id, err)
			}
			if c.ID != id {
				return nil, fmt.Errorf("sqlstore: stored record %s %q holds id %q", kind, id, c.ID)
			}
		}
		c.Seq = seq
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}
