package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/issuebench"
	"github.com/securedeviceaccess/sda/internal/loadgen"
	"github.com/securedeviceaccess/sda/policy"
)

// httpBenchClients are the numbers of concurrent clients of
// BenchmarkHTTPIssue, an order of magnitude apart, and of goroutines
// signing in its reference run.
var httpBenchClients = []int{8, 80}

// BenchmarkHTTPIssue measures token issuance over HTTP on loopback the way
// sdactl authserver serves it: 1,000 policies, the ledger on, Prometheus
// metrics on (package policyprom), audit logging on (a text handler
// writing to io.Discard), a rate limit high enough never to refuse, and
// 8 or 80 concurrent clients (sub-benchmarks clients=8 and clients=80).
// The target metric is ratio-http/sign: at least 0.70 with store=file
// and clients=8. The sub-benchmark store=memory/clients=8/logger=nil is
// store=memory/clients=8 with a nil Service.Logger (no audit events), to
// compare: what the audit events cost.
//
// In the same run, in turn with the HTTP batches, it measures on the same
// cores, with as many goroutines or clients:
//   - sign: goroutines calling ecdsa.SignASN1 alone (signs/s), the limit
//     that issuance, one signature per token, cannot pass;
//   - floor: the same load generator against a net/http server whose
//     handler does nothing but answer the body of a real token answer
//     with its headers (floor/s): what HTTP/1.1 over loopback costs
//     without issuing anything, the other bound;
//   - with store=file, the latency of one small append and fsync of a
//     file in the benchmark's directory, on the ledger's file system
//     (fsync-µs), done alone between batches.
//
// It reports tokens/s, signs/s, floor/s, the ratios ratio-http/sign
// (target), ratio-floor/sign and ratio-http/floor, ceiling-http/sign (the
// ratio-http/sign of a service that did nothing but sign and speak HTTP:
// floor/(floor+signs), since each token costs one signature and one HTTP
// exchange on the same cores), the bytes and allocations per token of the HTTP runs
// (B/token, allocs/token, server and load generator together), and with
// store=file tokens/fsync (tokens/s times the fsync latency: how many
// tokens one ledger fsync commits on average under group commit) and
// ceiling-fsync/sign (clients/fsync latency/signs: the ratio if every
// fsync committed one record of every client, each client waiting for
// the fsync of its own record).
//
// The store is memory (the ledger in memory) or file (a JSON FileStore
// whose ledger is appended to a file, fsynced and group-committed before
// each answer).
//
// The load generator is kept cheap so that the ratio measures the
// service: each client holds one persistent TCP connection and writes a
// pre-encoded HTTP/1.1 request (the same bytes every time, so the same cnf
// key, as an app that keeps its key sends it: the service's cache of parsed
// cnf keys answers after the first request), then reads the
// status line and headers and discards the body by its Content-Length.
// The server parses every request in full with net/http as it would any
// client's.
//
// Command: go test -run '^$' -bench HTTPIssue -count 3 ./policy
func BenchmarkHTTPIssue(b *testing.B) {
	for _, clients := range httpBenchClients {
		b.Run("store=memory/clients="+strconv.Itoa(clients), func(b *testing.B) {
			benchHTTPIssue(b, policy.NewMemoryStore(), clients, "", true)
		})
		if clients == httpBenchClients[0] {
			b.Run("store=memory/clients="+strconv.Itoa(clients)+"/logger=nil", func(b *testing.B) {
				benchHTTPIssue(b, policy.NewMemoryStore(), clients, "", false)
			})
		}
		b.Run("store=file/clients="+strconv.Itoa(clients), func(b *testing.B) {
			dir := b.TempDir()
			fs, err := policy.OpenFileStore(filepath.Join(dir, "store.json"))
			if err != nil {
				b.Fatal(err)
			}
			defer fs.Close()
			benchHTTPIssue(b, fs, clients, dir, true)
		})
	}
}

// benchHTTPIssue runs BenchmarkHTTPIssue on st with clients clients; when
// dir is not empty it also measures the fsync latency of a file there.
// Without audit the service's Logger is nil (no audit events).
func benchHTTPIssue(b *testing.B, st policy.Store, clients int, dir string, audit bool) {
	ctx := context.Background()
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, policy.BenchChanges(1000)...); err != nil {
		b.Fatal(err)
	}
	svc, err := issuebench.Service(st, anchor, 0)
	if err != nil {
		b.Fatal(err)
	}
	if !audit {
		svc.Logger = nil
	}
	secret, key, err := policy.NewAPIKey(nil, "bench", "u0", false, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Apply(ctx, policy.PutAPIKey(key)); err != nil {
		b.Fatal(err)
	}
	addr := serveBench(b, "service", svc)

	raw, err := issuebench.TokenRequest(addr, secret)
	if err != nil {
		b.Fatal(err)
	}
	conns := dialBench(b, addr, clients)

	run := func(total int, f func(i int) error) time.Duration {
		d, err := loadgen.Run(clients, total, f)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	roundTrip := func(conns []*loadgen.Conn) func(i int) error {
		return func(i int) error {
			status, body, err := conns[i].RoundTrip(raw)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d: %s", status, body)
			}
			return err
		}
	}
	post := roundTrip(conns)
	// Check the set-up before measuring, and keep a real answer for the
	// floor server to give.
	status, answer, err := conns[0].RoundTrip(raw)
	if err != nil || status != http.StatusOK {
		b.Fatalf("set-up request: status %d, %v: %s", status, err, answer)
	}
	floorAddr := serveBench(b, "floor", floorHandler(answer))
	floor := roundTrip(dialBench(b, floorAddr, clients))
	digest := sha256.Sum256([]byte("benchmark"))
	sign := func(int) error { _, err := ecdsa.SignASN1(rand.Reader, anchor, digest[:]); return err }
	var sync *fsyncProbe
	if dir != "" {
		sync = newFsyncProbe(b, dir)
	}

	batch := 8 * clients
	total, syncs := 0, 0
	var tHTTP, tSign, tFloor, tSync time.Duration
	var before, after runtime.MemStats
	var mallocs, bytes uint64
	for b.Loop() {
		runtime.ReadMemStats(&before)
		tHTTP += run(batch, post)
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		bytes += after.TotalAlloc - before.TotalAlloc
		tSign += run(batch, sign)
		tFloor += run(batch, floor)
		if sync != nil {
			tSync += sync.measure(b)
			syncs++
		}
		total += batch
	}
	tokensPerSec := float64(total) / tHTTP.Seconds()
	signsPerSec := float64(total) / tSign.Seconds()
	floorPerSec := float64(total) / tFloor.Seconds()
	b.ReportMetric(tokensPerSec, "tokens/s")
	b.ReportMetric(signsPerSec, "signs/s")
	b.ReportMetric(floorPerSec, "floor/s")
	b.ReportMetric(tokensPerSec/signsPerSec, "ratio-http/sign")
	b.ReportMetric(floorPerSec/signsPerSec, "ratio-floor/sign")
	b.ReportMetric(tokensPerSec/floorPerSec, "ratio-http/floor")
	// One token costs at least one signature and one HTTP exchange on the
	// same cores: at best 1/(1/signs + 1/floor) tokens/s.
	b.ReportMetric(floorPerSec/(floorPerSec+signsPerSec), "ceiling-http/sign")
	b.ReportMetric(float64(bytes)/float64(total), "B/token")
	b.ReportMetric(float64(mallocs)/float64(total), "allocs/token")
	if syncs > 0 {
		perSync := tSync / time.Duration(syncs)
		b.ReportMetric(float64(perSync.Microseconds()), "fsync-µs")
		b.ReportMetric(tokensPerSec*perSync.Seconds(), "tokens/fsync")
		// Each client waits for the fsync of its own record: at best one
		// token per client per fsync.
		b.ReportMetric(float64(clients)/perSync.Seconds()/signsPerSec, "ceiling-fsync/sign")
	}
}

// serveBench serves h on a loopback port until the benchmark ends and
// returns its address. The server's goroutines carry the profiler label
// server=name, so that a CPU profile tells the servers apart (go tool
// pprof -tagfocus server=service).
func serveBench(b *testing.B, name string, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go pprof.Do(context.Background(), pprof.Labels("server", name), func(context.Context) { srv.Serve(ln) })
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// dialBench opens n loadgen connections to addr, closed when the
// benchmark ends.
func dialBench(b *testing.B, addr string, n int) []*loadgen.Conn {
	conns := make([]*loadgen.Conn, n)
	for i := range conns {
		c, err := loadgen.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// floorHandler answers every request with 200 and body, with the headers
// of a token answer, having read the request body as the token endpoint
// does: the HTTP floor of BenchmarkHTTPIssue.
func floorHandler(body []byte) http.Handler {
	body = append([]byte(nil), body...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
}

// fsyncProbe appends small lines to a file and fsyncs it, as the ledger
// file does, to measure the latency of one fsync on its file system.
type fsyncProbe struct {
	f    *os.File
	line []byte
}

func newFsyncProbe(b *testing.B, dir string) *fsyncProbe {
	f, err := os.OpenFile(filepath.Join(dir, "fsync-probe"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	line := make([]byte, 400) // about one ledger record
	for i := range line {
		line[i] = 'x'
	}
	line[len(line)-1] = '\n'
	return &fsyncProbe{f: f, line: line}
}

// measure appends one line, fsyncs, and returns the time it took.
func (p *fsyncProbe) measure(b *testing.B) time.Duration {
	start := time.Now()
	if _, err := p.f.Write(p.line); err != nil {
		b.Fatal(err)
	}
	if err := p.f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
