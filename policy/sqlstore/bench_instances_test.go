package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/loadgen"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

// Parameters of BenchmarkInstances' admin writes.
const (
	// instWriteEvery is the time between two admin writes.
	instWriteEvery = 10 * time.Millisecond
	// instPollEvery is the time between two attempts of an instance to
	// see a write take effect.
	instPollEvery = time.Millisecond
	// instPollTimeout bounds the time a write may take to take effect.
	instPollTimeout = 10 * time.Second
	// instSlots is the number of policies the writes cycle through.
	instSlots = 256
)

// BenchmarkInstances measures n service instances in one process sharing
// one PostgreSQL database, each with its own *sql.DB, Store, Service (as
// BenchmarkHTTPIssue serves it: metrics, audit log, ledger) and HTTP
// server on loopback, over 1,000 policies. httpBenchClients loadgen
// clients, spread over the instances in turn, ask for tokens; in turn with
// their batches, as many goroutines call ecdsa.SignASN1 alone. Meanwhile,
// every instWriteEvery, one instance in turn writes a policy through
// Service.Apply that lets user u1 run an operation named after the write,
// and each other instance tries, every instPollEvery, to issue a token
// for it (Service.Issue) until it is allowed.
//
// It reports tokens/s (all instances together), signs/s, their ratio
// ratio-http/sign, and (n > 1) the time from a write being acknowledged
// to it taking effect on another instance, over every (write, instance)
// pair: ms-effect-p50 and ms-effect-p99. The attempts add load of their
// own (at most one decision per instance per instPollEvery per write in
// flight). n is 1, 3 and 10; staleness is the Services' MaxStaleness, 0
// and 100ms. The scale of cost, tokens/s at 10 instances against at 1, is
// measured in runs of its own, instances=10:1, in which a set-up of 1
// instance and one of 10 (each on a schema of its own, with its own
// writes) take tokens in turn, batch by batch: they report the tokens/s
// of each, tokens/s-1 and tokens/s-10, and their ratio ratio-10/1.
//
//	eval "$(bash .ci/postgres.sh start)"
//	go test ./policy/sqlstore -run '^$' -bench Instances -count 3
func BenchmarkInstances(b *testing.B) {
	for _, n := range []int{1, 3, 10} {
		for _, staleness := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("instances=%d/staleness=%v", n, staleness), func(b *testing.B) { benchInstances(b, n, staleness) })
		}
	}
	for _, staleness := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("instances=10:1/staleness=%v", staleness), func(b *testing.B) { benchInstancesScale(b, staleness) })
	}
}

func benchInstances(b *testing.B, n int, staleness time.Duration) {
	anchor, post, stop := startInstances(b, n, staleness)
	err := measureIssue(b, anchor, post)
	stop(true)
	if err != nil {
		b.Fatal(err)
	}
}

// benchInstancesScale measures a set-up of 1 instance and one of 10 in
// turn, batch by batch, and reports their tokens/s and its ratio.
func benchInstancesScale(b *testing.B, staleness time.Duration) {
	_, post1, stop1 := startInstances(b, 1, staleness)
	_, post10, stop10 := startInstances(b, 10, staleness)
	t1, t10, calls, err := loadgen.Interleave(httpBenchClients, 64, b.Loop, post1, post10)
	stop1(false)
	stop10(false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(calls)/t1.Seconds(), "tokens/s-1")
	b.ReportMetric(float64(calls)/t10.Seconds(), "tokens/s-10")
	b.ReportMetric(t1.Seconds()/t10.Seconds(), "ratio-10/1")
}

// startInstances sets up n instances on a schema of their own, as
// BenchmarkInstances describes, and starts the admin writes. It returns
// the anchor, the function that asks for a token on loadgen client i's
// connection, and the function that stops the writes, fails b if one
// failed, and, if report, reports the times they took to take effect.
func startInstances(b *testing.B, n int, staleness time.Duration) (anchor *ecdsa.PrivateKey, post func(i int) error, stopWrites func(report bool)) {
	ctx := context.Background()
	_, schema := testDB(b)
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	svcs := make([]*policy.Service, n)
	addrs := make([]string, n)
	for i := range n {
		db := openDB(b, os.Getenv("SDA_TEST_POSTGRES_DSN"))
		db.SetMaxIdleConns(10)
		st, err := Open(ctx, db, schema)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			if _, err := st.Apply(ctx, benchChanges(1000)...); err != nil {
				b.Fatal(err)
			}
		}
		svcs[i] = benchService(b, st, anchor, staleness)
		addrs[i] = serve(b, svcs[i])
	}
	secret, key, err := policy.NewAPIKey(nil, "bench", "u0", false, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := svcs[0].Apply(ctx, policy.PutAPIKey(key)); err != nil {
		b.Fatal(err)
	}
	conns := make([]*loadgen.Conn, httpBenchClients)
	raws := make([][]byte, httpBenchClients)
	for i := range conns {
		c, err := loadgen.Dial(addrs[i%n])
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns[i], raws[i] = c, benchTokenRequest(b, addrs[i%n], secret)
	}
	post = func(i int) error {
		status, body, err := conns[i].RoundTrip(raws[i])
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		return err
	}
	for i := range conns { // check the set-up before measuring
		if err := post(i); err != nil {
			b.Fatal(err)
		}
	}

	// The admin writes and the instances' attempts to see them.
	var (
		mu       sync.Mutex
		effect   []time.Duration
		firstErr error
		polls    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	poll := func(svc *policy.Service, op string, acked time.Time) {
		defer polls.Done()
		req := &token.AccessRequest{Audience: []string{"ep:ep-0"}, Scope: []string{op}, Key: &pop.PublicKey}
		for {
			_, err := svc.Issue(ctx, "u1", req)
			if err == nil {
				d := time.Since(acked)
				mu.Lock()
				effect = append(effect, d)
				mu.Unlock()
				return
			}
			if !errors.Is(err, policy.ErrDenied) {
				fail(fmt.Errorf("issuing %s: %w", op, err))
				return
			}
			if time.Since(acked) > instPollTimeout {
				fail(fmt.Errorf("write %s took no effect within %v", op, instPollTimeout))
				return
			}
			time.Sleep(instPollEvery)
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(instWriteEvery)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			op := fmt.Sprintf("w%d", k)
			p := &policy.Policy{
				ID: fmt.Sprintf("prop-%03d", k%instSlots), Status: policy.Active, Effect: policy.Allow,
				Subjects:      policy.Subjects{Users: []string{"u1"}},
				Operations:    []policy.OperationRule{{Name: op}},
				Devices:       policy.DeviceSelector{All: true},
				TokenLifetime: time.Hour,
			}
			w := k % n
			if err := svcs[w].Apply(ctx, policy.PutPolicy(p)); err != nil {
				fail(fmt.Errorf("write %d: %w", k, err))
				return
			}
			acked := time.Now()
			for j, svc := range svcs {
				if j != w {
					polls.Add(1)
					go poll(svc, op, acked)
				}
			}
		}
	}()

	stopWrites = func(report bool) {
		close(stop)
		<-stopped
		polls.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		if report && len(effect) > 0 {
			slices.Sort(effect)
			q := func(f float64) float64 {
				return float64(effect[min(len(effect)-1, int(f*float64(len(effect))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(q(0.5), "ms-effect-p50")
			b.ReportMetric(q(0.99), "ms-effect-p99")
			b.ReportMetric(float64(len(effect)), "effects")
		}
	}
	return anchor, post, stopWrites
}
