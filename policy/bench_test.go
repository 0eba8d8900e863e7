package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// benchSnapshot builds n generated policies with a directory sized to
// match (n/10 users, n/100 groups, n/10 devices), plus one policy that
// allows the benchmark request. Subjects hold about 10 policies each
// whatever n is, as in a real deployment where policies grow with users.
func benchSnapshot(n int) *Snapshot {
	users := max(10, n/10)
	groups := max(5, n/100)
	devs := max(10, n/10)
	devID := func(i int) string { return fmt.Sprintf("%032x", i) }
	s := &Snapshot{}
	for i := range users {
		s.Subjects = append(s.Subjects, &Subject{ID: fmt.Sprintf("u%d", i), Kind: User,
			Groups: []string{fmt.Sprintf("g%d", i%groups), fmt.Sprintf("g%d", (i+1)%groups)}})
	}
	for i := range devs {
		s.Devices = append(s.Devices, &Device{ID: devID(i), EndpointName: fmt.Sprintf("ep-%d", i),
			Attributes: map[string]string{"site": fmt.Sprintf("s%d", i%50), "model": fmt.Sprintf("m%d", i%7)}})
	}
	for i := range n {
		p := &Policy{
			ID: fmt.Sprintf("p%06d", i), Status: Active, Effect: Allow,
			Operations:    []OperationRule{{Name: fmt.Sprintf("op%d", i%50)}, {Name: fmt.Sprintf("op%d", (i+7)%50)}, {Name: "read"}},
			TokenLifetime: time.Duration(1+i%48) * time.Hour,
		}
		if i%4 == 0 {
			p.Subjects.Groups = []string{fmt.Sprintf("g%d", (i/4)%groups)}
		} else {
			p.Subjects.Users = []string{fmt.Sprintf("u%d", i%users)}
		}
		switch i % 3 {
		case 0:
			p.Devices.Attributes = map[string][]string{"site": {fmt.Sprintf("s%d", i%50)}}
		case 1:
			p.Devices.IDs = []string{devID(i % devs), devID((i + 1) % devs)}
		case 2:
			p.Devices.EndpointNames = []string{fmt.Sprintf("ep-%d", i%devs), fmt.Sprintf("ep-%d", (i+3)%devs)}
		}
		if i%20 == 19 {
			p.Effect, p.TokenLifetime = Deny, 0
			p.Operations = []OperationRule{{Name: "op-deny"}}
		}
		s.Policies = append(s.Policies, p)
	}
	s.Policies = append(s.Policies, &Policy{
		ID: "bench", Status: Active, Effect: Allow,
		Subjects:      Subjects{Users: []string{"u0"}},
		Operations:    []OperationRule{{Name: "read"}, {Name: "op1"}},
		Devices:       DeviceSelector{All: true},
		TokenLifetime: 8 * time.Hour,
	})
	return s
}

func benchRequest() *Request {
	return &Request{Subject: "u0", Audience: []string{"ep:ep-0", "id:" + fmt.Sprintf("%032x", 1)}, Operations: []string{"read", "op1"}, Time: t0}
}

func benchEngine(b *testing.B, n int) *Engine {
	b.Helper()
	var e Engine
	if err := e.Load(benchSnapshot(n)); err != nil {
		b.Fatal(err)
	}
	d, err := e.Decide(benchRequest())
	if err != nil || !d.Allowed {
		b.Fatalf("benchmark request not allowed: %+v %v", d, err)
	}
	return &e
}

// BenchmarkDecide measures one decision (2 devices x 2 operations) at 10,
// 1,000 and 100,000 policies.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			req := benchRequest()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideScaling measures decisions at 10 and at 100,000 policies
// in the same run, interleaved, and reports both and their ratio
// (target: ns-100k <= 5000 and ratio <= 2).
func BenchmarkDecideScaling(b *testing.B) {
	small, large := benchEngine(b, 10), benchEngine(b, 100000)
	req := benchRequest()
	var tSmall, tLarge time.Duration
	const batch = 256
	n := 0
	for b.Loop() {
		start := time.Now()
		for range batch {
			small.Decide(req)
		}
		mid := time.Now()
		for range batch {
			large.Decide(req)
		}
		tLarge += time.Since(mid)
		tSmall += mid.Sub(start)
		n += batch
	}
	ns10 := float64(tSmall.Nanoseconds()) / float64(n)
	ns100k := float64(tLarge.Nanoseconds()) / float64(n)
	b.ReportMetric(ns10, "ns-10/decision")
	b.ReportMetric(ns100k, "ns-100k/decision")
	b.ReportMetric(ns100k/ns10, "ratio-100k/10")
}

// BenchmarkLoad measures loading 100,000 policies (and their directory)
// into an Engine, and opening a JSON file store holding them.
func BenchmarkLoad(b *testing.B) {
	snap := benchSnapshot(100000)
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e Engine
			if err := e.Load(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "store.json")
		fs, err := OpenFileStore(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fs.Apply(context.Background(), snap.changes()...); err == nil {
			b.Fatal("batch above the limit accepted")
		}
		// Write the file in one go.
		st := fs.mem
		st.st = newState()
		prepared, err := prepareSnapshot(snap)
		if err != nil {
			b.Fatal(err)
		}
		for i := range prepared {
			st.st.apply(&prepared[i])
		}
		if err := st.save(1); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			st, err := OpenFileStore(path)
			if err != nil {
				b.Fatal(err)
			}
			snap, _ := st.Snapshot(context.Background())
			var e Engine
			if err := e.Load(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchService(b *testing.B, n int) (*Service, *ecdsa.PrivateKey, *token.AccessRequest) {
	return benchServiceOn(b, n, NewMemoryStore())
}

// benchServiceOn is benchService on the given store, empty or a FileStore
// opened on an empty file.
func benchServiceOn(b *testing.B, n int, st Store) (*Service, *ecdsa.PrivateKey, *token.AccessRequest) {
	b.Helper()
	anchor := mustKey(b, elliptic.P256())
	pop := mustKey(b, elliptic.P256())
	snap := benchSnapshot(n)
	if _, err := st.Apply(context.Background(), snap.changes()...); err != nil {
		b.Fatal(err)
	}
	svc := &Service{Store: st, Signer: anchor, MaxIssued: 1 << 30}
	return svc, anchor, &token.AccessRequest{Audience: []string{"ep:ep-0", "id:" + fmt.Sprintf("%032x", 1)}, Scope: []string{"read", "op1"}, Key: &pop.PublicKey}
}

// BenchmarkIssue measures issuing a v1 token through the Go API (store
// check, decision at 1,000 policies, claims, COSE signing) against one
// bare ecdsa.SignASN1 in the same run, and reports the ratio (target <= 1.3).
func BenchmarkIssue(b *testing.B) {
	svc, anchor, req := benchService(b, 1000)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("benchmark"))
	var tIssue, tSign time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := svc.Issue(ctx, "u0", req); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := ecdsa.SignASN1(rand.Reader, anchor, digest[:]); err != nil {
			b.Fatal(err)
		}
		tSign += time.Since(mid)
		tIssue += mid.Sub(start)
		n++
	}
	b.ReportMetric(float64(tIssue.Nanoseconds())/float64(n), "ns-issue")
	b.ReportMetric(float64(tSign.Nanoseconds())/float64(n), "ns-sign")
	b.ReportMetric(float64(tIssue)/float64(tSign), "ratio-issue/sign")
}
