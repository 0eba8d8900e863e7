package policy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
)

// issuedLog is the ledger of a [FileStore]: the records in memory and in
// an append-only file of JSON lines beside the store's file (its path plus
// ".issued"). Appends are group-committed: the writers that arrive while
// one fsync runs share the next one.
type issuedLog struct {
	mem  memLedger
	path string

	mu      sync.Mutex // guards the fields below
	f       *os.File
	size    int64 // bytes of f that hold whole lines
	lines   int   // lines in f
	cur     *logBatch
	writing bool
	broken  error // set when f may end with a partial line that could not be cut

	// hook, when set by a test, is called before each batch is written;
	// an error it returns fails the batch as a failed write would.
	hook func(lines int) error
}

// logBatch is the lines that one fsync commits.
type logBatch struct {
	buf  []byte
	recs []*IssuedRecord
	done chan struct{} // closed once the batch is written or has failed, err set
	err  error
	// turn is closed when the writer of the previous batch hands this one
	// to its callers; the first to wake sets claimed (under the log's mu)
	// and writes it.
	turn    chan struct{}
	claimed bool
}

// issuedSuffix names the ledger file: the store file's path plus it.
const issuedSuffix = ".issued"

// maxIssuedLineBytes bounds one line of the ledger file.
const maxIssuedLineBytes = 64 << 10

// minCompactLines is the fewest lines a ledger file holds before it is
// compacted while the store is open (tests lower it).
var minCompactLines = 1024

// openIssuedLog loads the ledger file at path, ignoring a torn last line
// (a crash in the middle of an append, whose record was never reported
// committed), and rewrites it without the records expired at now and the
// torn line, when there are any.
func openIssuedLog(path string, now time.Time) (*issuedLog, error) {
	l := &issuedLog{path: path, cur: newLogBatch()}
	l.mem.recs = map[string]*IssuedRecord{}
	l.mem.lastPrune = now
	base := filepath.Base(path)
	if err := atomicfile.RemoveTemps(filepath.Dir(path), func(b string) bool { return b == base }); err != nil {
		return nil, fmt.Errorf("policy: removing stale temporary files: %w", err)
	}
	rewrite, err := l.load(now)
	if err != nil {
		return nil, err
	}
	if rewrite {
		if err := l.rewrite(); err != nil {
			return nil, err
		}
	} else if err = l.openAppend(); err != nil {
		return nil, err
	}
	return l, nil
}

// openAppend opens the file, as load left it, for appending: l.size is
// its size, which a failed write cuts the file back to.
func (l *issuedLog) openAppend() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("policy: open ledger: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("policy: open ledger: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// load reads the file into l.mem and reports whether it must be rewritten:
// it is missing, ends with a torn line, or holds expired records.
func (l *issuedLog) load(now time.Time) (rewrite bool, err error) {
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("policy: open ledger: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			return rewrite, nil
		}
		if errors.Is(err, errTornLine) {
			return true, nil // a crash cut the last append short
		}
		if err != nil {
			return false, fmt.Errorf("policy: read ledger %s: %w", l.path, err)
		}
		var rec IssuedRecord
		err = strictUnmarshal(line, &rec)
		if err == nil {
			err = rec.Validate()
		}
		if err != nil {
			if _, perr := r.Peek(1); errors.Is(perr, io.EOF) && !json.Valid(line) {
				return true, nil // the last line, torn although it ends with a newline
			}
			return false, fmt.Errorf("%w: ledger %s line %d: %v", ErrInvalid, l.path, n, err)
		}
		l.lines++
		if rec.prunable(now) {
			rewrite = true
			continue
		}
		l.mem.recs[rec.TokenID] = &rec
	}
}

var (
	errTornLine   = errors.New("a last line without its newline")
	errLongLine   = errors.New("a line longer than the bound")
	errEmptyLines = errors.New("an empty line")
)

// readLine returns the next line without its newline: io.EOF at the end,
// errTornLine for a last line that does not end with a newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxIssuedLineBytes+1 {
			return nil, errLongLine
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			if len(line) == 1 {
				return nil, errEmptyLines
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, errTornLine
		default:
			return nil, err
		}
	}
}

// rewrite replaces the file with the records of l.mem, atomically, and
// opens it for appending. The caller holds l.mu (or owns l alone) and no
// batch is being written.
func (l *issuedLog) rewrite() error {
	recs := l.mem.snapshot()
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("policy: encode ledger: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := atomicfile.Write(l.path, buf.Bytes(), 0o600, nil); err != nil {
		return fmt.Errorf("policy: compact ledger: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		// The new file is in place and the old one, still open, is
		// unlinked: appends to it would be lost.
		l.broken = err
		return fmt.Errorf("policy: open ledger: %w", err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size, l.lines, l.broken = f, int64(buf.Len()), len(recs), nil
	return nil
}

func newLogBatch() *logBatch {
	return &logBatch{done: make(chan struct{}), turn: make(chan struct{})}
}

// append commits rec to the file and then to memory. Concurrent calls
// share one write and one fsync: the lines that gather while one batch is
// written go in the next. One caller at a time is the writer; once its
// batch is committed it hands the next batch, if lines gathered, to one of
// that batch's callers and answers, so that no caller waits for more than
// the write under way and its own.
func (l *issuedLog) append(rec *IssuedRecord, now time.Time, max int) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("policy: encode ledger record: %w", err)
	}
	if len(line) > maxIssuedLineBytes {
		return fmt.Errorf("%w: ledger record of %d bytes", ErrInvalid, len(line))
	}
	if err := l.mem.reserve(now, max); err != nil {
		return err
	}
	l.mu.Lock()
	b := l.cur
	b.buf = append(append(b.buf, line...), '\n')
	b.recs = append(b.recs, rec.clone())
	if l.writing {
		l.mu.Unlock()
		select {
		case <-b.done:
			return b.err
		case <-b.turn: // the previous writer handed this batch over
		}
		l.mu.Lock()
		if b.claimed { // another caller of the batch writes it
			l.mu.Unlock()
			<-b.done
			return b.err
		}
		b.claimed = true
	}
	l.writing = true
	batch := l.cur // b, or the batch handed over, which is b
	l.cur = newLogBatch()
	l.mu.Unlock()
	batch.err = l.write(batch)
	if batch.err == nil {
		l.mem.commit(batch.recs...)
	} else {
		l.mem.release(len(batch.recs))
	}
	l.mu.Lock()
	close(batch.done)
	// Compact when more than half the lines are of records pruned from
	// memory. writing is still set, so no batch is written meanwhile, and
	// every record written is in memory. On failure the old file is intact
	// and appends go on, or rewrite has marked the log broken.
	if l.broken == nil && l.lines >= minCompactLines && l.lines > 2*l.mem.len() {
		_ = l.rewrite()
	}
	if len(l.cur.recs) > 0 {
		close(l.cur.turn) // writing stays set: the batch's first caller to wake writes it
	} else {
		l.writing = false
	}
	l.mu.Unlock()
	return b.err
}

// write appends the batch's lines and syncs the file. On failure it cuts
// the file back to its last whole line; if that fails too, the log is
// broken and refuses writes until the store is opened again.
func (l *issuedLog) write(b *logBatch) error {
	if l.broken != nil {
		return fmt.Errorf("%w: ledger file: %v", ErrUnavailable, l.broken)
	}
	var err error
	if l.hook != nil {
		err = l.hook(len(b.recs))
	}
	if err == nil {
		_, err = l.f.Write(b.buf)
	}
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.broken = terr
		}
		return fmt.Errorf("%w: ledger file: %v", ErrUnavailable, err)
	}
	l.size += int64(len(b.buf))
	l.lines += len(b.recs)
	return nil
}

// close closes the file.
func (l *issuedLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.broken = errors.New("closed")
	return err
}

// RecordIssued implements [Ledger]: the record is appended to the ledger
// file and synced before it returns.
func (s *FileStore) RecordIssued(ctx context.Context, rec *IssuedRecord, now time.Time, max int) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.issued.append(rec, now, max)
}

// Issued implements [Ledger].
func (s *FileStore) Issued(ctx context.Context, f *IssuedFilter) (*IssuedList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.issued.mem.list(f), nil
}

// PruneIssued implements [Ledger]: it prunes the records in memory; the
// file drops them when it is next compacted.
func (s *FileStore) PruneIssued(ctx context.Context, now time.Time) error {
	s.issued.mem.prune(now)
	return ctx.Err()
}

// Close closes the ledger file. The store must not be used afterwards.
func (s *FileStore) Close() error { return s.issued.close() }

var _ Ledger = (*FileStore)(nil)
