package client

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/transport/transporttest"
	"github.com/securedeviceaccess/sda/trust"
)

// End-to-end tests: the client against the real device agent (device.Agent
// and Agent.Serve) over every transport, with and without faults.

var e2eIdentity = token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"}

// runCounter counts handler invocations per operation number.
type runCounter struct {
	mu   sync.Mutex
	runs map[int64]int
}

func (c *runCounter) get(i int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[i]
}

// e2eDevice is a device agent whose "configure" operation takes a number
// and answers "ran:<number>", counting its invocations.
type e2eDevice struct {
	agent   *device.Agent
	anchor  crypto.Signer
	key     crypto.Signer // the device's response signing key (v2), or nil
	counter *runCounter
	nonces  atomic.Int32 // nonce requests answered
}

func newE2EDevice(t testing.TB, v2 bool) *e2eDevice {
	t.Helper()
	d := &e2eDevice{anchor: mustP256(t), counter: &runCounter{runs: map[int64]int{}}}
	a, err := trust.NewAnchor(d.anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	store, err := trust.NewMemoryStore(*a)
	if err != nil {
		t.Fatal(err)
	}
	reg := &device.Registry{}
	err = reg.RegisterFunc("configure", func(_ context.Context, call *device.Call) ([]byte, error) {
		n, ok := call.Operation.Args[0].Int()
		if !ok {
			return nil, errors.New("want a number")
		}
		d.counter.mu.Lock()
		d.counter.runs[n]++
		d.counter.mu.Unlock()
		return []byte("ran:" + strconv.FormatInt(n, 10)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := device.Config{
		Identity:   e2eIdentity,
		Anchors:    store,
		Operations: reg,
		// Faults make requests fail verification (replayed duplicates,
		// damaged signatures): keep the device from locking us out, and
		// let lost nonces pile up.
		Throttle:  device.Throttle{Failures: -1},
		MaxNonces: device.MaxMaxNonces,
		OnOutcome: func(dec device.Outcome) {
			if dec.Request == device.RequestNonce {
				d.nonces.Add(1)
			}
		},
	}
	if v2 {
		d.key = mustKey(t, KeyEd25519)
		cfg.SigningKey, cfg.NextNonce = d.key, true
	}
	if d.agent, err = device.New(cfg); err != nil {
		t.Fatal(err)
	}
	return d
}

// session returns a technician session for the device over conn: v1 uses a
// P-256 key and a v1 token, v2 an Ed25519 key, a v2 token and checks the
// device-signed responses.
func (d *e2eDevice) session(t testing.TB, conn transport.Conn) *Session {
	t.Helper()
	kt := KeyP256
	if d.key != nil {
		kt = KeyEd25519
	}
	pop := mustKey(t, kt)
	raw := issue(t, d.anchor, pop.Public(), []string{"ep:hvac-1"}, "read-data configure", time.Now().Add(time.Hour))
	s := &Session{Conn: conn, Key: pop, Tokens: StaticToken(raw)}
	if d.key != nil {
		s.DeviceKey, s.Device = d.key.Public(), e2eIdentity
	}
	return s
}

// link joins a technician Conn to the device's Serve over one transport.
// faults, when not nil, wraps the technician's end (messages, or packets
// for fragmentation) in a fault injector.
type link struct {
	name string
	// packets is about how many packets carry one operation request, for
	// links whose faults are injected per packet (1 for message links).
	packets int
	dial    func(t testing.TB, serve func(transport.Conn), faults *transporttest.Config) (tech transport.Conn, stats func() transporttest.Stats)
}

func noStats() transporttest.Stats { return transporttest.Stats{} }

func wrapConn(c transport.Conn, faults *transporttest.Config) (transport.Conn, func() transporttest.Stats) {
	if faults == nil {
		return c, noStats
	}
	fc := transporttest.NewConn(c, *faults)
	return fc, fc.Stats
}

func streamLink(name string, framing transport.Framing) link {
	return link{name, 1, func(t testing.TB, serve func(transport.Conn), faults *transporttest.Config) (transport.Conn, func() transporttest.Stats) {
		a, b := net.Pipe()
		opts := &transport.Options{Framing: framing}
		tech, err := transport.NewStreamConn(a, opts)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := transport.NewStreamConn(b, opts)
		if err != nil {
			t.Fatal(err)
		}
		serve(dev)
		return wrapConn(tech, faults)
	}}
}

func fragmentLink(name string, mtu int, tf, df transport.FragmentFormat) link {
	return link{name, 400 / mtu, func(t testing.TB, serve func(transport.Conn), faults *transporttest.Config) (transport.Conn, func() transporttest.Stats) {
		a, b := transport.PacketPipe(mtu)
		stats := noStats
		if faults != nil {
			fp := transporttest.NewPacketConn(a, *faults)
			a, stats = fp, fp.Stats
		}
		rt := 300 * time.Millisecond // packets get lost under faults: give up on a message quickly
		tech, err := transport.NewFragmentConn(a, &transport.FragmentOptions{Format: tf, ReassemblyTimeout: rt})
		if err != nil {
			t.Fatal(err)
		}
		dev, err := transport.NewFragmentConn(b, &transport.FragmentOptions{Format: df, ReassemblyTimeout: rt})
		if err != nil {
			t.Fatal(err)
		}
		serve(dev)
		return tech, stats
	}}
}

var links = []link{
	{"pipe", 1, func(t testing.TB, serve func(transport.Conn), faults *transporttest.Config) (transport.Conn, func() transporttest.Stats) {
		a, b := transport.Pipe()
		serve(b)
		return wrapConn(a, faults)
	}},
	streamLink("stream-sda", transport.FramingSDA),
	streamLink("stream-length", transport.FramingLength),
	{"tcp", 1, func(t testing.TB, serve func(transport.Conn), faults *transporttest.Config) (transport.Conn, func() transporttest.Stats) {
		ctx := context.Background()
		opts := &transport.Options{Framing: transport.FramingLength}
		l, err := transport.Listen(ctx, "127.0.0.1:0", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		tech, err := transport.Dial(ctx, l.Addr().String(), opts)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		serve(dev)
		return wrapConn(tech, faults)
	}},
	fragmentLink("fragment-v2-mtu20", 20, transport.FragmentV2, transport.FragmentV2),
	fragmentLink("fragment-v2-mtu244", 244, transport.FragmentV2, transport.FragmentV2),
	fragmentLink("fragment-compat-mtu244", 244, transport.FragmentCompatTechnician, transport.FragmentCompatDevice),
}

// connect starts the device serving one end of l and returns the other end
// and a teardown that closes it and waits for Serve to return.
func connect(t testing.TB, d *e2eDevice, l link, faults *transporttest.Config) (transport.Conn, func() transporttest.Stats, func()) {
	t.Helper()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	serve := func(c transport.Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveErr <- d.agent.Serve(context.Background(), c)
		}()
	}
	tech, stats := l.dial(t, serve, faults)
	return tech, stats, func() {
		tech.Close()
		wg.Wait()
		err := <-serveErr
		switch {
		case err == nil || isAny(err, io.EOF, transport.ErrClosed, io.ErrClosedPipe):
		case faults == nil:
			t.Errorf("Serve: %v", err)
		default:
			t.Logf("Serve ended with %v", err)
		}
	}
}

// goroutineCheck returns a function that fails t if more goroutines run
// than when goroutineCheck was called, after letting exiting goroutines
// finish: it returns as soon as they have, and waits up to a generous 30 s
// for a loaded machine to schedule them.
func goroutineCheck(t testing.TB) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		var now int
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			if now = runtime.NumGoroutine(); now <= before {
				t.Logf("goroutines: %d before, %d after", before, now)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after teardown:\n%s", before, now, buf[:runtime.Stack(buf, true)])
	}
}

func configure(n int64) token.Operation {
	return token.Operation{Name: "configure", Args: []token.Arg{token.Int(n)}}
}

func TestEndToEnd(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		for _, l := range links {
			if v2 && l.name == "fragment-compat-mtu244" {
				continue // the original BLE format is for v1 peers
			}
			t.Run(fmt.Sprintf("%s/v2=%v", l.name, v2), func(t *testing.T) {
				leaks := goroutineCheck(t)
				d := newE2EDevice(t, v2)
				tech, _, teardown := connect(t, d, l, nil)
				s := d.session(t, tech)
				const n = 5
				for i := range int64(n) {
					res, err := s.Do(context.Background(), configure(i))
					if err != nil {
						t.Fatalf("operation %d: %v", i, err)
					}
					if want := fmt.Sprintf("ran:%d", i); string(res.Data) != want || res.Verified != v2 {
						t.Errorf("operation %d: data %q verified %v, want %q %v", i, res.Data, res.Verified, want, v2)
					}
				}
				// The device's answers map to typed errors.
				// The agent answers status 1 ("error") for an operation in scope
				// without a handler.
				var se *StatusError
				if _, err := s.Do(context.Background(), token.Operation{Name: "read-data"}); !errors.As(err, &se) || se.Status != token.StatusGeneralError || !errors.Is(err, ErrDevice) {
					t.Errorf("unregistered operation: got %v, want ErrDevice", err)
				}
				if _, err := s.Do(context.Background(), token.Operation{Name: "reboot"}); !errors.Is(err, ErrAccessDenied) {
					t.Errorf("operation out of scope: got %v, want ErrAccessDenied", err)
				}
				if _, err := s.Do(context.Background(), token.Operation{Name: "configure", Args: []token.Arg{token.Text("x")}}); !errors.Is(err, ErrOperationFailed) {
					t.Errorf("failing operation: got %v, want ErrOperationFailed", err)
				}
				teardown()
				// v1: one nonce request per operation; v2: the device offers
				// the next nonce in every response, so only the first
				// operation asks.
				want := int32(n + 3)
				if v2 {
					want = 1
				}
				if got := d.nonces.Load(); got != want {
					t.Errorf("%d nonce requests, want %d", got, want)
				}
				for i := range int64(n) {
					if got := d.counter.get(i); got != 1 {
						t.Errorf("operation %d ran %d times", i, got)
					}
				}
				leaks()
			})
		}
	}
}

// TestEndToEndWrongToken: the device's refusals reach the technician as
// typed errors.
func TestEndToEndRefusals(t *testing.T) {
	d := newE2EDevice(t, false)
	tech, _, teardown := connect(t, d, links[0], nil)
	defer teardown()
	s := d.session(t, tech)
	other := mustP256(t) // an anchor the device does not trust
	s.Tokens = StaticToken(issue(t, other, s.Key.Public(), []string{"ep:hvac-1"}, "configure", time.Now().Add(time.Hour)))
	if _, err := s.Do(context.Background(), configure(1)); !errors.Is(err, ErrVerification) {
		t.Errorf("unknown anchor: got %v, want ErrVerification", err)
	}
	s.Tokens = StaticToken(issue(t, d.anchor, s.Key.Public(), []string{"ep:hvac-2"}, "configure", time.Now().Add(time.Hour)))
	if _, err := s.Do(context.Background(), configure(1)); !errors.Is(err, ErrVerification) {
		t.Errorf("wrong audience: got %v, want ErrVerification", err)
	}
	s.Tokens = StaticToken(issue(t, d.anchor, s.Key.Public(), []string{"ep:hvac-1"}, "configure", time.Now().Add(-time.Hour)))
	if _, err := s.Do(context.Background(), configure(1)); !errors.Is(err, ErrVerification) {
		t.Errorf("expired token: got %v, want ErrVerification", err)
	}
	if got := d.counter.get(1); got != 0 {
		t.Errorf("operation ran %d times", got)
	}
}

// typedErrors are the errors a failed operation may match; every failure
// must match at least one.
var typedErrors = []error{
	ErrOutcomeUnknown, ErrBadResponse, ErrInvalidRequest, ErrVerification, ErrAccessDenied,
	ErrOperationFailed, ErrBusy, ErrDevice, context.DeadlineExceeded,
	transport.ErrClosed, transport.ErrChecksum, transport.ErrBadFragment, transport.ErrReassemblyTimeout,
	transport.ErrTruncated, transport.ErrBadMagic, transport.ErrMessageTooLarge, io.EOF, io.ErrClosedPipe,
}

// TestEndToEndFaults runs operations through the fault injector on every
// transport and checks that no operation runs twice, that every failure is
// a typed error returned within the operation's timeout, and that no
// goroutine is left behind.
//
// Where the faults allow exact attribution it checks more:
//   - a success reports the operation's own answer: always with verified
//     device-signed responses (v2), and for v1 when nothing corrupts or
//     reorders messages (a v1 response has no integrity protection and no
//     request identifier);
//   - a failure other than ErrOutcomeUnknown means the operation did not
//     run, when nothing duplicates messages either: with duplication, the
//     device answers a duplicate of a request it already ran with a
//     verification error (the nonce was used), and if the first answer is
//     lost, that error is all the technician sees. See docs/client-section.md.
func TestEndToEndFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	all := transporttest.Faults{Drop: 0.05, Duplicate: 0.05, Corrupt: 0.05, Truncate: 0.03, Reorder: 0.03, Delay: 0.05}
	noReorder := all
	noReorder.Reorder = 0
	dropDup := transporttest.Faults{Drop: 0.05, Duplicate: 0.05, Delay: 0.05}
	drop := transporttest.Faults{Drop: 0.08, Delay: 0.05}
	type mix struct {
		name string
		f    transporttest.Faults
		// exactSuccess and notRun say which attribution checks apply.
		exactSuccess, notRun func(v2 bool) bool
	}
	never := func(bool) bool { return false }
	always := func(bool) bool { return true }
	mixes := []mix{
		{"all", all, never, never},
		{"no-reorder", noReorder, never, never},
		{"drop-dup-delay", dropDup, always, never},
		{"drop-delay", drop, always, always},
	}
	// The subtests spend most of their time waiting for timeouts, so up to
	// 8 run at once (t.Run from several goroutines, independent of
	// -parallel); goroutines are counted around all of them together.
	leaks := goroutineCheck(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, v2 := range []bool{false, true} {
		for _, l := range links {
			if v2 && l.name == "fragment-compat-mtu244" {
				continue
			}
			for mi, m := range mixes {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					t.Run(fmt.Sprintf("%s/v2=%v/%s", l.name, v2, m.name), func(t *testing.T) {
						runFaults(t, l, v2, m.f, uint64(mi+1)*1000+uint64(len(l.name)), m.exactSuccess(v2), m.notRun(v2))
					})
				}()
			}
		}
	}
	wg.Wait()
	leaks()
}

func runFaults(t *testing.T, l link, v2 bool, f transporttest.Faults, seed uint64, exact, notRun bool) {
	d := newE2EDevice(t, v2)
	// Per-packet faults: scale them so that a message meets about as many
	// faults as on a message link.
	if p := float64(max(l.packets, 1)); p > 1 {
		f.Drop, f.Duplicate, f.Corrupt, f.Truncate, f.Reorder, f.Delay = f.Drop/p, f.Duplicate/p, f.Corrupt/p, f.Truncate/p, f.Reorder/p, f.Delay/p
	}
	var (
		s        *Session
		stats    func() transporttest.Stats
		teardown func()
		injected int
	)
	dial := func() {
		var tech transport.Conn
		tech, stats, teardown = connect(t, d, l, &transporttest.Config{Seed: seed, Send: f, Receive: f})
		seed++
		s = d.session(t, tech)
		s.Timeout = 300 * time.Millisecond
		s.NonceTimeout = 80 * time.Millisecond
		s.MaxAttempts = 4
	}
	hangUp := func() {
		teardown()
		st := stats()
		injected += st.Send.Faults() + st.Receive.Faults()
	}
	dial()
	const n = 25
	outcomes := map[string]int{}
	type outcome struct {
		res *Result
		err error
	}
	for i := range int64(n) {
		// Do runs in a goroutine only to catch a hang: it must return by
		// its own timeout, and the watchdog is far longer than that.
		done := make(chan outcome, 1)
		go func() {
			res, err := s.Do(context.Background(), configure(i))
			done <- outcome{res, err}
		}()
		var o outcome
		select {
		case o = <-done:
		case <-time.After(s.Timeout + 10*time.Second):
			t.Fatalf("operation %d did not return within its timeout", i)
		}
		ran := d.counter.get(i)
		if ran > 1 {
			t.Errorf("operation %d ran %d times", i, ran)
		}
		switch {
		case o.err == nil:
			outcomes["success"]++
			want := fmt.Sprintf("ran:%d", i)
			if string(o.res.Data) != want && (exact || o.res.Verified) {
				t.Errorf("operation %d: success with data %q, want %q", i, o.res.Data, want)
			}
			if exact && ran != 1 {
				t.Errorf("operation %d: success, but ran %d times", i, ran)
			}
		case !isAny(o.err, typedErrors...):
			t.Errorf("operation %d: untyped error %v", i, o.err)
		case errors.Is(o.err, ErrOutcomeUnknown):
			outcomes["unknown"]++
		default:
			outcomes["failed"]++
			if notRun && ran != 0 && !errors.Is(o.err, ErrOperationFailed) {
				t.Errorf("operation %d: reported as not run (%v), but ran", i, o.err)
			}
		}
		if isAny(o.err, transport.ErrClosed, io.EOF, io.ErrClosedPipe) {
			// One end gave up on the link (a stream out of step closes
			// itself; Serve gives up after repeated integrity errors), as a
			// real link may: connect again, as an app would.
			outcomes["reconnect"]++
			hangUp()
			dial()
		}
	}
	hangUp()
	if injected == 0 {
		t.Error("no fault was injected")
	}
	if outcomes["success"] == 0 {
		t.Errorf("no operation succeeded: %v", outcomes)
	}
	t.Logf("outcomes %v; %d faults injected", outcomes, injected)
}
