package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.golden from this run")

const golden = "testdata/transcript.golden"

// normalizers replace what changes from run to run: times, loopback ports,
// the anchor's fingerprint, nonces.
var normalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<port>"},
	{regexp.MustCompile(`mbed\.ta\.[0-9A-F]{64}`), "mbed.ta.<fingerprint>"},
	{regexp.MustCompile(`\b[0-9a-fA-F]{16,}\b`), "<hex>"},
}

func normalize(s string) string {
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.repl)
	}
	return s
}

// TestTranscript runs the demo and checks its transcript against the golden
// file: every outcome, granted or denied, and every reason. Run with -update
// to rewrite the file after an intended change.
func TestTranscript(t *testing.T) {
	leaks := goroutineCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\ntranscript:\n%s", err, out.String())
	}
	got := normalize(out.String())
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
	}
	want, err := os.ReadFile(filepath.FromSlash(golden))
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("transcript differs from %s at line %d:\n got: %s\nwant: %s", golden, i+1, g, w)
				break
			}
		}
		t.Logf("normalized transcript:\n%s", got)
	}
	cancel()
	leaks()
}

func TestNormalize(t *testing.T) {
	in := "on http://127.0.0.1:40829 anchor mbed.ta.76D8A7371E46B9560F127037BC82CB11C4087E4DBF10D4C56B5E607B547889ED " +
		"until 2026-11-24T23:27:41Z (nonce d7ce6158423a53c1) fan 80% set-temperature(23)"
	want := "on http://127.0.0.1:<port> anchor mbed.ta.<fingerprint> until <time> (nonce <hex>) fan 80% set-temperature(23)"
	if got := normalize(in); got != want {
		t.Errorf("normalize:\n got %s\nwant %s", got, want)
	}
}

// TestUnexpectedOutcomes: a step whose outcome differs from its expectation
// fails the demo, on either side (the service's decision, the technician's
// result, the controller's audit decision).
func TestUnexpectedOutcomes(t *testing.T) {
	ctx, svc, ctrl, stop := startOne(t, rooftop1, false, false)
	var out bytes.Buffer
	d := &demo{w: &out, svc: svc, r1: ctrl}
	jim, err := newTechnician("jim", "service-co junior", svc.secrets["jim"])
	if err != nil {
		t.Fatal(err)
	}

	// The service denies jim configure; expecting a grant is an error.
	if _, err := d.askToken(ctx, jim, token.ProfileV1, rooftop1.Endpoint, "configure", granted); err == nil {
		t.Error("a denied token request expected granted: no error")
	}
	// The service grants read-data; expecting a denial is an error.
	tokens, err := d.askToken(ctx, jim, token.ProfileV1, rooftop1.Endpoint, "read-data", denied)
	if err == nil || tokens != nil {
		t.Error("a granted token request expected denied: no error")
	}
	tokens, err = d.askToken(ctx, jim, token.ProfileV1, rooftop1.Endpoint, "read-data", granted)
	if err != nil {
		t.Fatal(err)
	}
	s, rec, err := jim.connect(ctx, ctrl, tokens)
	if err != nil {
		t.Fatal(err)
	}
	// A success expected refused, a refusal expected successful, and a
	// refusal for another reason than expected.
	if err := d.operate(ctx, jim, s, ctrl, op("read-data"), refused(client.ErrAccessDenied, device.CheckScope, token.ErrOutOfScope)); err == nil {
		t.Error("a successful operation expected refused: no error")
	}
	if err := d.operate(ctx, jim, s, ctrl, op("configure", token.Text("fan-speed"), token.Int(1)), success); err == nil {
		t.Error("a refused operation expected successful: no error")
	}
	if err := d.operate(ctx, jim, s, ctrl, op("configure"), refused(client.ErrAccessDenied, device.CheckNonce, device.ErrNonceReplayed)); err == nil {
		t.Error("a scope refusal expected as a nonce refusal: no error")
	}
	// The replay check passes on a real replay.
	if err := d.operate(ctx, jim, s, ctrl, op("read-data"), success); err != nil {
		t.Fatal(err)
	}
	if err := d.replay(ctx, ctrl, rec.captured()); err != nil {
		t.Errorf("replay: %v", err)
	}
	if got := strings.Count(out.String(), "UNEXPECTED"); got != 5 {
		t.Errorf("%d steps marked UNEXPECTED, want 5:\n%s", got, out.String())
	}
	rec.Close()
	stop()
}

// TestStolenPhoneNeedsTheUpdate: the stolen-phone story fails the demo when
// rooftop-2 does not take status updates: alice's request then carries no
// update, and the demo stops at her visit, before the thief's request.
func TestStolenPhoneNeedsTheUpdate(t *testing.T) {
	ctx, svc, ctrl, stop := startOne(t, rooftop2, true, false) // v2, without status updates
	var out bytes.Buffer
	d := &demo{w: &out, svc: svc, r2: ctrl}
	alice, err := newTechnician("alice", "service-co", svc.secrets["alice"])
	if err != nil {
		t.Fatal(err)
	}
	jim, err := newTechnician("jim", "service-co junior", svc.secrets["jim"])
	if err != nil {
		t.Fatal(err)
	}
	if err := d.stolenPhone(ctx, alice, jim); err == nil {
		t.Errorf("the story ended as expected on a controller that takes no status updates:\n%s", out.String())
	}
	// Steps: jim's token, his read-data, the revocation, alice's token,
	// her visit (unexpected), the thief.
	if got := strings.Count(out.String(), "UNEXPECTED"); got != 1 || d.n != 5 {
		t.Errorf("%d steps marked UNEXPECTED, stopped at step %d; want 1, at step 5 (alice's visit):\n%s", got, d.n, out.String())
	}
	d.closeConns()
	stop()
}

// startOne starts the authorization service and one controller (see
// startController) for a test. It returns the context they run in and a
// function that stops them and fails t if they do not stop or leave
// goroutines running; call it once the test's connections are closed.
func startOne(t *testing.T, id token.Identity, v2, updates bool) (context.Context, *authService, *controller, func()) {
	t.Helper()
	leaks := goroutineCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	t.Cleanup(cancel)
	svc, err := startService(ctx)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := svc.trustStore()
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := startController(ctx, id, anchors, v2, updates)
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		t.Helper()
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), stopTimeout)
		defer scancel()
		if err := errors.Join(ctrl.stopped(sctx), svc.stop(sctx)); err != nil {
			t.Error(err)
		}
		leaks()
	}
	return ctx, svc, ctrl, stop
}

// goroutineCheck returns a function that fails t if goroutines started
// since it was called are still running after a grace period.
func goroutineCheck(t *testing.T) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		var now int
		for range 200 {
			if now = runtime.NumGoroutine(); now <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, now, buf[:runtime.Stack(buf, true)])
	}
}

// TestDelegationChecksTheChain: the delegation story plays on its own on a
// v2 controller, and a success is unexpected when the controller's audit
// does not name the expected chain of keys (a request that is not
// delegated, or another chain).
func TestDelegationChecksTheChain(t *testing.T) {
	ctx, svc, ctrl, stop := startOne(t, rooftop2, true, false)
	var out bytes.Buffer
	d := &demo{w: &out, svc: svc, r2: ctrl}
	alice, err := newTechnician("alice", "service-co", svc.secrets["alice"])
	if err != nil {
		t.Fatal(err)
	}
	jim, err := newTechnician("jim", "service-co junior", svc.secrets["jim"])
	if err != nil {
		t.Fatal(err)
	}
	if err := d.delegation(ctx, alice, jim); err != nil {
		t.Fatalf("delegation: %v\n%s", err, out.String())
	}
	tokens, err := d.askToken(ctx, jim, token.ProfileV2, rooftop2.Endpoint, "read-data", granted)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := d.session(ctx, jim, ctrl, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.operate(ctx, jim, s, ctrl, op("read-data"), delegatedBy(jim.key.Public(), alice.key.Public())); err == nil {
		t.Error("a request that is not delegated expected delegated: no error")
	}
	if got := strings.Count(out.String(), "UNEXPECTED"); got != 1 {
		t.Errorf("%d steps marked UNEXPECTED, want 1:\n%s", got, out.String())
	}
	d.closeConns()
	stop()
}
