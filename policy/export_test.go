package policy

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestOpenFileStoreFormatVersion: a store file of a newer format is
// refused with a FormatVersionError, even when it has fields this
// version does not know; today's format opens.
func TestOpenFileStoreFormatVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.json")
	os.WriteFile(path, []byte(`{"format":"sda-policy-store/2","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[],"new_things":[]}`), 0o600)
	_, err := OpenFileStore(path)
	var fe *FormatVersionError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFormatTooNew) {
		t.Fatalf("newer format: %v, want a *FormatVersionError matching ErrFormatTooNew", err)
	}
	if fe.Found != 2 || fe.Known != 1 {
		t.Fatalf("error %+v", fe)
	}
	os.WriteFile(path, []byte(`{"format":"sda-policy-store/1","seq":3,"policies":[],"subjects":[{"id":"a","kind":"user"}],"devices":[],"api_keys":[]}`), 0o600)
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if snap, _ := s.Snapshot(context.Background()); snap.Seq != 3 || len(snap.Subjects) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
}

// fillStore writes one record of each kind and three ledger records,
// one of them long expired, through a Service as in production.
func fillStore(t *testing.T, s Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	_, key, err := NewAPIKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "k1", "alice", true, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx,
		PutSubject(&Subject{ID: "alice", Kind: User, Groups: []string{"techs"}}),
		PutSubject(&Subject{ID: "bob", Kind: User}),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
		PutPolicy(&Policy{ID: "p1", Status: Active, Effect: Allow, Subjects: Subjects{Users: []string{"alice"}},
			Operations: []OperationRule{{Name: "read"}}, Devices: DeviceSelector{All: true}, TokenLifetime: 2 * time.Hour,
			Delegation: &DelegationRule{MaxDepth: 2, Operations: []string{"read"}}}),
		PutAPIKey(key),
	); err != nil {
		t.Fatal(err)
	}
	l := s.(Ledger)
	for i, iat := range []time.Time{now.Add(-time.Minute), now, now.Add(-IssuedRetention - 3*time.Hour)} {
		h := sha256.Sum256([]byte{byte(i)})
		r := sha256.Sum256([]byte{byte(i), 1})
		rec := &IssuedRecord{TokenID: fmt.Sprintf("%032x", i+1), TokenHash: hex.EncodeToString(h[:]), RevocationHash: hex.EncodeToString(r[:]),
			Subject: "bob", Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Issuer: "mbed.ta.TEST", AnchorKeyID: "a1b2",
			IssuedAt: iat, Expiry: iat.Add(time.Hour)}
		if err := l.RecordIssued(ctx, rec, iat, 100); err != nil {
			t.Fatal(err)
		}
	}
	svc := &Service{Store: s, Signer: mustKey(t, elliptic.P256()), Now: func() time.Time { return now }}
	if _, err := svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "bob", Reason: "lost phone", By: "alice"}); err != nil {
		t.Fatal(err)
	}
}

func records(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap.Seq = 0
	return snap
}

func ledgerOf(t *testing.T, s Store) []*IssuedRecord {
	t.Helper()
	list, err := s.(Ledger).Issued(context.Background(), &IssuedFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return list.Records
}

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	src, err := OpenFileStore(filepath.Join(t.TempDir(), "src.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fillStore(t, src, now)
	var doc bytes.Buffer
	if err := Export(ctx, src, &doc); err != nil {
		t.Fatal(err)
	}

	t.Run("round trip", func(t *testing.T) {
		dst, err := OpenFileStore(filepath.Join(t.TempDir(), "dst.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		st, err := Import(ctx, dst, bytes.NewReader(doc.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(records(t, src), records(t, dst)); d != "" {
			t.Fatalf("records (-exported +imported):\n%s", d)
		}
		// The long expired ledger record is pruned, not carried.
		want := ledgerOf(t, src)
		if len(want) != 3 {
			t.Fatalf("source ledger holds %d records, want 3", len(want))
		}
		want = want[:2] // the third (cti 3) is prunable
		if d := cmp.Diff(want, ledgerOf(t, dst)); d != "" {
			t.Fatalf("ledger (-exported +imported):\n%s", d)
		}
		if st.Records != 6 || st.Issued != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("non-empty store refused", func(t *testing.T) {
		dst := NewMemoryStore()
		if _, err := dst.Apply(ctx, PutSubject(&Subject{ID: "carol", Kind: User})); err != nil {
			t.Fatal(err)
		}
		if _, err := Import(ctx, dst, bytes.NewReader(doc.Bytes())); !errors.Is(err, ErrConflict) {
			t.Fatalf("import into a store with records: %v, want ErrConflict", err)
		}
		if snap := records(t, dst); len(snap.Subjects) != 1 || len(snap.Policies) != 0 {
			t.Fatalf("store changed: %+v", snap)
		}
	})
	t.Run("newer format refused", func(t *testing.T) {
		newer := strings.Replace(doc.String(), exportFormatPrefix+"1", exportFormatPrefix+"2", 1)
		_, err := Import(ctx, NewMemoryStore(), strings.NewReader(newer))
		var fe *FormatVersionError
		if !errors.As(err, &fe) || !errors.Is(err, ErrFormatTooNew) || fe.Found != 2 {
			t.Fatalf("newer export: %v", err)
		}
	})
	t.Run("invalid documents refused", func(t *testing.T) {
		for name, d := range map[string]string{
			"not json":       "{",
			"trailing data":  doc.String() + "{}",
			"store file":     `{"format":"sda-policy-store/1","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[]}`,
			"unknown field":  `{"format":"sda-policy-export/1","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[],"x":1}`,
			"duplicate":      `{"format":"sda-policy-export/1","seq":1,"policies":[],"subjects":[{"id":"a","kind":"user"},{"id":"a","kind":"user"}],"devices":[],"api_keys":[]}`,
			"invalid ledger": `{"format":"sda-policy-export/1","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[],"issued":[{"cti":"zz"}]}`,
		} {
			dst := NewMemoryStore()
			if _, err := Import(ctx, dst, strings.NewReader(d)); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
			if snap := records(t, dst); len(snap.Subjects) != 0 || len(dst.ledger.snapshot()) != 0 {
				t.Errorf("%s: store changed", name)
			}
		}
	})
	t.Run("failed ledger changes no records", func(t *testing.T) {
		dst := &ledgerFailsAtSecond{MemoryStore: NewMemoryStore()}
		if _, err := Import(ctx, dst, bytes.NewReader(doc.Bytes())); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("import with a failing ledger: %v, want ErrUnavailable", err)
		}
		if snap := records(t, dst); len(snap.Subjects)+len(snap.Devices)+len(snap.Policies)+len(snap.APIKeys)+len(snap.Revocations) != 0 {
			t.Fatalf("records left: %+v", snap)
		}
	})
	t.Run("store without a ledger", func(t *testing.T) {
		dst := struct{ Store }{NewMemoryStore()}
		if _, err := Import(ctx, dst, bytes.NewReader(doc.Bytes())); !errors.Is(err, ErrConfig) {
			t.Fatalf("import of a ledger into a store without one: %v, want ErrConfig", err)
		}
		if snap := records(t, dst); len(snap.Subjects) != 0 {
			t.Fatalf("records written: %+v", snap)
		}
	})
}

// ledgerFailsAtSecond is a MemoryStore whose ledger fails at its second record.
type ledgerFailsAtSecond struct {
	*MemoryStore
	n int
}

func (f *ledgerFailsAtSecond) RecordIssued(ctx context.Context, rec *IssuedRecord, now time.Time, max int) error {
	if f.n++; f.n == 2 {
		return fmt.Errorf("%w: disk gone", ErrUnavailable)
	}
	return f.MemoryStore.RecordIssued(ctx, rec, now, max)
}

func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"format":"sda-policy-export/1","seq":1,"policies":[],"subjects":[{"id":"a","kind":"user"}],"devices":[],"api_keys":[]}`))
	f.Add([]byte(`{"format":"sda-policy-export/9"}`))
	f.Add([]byte(`{"format":"sda-policy-export/1","seq":1,"policies":[{"id":"p","status":"active","effect":"allow","subjects":{"users":["a"]},"operations":[{"name":"r"}],"devices":{"all":true},"token_lifetime_seconds":60,"delegation":{"max_depth":2,"operations":["r"]}}],"subjects":[],"devices":[],"api_keys":[]}`))
	f.Add([]byte(`{"format":"sda-policy-export/1","seq":1,"policies":[],"subjects":[],"devices":[],"api_keys":[],"issued":[{"cti":"01"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := NewMemoryStore()
		_, err := Import(context.Background(), dst, bytes.NewReader(b))
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrFormatTooNew) && !errors.Is(err, ErrConflict) {
			t.Fatalf("error %v matches none of ErrInvalid, ErrFormatTooNew, ErrConflict", err)
		}
		if err != nil {
			if snap := records(t, dst); len(snap.Subjects)+len(snap.Devices)+len(snap.Policies)+len(snap.APIKeys)+len(snap.Revocations) != 0 {
				t.Fatalf("a failed import left records")
			}
		}
	})
}
