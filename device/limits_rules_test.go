package device_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// paddedRequest returns a valid operation request of exactly size bytes
// (about 1000 to 3000), padded with three text arguments.
func (w *world) paddedRequest(size int) []byte {
	w.t.Helper()
	n := w.nonce()
	tok := w.token(nil)
	pad := func(lens [3]int) []byte {
		args := make([]token.Arg, len(lens))
		for i, l := range lens {
			args[i] = token.Text(strings.Repeat("x", l))
		}
		return w.request(n, tok, w.pop, "read-data", args...)
	}
	// Arguments of 256 to 1024 bytes: their lengths take two bytes.
	extra := size - len(pad([3]int{300, 300, 300}))
	req := pad([3]int{300 + extra - 2*(extra/3), 300 + extra/3, 300 + extra/3})
	if len(req) != size {
		w.t.Fatalf("padded request of %d bytes, want %d", len(req), size)
	}
	return req
}

// A request of exactly Config.MaxMessageSize bytes is processed; one byte
// more is refused unparsed.
func TestMessageSizeBoundary(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		w := newWorld(t)
		if _, d := w.send(w.paddedRequest(device.DefaultMaxMessageSize)); !d.Allowed() {
			t.Fatalf("request of %d bytes: %v %v", device.DefaultMaxMessageSize, d.Check, d.Err)
		}
		r, d := w.send(w.paddedRequest(device.DefaultMaxMessageSize + 1))
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
	})
	t.Run("explicit", func(t *testing.T) {
		w := newWorld(t, func(c *device.Config) { c.MaxMessageSize = len(wire.NonceRequest) })
		w.nonce()
		w = newWorld(t, func(c *device.Config) { c.MaxMessageSize = len(wire.NonceRequest) - 1 })
		r, d := w.send(wire.NonceRequest)
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
	})
}

// A response of exactly Config.MaxResponseSize bytes is sent; one byte
// more is replaced by token.StatusResponseTooSmall without data.
func TestResponseSizeBoundary(t *testing.T) {
	data := bytes.Repeat([]byte{'d'}, 100)
	respond := func(c *device.Config) {
		c.Operations.RegisterFunc("chatty", func(context.Context, *device.Call) ([]byte, error) { return data, nil })
	}
	scope := func(c *token.Claims) { c.Scope, _ = token.ParseScope("chatty") }
	size := len(wire.Response{Type: wire.TypeOperationResponse, Status: wire.StatusSuccess, Data: data}.Encode())

	w := newWorld(t, respond, func(c *device.Config) { c.MaxResponseSize = size })
	out, d := w.agent.Handle(context.Background(), w.request(w.nonce(), w.token(scope), w.pop, "chatty"))
	if !d.Allowed() || len(out) != size {
		t.Fatalf("response of %d bytes at a limit of %d: %v %v", len(out), size, d.Check, d.Err)
	}
	w = newWorld(t, respond, func(c *device.Config) { c.MaxResponseSize = size - 1 })
	r, d := w.do(w.token(scope), "chatty")
	expect(t, r, d, wire.StatusResponseTooSmall, device.CheckResponse, device.ErrResponseTooLarge)
}

// A FileState value may be 1 MiB, not one byte more, written or read.
func TestFileStateValueBoundary(t *testing.T) {
	const max = 1 << 20
	dir := t.TempDir()
	s, err := device.OpenFileState(dir)
	if err != nil {
		t.Fatal(err)
	}
	full := bytes.Repeat([]byte{'v'}, max)
	if err := s.Store("revocations", full); err != nil {
		t.Fatalf("storing %d bytes: %v", max, err)
	}
	if got, err := s.Load("revocations"); err != nil || !bytes.Equal(got, full) {
		t.Fatalf("loading %d bytes: %d bytes, %v", max, len(got), err)
	}
	if err := s.Store("time-floor", append(full, 'v')); !errors.Is(err, device.ErrState) {
		t.Fatalf("storing %d bytes: %v, want ErrState", max+1, err)
	}
	if err := s.Store("time-floor", nil); !errors.Is(err, device.ErrState) {
		t.Fatalf("storing nothing: %v, want ErrState", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "revocations"), append(full, 'v'), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load("revocations"); !errors.Is(err, device.ErrState) {
		t.Fatalf("loading a file of %d bytes: %d bytes, %v, want ErrState", max+1, len(got), err)
	}
}

// FileState keys are 1 to 64 characters of a-z, 0-9 and '-'.
func TestFileStateKeys(t *testing.T) {
	s, err := device.OpenFileState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "z", "0", "9", "-", "az09-", strings.Repeat("k", 64)} {
		if err := s.Store(key, []byte("v")); err != nil {
			t.Errorf("Store(%q): %v", key, err)
		}
		if v, err := s.Load(key); err != nil || string(v) != "v" {
			t.Errorf("Load(%q): %q %v", key, v, err)
		}
	}
	for _, key := range []string{"", strings.Repeat("k", 65), "`", "{", "/", ":", "A", "Z", "a.b", "a_b"} {
		if err := s.Store(key, []byte("v")); !errors.Is(err, device.ErrState) {
			t.Errorf("Store(%q): %v, want ErrState", key, err)
		}
		if _, err := s.Load(key); !errors.Is(err, device.ErrState) {
			t.Errorf("Load(%q): %v, want ErrState", key, err)
		}
	}
}

// The persisted lower bound of time is 8 bytes, a big-endian count of
// seconds since the epoch from 0 up; anything else stops the device.
func TestTimeFloorState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		want  time.Time // the bound loaded; zero: none
		ok    bool
	}{
		{"zero", make([]byte, 8), time.Time{}, true},
		{"one", []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.Unix(1, 0), true},
		{"testNow", binaryTime(testNow), testNow, true},
		{"negative", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, time.Time{}, false},
		{"minus one", bytes.Repeat([]byte{0xff}, 8), time.Time{}, false},
		{"7 bytes", make([]byte, 7), time.Time{}, false},
		{"9 bytes", make([]byte, 9), time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &device.MemoryState{}
			st.Store("time-floor", tc.value)
			a, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, State: st})
			if !tc.ok {
				if !errors.Is(err, device.ErrState) {
					t.Fatalf("New: %v, want ErrState", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.TimeLowerBound(); !got.Equal(tc.want) {
				t.Fatalf("lower bound %v, want %v", got, tc.want)
			}
		})
	}
}

func binaryTime(t time.Time) []byte {
	v := uint64(t.Unix())
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// The persisted revocation list at its bounds: at most MaxRevocations
// entries, ctis of 1 to 64 bytes, hashes of 32, untils from 1.
func TestRevocationStateBounds(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	ctis := func(n int) string {
		var e []string
		for i := range n {
			e = append(e, fmt.Sprintf(`{"id":"%s"}`, base64.StdEncoding.EncodeToString([]byte{byte(i + 1)})))
		}
		return `{"cti":[` + strings.Join(e, ",") + `],"hash":[]}`
	}
	for _, tc := range []struct {
		name string
		list string
		ok   bool
	}{
		{"MaxRevocations entries", ctis(3), true},
		{"one more", ctis(4), false},
		{"both kinds at the bound", `{"cti":[{"id":"AQ=="},{"id":"Ag=="}],"hash":[{"id":"` + b64(32) + `"}]}`, true},
		{"both kinds beyond the bound", `{"cti":[{"id":"AQ=="},{"id":"Ag=="}],"hash":[{"id":"` + b64(32) + `"},{"id":"` + strings.Repeat("A", 43) + `="}]}`, false},
		{"cti of 64 bytes", `{"cti":[{"id":"` + b64(64) + `"}],"hash":[]}`, true},
		{"cti of 65 bytes", `{"cti":[{"id":"` + b64(65) + `"}],"hash":[]}`, false},
		{"hash of 33 bytes", `{"cti":[],"hash":[{"id":"` + b64(33) + `"}]}`, false},
		{"hash of 31 bytes", `{"cti":[],"hash":[{"id":"` + b64(31) + `"}]}`, false},
		{"until 1", `{"cti":[{"id":"AQ==","until":1}],"hash":[]}`, true},
		{"until 0", `{"cti":[{"id":"AQ==","until":0}],"hash":[]}`, false},
		{"members in the other order", `{"hash":[],"cti":[{"until":1,"id":"AQ=="}]}`, true},
		{"no hash member", `{"cti":[]}`, false},
		{"no cti member", `{"hash":[]}`, false},
		{"entry without id", `{"cti":[{"until":1}],"hash":[]}`, false},
		{"id not a string", `{"cti":[{"id":1}],"hash":[]}`, false},
		{"id not base64", `{"cti":[{"id":"!!"}],"hash":[]}`, false},
		{"entry not an object", `{"cti":["AQ=="],"hash":[]}`, false},
		{"value an array", `{"cti":[{"id":[]}],"hash":[]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &device.MemoryState{}
			st.Store("revocations", []byte(tc.list))
			_, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, State: st, MaxRevocations: 3})
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, device.ErrState) {
				t.Fatalf("New: %v, want ErrState", err)
			}
		})
	}
}

// scriptConn is a transport.Conn whose Receive returns, in turn, the
// messages and errors of its script, then io.EOF; it records what is sent.
type scriptConn struct {
	mu     sync.Mutex
	script []scriptStep
	sent   [][]byte
}

type scriptStep struct {
	msg []byte
	err error
}

func (c *scriptConn) Receive(context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.script) == 0 {
		return nil, io.EOF
	}
	s := c.script[0]
	c.script = c.script[1:]
	return s.msg, s.err
}

func (c *scriptConn) Send(_ context.Context, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, bytes.Clone(msg))
	return nil
}

func (c *scriptConn) Close() error { return nil }

// Serve tolerates 16 unreadable messages in a row, not 17; a readable one
// starts the count again. A message too large for the transport is
// answered as an oversize request.
func TestServeReceiveErrorsInARow(t *testing.T) {
	errs := func(n int, err error) []scriptStep {
		s := make([]scriptStep, n)
		for i := range s {
			s[i].err = err
		}
		return s
	}
	nonce := []scriptStep{{msg: wire.NonceRequest}}
	for _, tc := range []struct {
		name      string
		script    [][]scriptStep
		nonces    int // nonce responses sent
		oversized int // oversize responses sent
		dropped   bool
	}{
		{"16 checksum errors", [][]scriptStep{errs(16, transport.ErrChecksum), nonce}, 1, 0, false},
		{"17 checksum errors", [][]scriptStep{errs(17, transport.ErrChecksum), nonce}, 0, 0, true},
		{"16, a message, 16", [][]scriptStep{errs(16, transport.ErrBadFragment), nonce, errs(16, transport.ErrReassemblyTimeout), nonce}, 2, 0, false},
		{"16 oversize messages", [][]scriptStep{errs(16, transport.ErrMessageTooLarge), nonce}, 1, 16, false},
		{"17 oversize messages", [][]scriptStep{errs(17, transport.ErrMessageTooLarge), nonce}, 0, 16, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drops []device.Drop
			w := newWorld(t, func(c *device.Config) {
				c.OnDrop = func(d device.Drop) { drops = append(drops, d) }
				c.MaxNonces = 4
			})
			conn := &scriptConn{}
			for _, s := range tc.script {
				conn.script = append(conn.script, s...)
			}
			err := w.agent.Serve(context.Background(), conn)
			if tc.dropped {
				if err == nil || len(drops) != 1 || drops[0].Reason != device.DropReceiveErrors || !errors.Is(drops[0].Err, err) {
					t.Fatalf("Serve: %v, drops %+v; want a drop for receive errors", err, drops)
				}
			} else if err != nil || len(drops) != 0 {
				t.Fatalf("Serve: %v, drops %+v", err, drops)
			}
			nonces, oversized := 0, 0
			for _, b := range conn.sent {
				r, err := wire.DecodeResponse(b)
				switch {
				case err != nil:
					t.Fatal(err)
				case r.Type == wire.TypeNonceResponse && r.Status == wire.StatusSuccess:
					nonces++
				case r.Type == wire.TypeErrorResponse && r.Status == wire.StatusInvalidRequest:
					oversized++
				default:
					t.Fatalf("response %+v", r)
				}
			}
			if nonces != tc.nonces || oversized != tc.oversized {
				t.Fatalf("%d nonces and %d oversize responses, want %d and %d", nonces, oversized, tc.nonces, tc.oversized)
			}
		})
	}
}
