package faketb

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RunExample runs test as go test runs a test function, for runnable
// examples, which get no *testing.T: test runs in its own goroutine, t.Fatal
// ends it, cleanups run afterwards in reverse order and failures are
// printed, so that the example's output no longer matches.
func RunExample(test func(t testing.TB)) {
	t := run(test)
	for _, m := range t.msgs {
		fmt.Println("FAIL:", m)
	}
}

// ExpectFatal runs setup with a fake testing.TB and fails t unless setup
// failed its test with a message containing want.
func ExpectFatal(t *testing.T, want string, setup func(tb testing.TB)) {
	t.Helper()
	f := run(setup)
	if !f.failed || !strings.Contains(strings.Join(f.msgs, "\n"), want) {
		t.Errorf("setup: failed %v with %q, want a failure mentioning %q", f.failed, f.msgs, want)
	}
}

func run(test func(t testing.TB)) *fakeT {
	t := &fakeT{}
	var cancel context.CancelFunc
	t.ctx, cancel = context.WithCancel(context.Background())
	t.run(func() { test(t) })
	cancel()
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return t
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		t.run(f)
	}
}

// fakeT is the testing.TB of RunExample and ExpectFatal. Only the methods the
// helpers and examples use are implemented; the others panic (nil embedded
// TB).
type fakeT struct {
	testing.TB
	ctx context.Context

	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

func (t *fakeT) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (t *fakeT) Helper()                           {}
func (t *fakeT) Name() string                      { return "Example" }
func (t *fakeT) Context() context.Context          { return t.ctx }
func (t *fakeT) Log(args ...any)                   {}
func (t *fakeT) Logf(format string, args ...any)   {}
func (t *fakeT) Error(args ...any)                 { t.fail(fmt.Sprint(args...)) }
func (t *fakeT) Errorf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }
func (t *fakeT) Fatal(args ...any)                 { t.Error(args...); t.FailNow() }
func (t *fakeT) Fatalf(format string, args ...any) { t.Errorf(format, args...); t.FailNow() }
func (t *fakeT) Fail()                             { t.fail("") }
func (t *fakeT) FailNow()                          { t.Fail(); runtime.Goexit() }

func (t *fakeT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *fakeT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *fakeT) fail(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	if msg != "" {
		t.msgs = append(t.msgs, msg)
	}
}
