package transport

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
)

// checkGoroutines fails the test if it leaves goroutines behind. Call it
// first, so that its cleanup runs after all others. Tests using it must not
// run in parallel.
func checkGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Goroutines that are ending may take a moment to exit; wait for them
		// (this bounds the wait, it asserts nothing about time).
		var n int
		for range 500 {
			if n = runtime.NumGoroutine(); n <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf)
	})
}

// testMessage returns n bytes of a recognisable pattern, different for each
// seed.
func testMessage(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// roundTrip sends msg from a and checks that b receives it intact.
func roundTrip(t testing.TB, a, b Conn, msg []byte) {
	t.Helper()
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- a.Send(ctx, msg) }()
	got, err := b.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("received %d bytes %x..., sent %d bytes %x...", len(got), got[:min(len(got), 16)], len(msg), msg[:min(len(msg), 16)])
	}
}

// result is the outcome of a call run in the background.
type result struct {
	msg []byte
	err error
}

func receiveAsync(ctx context.Context, c Conn) <-chan result {
	ch := make(chan result, 1)
	go func() {
		m, err := c.Receive(ctx)
		ch <- result{m, err}
	}()
	return ch
}
