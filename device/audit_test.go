package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
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

// A decision on a served connection names the peer's address when the
// transport tells it (the source the throttle counts against), in the
// Decision and in the audit event; Process has no peer to name.
func TestDecisionNamesThePeer(t *testing.T) {
	var buf syncBuffer
	decisions := make(chan device.Outcome, 4)
	w := newWorld(t, func(c *device.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
		c.OnOutcome = func(d device.Outcome) { decisions <- d }
	})
	w.nonce()
	if d := <-decisions; d.Remote != nil {
		t.Fatalf("Process: Remote %v, want nil", d.Remote)
	}
	addr := serveTCP(t, w, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.NewStreamConn(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := nonceOver(t, ctx, c); r.Status != wire.StatusSuccess {
		t.Fatalf("nonce: %v", r.Status)
	}
	d := <-decisions
	if d.Remote == nil || d.Remote.String() != raw.LocalAddr().String() {
		t.Fatalf("served decision: Remote %v, want %v", d.Remote, raw.LocalAddr())
	}
	var events []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.bytes()), []byte("\n")) {
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if _, ok := events[0]["remote"]; ok {
		t.Fatalf("Process event names a peer: %v", events[0])
	}
	if got := events[1]["remote"]; got != d.Remote.String() {
		t.Fatalf("served event remote %v, want %v", got, d.Remote)
	}
}

// syncBuffer is a bytes.Buffer a logger on another goroutine may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
