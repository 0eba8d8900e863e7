package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securedeviceaccess/sda/internal/loadgen"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policyprom"
	"github.com/securedeviceaccess/sda/token"
)

// httpBenchClients is the number of concurrent clients of
// BenchmarkHTTPIssue, and of goroutines signing in its reference run.
const httpBenchClients = 8

// BenchmarkHTTPIssue measures token issuance over HTTP on loopback the way
// sdactl authserver serves it: 1,000 policies, the ledger on, Prometheus
// metrics on (package policyprom), audit logging on (a text handler
// writing to io.Discard), a rate limit high enough never to refuse, and
// httpBenchClients concurrent clients. In the same run, in turn with the
// HTTP batches, as many goroutines call ecdsa.SignASN1 alone on the same
// cores; it reports tokens/s, signs/s and their ratio ratio-http/sign
// (target >= 0.70 with store=file).
//
// The store is memory (the ledger in memory) or file (a JSON FileStore
// whose ledger is appended to a file, fsynced and group-committed before
// each answer).
//
// The load generator is kept cheap so that the ratio measures the
// service: each client holds one persistent TCP connection and writes a
// pre-encoded HTTP/1.1 request (the same bytes every time), then reads the
// status line and headers and discards the body by its Content-Length.
// The server parses every request in full with net/http as it would any
// client's.
func BenchmarkHTTPIssue(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) { benchHTTPIssue(b, policy.NewMemoryStore()) })
	b.Run("store=file", func(b *testing.B) {
		fs, err := policy.OpenFileStore(filepath.Join(b.TempDir(), "store.json"))
		if err != nil {
			b.Fatal(err)
		}
		defer fs.Close()
		benchHTTPIssue(b, fs)
	})
}

func benchHTTPIssue(b *testing.B, st policy.Store) {
	ctx := context.Background()
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, policy.BenchChanges(1000)...); err != nil {
		b.Fatal(err)
	}
	m, err := policyprom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	svc := &policy.Service{
		Store: st, Signer: anchor, MaxIssued: 1 << 30, Metrics: m,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimit: &policy.RateLimit{PerAddress: 1e9, AddressBurst: 1 << 20, PerKey: 1e9, KeyBurst: 1 << 20},
	}
	secret, key, err := policy.NewAPIKey(nil, "bench", "u0", false, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Apply(ctx, policy.PutAPIKey(key)); err != nil {
		b.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: svc}
	go srv.Serve(ln)
	defer srv.Close()

	pemBytes, err := token.MarshalPublicKeyPEM(&pop.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	body := fmt.Sprintf(`{"grant_type":"client_credentials","aud":["ep:ep-0"],"scope":"read op1","cnf":%q}`, pemBytes)
	raw := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		policy.TokenPath, ln.Addr(), secret, len(body), body))

	conns := make([]*loadgen.Conn, httpBenchClients)
	for i := range conns {
		c, err := loadgen.Dial(ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}

	digest := sha256.Sum256([]byte("benchmark"))
	run := func(total int, f func(i int) error) time.Duration {
		d, err := loadgen.Run(httpBenchClients, total, f)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	post := func(i int) error {
		status, body, err := conns[i].RoundTrip(raw)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		return err
	}
	sign := func(int) error { _, err := ecdsa.SignASN1(rand.Reader, anchor, digest[:]); return err }
	if err := post(0); err != nil { // check the set-up before measuring
		b.Fatal(err)
	}

	total := 0
	var tHTTP, tSign time.Duration
	for b.Loop() {
		const batch = 64
		tHTTP += run(batch, post)
		tSign += run(batch, sign)
		total += batch
	}
	tokensPerSec := float64(total) / tHTTP.Seconds()
	signsPerSec := float64(total) / tSign.Seconds()
	b.ReportMetric(tokensPerSec, "tokens/s")
	b.ReportMetric(signsPerSec, "signs/s")
	b.ReportMetric(tokensPerSec/signsPerSec, "ratio-http/sign")
}
