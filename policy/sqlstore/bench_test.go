package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/issuebench"
	"github.com/securedeviceaccess/sda/internal/loadgen"
	"github.com/securedeviceaccess/sda/policy"
)

// benchSnapshot returns n policies over n/10 users, n/100 groups and n/10
// devices, plus the policy "bench" that lets user u0 read and run op1 on
// every device: the same records as package policy's benchmarks
// (benchSnapshot in policy/bench_test.go), so that the figures compare.
func benchSnapshot(n int) *policy.Snapshot {
	users := max(10, n/10)
	groups := max(5, n/100)
	devs := max(10, n/10)
	devID := func(i int) string { return fmt.Sprintf("%032x", i) }
	s := &policy.Snapshot{}
	for i := range users {
		s.Subjects = append(s.Subjects, &policy.Subject{ID: fmt.Sprintf("u%d", i), Kind: policy.User,
			Groups: []string{fmt.Sprintf("g%d", i%groups), fmt.Sprintf("g%d", (i+1)%groups)}})
	}
	for i := range devs {
		s.Devices = append(s.Devices, &policy.Device{ID: devID(i), EndpointName: fmt.Sprintf("ep-%d", i),
			Attributes: map[string]string{"site": fmt.Sprintf("s%d", i%50), "model": fmt.Sprintf("m%d", i%7)}})
	}
	for i := range n {
		p := &policy.Policy{
			ID: fmt.Sprintf("p%06d", i), Status: policy.Active, Effect: policy.Allow,
			Operations:    []policy.OperationRule{{Name: fmt.Sprintf("op%d", i%50)}, {Name: fmt.Sprintf("op%d", (i+7)%50)}, {Name: "read"}},
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
			p.Effect, p.TokenLifetime = policy.Deny, 0
			p.Operations = []policy.OperationRule{{Name: "op-deny"}}
		}
		s.Policies = append(s.Policies, p)
	}
	s.Policies = append(s.Policies, &policy.Policy{
		ID: "bench", Status: policy.Active, Effect: policy.Allow,
		Subjects:      policy.Subjects{Users: []string{"u0"}},
		Operations:    []policy.OperationRule{{Name: "read"}, {Name: "op1"}},
		Devices:       policy.DeviceSelector{All: true},
		TokenLifetime: 8 * time.Hour,
	})
	return s
}

// benchChanges returns the changes that write benchSnapshot(n).
func benchChanges(n int) []policy.Change {
	s := benchSnapshot(n)
	out := make([]policy.Change, 0, len(s.Policies)+len(s.Subjects)+len(s.Devices))
	for _, p := range s.Policies {
		out = append(out, policy.PutPolicy(p))
	}
	for _, x := range s.Subjects {
		out = append(out, policy.PutSubject(x))
	}
	for _, x := range s.Devices {
		out = append(out, policy.PutDevice(x))
	}
	return out
}

// httpBenchClients is the number of concurrent clients of
// BenchmarkHTTPIssue, and of goroutines signing in its reference run.
const httpBenchClients = 8

// benchService is issuebench.Service, failing the benchmark on error.
func benchService(b *testing.B, st policy.Store, anchor *ecdsa.PrivateKey, staleness time.Duration) *policy.Service {
	b.Helper()
	svc, err := issuebench.Service(st, anchor, staleness)
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// benchTokenRequest is issuebench.TokenRequest, failing the benchmark on
// error.
func benchTokenRequest(b *testing.B, addr, secret string) []byte {
	b.Helper()
	raw, err := issuebench.TokenRequest(addr, secret)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// serve serves h on a fresh loopback port until the benchmark ends and
// returns the address.
func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// measureIssue calls post from httpBenchClients goroutines and, in turn
// with it in batches of 64, ecdsa.SignASN1 with anchor, until the
// benchmark ends; it reports tokens/s, signs/s and their ratio
// ratio-http/sign.
func measureIssue(b *testing.B, anchor *ecdsa.PrivateKey, post func(client int) error) error {
	digest := sha256.Sum256([]byte("benchmark"))
	sign := func(int) error { _, err := ecdsa.SignASN1(rand.Reader, anchor, digest[:]); return err }
	tHTTP, tSign, total, err := loadgen.Interleave(httpBenchClients, 64, b.Loop, post, sign)
	if err != nil {
		return err
	}
	tokensPerSec := float64(total) / tHTTP.Seconds()
	signsPerSec := float64(total) / tSign.Seconds()
	b.ReportMetric(tokensPerSec, "tokens/s")
	b.ReportMetric(signsPerSec, "signs/s")
	b.ReportMetric(tokensPerSec/signsPerSec, "ratio-http/sign")
	return nil
}

// BenchmarkHTTPIssue measures token issuance over HTTP on loopback with
// the PostgreSQL store as the Service's Store and Ledger, served the way
// sdactl authserver serves it and as policy's BenchmarkHTTPIssue does:
// 1,000 policies, Prometheus metrics, audit logging, a rate limit that
// never refuses, and httpBenchClients concurrent clients (package
// internal/loadgen: persistent connections, one pre-encoded request). Each
// token's ledger record is committed before its answer (RecordIssued's
// group commit). In the same run, in turn with the HTTP batches, as many
// goroutines call ecdsa.SignASN1 alone on the same cores; it reports
// tokens/s, signs/s and their ratio ratio-http/sign (target >= 0.50).
//
// staleness is the Service's MaxStaleness: 0 asks the database for changes
// (one primary-key read) before every decision; 100ms at most ten times a
// second. The database server runs on the same cores. Run it with:
//
//	eval "$(bash .ci/postgres.sh start)"
//	go test ./policy/sqlstore -run '^$' -bench 'HTTPIssue' -count 3
func BenchmarkHTTPIssue(b *testing.B) {
	for _, staleness := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("staleness=%v", staleness), func(b *testing.B) {
			ctx := context.Background()
			db, schema := testDB(b)
			db.SetMaxOpenConns(2 * httpBenchClients)
			db.SetMaxIdleConns(2 * httpBenchClients)
			st, err := Open(ctx, db, schema)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Apply(ctx, benchChanges(1000)...); err != nil {
				b.Fatal(err)
			}
			anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			svc := benchService(b, st, anchor, staleness)
			secret, key, err := policy.NewAPIKey(nil, "bench", "u0", false, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Apply(ctx, policy.PutAPIKey(key)); err != nil {
				b.Fatal(err)
			}
			addr := serve(b, svc)
			raw := benchTokenRequest(b, addr, secret)
			conns := make([]*loadgen.Conn, httpBenchClients)
			for i := range conns {
				c, err := loadgen.Dial(addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			post := func(i int) error {
				status, body, err := conns[i].RoundTrip(raw)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d: %s", status, body)
				}
				return err
			}
			if err := post(0); err != nil { // check the set-up before measuring
				b.Fatal(err)
			}
			if err := measureIssue(b, anchor, post); err != nil {
				b.Fatal(err)
			}
		})
	}
}
