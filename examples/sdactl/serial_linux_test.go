package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/ptytest"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// TestCallSerial calls a device on the other end of a pseudo-terminal, as
// on a serial line: sdactl opens the path, sets it to raw mode (the
// terminal starts in cooked mode, which would mangle the frames) and speaks
// the SDA serial framing.
func TestCallSerial(t *testing.T) {
	master, path := ptytest.Open(t)
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.key", "-o", "t.token")

	// The device, in this process, on the master side.
	anchor, err := trust.ParsePEM(readFile(t, filepath.Join(dir, "anchor.pem")))
	if err != nil {
		t.Fatal(err)
	}
	anchors, _ := trust.NewMemoryStore(*anchor)
	id := token.Identity{Endpoint: "hvac-1"}
	reg, _, err := deviceOperations(id, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var decisions []device.Outcome
	agent, err := device.New(device.Config{Identity: id, Anchors: anchors, Operations: reg,
		OnOutcome: func(d device.Outcome) { mu.Lock(); decisions = append(decisions, d); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := transport.NewStreamConn(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Serve(ctx, conn) // ends when the test cancels ctx or the line fails
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-done
	})

	r := ok(t, dir, "call", "-token", "t.token", "-key", "tech.key", "-timeout", "20s", path, "read-data")
	wantContains(t, "serial call", r.stdout, "status: success\n", `"endpoint":"hvac-1"`)
	r = expect(t, 1, dir, "", "call", "-token", "t.token", "-key", "tech.key", "-timeout", "20s", path, "configure")
	wantContains(t, "serial call", r.stdout, "status: access denied\n")
	r = expect(t, 2, dir, "", "call", "-token", "t.token", "-key", "tech.key", "-baud", "12345", path, "read-data")
	wantContains(t, "serial call", r.stderr, "-baud", "12345")
	mu.Lock()
	defer mu.Unlock()
	if len(decisions) != 4 || !decisions[1].Allowed() || decisions[3].Check != device.CheckScope {
		t.Fatalf("device decisions: %+v", decisions)
	}
}

// TestCallNotSerialPort calls a character device that is not a terminal:
// sdactl uses it as a byte stream as it is, rather than failing to set it
// up as a serial port. The nonce request goes out (into /dev/null) and
// the stream ends: the call fails on the transport with exit 4, the
// operation not run.
func TestCallNotSerialPort(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.key", "-o", "t.token")
	r := expect(t, 4, dir, "", "call", "-token", "t.token", "-key", "tech.key", "-timeout", "20s", os.DevNull, "read-data")
	if !strings.Contains(r.stderr, "did not run") || strings.Contains(r.stderr, "serial port") {
		t.Fatalf("stderr speaks of a serial port:\n%s", r.stderr)
	}
}
