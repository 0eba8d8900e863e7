package device_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

// The lower bound of time rises to the issue time of an accepted token
// (iat, or nbf without iat), capped by the token's exp and, with a trusted
// clock only, by now plus the leeway: an issuer whose clock runs ahead
// cannot push a device with a clock far into the future.
func TestLowerBoundRisesWithCaps(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mode          device.ClockMode
		iat, nbf, exp time.Duration // from testNow; iat zero: absent
		want          time.Duration // the bound, from testNow
	}{
		{"trusted: iat", device.ClockTrusted, -time.Minute, -time.Hour, time.Hour, -time.Minute},
		{"trusted: nbf without iat", device.ClockTrusted, 0, -2 * time.Minute, time.Hour, -2 * time.Minute},
		{"trusted: iat ahead, capped by now and the leeway", device.ClockTrusted, 2 * time.Hour, -time.Hour, 3 * time.Hour, device.DefaultLeeway},
		{"trusted: iat after exp, capped by exp", device.ClockTrusted, 4 * time.Minute, -time.Hour, 2 * time.Minute, 2 * time.Minute},
		{"lower bound: iat ahead is taken", device.ClockLowerBound, 2 * time.Hour, -time.Hour, 3 * time.Hour, 2 * time.Hour},
		{"lower bound: iat after exp, capped by exp", device.ClockLowerBound, 3 * time.Hour, -time.Hour, 2 * time.Hour, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			min := testNow.Add(-time.Hour)
			w := newWorld(t, func(c *device.Config) { c.ClockMode, c.MinTime = tc.mode, min })
			at := func(d time.Duration) time.Time {
				if d == 0 {
					return time.Time{}
				}
				return testNow.Add(d)
			}
			tok := w.token(func(c *token.Claims) { c.IssuedAt, c.NotBefore, c.Expiry = at(tc.iat), at(tc.nbf), at(tc.exp) })
			if _, d := w.do(tok, "read-data"); !d.Allowed() {
				t.Fatalf("%v %v", d.Check, d.Err)
			}
			if got, want := w.agent.TimeLowerBound(), testNow.Add(tc.want); !got.Equal(want) {
				t.Fatalf("lower bound %v, want %v", got, want)
			}
		})
	}
}

// The lower bound is written to State only when it rises.
func TestLowerBoundWrittenOnlyWhenItRises(t *testing.T) {
	st := &countingState{}
	w := newWorld(t, func(c *device.Config) { c.State = st; c.MinTime = testNow.Add(-time.Minute) })
	for _, tc := range []struct {
		iat    time.Duration
		writes int
	}{
		{-time.Minute, 0}, // MinTime itself
		{-2 * time.Minute, 0},
		{-30 * time.Second, 1},
		{-30 * time.Second, 0},
		{-10 * time.Second, 1},
	} {
		before := st.writes("time-floor")
		tok := w.token(func(c *token.Claims) { c.IssuedAt = testNow.Add(tc.iat) })
		if _, d := w.do(tok, "read-data"); !d.Allowed() {
			t.Fatalf("%v %v", d.Check, d.Err)
		}
		if got := st.writes("time-floor") - before; got != tc.writes {
			t.Fatalf("iat %v: the bound was written %d times, want %d", tc.iat, got, tc.writes)
		}
	}
	w.restart()
	if got, want := w.agent.TimeLowerBound(), testNow.Add(-10*time.Second); !got.Equal(want) {
		t.Fatalf("bound after a restart %v, want %v", got, want)
	}
}

// When the bound cannot be persisted, the request is still served, the
// bound still rises in memory (which only makes the device stricter), and
// the failure is logged at Error, with or without a logger.
func TestLowerBoundPersistFailure(t *testing.T) {
	var log auditLog
	for _, logger := range []*slog.Logger{nil, log.logger(slog.LevelError)} {
		w := newWorld(t, func(c *device.Config) { c.State = &failingState{}; c.Logger = logger })
		if _, d := w.do(w.token(nil), "read-data"); !d.Allowed() {
			t.Fatalf("request with a failing state: %v %v", d.Check, d.Err)
		}
		if got, want := w.agent.TimeLowerBound(), testNow.Add(-time.Minute); !got.Equal(want) {
			t.Fatalf("lower bound %v, want %v", got, want)
		}
	}
	events := log.events(t)
	if len(events) != 1 || events[0]["level"] != "ERROR" || events[0]["msg"] != "sda: persisting the time lower bound failed" {
		t.Fatalf("events %v", events)
	}
	// A working state logs nothing at Error.
	w := newWorld(t, func(c *device.Config) { c.Logger = log.logger(slog.LevelError) })
	w.do(w.token(nil), "read-data")
	if events := log.events(t); len(events) != 0 {
		t.Fatalf("events %v", events)
	}
}

// blockingState is a countingState whose first write of the lower bound
// waits for release, signalling entered when it starts.
type blockingState struct {
	countingState
	once             sync.Once
	entered, release chan struct{}
}

func (s *blockingState) Store(key string, value []byte) error {
	if key == "time-floor" {
		s.once.Do(func() {
			close(s.entered)
			<-s.release
		})
	}
	return s.countingState.Store(key, value)
}

// Requests that raise the bound while it is being written wait for that
// write; then the newest bound is written once, not once per request.
func TestLowerBoundConcurrentRises(t *testing.T) {
	st := &blockingState{entered: make(chan struct{}), release: make(chan struct{})}
	w := newWorld(t, func(c *device.Config) { c.State = st })
	ctx := context.Background()
	send := func(iat time.Duration) <-chan device.Outcome {
		req := w.request(w.nonce(), w.token(func(c *token.Claims) { c.IssuedAt = testNow.Add(iat) }), w.pop, "read-data")
		done := make(chan device.Outcome, 1)
		go func() { _, d := w.agent.Handle(ctx, req); done <- d }()
		return done
	}
	waitBound := func(want time.Time) {
		deadline := time.Now().Add(10 * time.Second) // bounds a hang; asserts nothing about time
		for !w.agent.TimeLowerBound().Equal(want) {
			if time.Now().After(deadline) {
				t.Fatalf("bound %v, want %v", w.agent.TimeLowerBound(), want)
			}
			runtime.Gosched()
		}
	}
	first := send(-3 * time.Minute)
	<-st.entered // the first write is under way
	second := send(-2 * time.Minute)
	waitBound(testNow.Add(-2 * time.Minute))
	third := send(-time.Minute)
	waitBound(testNow.Add(-time.Minute))
	close(st.release)
	for _, done := range []<-chan device.Outcome{first, second, third} {
		if d := <-done; !d.Allowed() {
			t.Fatalf("%v %v", d.Check, d.Err)
		}
	}
	if n := st.writes("time-floor"); n != 2 {
		t.Fatalf("the bound was written %d times, want 2 (the first, then the newest)", n)
	}
	w.cfg.State = &st.countingState
	w.restart()
	if got, want := w.agent.TimeLowerBound(), testNow.Add(-time.Minute); !got.Equal(want) {
		t.Fatalf("bound after a restart %v, want %v", got, want)
	}
}
