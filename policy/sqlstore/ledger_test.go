package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

var lt0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func ledgerRecord(i int, sub string, iat time.Time) *policy.IssuedRecord {
	h := sha256.Sum256([]byte{byte(i)})
	r := sha256.Sum256([]byte{byte(i), 1})
	return &policy.IssuedRecord{
		TokenID: fmt.Sprintf("%032x", i+1), TokenHash: hex.EncodeToString(h[:]), RevocationHash: hex.EncodeToString(r[:]),
		Subject: sub, Audience: []string{"ep:hvac-1", "id:" + dev1}, Scope: []string{"read"},
		Issuer: "mbed.ta.TEST", AnchorKeyID: "a1b2", IssuedAt: iat, Expiry: iat.Add(time.Hour),
	}
}

func ids(l *policy.IssuedList) []string {
	var out []string
	for _, r := range l.Records {
		out = append(out, r.TokenID)
	}
	return out
}

func TestLedger(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		sub := "alice"
		if i%2 == 1 {
			sub = "bob"
		}
		if err := s.RecordIssued(ctx, ledgerRecord(i, sub, lt0.Add(time.Duration(i)*time.Minute)), lt0, 100); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("read back", func(t *testing.T) {
		list, err := s.Issued(ctx, &policy.IssuedFilter{Limit: 2, After: fmt.Sprintf("%032x", 1)})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(list); !slices.Equal(got, []string{fmt.Sprintf("%032x", 2), fmt.Sprintf("%032x", 3)}) || !list.HasMore || list.Total != 4 {
			t.Fatalf("page %v more %v total %d", got, list.HasMore, list.Total)
		}
		want := ledgerRecord(1, "bob", lt0.Add(time.Minute))
		got := list.Records[0]
		if !got.IssuedAt.Equal(want.IssuedAt) || !got.Expiry.Equal(want.Expiry) {
			t.Errorf("times %v %v, want %v %v", got.IssuedAt, got.Expiry, want.IssuedAt, want.Expiry)
		}
		got.IssuedAt, got.Expiry = want.IssuedAt, want.Expiry
		if fmt.Sprint(*got) != fmt.Sprint(*want) {
			t.Errorf("record %+v, want %+v", *got, *want)
		}
		if !list.LatestExpiry.Equal(lt0.Add(time.Hour + 3*time.Minute)) {
			t.Errorf("LatestExpiry %v", list.LatestExpiry)
		}
	})
	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			f    policy.IssuedFilter
			want int
		}{
			{policy.IssuedFilter{Subject: "bob"}, 2},
			{policy.IssuedFilter{Audiences: []string{"id:" + dev1}}, 4},
			{policy.IssuedFilter{Audiences: []string{"ep:other"}}, 0},
			{policy.IssuedFilter{Anchor: "a1b2", IssuedBefore: lt0.Add(time.Minute)}, 2},
			{policy.IssuedFilter{ExpiresAfter: lt0.Add(time.Hour + 2*time.Minute)}, 1},
		} {
			list, err := s.Issued(ctx, &tc.f)
			if err != nil || list.Total != tc.want {
				t.Errorf("%+v: %v, %v; want %d", tc.f, list, err, tc.want)
			}
		}
	})
	t.Run("bound and pruning", func(t *testing.T) {
		if err := s.RecordIssued(ctx, ledgerRecord(10, "carol", lt0), lt0, 4); !errors.Is(err, policy.ErrLedgerFull) || !errors.Is(err, policy.ErrUnavailable) {
			t.Fatalf("at the bound: %v, want ErrLedgerFull", err)
		}
		// Record 0 expires at lt0 + 1 h: pruned one retention later.
		later := lt0.Add(time.Hour + policy.IssuedRetention + time.Second)
		if err := s.RecordIssued(ctx, ledgerRecord(10, "carol", later), later, 4); err != nil {
			t.Fatalf("after record 0 expired: %v", err)
		}
		list, _ := s.Issued(ctx, &policy.IssuedFilter{Limit: 10})
		if list.Total != 4 || list.Records[0].TokenID != fmt.Sprintf("%032x", 2) {
			t.Fatalf("records %v", ids(list))
		}
		if err := s.PruneIssued(ctx, later.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.Issued(ctx, &policy.IssuedFilter{}); list.Total != 1 {
			t.Fatalf("%d records after pruning, want 1", list.Total)
		}
	})
}

// TestServiceLedger: a Service on the PostgreSQL store records its tokens
// there, seen by another instance; with the database gone it issues none.
func TestServiceLedger(t *testing.T) {
	ctx := context.Background()
	s1, s2 := twoStores(t)
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := &policy.Service{Store: s1, Signer: anchor}
	if err := a.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}), policy.PutPolicy(allowAll("p1", "alice"))); err != nil {
		t.Fatal(err)
	}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &pop.PublicKey}
	tok, err := a.Issue(ctx, "alice", req)
	if err != nil {
		t.Fatal(err)
	}
	list, err := s2.Issued(ctx, &policy.IssuedFilter{Subject: "alice", Limit: 10})
	if err != nil || len(list.Records) != 1 || list.Records[0].TokenID != hex.EncodeToString(tok.Claims.ID) {
		t.Fatalf("ledger %v, %v", list, err)
	}
	// A database that cannot be reached: no token.
	db2, schema2 := testDB(t)
	s3, err := Open(ctx, db2, schema2)
	if err != nil {
		t.Fatal(err)
	}
	c := &policy.Service{Store: s3, Signer: anchor, MaxStaleness: time.Hour}
	if err := c.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}), policy.PutPolicy(allowAll("p1", "alice"))); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.ExecContext(ctx, `DROP TABLE "`+schema2+`".sda_issued`); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.Issue(ctx, "alice", req); !errors.Is(err, policy.ErrUnavailable) || tok != nil {
		t.Fatalf("Issue without the ledger's table = %v, %v; want ErrUnavailable", tok, err)
	}
}

// BenchmarkIssueLedger measures token issuance through the Go API on the
// PostgreSQL store, the ledger's INSERT included, with 8 goroutines per
// core, and reports tokens/s.
func BenchmarkIssueLedger(b *testing.B) {
	ctx := context.Background()
	db, schema := testDB(b)
	s, err := Open(ctx, db, schema)
	if err != nil {
		b.Fatal(err)
	}
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: s, Signer: anchor, MaxStaleness: time.Second}
	if err := svc.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1"}), policy.PutPolicy(allowAll("p1", "alice"))); err != nil {
		b.Fatal(err)
	}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &pop.PublicKey}
	b.SetParallelism(8)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Issue(ctx, "alice", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}
