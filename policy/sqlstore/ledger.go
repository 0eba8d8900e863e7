package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

var _ policy.Ledger = (*Store)(nil)

// RecordIssued implements [policy.Ledger]: the record is committed when
// it returns. Concurrent calls share commits: records are written in
// batches, each one multi-row INSERT (at most [maxIssuedBatch] records)
// committed on its own, up to [maxIssuedWriters] batches at once, on
// connections of their own; the records that arrive while that many are
// being written wait in a queue, and the next free writer takes the
// oldest. So batches are formed oldest first, and a call waits for at most
// the batches formed before its own (which may commit in any order) and
// its own; a batch that waits (for a lock, say) does not hold the others.
// At most [maxIssuedQueued] records wait: a call beyond them fails at once
// with [ErrIssuedQueueFull], which matches [policy.ErrUnavailable].
//
// A call returns nil only once the server has answered its batch's
// commit. A batch that fails with an error matching
// [policy.ErrUnavailable] fails every call in it with that error, and then
// its records may exist or not (a commit whose answer was lost), which
// costs nothing, as the service does not return a token whose record is
// not known to be committed. A batch that fails otherwise (a record
// PostgreSQL refuses, such as one holding "\u0000") is written again one
// record at a time, so that each call gets its own record's outcome and
// one bad record fails no other call (once one of these fails with an
// error matching ErrUnavailable, the rest fail with it). A call whose ctx ends returns at
// once with ctx's error, which also matches ErrUnavailable: its record is
// taken out of the queue if its batch was not yet being written, and may
// be committed otherwise. A batch's INSERT is bounded by
// [issuedWriteTimeout], not by its callers' contexts.
//
// The bound max is checked against a count of the table that this Store
// refreshes every [recountEvery] records it adds (and once a minute, when
// it also deletes the records expired more than [policy.IssuedRetention]
// ago), plus the records it is writing: several instances sharing the
// database may together exceed it by up to recountEvery records each.
func (s *Store) RecordIssued(ctx context.Context, rec *policy.IssuedRecord, now time.Time, max int) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if err := s.reserveIssued(ctx, now, max); err != nil {
		return err
	}
	e := &issuedEntry{
		args: [issuedColumns]any{rec.TokenID, rec.Subject, rec.Audience, rec.AnchorKeyID,
			rec.IssuedAt, rec.Expiry, string(body), rec.TokenHash, rec.RevocationHash},
		done: make(chan struct{}),
	}
	s.batchMu.Lock()
	if len(s.queue) >= s.maxQueued() {
		s.batchMu.Unlock()
		s.releaseIssued(1, 0)
		return ErrIssuedQueueFull
	}
	s.queue = append(s.queue, e)
	if s.writers < s.maxWriters() {
		s.writers++
		go s.writeIssued()
	}
	s.batchMu.Unlock()
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
	}
	s.batchMu.Lock()
	if !e.taken {
		// Still queued: leave it out of the next batch.
		s.queue = slices.DeleteFunc(s.queue, func(q *issuedEntry) bool { return q == e })
		s.batchMu.Unlock()
		s.releaseIssued(1, 0)
	} else {
		s.batchMu.Unlock()
	}
	return fmt.Errorf("%w: sqlstore: %w", policy.ErrUnavailable, ctx.Err())
}

// issuedColumns is the number of columns of a ledger record's row.
const issuedColumns = 9

// issuedEntry is one RecordIssued call's record, queued for a batch.
type issuedEntry struct {
	args [issuedColumns]any
	// taken (guarded by Store.batchMu): the writer took the record into
	// a batch. A caller that leaves before that removes its entry.
	taken bool
	done  chan struct{} // closed once err is set
	err   error
}

// maxWriters returns how many batches may be written at once.
func (s *Store) maxWriters() int {
	if s.issuedWriters > 0 {
		return s.issuedWriters
	}
	return maxIssuedWriters
}

// maxQueued returns how many records may wait for a batch.
func (s *Store) maxQueued() int {
	if s.issuedQueueMax > 0 {
		return s.issuedQueueMax
	}
	return maxIssuedQueued
}

// writeIssued writes the queued records, batch after batch, each taking
// the oldest queued records, until none is left. Up to maxWriters run at
// once (Store.writers), each writing its batch on a connection of its own.
func (s *Store) writeIssued() {
	for {
		s.batchMu.Lock()
		batch := s.queue[:min(len(s.queue), maxIssuedBatch):min(len(s.queue), maxIssuedBatch)]
		for _, e := range batch {
			e.taken = true
		}
		s.queue = s.queue[len(batch):]
		if len(s.queue) == 0 {
			s.queue = nil // let the array go
		}
		if len(batch) == 0 {
			s.writers--
			s.batchMu.Unlock()
			return
		}
		s.batchMu.Unlock()
		err := s.insertIssued(batch)
		if err != nil && !errors.Is(err, policy.ErrUnavailable) && len(batch) > 1 {
			// A record of the batch was refused: write them one at a
			// time, so that each call gets its own record's outcome,
			// unless the database fails meanwhile.
			var down error
			for _, e := range batch {
				if down != nil {
					e.err = down
					continue
				}
				e.err = s.insertIssued([]*issuedEntry{e})
				if errors.Is(e.err, policy.ErrUnavailable) {
					down = e.err
				}
			}
		} else {
			for _, e := range batch {
				e.err = err
			}
		}
		added := 0
		for _, e := range batch {
			if e.err == nil {
				added++
			}
		}
		s.releaseIssued(len(batch), added)
		for _, e := range batch {
			close(e.done)
		}
	}
}

// insertIssued writes the batch's records in one INSERT, committed on its
// own. A record whose cti comes again later in the batch is left out: the
// later one replaces it, as it would if they were written in turn.
func (s *Store) insertIssued(batch []*issuedEntry) error {
	ctx, cancel := context.WithTimeout(context.Background(), issuedWriteTimeout)
	defer cancel()
	last := make(map[any]int, len(batch))
	for i, e := range batch {
		last[e.args[0]] = i
	}
	var q strings.Builder
	q.WriteString(s.q.recordIssuedHead)
	args := make([]any, 0, len(last)*issuedColumns)
	for i, e := range batch {
		if last[e.args[0]] != i {
			continue
		}
		if len(args) > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for j := range issuedColumns {
			if j > 0 {
				q.WriteByte(',')
			}
			args = append(args, e.args[j])
			q.WriteByte('$')
			q.WriteString(strconv.Itoa(len(args)))
		}
		q.WriteByte(')')
	}
	q.WriteString(s.q.recordIssuedTail)
	if _, err := s.db.ExecContext(ctx, q.String(), args...); err != nil {
		return mapErr(err)
	}
	return nil
}

// issuedQueued returns the number of records waiting for a batch.
func (s *Store) issuedQueued() int {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	return len(s.queue)
}

// reserveIssued prunes and counts the ledger when it is due, fails with
// ErrLedgerFull when the count and the records being written reach max
// after pruning, and otherwise takes a place for one record, which
// releaseIssued gives back.
func (s *Store) reserveIssued(ctx context.Context, now time.Time, max int) error {
	s.issuedMu.Lock()
	defer s.issuedMu.Unlock()
	if now.Sub(s.lastPrune) >= pruneEvery || now.Before(s.lastPrune) {
		if err := s.pruneLocked(ctx, now); err != nil {
			return err
		}
	}
	if s.sinceCount < 0 || s.sinceCount >= recountEvery {
		if err := s.countLocked(ctx); err != nil {
			return err
		}
	}
	if s.issuedCount+s.issuedPending >= int64(max) {
		if err := s.pruneLocked(ctx, now); err != nil {
			return err
		}
		if err := s.countLocked(ctx); err != nil {
			return err
		}
		if s.issuedCount+s.issuedPending >= int64(max) {
			return policy.ErrLedgerFull
		}
	}
	s.issuedPending++
	return nil
}

// releaseIssued gives back the places of n records, of which added were
// added to the table.
func (s *Store) releaseIssued(n, added int) {
	s.issuedMu.Lock()
	defer s.issuedMu.Unlock()
	s.issuedPending -= int64(n)
	s.issuedCount += int64(added)
	s.sinceCount += added
}

func (s *Store) countLocked(ctx context.Context) error {
	if err := s.db.QueryRowContext(ctx, s.q.countIssued).Scan(&s.issuedCount); err != nil {
		return mapErr(err)
	}
	s.sinceCount = 0
	return nil
}

func (s *Store) pruneLocked(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q.pruneIssued, now.Add(-policy.IssuedRetention)); err != nil {
		return mapErr(err)
	}
	s.lastPrune = now
	s.sinceCount = -1 // count again
	return nil
}

// PruneIssued implements [policy.Ledger]: it deletes the records whose
// token expired more than [policy.IssuedRetention] before now.
func (s *Store) PruneIssued(ctx context.Context, now time.Time) error {
	s.issuedMu.Lock()
	defer s.issuedMu.Unlock()
	return s.pruneLocked(ctx, now)
}

// Issued implements [policy.Ledger], in one repeatable-read transaction.
func (s *Store) Issued(ctx context.Context, f *policy.IssuedFilter) (*policy.IssuedList, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.TokenID != "" {
		where = append(where, "cti = "+arg(f.TokenID))
	}
	if f.Hash != "" {
		h := arg(f.Hash)
		where = append(where, "(token_hash = "+h+" OR revocation_hash = "+h+")")
	}
	if f.Subject != "" {
		where = append(where, "subject = "+arg(f.Subject))
	}
	if len(f.Audiences) > 0 {
		where = append(where, "aud && "+arg(f.Audiences)+"::text[]")
	}
	if f.Anchor != "" {
		where = append(where, "anchor = "+arg(f.Anchor))
	}
	if !f.IssuedBefore.IsZero() {
		where = append(where, "issued_at <= "+arg(f.IssuedBefore))
	}
	if !f.ExpiresAfter.IsZero() {
		where = append(where, "expires_at > "+arg(f.ExpiresAfter))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, mapErr(err)
	}
	defer tx.Rollback()
	out := &policy.IssuedList{}
	var latest *time.Time
	if err := tx.QueryRowContext(ctx, `SELECT count(*), max(expires_at) FROM `+s.table+cond, args...).Scan(&out.Total, &latest); err != nil {
		return nil, mapErr(err)
	}
	if latest != nil {
		out.LatestExpiry = latest.UTC()
	}
	{
		pageCond := cond
		if f.After != "" {
			if pageCond == "" {
				pageCond = " WHERE "
			} else {
				pageCond += " AND "
			}
			pageCond += "cti > " + arg(f.After)
		}
		rows, err := tx.QueryContext(ctx, `SELECT body::text FROM `+s.table+pageCond+` ORDER BY cti LIMIT `+arg(max(f.Limit, 0)+1), args...)
		if err != nil {
			return nil, mapErr(err)
		}
		defer rows.Close()
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&body); err != nil {
				return nil, mapErr(err)
			}
			rec := new(policy.IssuedRecord)
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(rec); err != nil {
				return nil, fmt.Errorf("%w: sqlstore: stored ledger record: %v", policy.ErrInvalid, err)
			}
			if err := rec.Validate(); err != nil {
				return nil, fmt.Errorf("sqlstore: stored ledger record: %w", err)
			}
			out.Records = append(out.Records, rec)
		}
		if err := rows.Err(); err != nil {
			return nil, mapErr(err)
		}
	}
	if len(out.Records) > f.Limit {
		out.Records, out.HasMore = out.Records[:max(f.Limit, 0)], true
	}
	return out, tx.Commit()
}
