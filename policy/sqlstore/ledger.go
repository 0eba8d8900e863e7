package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

var _ policy.Ledger = (*Store)(nil)

// RecordIssued implements [policy.Ledger]: one INSERT, committed when it
// returns. A failure to reach the database matches [policy.ErrUnavailable];
// the record may then exist or not, which costs nothing, as the service
// does not return a token whose record is not known to be committed.
//
// The bound max is checked against a count of the table that this Store
// refreshes every [recountEvery] records it adds (and once a minute, when
// it also deletes the records expired more than [policy.IssuedRetention]
// ago): several instances sharing the database may together exceed it by
// up to recountEvery records each.
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
	if _, err := s.db.ExecContext(ctx, s.q.recordIssued, rec.TokenID, rec.Subject, rec.Audience, rec.AnchorKeyID,
		rec.IssuedAt, rec.Expiry, string(body), rec.TokenHash, rec.RevocationHash); err != nil {
		return mapErr(err)
	}
	s.issuedMu.Lock()
	s.issuedCount++
	s.sinceCount++
	s.issuedMu.Unlock()
	return nil
}

// reserveIssued prunes and counts the ledger when it is due, and fails
// with ErrLedgerFull when the count is at max after pruning.
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
	if s.issuedCount >= int64(max) {
		if err := s.pruneLocked(ctx, now); err != nil {
			return err
		}
		if err := s.countLocked(ctx); err != nil {
			return err
		}
		if s.issuedCount >= int64(max) {
			return policy.ErrLedgerFull
		}
	}
	return nil
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
