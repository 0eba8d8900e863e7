package device_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// auditLog collects the JSON audit events of a world's logger.
type auditLog struct{ buf bytes.Buffer }

func (l *auditLog) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(&l.buf, &slog.HandlerOptions{Level: level}))
}

func (l *auditLog) events(t *testing.T) []map[string]any {
	t.Helper()
	var events []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	l.buf.Reset()
	return events
}

// The audit event of a decision carries every field that is set, and none
// that is not.
func TestAuditEventFields(t *testing.T) {
	var log auditLog
	w := newWorld(t, func(c *device.Config) {
		c.Logger = log.logger(slog.LevelInfo)
		c.TokenCacheSize = 2
		c.ClockMode = device.ClockLowerBound
	})
	tok := w.token(nil)
	n := w.nonce()
	if _, d := w.send(w.request(n, tok, w.pop, "read-data")); !d.Allowed() || !d.TimeUnknown {
		t.Fatalf("bootstrap: %+v", d)
	}
	_, d := w.do(tok, "read-data")
	if !d.CachedToken {
		t.Fatal("token not cached")
	}
	events := log.events(t)
	if len(events) != 4 {
		t.Fatalf("%d events", len(events))
	}
	issued, first, cached := events[0], events[1], events[3]
	if issued["msg"] != "sda: request allowed" || issued["request"] != "nonce" || issued["nonce"] != float64(n) || issued["status"] != float64(0) {
		t.Fatalf("nonce event %v", issued)
	}
	for _, key := range []string{"check", "reason", "issuer", "subject", "token_id", "operation", "cached_token", "time_unknown"} {
		if _, ok := issued[key]; ok {
			t.Errorf("nonce event has %s: %v", key, issued)
		}
	}
	if first["request"] != "operation" || first["nonce"] != float64(n) || first["time_unknown"] != true || first["operation"] != "read-data" {
		t.Fatalf("first operation event %v", first)
	}
	if _, ok := first["cached_token"]; ok {
		t.Fatalf("first use says cached: %v", first)
	}
	if cached["cached_token"] != true || cached["token_id"] != "c701" {
		t.Fatalf("cached operation event %v", cached)
	}
	if _, ok := cached["time_unknown"]; ok {
		t.Fatalf("time unknown once the bound is set: %v", cached)
	}

	// A rejection before anything is parsed has no token fields.
	w.send([]byte{0xff})
	bad := log.events(t)[0]
	if bad["msg"] != "sda: request rejected" || bad["request"] != "unknown" || bad["check"] != "envelope" || bad["level"] != "WARN" || bad["status"] != float64(2) {
		t.Fatalf("envelope event %v", bad)
	}
	for _, key := range []string{"nonce", "issuer", "subject", "token_id", "operation"} {
		if _, ok := bad[key]; ok {
			t.Errorf("envelope event has %s: %v", key, bad)
		}
	}

	// A logger at Warn records rejections only.
	w.cfg.Logger = log.logger(slog.LevelWarn)
	w.restart()
	w.do(tok, "read-data")
	w.do(tok, "set-temperature")
	events = log.events(t)
	if len(events) != 1 || events[0]["check"] != "scope" {
		t.Fatalf("events at Warn: %v", events)
	}
}

// Decision.Allowed holds for a successful request only.
func TestDecisionAllowed(t *testing.T) {
	for _, tc := range []struct {
		d    device.Outcome
		want bool
	}{
		{device.Outcome{}, false},
		{device.Outcome{Request: device.RequestNonce}, true},
		{device.Outcome{Request: device.RequestOperation}, true},
		{device.Outcome{Request: device.RequestOperation, Err: device.ErrRevoked}, false},
		{device.Outcome{Request: device.RequestOperation, Status: token.StatusBusy}, false},
	} {
		if got := tc.d.Allowed(); got != tc.want {
			t.Errorf("%+v: Allowed %v, want %v", tc.d, got, tc.want)
		}
	}
}

// Names as the audit log and Drop events give them, including values
// beyond the known ones.
func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{device.CheckNone.String(), "none"},
		{device.CheckInternal.String(), "internal"},
		{device.CheckFreshness.String(), "freshness"},
		{device.CheckDelegation.String(), "delegation"},
		{(device.CheckInternal + 1).String(), "Check(20)"},
		{device.Check(255).String(), "Check(255)"},
		{device.DropNone.String(), "none"},
		{device.DropReceiveErrors.String(), "receive-errors"},
		{(device.DropReceiveErrors + 1).String(), "DropReason(6)"},
		{device.RequestUnknown.String(), "unknown"},
		{device.RequestNonce.String(), "nonce"},
		{device.RequestOperation.String(), "operation"},
		{device.RequestKind(9).String(), "unknown"},
		{device.ClockTrusted.String(), "trusted"},
		{device.ClockLowerBound.String(), "lower-bound"},
		{device.ClockStrict.String(), "strict"},
		{device.ClockMode(7).String(), "ClockMode(7)"},
	} {
		if tc.got != tc.want {
			t.Errorf("name %q, want %q", tc.got, tc.want)
		}
	}
}

// A response too large for Config.MaxResponseSize is replaced by a signed
// token.StatusResponseTooSmall without data: the technician can still tell the
// device answered.
func TestSignedResponseTooLarge(t *testing.T) {
	deviceKey := newKey(t, "P-256")
	w := newWorld(t, func(c *device.Config) {
		c.SigningKey = deviceKey
		c.MaxResponseSize = 200
		c.Operations.RegisterFunc("chatty", func(context.Context, *device.Call) ([]byte, error) { return make([]byte, 200), nil })
	})
	tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) { c.Scope, _ = token.ParseScope("chatty") })
	n := w.nonce()
	r, d := w.send(w.request(n, tok, w.pop, "chatty"))
	expect(t, r, d, wire.StatusResponseTooSmall, device.CheckResponse, device.ErrResponseTooLarge)
	s, err := token.VerifyResponse(r.Signed, deviceKey.Public())
	if err != nil {
		t.Fatalf("the too-small response is not signed: %v", err)
	}
	if s.Status != uint32(wire.StatusResponseTooSmall) || len(s.Data) != 0 || s.Nonce != n {
		t.Fatalf("signed %+v", s)
	}
}

// failingSigner is a response-signing key whose Sign fails, as a secure
// element might.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("secure element unavailable")
}

// When the response cannot be signed, the technician gets an unsigned
// token.StatusInternalError without data, and the handler's data is not sent.
func TestResponseSigningFails(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.SigningKey = failingSigner{newKey(t, "P-256")} })
	tok := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, nil)
	r, d := w.do(tok, "read-data")
	expect(t, r, d, wire.StatusInternalError, device.CheckResponse, device.ErrInternal)
	if r.Signed != nil {
		t.Fatal("signed anyway")
	}
}

// The verified-token cache holds the TokenCacheSize most recently added
// tokens, in the order they were added.
func TestTokenCacheEvictsInOrder(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
	toks := make([][]byte, 5)
	for i := range toks {
		toks[i] = w.token(func(c *token.Claims) { c.ID = []byte{byte(i)} })
		if _, d := w.do(toks[i], "read-data"); !d.Allowed() || d.CachedToken {
			t.Fatalf("token %d: %+v", i, d)
		}
	}
	// 3 and 4 are cached; 0, 1 and 2 were evicted. Asking for an evicted
	// one caches it again in place of the oldest.
	for _, step := range []struct {
		i      int
		cached bool
	}{{4, true}, {3, true}, {2, false}, {4, true}, {3, false}, {2, true}, {4, false}} {
		if _, d := w.do(toks[step.i], "read-data"); !d.Allowed() || d.CachedToken != step.cached {
			t.Fatalf("token %d: cached %v, want %v", step.i, d.CachedToken, step.cached)
		}
	}
}

// A cached token is checked against its anchor's validity window on every
// use: once the anchor has expired, the token is refused.
func TestCachedTokenAnchorExpires(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.TokenCacheSize = 2 })
	w.store.Remove(w.anchor.Issuer, nil)
	a := *w.anchor
	a.NotAfter = testNow.Add(time.Hour)
	if err := w.store.Add(a); err != nil {
		t.Fatal(err)
	}
	tok := w.token(func(c *token.Claims) { c.Expiry = testNow.Add(3 * time.Hour) })
	w.do(tok, "read-data")
	if _, d := w.do(tok, "read-data"); !d.Allowed() || !d.CachedToken {
		t.Fatalf("%+v", d)
	}
	w.clock.Advance(time.Hour + time.Second)
	r, d := w.do(tok, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckAnchorConstraints, device.ErrAnchorConstraint)
	var ce *trust.ConstraintError
	if !d.CachedToken || !errors.As(d.Err, &ce) || ce.Constraint != "validity" {
		t.Fatalf("cached %v, %v", d.CachedToken, d.Err)
	}
}
