package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

// Every decision is an audit event carrying the precise reason; the wire
// carries only the status.
func TestAuditEvents(t *testing.T) {
	var buf bytes.Buffer
	w := newWorld(t, func(c *device.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	w.do(w.token(nil), "read-data")
	w.send(w.request(w.nonce(), w.token(nil), newKey(t, "P-256"), "configure"))

	var events []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if len(events) != 4 {
		t.Fatalf("%d events, want 4 (2 nonces, 2 operations)", len(events))
	}
	ok, bad := events[1], events[3]
	if ok["msg"] != "sda: request allowed" || ok["level"] != "INFO" || ok["operation"] != "read-data" ||
		ok["subject"] != "alice" || ok["issuer"] != w.anchor.Issuer || ok["token_id"] != "c701" {
		t.Fatalf("allowed event %v", ok)
	}
	if bad["msg"] != "sda: request rejected" || bad["level"] != "WARN" || bad["check"] != "proof-of-possession" ||
		bad["reason"] != token.ErrSignature.Error() || bad["status"] != float64(4) || bad["subject"] != "alice" {
		t.Fatalf("rejected event %v", bad)
	}
}

// With the logger disabled at the decision's level, auditing costs nothing.
func TestAuditDisabledDoesNotAllocate(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	w := newWorld(t, func(c *device.Config) { c.Logger = quiet; c.MaxNonces = 1; c.NonceLifetime = 1 })
	w2 := newWorld(t, func(c *device.Config) { c.MaxNonces = 1; c.NonceLifetime = 1 })
	ctx := context.Background()
	withLogger := testing.AllocsPerRun(100, func() { w.clock.Advance(1); w.agent.Process(ctx, []byte{0x81, 0x01}) })
	without := testing.AllocsPerRun(100, func() { w2.clock.Advance(1); w2.agent.Process(ctx, []byte{0x81, 0x01}) })
	if withLogger != without {
		t.Fatalf("%v allocations with a disabled logger, %v without one", withLogger, without)
	}
}
