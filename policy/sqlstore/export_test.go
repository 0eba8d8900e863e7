package sqlstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/securedeviceaccess/sda/policy"
)

// TestExportImportRoundTrip: a JSON file store exported, imported into
// PostgreSQL, exported from there and imported into a new JSON file store
// keeps every record and every ledger record.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	dir := t.TempDir()
	src, err := policy.OpenFileStore(filepath.Join(dir, "src.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, key, err := policy.NewAPIKey(rand.Reader, "k1", "alice", true, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"techs"}}),
		policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
		policy.PutDevice(&policy.Device{ID: dev2}),
		policy.PutPolicy(delegable(allowAll("p1", "alice"))),
		policy.PutAPIKey(key),
	); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := src.RecordIssued(ctx, ledgerRecord(i, "bob", now.Add(-time.Duration(i)*time.Minute)), now, 100); err != nil {
			t.Fatal(err)
		}
	}
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: src, Signer: anchor, Now: func() time.Time { return now }}
	if _, err := svc.Revoke(ctx, policy.RevokeRequest{Kind: policy.RevokeSubject, Subject: "bob", Reason: "lost phone", By: "alice"}); err != nil {
		t.Fatal(err)
	}

	var doc1, doc2 bytes.Buffer
	if err := policy.Export(ctx, src, &doc1); err != nil {
		t.Fatal(err)
	}
	db, schema := testDB(t)
	pg, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := policy.Import(ctx, pg, &doc1); err != nil || st.Records != 7 || st.Issued != 3 {
		t.Fatalf("import into PostgreSQL: %+v, %v", st, err)
	}
	if err := policy.Export(ctx, pg, &doc2); err != nil {
		t.Fatal(err)
	}
	dst, err := policy.OpenFileStore(filepath.Join(dir, "dst.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := policy.Import(ctx, dst, &doc2); err != nil {
		t.Fatal(err)
	}

	for name, s := range map[string]interface {
		policy.Store
		policy.Ledger
	}{"PostgreSQL": pg, "JSON file": dst} {
		want, _ := src.Snapshot(ctx)
		got, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want.Seq, got.Seq = 0, 0
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: records (-source +imported):\n%s", name, d)
		}
		wantL, _ := src.Issued(ctx, &policy.IssuedFilter{Limit: 100})
		gotL, err := s.Issued(ctx, &policy.IssuedFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wantL, gotL); d != "" || gotL.Total != 3 {
			t.Errorf("%s: ledger (-source +imported):\n%s", name, d)
		}
	}
	// Importing again into the database is refused and changes nothing.
	var doc3 bytes.Buffer
	policy.Export(ctx, src, &doc3)
	before, _ := pg.Snapshot(ctx)
	if _, err := policy.Import(ctx, pg, &doc3); err == nil {
		t.Fatal("a second import into the same schema succeeded")
	}
	if after, _ := pg.Snapshot(ctx); after.Seq != before.Seq {
		t.Fatalf("refused import wrote batches %d..%d", before.Seq, after.Seq)
	}
}

// delegable returns p letting its grant be delegated to depth 3.
func delegable(p *policy.Policy) *policy.Policy {
	p.Delegation = &policy.DelegationRule{MaxDepth: 3}
	return p
}
