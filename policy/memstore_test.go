package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	changes := append(testDirectory(), PutPolicy(pol("p1", constrained("set", rangeArg(0, 1, 5)))), PutPolicy(pol("d", denyEffect)))
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
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries", len(entries))
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
	s := NewMemStore()
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
