package device_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// Many goroutines process requests at once (run with -race): every genuine
// request eventually succeeds exactly once, forgeries fail, and the nonce
// set never exceeds its bound.
func TestConcurrentProcessing(t *testing.T) {
	const maxNonces = 10
	var maxSeen atomic.Int64
	var w *world
	w = newWorld(t, func(c *device.Config) {
		c.MaxNonces = maxNonces
		c.TokenCacheSize = 8
		c.Throttle.Failures = -1
		c.OnOutcome = func(device.Outcome) {
			if n := int64(w.agent.OutstandingNonces()); n > maxSeen.Load() {
				maxSeen.Store(n) // races between hooks only under-report by one step; the store bound is what counts
			}
		}
	})
	tok := w.token(nil)
	thief := newKey(t, "P-256")
	const workers, perWorker = 24, 12
	var wg sync.WaitGroup
	var ok, busy atomic.Int64
	ctx := context.Background()
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; {
				raw := w.agent.Process(ctx, wire.NonceRequest)
				nr, err := wire.DecodeResponse(raw)
				if err != nil {
					t.Error(err)
					return
				}
				if nr.Status == wire.StatusBusy {
					busy.Add(1)
					runtime.Gosched()
					continue
				}
				if n := w.agent.OutstandingNonces(); n > maxNonces {
					t.Errorf("%d nonces outstanding", n)
				}
				if g%4 == 0 { // a forger first: must not burn the nonce
					r, _ := wire.DecodeResponse(w.agent.Process(ctx, w.request(nr.Nonce, tok, thief, "read-data")))
					if r.Status != wire.StatusVerificationError {
						t.Errorf("forgery: %v", r.Status)
					}
				}
				r, err := wire.DecodeResponse(w.agent.Process(ctx, w.request(nr.Nonce, tok, w.pop, "read-data", token.Int(int64(g)))))
				if err != nil || r.Status != wire.StatusSuccess {
					t.Errorf("genuine request: %v %v", r.Status, err)
					return
				}
				ok.Add(1)
				i++
			}
		}()
	}
	wg.Wait()
	if got := ok.Load(); got != workers*perWorker || w.runs("read-data") != workers*perWorker {
		t.Fatalf("%d successes, %d handler runs, want %d", got, w.runs("read-data"), workers*perWorker)
	}
	if maxSeen.Load() > maxNonces {
		t.Fatalf("nonce set reached %d", maxSeen.Load())
	}
	t.Logf("%d requests, %d busy nonce refusals, at most %d nonces outstanding", ok.Load(), busy.Load(), maxSeen.Load())
}

// Memory stays flat over a long run of requests: nonces, the token cache,
// the replay ring and the revocation list are all bounded.
func TestMemoryStaysFlat(t *testing.T) {
	n := 20000
	if raceEnabled || testing.Short() {
		n = 2000
	}
	w := newWorld(t, func(c *device.Config) {
		c.TokenCacheSize = 16
		c.NextNonce = true
		c.Throttle.Failures = -1
	})
	ctx := context.Background()
	toks := make([][]byte, 64) // more tokens than cache entries
	for i := range toks {
		toks[i] = w.token(func(c *token.Claims) { c.ID = []byte{byte(i), 0x77} })
	}
	thief := newKey(t, "P-256")
	// Pre-sign outside the measurement: the nonces come from the
	// responses, so requests are signed as we go; a warm-up first.
	next := w.nonce()
	run := func(count int) {
		for i := range count {
			tok := toks[i%len(toks)]
			if i%10 == 9 { // a forgery now and then
				w.agent.Process(ctx, w.request(next, tok, thief, "read-data"))
			}
			r, err := wire.DecodeResponse(w.agent.Process(ctx, w.request(next, tok, w.pop, "read-data")))
			if err != nil || r.Status != wire.StatusSuccess {
				t.Fatalf("request %d: %v %v", i, r.Status, err)
			}
			next = r.NextNonce
		}
	}
	run(500)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	run(n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d requests: heap in use %d KiB -> %d KiB (%+d KiB), %d nonces outstanding",
		n, before.HeapInuse>>10, after.HeapInuse>>10, growth>>10, w.agent.OutstandingNonces())
	if growth > 8<<20 {
		t.Fatalf("heap grew by %d bytes", growth)
	}
	if w.agent.OutstandingNonces() > device.DefaultMaxNonces {
		t.Fatalf("%d nonces outstanding", w.agent.OutstandingNonces())
	}
}
