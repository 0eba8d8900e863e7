package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/securedeviceaccess/sda/internal/atomicfile/atomicfiletest"
)

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	changes := append(testDirectory(), PutPolicy(pol("p1", constrained("set", rangeArg(0, 1, 5)), delegable(2, "set"))), PutPolicy(pol("d", denyEffect)))
	seq, err := s.Apply(ctx, changes...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Snapshot(ctx)
	s2, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s2.Snapshot(ctx)
	if got.Seq != seq {
		t.Errorf("seq %d, want %d", got.Seq, seq)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("reopened store differs:\n%s", diff)
	}
	// No temporary files are left behind: the store's file and its
	// ledger's only.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 || entries[0].Name() != filepath.Base(path) || entries[1].Name() != filepath.Base(path)+issuedSuffix {
		t.Errorf("directory holds %v", entries)
	}
	// A reopened store has no change log: followers reload a snapshot.
	if _, err := s2.Changes(ctx, seq-1); !errors.Is(err, ErrChangesTruncated) {
		t.Errorf("Changes = %v", err)
	}
}

func TestFileStoreFailedSaveChangesNothing(t *testing.T) {
	// Root ignores directory permissions, so make the save fail by
	// removing the directory.
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sub")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStore(filepath.Join(dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, testDirectory()...); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Snapshot(ctx)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, PutPolicy(pol("p1")), DeleteRecord(KindSubject, "alice")); err == nil {
		t.Fatal("Apply succeeded without a directory")
	}
	after, _ := s.Snapshot(ctx)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("failed save changed the store:\n%s", diff)
	}
}

func TestOpenFileStoreRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":      "{",
		"wrong format":  `{"format":"other","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[]}`,
		"unknown field": `{"format":"sda-policy-store/1","seq":1,"x":1,"policies":[],"subjects":[],"devices":[],"api_keys":[]}`,
		"invalid policy": `{"format":"sda-policy-store/1","seq":1,"policies":[{"id":"p","status":"active","effect":"allow"}],
			"subjects":[],"devices":[],"api_keys":[]}`,
		"duplicate": `{"format":"sda-policy-store/1","seq":1,"policies":[],"subjects":[{"id":"a","kind":"user"},{"id":"a","kind":"user"}],"devices":[],"api_keys":[]}`,
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := OpenFileStore(path); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestMemStoreChanges(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	seq1, _ := s.Apply(ctx, testDirectory()...)
	seq2, _ := s.Apply(ctx, PutPolicy(pol("p1")))
	seq3, _ := s.Apply(ctx, DeleteRecord(KindPolicy, "p1"))
	got, err := s.Changes(ctx, seq1)
	if err != nil || len(got) != 2 || got[0].Seq != seq2 || got[1].Seq != seq3 || !got[1].Delete {
		t.Fatalf("Changes = %+v, %v", got, err)
	}
	if got, err := s.Changes(ctx, seq3); err != nil || len(got) != 0 {
		t.Fatalf("Changes(latest) = %+v, %v", got, err)
	}
	// Following the log gives the same state as the snapshot.
	all, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var e Engine
	if err := e.Apply(all...); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot(ctx)
	snap.Seq = 0
	if diff := cmp.Diff(snap, e.Snapshot()); diff != "" {
		t.Fatalf("log replay differs:\n%s", diff)
	}
}

func TestCreateRefusesAnExistingRecord(t *testing.T) {
	ctx := context.Background()
	key := func(id, subject string) *APIKey {
		_, k, err := NewAPIKey(nil, id, subject, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s := NewMemoryStore()
	if _, err := s.Apply(ctx, PutSubject(&Subject{ID: "alice", Kind: User}), CreateAPIKey(key("k1", "alice"))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		changes []Change
		want    error
	}{
		{"existing id", []Change{CreateAPIKey(key("k1", "alice"))}, ErrConflict},
		{"twice in one batch", []Change{CreateAPIKey(key("k2", "alice")), CreateAPIKey(key("k2", "alice"))}, ErrConflict},
		{"after a put in the batch", []Change{PutAPIKey(key("k3", "alice")), CreateAPIKey(key("k3", "alice"))}, ErrConflict},
		{"a deletion marked as creation", []Change{{Kind: KindAPIKey, ID: "k1", Delete: true, Create: true}}, ErrInvalid},
		{"after a deletion in the batch", []Change{DeleteRecord(KindAPIKey, "k1"), CreateAPIKey(key("k1", "alice"))}, nil},
		{"a new id", []Change{CreateAPIKey(key("k4", "alice"))}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Snapshot(ctx)
			_, err := s.Apply(ctx, tc.changes...)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Apply: %v, want %v", err, tc.want)
			}
			if err != nil {
				if after, _ := s.Snapshot(ctx); after.Seq != before.Seq || len(after.APIKeys) != len(before.APIKeys) {
					t.Fatal("a refused batch changed the store")
				}
			}
		})
	}
	// The condition is not part of the record: the change log holds puts.
	changes, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Create {
			t.Fatalf("change log returns a creation: %+v", c)
		}
	}
}

// OpenFileStore removes the temporary files that saves a crash interrupted
// left behind, and only those.
func TestOpenFileStoreRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.json")
	temps := []string{atomicfiletest.Crash(t, path), atomicfiletest.Crash(t, path)}
	unrelated := []string{"notes.txt", ".store.json.x1.tmp", ".other.json.123.tmp", "store.json.123.tmp", ".store.json.bak"}
	atomicfiletest.Unrelated(t, dir, unrelated...)
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	atomicfiletest.CheckRemoved(t, dir, temps, unrelated...)
	if _, err := s.Apply(context.Background(), testDirectory()...); err != nil {
		t.Fatal(err)
	}
}

// TestMemStoreLogLimit: a MemoryStore keeps the last memLogLimit changes for
// Changes, dropping whole batches only, and answers ErrChangesTruncated
// for anything older.
func TestMemStoreLogLimit(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	next := 0
	apply := func(n int) int64 {
		t.Helper()
		changes := make([]Change, n)
		for i := range changes {
			changes[i] = PutSubject(&Subject{ID: fmt.Sprint("s", next), Kind: User})
			next++
		}
		seq, err := s.Apply(ctx, changes...)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	changesSince := func(since int64) int {
		t.Helper()
		got, err := s.Changes(ctx, since)
		if err != nil {
			t.Fatalf("Changes(%d): %v", since, err)
		}
		return len(got)
	}
	seq1 := apply(memLogLimit - 1)
	seq2 := apply(1)
	if n := changesSince(0); n != memLogLimit {
		t.Fatalf("with exactly %d changes logged: Changes(0) gave %d", memLogLimit, n)
	}
	// One batch more: the first batch goes, whole.
	apply(2)
	if _, err := s.Changes(ctx, 0); !errors.Is(err, ErrChangesTruncated) {
		t.Fatalf("Changes(0) after the first batch was dropped: %v, want ErrChangesTruncated", err)
	}
	if n := changesSince(seq1); n != 3 {
		t.Errorf("Changes(%d) gave %d changes, want 3", seq1, n)
	}
	if n := changesSince(seq2); n != 2 {
		t.Errorf("Changes(%d) gave %d changes, want 2", seq2, n)
	}
	if _, err := s.Changes(ctx, seq1-1); !errors.Is(err, ErrChangesTruncated) {
		t.Errorf("Changes(%d): %v, want ErrChangesTruncated", seq1-1, err)
	}
	// A sequence number from the future is not in the log either.
	if _, err := s.Changes(ctx, seq2+5); !errors.Is(err, ErrChangesTruncated) {
		t.Errorf("Changes(future): %v, want ErrChangesTruncated", err)
	}
}

// TestOpenFileStoreNeedsItsDirectory: a store whose directory does not
// exist, or whose path is a directory, is refused when it is opened, not
// at the first write after the service started.
func TestOpenFileStoreNeedsItsDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFileStore(filepath.Join(dir, "missing", "store.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want fs.ErrNotExist", err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(filepath.Join(notDir, "store.json")); err == nil {
		t.Error("a file as the directory: opened")
	}
	if _, err := OpenFileStore(dir); err == nil {
		t.Error("a directory as the store file: opened")
	}
}

// TestOpenFileStoreSizeBound: a store file of exactly the bound is read,
// one byte more is refused (the bound lowered to the size of a small
// store file, which is padded with white space).
func TestOpenFileStoreSizeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), testDirectory()...); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func(old int) { maxStoreFileBytes = old }(maxStoreFileBytes)
	maxStoreFileBytes = len(data) + 10
	for _, tc := range []struct {
		pad int
		ok  bool
	}{{10, true}, {11, false}} {
		if err := os.WriteFile(path, append(bytes.Clone(data), bytes.Repeat([]byte(" "), tc.pad)...), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFileStore(path)
		if (err == nil) != tc.ok {
			t.Errorf("file of the bound %+d bytes: %v", tc.pad-10, err)
		}
	}
}
