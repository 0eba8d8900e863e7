package transport

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGateMutualExclusion(t *testing.T) {
	g := newGate()
	done := make(chan struct{})
	var inside, overlaps atomic.Int32
	counter := 0 // guarded by g; the race detector checks that
	var wg sync.WaitGroup
	const workers, rounds = 8, 2000
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			for i := range rounds {
				if w%2 == 1 && i%50 == 0 {
					// Some waiters give up, which must not lose a wake-up
					// meant for the others.
					c, cancel := context.WithCancel(ctx)
					cancel()
					if err := g.lock(c, done); err == nil {
						g.unlock()
					}
				}
				if err := g.lock(ctx, done); err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				counter++
				inside.Add(-1)
				g.unlock()
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("the gate had more than one holder %d times", n)
	}
	if counter != workers*rounds {
		t.Fatalf("counter = %d, want %d", counter, workers*rounds)
	}
}

func TestGateWaiterGivesUp(t *testing.T) {
	g := newGate()
	done := make(chan struct{})
	if err := g.lock(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.lock(ctx, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held gate: %v, want the context's error", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- g.lock(context.Background(), done) }()
	close(done)
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("lock after done closed: %v, want ErrClosed", err)
	}
	// The holder's unlock still frees the gate.
	g.unlock()
	if err := g.lock(context.Background(), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
}

func TestGateHandsOver(t *testing.T) {
	g := newGate()
	done := make(chan struct{})
	if err := g.lock(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- g.lock(context.Background(), done) }()
	for g.waiters.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	g.unlock()
	if err := <-errc; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if g.held.CompareAndSwap(false, true) {
		t.Fatal("gate free after the waiter took it")
	}
}
