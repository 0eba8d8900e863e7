package policy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestFileLedgerFailureAfterReopening: a batch that fails in a ledger
// file opened as it was (not rewritten at opening) cuts only its own
// lines, not the records the file held.
func TestFileLedgerFailureAfterReopening(t *testing.T) {
	ctx := context.Background()
	base := time.Now().Truncate(time.Second)
	path := t.TempDir() + "/s.json"
	s := openTestFileStore(t, path)
	for i := range 2 {
		if err := s.RecordIssued(ctx, testRecord(i, base), base, 10); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openTestFileStore(t, path)
	s.issued.hook = func(int) error { return errStoreDown }
	if err := s.RecordIssued(ctx, testRecord(2, base), base, 10); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RecordIssued = %v, want ErrUnavailable", err)
	}
	s.issued.hook = nil
	if err := s.RecordIssued(ctx, testRecord(3, base), base, 10); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTestFileStore(t, path)
	list, _ := s.Issued(ctx, &IssuedFilter{Limit: 10})
	if got := recordIDs(list); !slices.Equal(got, []string{ctiOf(0), ctiOf(1), ctiOf(3)}) {
		t.Fatalf("records after reopening %v, want the two recorded before, and the one after the failure", got)
	}
}
