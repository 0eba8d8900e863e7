package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// IssuedRecord is the ledger's record of one issued token
// (docs/PROTOCOL.md section 12, "Ledger"). Byte strings are in lower-case
// hexadecimal.
type IssuedRecord struct {
	// TokenID is the token's cti.
	TokenID string `json:"cti"`
	// TokenHash is the SHA-256 of the token bytes as issued: the token
	// hash of RFC 9770 section 4.
	TokenHash string `json:"token_hash"`
	// RevocationHash is [token.RevocationHash] of the token bytes, which
	// devices look revoked tokens up by.
	RevocationHash string `json:"revocation_hash"`
	// Subject, Audience and Scope are the token's sub, aud and the
	// operation names of its scope.
	Subject  string   `json:"subject"`
	Audience []string `json:"aud"`
	Scope    []string `json:"scope"`
	// Issuer is the token's iss; AnchorKeyID the key id of the anchor
	// key that signed it (Service.KeyID, else its COSE Key Thumbprint).
	Issuer      string `json:"iss"`
	AnchorKeyID string `json:"anchor"`
	// IssuedAt and Expiry are the token's iat and exp.
	IssuedAt time.Time `json:"issued_at"`
	Expiry   time.Time `json:"expires_at"`
}

// Validate checks the record's fields and bounds. Stores validate what
// they read back before using it.
func (r *IssuedRecord) Validate() error {
	var f fieldErrs
	checkHex(&f, "cti", r.TokenID, 1, maxTokenIDBytes)
	checkHex(&f, "token_hash", r.TokenHash, 32, 32)
	checkHex(&f, "revocation_hash", r.RevocationHash, 32, 32)
	checkID(&f, "subject", r.Subject)
	if len(r.Audience) == 0 || len(r.Audience) > token.MaxAudiences {
		f.add("aud", "1 to %d entries", token.MaxAudiences)
	}
	for i, a := range r.Audience {
		if validateAudience(a) != nil {
			f.add(fmt.Sprintf("aud[%d]", i), "not a device audience")
		}
	}
	if len(r.Scope) > token.MaxScopeItems {
		f.add("scope", "more than %d names", token.MaxScopeItems)
	}
	for i, s := range r.Scope {
		if s == "" || len(s) > token.MaxNameLength {
			f.add(fmt.Sprintf("scope[%d]", i), "1 to %d characters", token.MaxNameLength)
		}
	}
	if r.Issuer == "" || len(r.Issuer) > maxNameLen {
		f.add("iss", "1 to %d bytes", maxNameLen)
	}
	checkHex(&f, "anchor", r.AnchorKeyID, 1, maxKeyIDBytes)
	if r.IssuedAt.IsZero() {
		f.add("issued_at", "required")
	}
	if !r.Expiry.After(r.IssuedAt) {
		f.add("expires_at", "must be after issued_at")
	}
	return f.err()
}

// checkHex checks that v is lower-case hexadecimal of min to max bytes.
func checkHex(f *fieldErrs, name, v string, min, max int) {
	ok := len(v)%2 == 0 && len(v) >= 2*min && len(v) <= 2*max
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if !ok {
		if min == max {
			f.add(name, "%d bytes in lower-case hexadecimal", min)
		} else {
			f.add(name, "%d to %d bytes in lower-case hexadecimal", min, max)
		}
	}
}

func (r *IssuedRecord) clone() *IssuedRecord {
	c := *r
	c.Audience = slices.Clone(r.Audience)
	c.Scope = slices.Clone(r.Scope)
	return &c
}

// prunable reports whether the record may be pruned at now: its token
// expired more than [IssuedRetention] ago.
func (r *IssuedRecord) prunable(now time.Time) bool {
	return r.Expiry.Add(IssuedRetention).Before(now)
}

// IssuedRetention is how long the ledger keeps a record after its token
// expired: the leeway that devices allow on exp (v1 devices use 300 s).
const IssuedRetention = 300 * time.Second

// IssuedFilter selects records of the ledger. Its zero value selects all.
type IssuedFilter struct {
	// TokenID selects the record of one cti (hex); Hash the record
	// whose token hash or revocation hash it is (hex).
	TokenID string
	Hash    string
	// Subject selects the records of one subject.
	Subject string
	// Audiences selects the records whose audience holds one of them
	// (the forms of one device's audience: "ep:name", "id:hex"...).
	Audiences []string
	// Anchor selects the records of one anchor key id (hex).
	Anchor string
	// IssuedBefore, when not zero, selects records issued at or before it.
	IssuedBefore time.Time
	// ExpiresAfter, when not zero, selects records whose token expires
	// after it.
	ExpiresAfter time.Time
	// After selects records whose cti (hex) sorts after it: the
	// listing's cursor.
	After string
	// Limit bounds the records returned; zero returns none (only the
	// totals).
	Limit int
}

// matches reports whether r is selected by f, After and Limit aside.
func (f *IssuedFilter) matches(r *IssuedRecord) bool {
	if f.TokenID != "" && r.TokenID != f.TokenID {
		return false
	}
	if f.Hash != "" && r.TokenHash != f.Hash && r.RevocationHash != f.Hash {
		return false
	}
	if f.Subject != "" && r.Subject != f.Subject {
		return false
	}
	if f.Anchor != "" && r.AnchorKeyID != f.Anchor {
		return false
	}
	if !f.IssuedBefore.IsZero() && r.IssuedAt.After(f.IssuedBefore) {
		return false
	}
	if !f.ExpiresAfter.IsZero() && !r.Expiry.After(f.ExpiresAfter) {
		return false
	}
	if len(f.Audiences) > 0 && !slices.ContainsFunc(r.Audience, func(a string) bool { return slices.Contains(f.Audiences, a) }) {
		return false
	}
	return true
}

// IssuedList is one page of the ledger.
type IssuedList struct {
	// Records are the selected records with a cti after the filter's
	// After, sorted by cti, at most the filter's Limit.
	Records []*IssuedRecord
	// HasMore tells that more records follow the last one.
	HasMore bool
	// Total counts all the records the filter selects, After and Limit
	// aside; LatestExpiry is the latest expiry among them (zero when none).
	Total        int
	LatestExpiry time.Time
}

// Ledger keeps the records of issued tokens. A [Service] commits one
// record per token before it returns the token; [MemoryStore],
// [FileStore] and package sqlstore's Store implement it. A Service whose
// Store does not implement it, and whose Ledger field is nil, issues no
// token (an error matching [ErrConfig] and [ErrUnavailable]).
type Ledger interface {
	// RecordIssued commits rec durably before it returns; an error means
	// that rec was not recorded. When the ledger holds max records it
	// first prunes those that have expired (see [IssuedRetention]) at
	// now, and fails with [ErrLedgerFull] if it still holds max.
	RecordIssued(ctx context.Context, rec *IssuedRecord, now time.Time, max int) error
	// Issued lists the records that f selects.
	Issued(ctx context.Context, f *IssuedFilter) (*IssuedList, error)
	// PruneIssued removes the records whose token expired more than
	// IssuedRetention before now.
	PruneIssued(ctx context.Context, now time.Time) error
}

// ErrLedgerFull reports that the ledger holds as many records as it may
// (Service.MaxIssued) after pruning: no token is issued. It matches
// [ErrUnavailable].
var ErrLedgerFull = fmt.Errorf("%w: the ledger of issued tokens is full", ErrUnavailable)

// DefaultMaxIssued is the default of Service.MaxIssued.
const DefaultMaxIssued = 1_000_000

// ledgerPruneInterval is how often an in-memory ledger prunes itself while
// records are added.
const ledgerPruneInterval = time.Minute

// memLedger is the ledger of [MemoryStore] and [FileStore]: records by
// cti. It is safe for concurrent use.
type memLedger struct {
	mu        sync.Mutex
	recs      map[string]*IssuedRecord
	pending   int // slots reserved by records being written
	lastPrune time.Time
}

// reserve takes a slot for one record, pruning first when the ledger is
// full or when it was last pruned long ago. The caller adds the record
// with commit or gives the slot back with release.
func (l *memLedger) reserve(now time.Time, max int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recs == nil {
		l.recs = map[string]*IssuedRecord{}
	}
	if len(l.recs)+l.pending >= max || now.Sub(l.lastPrune) >= ledgerPruneInterval || now.Before(l.lastPrune) {
		l.pruneLocked(now)
	}
	if len(l.recs)+l.pending >= max {
		return ErrLedgerFull
	}
	l.pending++
	return nil
}

func (l *memLedger) release(n int) {
	l.mu.Lock()
	l.pending -= n
	l.mu.Unlock()
}

// commit adds records whose slots were reserved.
func (l *memLedger) commit(recs ...*IssuedRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.recs[r.TokenID] = r
	}
	l.pending -= len(recs)
}

func (l *memLedger) pruneLocked(now time.Time) int {
	n := 0
	for id, r := range l.recs {
		if r.prunable(now) {
			delete(l.recs, id)
			n++
		}
	}
	l.lastPrune = now
	return n
}

func (l *memLedger) prune(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recs == nil {
		return 0
	}
	return l.pruneLocked(now)
}

func (l *memLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// list answers [Ledger.Issued].
func (l *memLedger) list(f *IssuedFilter) *IssuedList {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := &IssuedList{}
	var page []*IssuedRecord
	for _, r := range l.recs {
		if !f.matches(r) {
			continue
		}
		out.Total++
		if r.Expiry.After(out.LatestExpiry) {
			out.LatestExpiry = r.Expiry
		}
		if r.TokenID > f.After {
			page = append(page, r)
		}
	}
	slices.SortFunc(page, func(a, b *IssuedRecord) int { return strings.Compare(a.TokenID, b.TokenID) })
	if len(page) > f.Limit {
		page, out.HasMore = page[:max(f.Limit, 0)], true
	}
	out.Records = make([]*IssuedRecord, len(page))
	for i, r := range page {
		out.Records[i] = r.clone()
	}
	return out
}

// snapshot returns the records, for compaction.
func (l *memLedger) snapshot() []*IssuedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*IssuedRecord, 0, len(l.recs))
	for _, r := range l.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *IssuedRecord) int { return a.IssuedAt.Compare(b.IssuedAt) })
	return out
}

// RecordIssued implements [Ledger]: the record is kept in memory.
func (s *MemoryStore) RecordIssued(ctx context.Context, rec *IssuedRecord, now time.Time, max int) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.ledger.reserve(now, max); err != nil {
		return err
	}
	s.ledger.commit(rec.clone())
	return nil
}

// Issued implements [Ledger].
func (s *MemoryStore) Issued(ctx context.Context, f *IssuedFilter) (*IssuedList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.ledger.list(f), nil
}

// PruneIssued implements [Ledger].
func (s *MemoryStore) PruneIssued(ctx context.Context, now time.Time) error {
	s.ledger.prune(now)
	return ctx.Err()
}

var _ Ledger = (*MemoryStore)(nil)
