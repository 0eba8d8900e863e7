package policytest_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// runTest runs test as go test runs a test function, for runnable examples,
// which get no *testing.T: test runs in its own goroutine, t.Fatal ends it,
// cleanups run afterwards in reverse order and failures are printed, so
// that the example's output no longer matches.
func runTest(test func(t testing.TB)) {
	t := &exampleT{}
	var cancel context.CancelFunc
	t.ctx, cancel = context.WithCancel(context.Background())
	t.run(func() { test(t) })
	cancel()
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		t.run(f)
	}
}

// exampleT is the testing.TB of runTest. Only the methods the helpers and
// examples use are implemented; the others panic (nil embedded TB).
type exampleT struct {
	testing.TB
	ctx context.Context

	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

func (t *exampleT) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Name() string                      { return "Example" }
func (t *exampleT) Context() context.Context          { return t.ctx }
func (t *exampleT) Log(args ...any)                   {}
func (t *exampleT) Logf(format string, args ...any)   {}
func (t *exampleT) Error(args ...any)                 { t.fail(fmt.Sprint(args...)) }
func (t *exampleT) Errorf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatal(args ...any)                 { t.Error(args...); t.FailNow() }
func (t *exampleT) Fatalf(format string, args ...any) { t.Errorf(format, args...); t.FailNow() }
func (t *exampleT) Fail()                             { t.fail("") }
func (t *exampleT) FailNow()                          { t.Fail(); runtime.Goexit() }

func (t *exampleT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *exampleT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *exampleT) fail(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	if msg != "" {
		fmt.Println("FAIL:", msg)
	}
}
