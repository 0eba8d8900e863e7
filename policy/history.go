package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// historyEntry is one applied change and the change that undoes it.
type historyEntry struct {
	seq  int64
	kind Kind
	id   string
	del  bool
	undo Change // a put of the previous record, or a delete
	size int    // bytes of the undo's record, as encoded, counted against MaxHistoryBytes
}

// changeHistory is the bounded undo history of a [Service]: for the last
// [MaxHistory] changes it applied, the previous value of the record
// changed, at most [MaxHistoryBytes] of them. It can rebuild the state at
// any sequence number from base to the current one. The Service's syncMu
// guards it.
type changeHistory struct {
	base    int64
	entries []historyEntry // ascending seq
	bytes   int            // the sum of the entries' sizes
}

// reset starts a new history at seq: after a snapshot is loaded, earlier
// states are unknown.
func (h *changeHistory) reset(seq int64) {
	h.base = seq
	h.entries = nil
	h.bytes = 0
}

// record adds applied changes and the changes that undo them, dropping
// the oldest entries beyond MaxHistory entries or MaxHistoryBytes.
func (h *changeHistory) record(changes, undo []Change) {
	for i := range changes {
		c := &changes[i]
		e := historyEntry{seq: c.Seq, kind: c.Kind, id: c.ID, del: c.Delete, undo: undo[i]}
		if !e.undo.Delete {
			if b, err := e.undo.record(); err == nil {
				e.size = len(b)
			}
		}
		h.entries = append(h.entries, e)
		h.bytes += e.size
	}
	drop := max(len(h.entries)-MaxHistory, 0)
	for i := range drop {
		h.bytes -= h.entries[i].size
	}
	for drop < len(h.entries) && h.bytes > MaxHistoryBytes {
		h.bytes -= h.entries[drop].size
		drop++
	}
	if drop > 0 {
		// States from the last dropped change's seq on stay rebuildable:
		// they need only the changes after it.
		h.base = h.entries[drop-1].seq
		h.entries = append([]historyEntry(nil), h.entries[drop:]...)
	}
}

// applyRecording applies changes as [Engine.Apply] does and returns, for
// each, the change that restores the record it touches to the value it
// had just before it: applying them in reverse order undoes the batch.
func (e *Engine) applyRecording(changes []Change) (undo []Change, err error) {
	prepared, err := PrepareChanges(changes)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st == nil {
		e.st = newState()
	}
	if err := e.st.check(prepared); err != nil {
		return nil, err
	}
	undo = make([]Change, len(prepared))
	for i := range prepared {
		undo[i] = e.st.current(prepared[i].Kind, prepared[i].ID)
		e.st.apply(&prepared[i])
	}
	return undo, nil
}

// ErrHistoryGone reports a diff or change log asked from a sequence number
// older than the history the service keeps. Errors that match it are a
// *[HistoryGoneError].
var ErrHistoryGone = errors.New("policy: change history gone")

// HistoryGoneError reports that the service cannot rebuild the state at
// Seq: its history starts at Oldest (it keeps [MaxHistory] changes, from
// the last time it loaded a snapshot of its Store, such as at start). It
// matches [ErrHistoryGone].
type HistoryGoneError struct {
	Seq, Oldest int64
	param       string // the query parameter, for the HTTP error
}

// Error names the sequence numbers.
func (e *HistoryGoneError) Error() string {
	return fmt.Sprintf("policy: change history gone: seq %d is older than the history, which starts at seq %d", e.Seq, e.Oldest)
}

// Unwrap returns [ErrHistoryGone].
func (e *HistoryGoneError) Unwrap() error { return ErrHistoryGone }

// ChangeLogEntry describes one change the service applied: metadata only,
// never the record.
type ChangeLogEntry struct {
	Seq    int64  `json:"seq"`
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	Delete bool   `json:"delete"`
}

// ChangeLog returns up to limit (1 to 1000) changes the service applied
// after sequence number since, in order, whether there are more, and the
// current sequence number. The changes of one batch share a sequence
// number, so that the next page is asked from the last one of this page:
// a page holds whole batches, ending before a batch that does not fit,
// except that a first batch larger than limit is returned whole. Since must not be older than the history
// ([HistoryGoneError]); a negative since means the oldest the history
// holds.
func (s *Service) ChangeLog(ctx context.Context, since int64, limit int) (entries []ChangeLogEntry, more bool, seq int64, err error) {
	if err := s.sync(ctx); err != nil {
		return nil, false, 0, err
	}
	return s.changeLog(since, limit, "since")
}

func (s *Service) changeLog(since int64, limit int, param string) ([]ChangeLogEntry, bool, int64, error) {
	var f fieldErrs
	if limit < 1 || limit > maxChangeLog {
		f.add("limit", "an integer from 1 to %d", maxChangeLog)
	}
	if err := f.err(); err != nil {
		return nil, false, 0, err
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	h := &s.hist
	if since < 0 {
		since = h.base
	}
	if since < h.base {
		return nil, false, 0, &HistoryGoneError{Seq: since, Oldest: h.base, param: param}
	}
	// The changes of one batch share a seq, and the next page is asked
	// from the last seq of this one: a page holds whole batches only. It
	// ends before a batch that does not fit, and a first batch larger
	// than limit comes whole (at most maxChangesPerApply entries).
	start, _ := slices.BinarySearchFunc(h.entries, since+1, func(e historyEntry, seq int64) int { return cmp.Compare(e.seq, seq) })
	end := start
	for end < len(h.entries) {
		next := end
		for next < len(h.entries) && h.entries[next].seq == h.entries[end].seq {
			next++
		}
		if next-start > limit && end > start {
			break
		}
		end = next
	}
	out := make([]ChangeLogEntry, 0, end-start)
	for _, e := range h.entries[start:end] {
		out = append(out, ChangeLogEntry{Seq: e.seq, Kind: e.kind, ID: e.id, Delete: e.del})
	}
	return out, end < len(h.entries), s.seq, nil
}

// Diff reports the [Impact], at time at, of the changes the service
// applied between sequence numbers from and to (a negative to means the
// current one): the grants of the state at to compared with those of the
// state at from. The service rebuilds earlier states from its history
// ([MaxHistory] changes since it last loaded a snapshot of its Store); a
// from or to older than that is a *[HistoryGoneError]. It returns the to
// it used.
func (s *Service) Diff(ctx context.Context, from, to int64, at time.Time, opts *ImpactOptions) (*Impact, int64, error) {
	if err := s.sync(ctx); err != nil {
		return nil, 0, err
	}
	return s.diff(from, to, at, opts)
}

func (s *Service) diff(from, to int64, at time.Time, opts *ImpactOptions) (*Impact, int64, error) {
	if err := checkImpactArgs(at, opts); err != nil {
		return nil, 0, err
	}
	s.syncMu.Lock()
	cur, h := s.seq, &s.hist
	if to < 0 {
		to = cur
	}
	var f fieldErrs
	if from < 0 || from > cur {
		f.add("from", "a sequence number from 0 to the current one, %d", cur)
	}
	if to > cur {
		f.add("to", "a sequence number up to the current one, %d", cur)
	}
	if err := f.err(); err != nil {
		s.syncMu.Unlock()
		return nil, 0, err
	}
	for _, x := range []struct {
		seq   int64
		param string
	}{{from, "from"}, {to, "to"}} {
		if x.seq < h.base {
			s.syncMu.Unlock()
			return nil, 0, &HistoryGoneError{Seq: x.seq, Oldest: h.base, param: x.param}
		}
	}
	// The engine changes only under syncMu: its view and the history
	// are consistent.
	s.engine.mu.RLock()
	st := s.engine.st
	if st == nil {
		st = emptyState
	}
	current := st.view()
	s.engine.mu.RUnlock()
	oldest := min(from, to)
	var undo []historyEntry
	for i := len(h.entries) - 1; i >= 0 && h.entries[i].seq > oldest; i-- {
		undo = append(undo, h.entries[i]) // newest first
	}
	s.syncMu.Unlock()

	rebuild := func(seq int64) *view {
		v := current.clone()
		for i := range undo {
			if undo[i].seq <= seq {
				break
			}
			v.apply(&undo[i].undo)
		}
		return v
	}
	im, err := computeImpact(rebuild(from), rebuild(to), at, opts)
	return im, to, err
}
