package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
)

// MemoryStore is the embedded [Store] that lives in memory only (see
// [FileStore] for one saved to a file). It is safe for concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	path string // "" when not backed by a file
	st   *state
	seq  int64
	log  []Change // recent changes in order, for Changes

	ledger memLedger // issued tokens (in memory only)
}

// memLogLimit bounds the changes a MemoryStore keeps for [MemoryStore.Changes].
const memLogLimit = 10000

// maxStoreFileBytes bounds the JSON file a FileStore reads (tests lower it).
var maxStoreFileBytes = 1 << 30

// NewMemoryStore returns an empty store that lives in memory only.
func NewMemoryStore() *MemoryStore { return &MemoryStore{st: newState()} }

// FileStore is the embedded [Store] saved to a JSON file: a [MemoryStore]
// whose every write is committed to the file before it is reported done.
// It is safe for concurrent use by the goroutines of one process; two
// processes must not share its file (use policy/sqlstore for that).
type FileStore struct {
	mem    *MemoryStore
	issued *issuedLog
}

// Apply implements [Store]: the changes are in the file (synced) when it
// returns without error, and nothing of them is applied when it fails.
func (s *FileStore) Apply(ctx context.Context, changes ...Change) (int64, error) {
	return s.mem.Apply(ctx, changes...)
}

// Snapshot implements [Store].
func (s *FileStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	return s.mem.Snapshot(ctx)
}

// Changes implements [Store]. The change log is kept in memory only: after
// the store is opened again, Changes from a sequence number before the
// opening answers [ErrChangesTruncated] and the reader takes a snapshot.
func (s *FileStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	return s.mem.Changes(ctx, since)
}

// OpenFileStore returns a store backed by the JSON file at path, loading
// it when it exists. Every [FileStore.Apply] rewrites the whole file
// atomically (a temporary file in the same directory, fsync, rename, fsync
// of the directory), so a crash leaves either the old or the new content.
// The directory of path must exist (an error matching fs.ErrNotExist
// otherwise). OpenFileStore removes the temporary files of path that
// writes a crash interrupted left in its directory (one process owns the
// file: a write in progress in another process would fail).
//
// The store's [Ledger] of issued tokens is kept in a second file, path
// plus ".issued", one JSON line per record, appended and synced per
// record (concurrent records share one fsync). Opening the store ignores a
// torn last line, which a crash during an append leaves (that record was
// never reported committed), and rewrites the file atomically without it
// and without the records expired (see [IssuedRetention]); the file is
// rewritten so too while the store is open, when more than half of its
// lines are records pruned from memory. [FileStore.Close] closes it.
//
// The file names its format and version in its "format" member,
// "sda-policy-store/1"; a file of a newer version is refused with a
// *[FormatVersionError] (matching [ErrFormatTooNew]) and left untouched.
// [Export] and [Import] move the records and the ledger to another store.
func OpenFileStore(path string) (*FileStore, error) {
	s, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l, err := openIssuedLog(path+issuedSuffix, time.Now())
	if err != nil {
		return nil, err
	}
	return &FileStore{mem: s, issued: l}, nil
}

func openFile(path string) (*MemoryStore, error) {
	s := &MemoryStore{path: path, st: newState()}
	// Every write creates a file in the directory: one that is missing is
	// an error now, not at the first write.
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("policy: store directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("policy: store directory %s is not a directory", filepath.Dir(path))
	}
	base := filepath.Base(path)
	if err := atomicfile.RemoveTemps(filepath.Dir(path), func(b string) bool { return b == base }); err != nil {
		return nil, fmt.Errorf("policy: removing stale temporary files: %w", err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: open store: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxStoreFileBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read store: %w", err)
	}
	if len(b) > maxStoreFileBytes {
		return nil, fmt.Errorf("policy: store file %s larger than %d bytes", path, maxStoreFileBytes)
	}
	if err := checkFormat(b, storeFormatName, storeFormatVersion); err != nil {
		return nil, fmt.Errorf("store file %s: %w", path, err)
	}
	var snap storeFile
	if err := strictUnmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("%w: store file %s: %w", ErrInvalid, path, err)
	}
	prepared, err := prepareSnapshot(&snap.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("store file %s: %w", path, err)
	}
	if err := s.st.check(prepared); err != nil {
		return nil, fmt.Errorf("store file %s: %w", path, err)
	}
	for i := range prepared {
		s.st.apply(&prepared[i])
	}
	s.seq = snap.Seq
	return s, nil
}

// storeFormat is the format a FileStore writes (see checkFormat).
var storeFormat = storeFormatPrefix + strconv.Itoa(storeFormatVersion)

type storeFile struct {
	Format string `json:"format"`
	Snapshot
}

// Apply implements [Store].
func (s *MemoryStore) Apply(ctx context.Context, changes ...Change) (int64, error) {
	prepared, err := PrepareChanges(changes)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.st == nil {
		s.st = newState()
	}
	if err := s.st.check(prepared); err != nil {
		return 0, err
	}
	undo := make([]Change, len(prepared))
	for i := range prepared {
		undo[len(prepared)-1-i] = s.st.current(prepared[i].Kind, prepared[i].ID)
		s.st.apply(&prepared[i])
	}
	seq := s.seq + 1
	if s.path != "" {
		if err := s.save(seq); err != nil {
			for i := range undo {
				s.st.apply(&undo[i])
			}
			return 0, err
		}
	}
	s.seq = seq
	for i := range prepared {
		prepared[i].Seq = seq
		prepared[i].Create = false // conditions on the write, not logged
		prepared[i].IfMatch = nil
	}
	s.log = append(s.log, prepared...)
	if len(s.log) > memLogLimit {
		// Drop whole batches from the front.
		cut := len(s.log) - memLogLimit
		for cut < len(s.log) && s.log[cut].Seq == s.log[cut-1].Seq {
			cut++
		}
		s.log = append([]Change(nil), s.log[cut:]...)
	}
	return seq, nil
}

// Snapshot implements [Store].
func (s *MemoryStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		s.st = newState()
	}
	snap := s.st.snapshot()
	snap.Seq = s.seq
	return snap, ctx.Err()
}

// Changes implements [Store].
func (s *MemoryStore) Changes(ctx context.Context, since int64) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if since == s.seq {
		return nil, nil
	}
	if since > s.seq || len(s.log) == 0 || s.log[0].Seq > since+1 {
		return nil, ErrChangesTruncated
	}
	i := sort.Search(len(s.log), func(i int) bool { return s.log[i].Seq > since })
	out := make([]Change, len(s.log)-i)
	copy(out, s.log[i:]) // records are never mutated once stored
	return out, nil
}

// save writes the content at seq to the file atomically.
func (s *MemoryStore) save(seq int64) error {
	snap := s.st.snapshot()
	snap.Seq = seq
	b, err := json.Marshal(storeFile{Format: storeFormat, Snapshot: *snap})
	if err != nil {
		return fmt.Errorf("policy: encode store: %w", err)
	}
	if err := atomicfile.Write(s.path, b, 0o600, nil); err != nil {
		return fmt.Errorf("policy: save store: %w", err)
	}
	return nil
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*FileStore)(nil)
)
