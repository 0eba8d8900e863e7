package deviceprom_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/deviceprom"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/promtest"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// TestScrape runs real requests through a device agent, scrapes the
// metrics endpoint and checks what the Prometheus text parser reads there.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := deviceprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	iss := trusttest.NewIssuer(t)
	cfg := device.Config{OnOutcome: m.OnOutcome, OnDrop: m.OnDrop, Throttle: device.Throttle{Failures: 2}}
	dev := devicetest.NewDevice(t, devicetest.Options{
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C"), "configure": devicetest.Reply("ok")},
		Config:       cfg,
	})
	agent := dev.Agent()
	m.Watch(agent)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	ctx := context.Background()
	pop := trusttest.NewPoPKey(t)
	nonce := func() uint64 {
		t.Helper()
		resp, d := agent.Handle(ctx, wire.NonceRequest)
		if !d.Allowed() {
			t.Fatalf("nonce request: %v (%x)", d.Err, resp)
		}
		return d.Nonce
	}
	do := func(tok []byte, op string) device.Outcome {
		t.Helper()
		signed, err := token.SignRequest(&token.Request{Nonce: nonce(), Operation: token.Operation{Name: op}, Token: tok}, pop, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, d := agent.Handle(ctx, wire.EncodeOperationRequest(signed))
		return d
	}
	tok := iss.Token(t, dev.Audience(), "read-data", pop.Public())
	for range 2 {
		if d := do(tok, "read-data"); !d.Allowed() {
			t.Fatalf("read-data: %v", d.Err)
		}
	}
	if d := do(tok, "configure"); d.Check != device.CheckScope {
		t.Fatalf("configure: check %v: %v", d.Check, d.Err)
	}
	// Two failures of the token signature (a token naming the device's
	// issuer, signed with another key) lock the device-wide source out.
	forger := &trusttest.Issuer{Key: trusttest.NewIssuer(t).Key, Anchor: iss.Anchor}
	forged := forger.Token(t, dev.Audience(), "read-data", pop.Public())
	for range 2 {
		if d := do(forged, "read-data"); d.Check != device.CheckTokenSignature {
			t.Fatalf("forged token: check %v: %v", d.Check, d.Err)
		}
	}
	if _, d := agent.Handle(ctx, wire.NonceRequest); !errors.Is(d.Err, device.ErrThrottled) {
		t.Fatalf("nonce request while locked out: %v", d.Err)
	}
	m.OnDrop(device.Drop{Reason: device.DropIdle, Err: device.ErrIdleTimeout})

	f := promtest.Scrape(t, nil, srv.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sda_device_requests_total", []string{"request", "nonce", "result", "allowed", "check", "none"}, 5},
		{"sda_device_requests_total", []string{"request", "nonce", "result", "rejected", "check", "nonce-issue"}, 1},
		{"sda_device_requests_total", []string{"request", "operation", "result", "allowed", "check", "none"}, 2},
		{"sda_device_requests_total", []string{"request", "operation", "result", "rejected", "check", "scope"}, 1},
		{"sda_device_requests_total", []string{"request", "operation", "result", "rejected", "check", "token-signature"}, 2},
		{"sda_device_throttled_total", nil, 1},
		{"sda_device_connections_dropped_total", []string{"reason", "idle-timeout"}, 1},
		{"sda_device_connections_dropped_total", []string{"reason", "evicted"}, 0},
		{"sda_device_nonces_outstanding", nil, 2},
		{"sda_device_nonces_max", nil, float64(device.DefaultMaxNonces)},
		{"sda_device_sources_locked_out", nil, 1},
		{"sda_device_connections", nil, 0},
	} {
		if got := f.Value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestRegisterTwice: a second New on one registry fails and registers
// nothing of it.
func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := deviceprom.New(reg); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := deviceprom.New(reg); !errors.As(err, &are) {
		t.Fatalf("second New: %v, want an AlreadyRegisteredError", err)
	}
}

// A refused delegation chain (v2) is counted under its own check,
// "delegation"; a delegated request allowed under "none".
func TestScrapeDelegation(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := deviceprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	iss := trusttest.NewIssuer(t)
	dev := devicetest.NewDevice(t, devicetest.Options{
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
		Config:       device.Config{OnOutcome: m.OnOutcome},
	})
	agent := dev.Agent()
	ctx := context.Background()
	holder, delegate := trusttest.NewPoPKey(t), trusttest.NewPoPKey(t)
	scope, _ := token.ParseScope("read-data")
	now := time.Now().Truncate(time.Second) // a token's times are whole seconds
	tok, err := token.Issue(&token.Claims{
		Issuer: iss.Anchor.Issuer, Subject: "alice", Audience: []string{dev.Audience()},
		Expiry: now.Add(time.Hour), NotBefore: now, Scope: scope, Key: holder.Public(), Delegation: &token.Delegation{Depth: 1},
	}, iss.Key, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	good, err := token.Delegate(tok, holder, &token.DelegationSpec{To: delegate.Public(), Scope: scope, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// The same link signed by the delegate itself, not by the holder.
	parsed, _ := token.Parse(tok)
	link, err := token.SignLink(&token.Link{Key: delegate.Public(), Selection: 1, Expiry: now.Add(time.Hour)}, parsed.RevocationHash(), delegate, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := token.NewChain(link)
	if err != nil {
		t.Fatal(err)
	}
	forged := (&token.DelegatedToken{Token: tok, Chain: chain}).Bytes()
	for _, dt := range [][]byte{good, forged} {
		d, err := token.ParseDelegatedToken(dt)
		if err != nil {
			t.Fatal(err)
		}
		_, n := agent.Handle(ctx, wire.NonceRequest)
		signed, err := token.SignRequest(&token.Request{Nonce: n.Nonce, Operation: token.Operation{Name: "read-data"}, Token: d.Token, Chain: d.Chain.Bytes()}, delegate, nil)
		if err != nil {
			t.Fatal(err)
		}
		agent.Handle(ctx, wire.EncodeOperationRequest(signed))
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	f := promtest.Scrape(t, nil, srv.URL)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"request", "operation", "result", "allowed", "check", "none"}, 1},
		{[]string{"request", "operation", "result", "rejected", "check", "delegation"}, 1},
	} {
		if got := f.Value(t, "sda_device_requests_total", c.labels...); got != c.want {
			t.Errorf("sda_device_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
}
