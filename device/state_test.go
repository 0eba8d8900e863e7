package device_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/atomicfile/atomicfiletest"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// newWithState starts an agent on st and returns New's error.
func newWithState(t *testing.T, st device.State) error {
	t.Helper()
	_, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, State: st})
	return err
}

// A state file that exists but is empty is corruption (a device never
// writes one), not the absence of state: loading it as "no state" would
// reset the lower bound of time and forget every revocation.
func TestEmptyStateStopsTheDevice(t *testing.T) {
	for _, key := range []string{"time-floor", "revocations"} {
		t.Run("file "+key, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, key), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := device.OpenFileState(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := newWithState(t, st); !errors.Is(err, device.ErrState) {
				t.Fatalf("New on an empty %s file: %v, want ErrState", key, err)
			}
		})
		t.Run("memory "+key, func(t *testing.T) {
			st := &device.MemoryState{}
			if err := st.Store(key, []byte{}); err != nil {
				t.Fatal(err)
			}
			if err := newWithState(t, st); !errors.Is(err, device.ErrState) {
				t.Fatalf("New on an empty %s value: %v, want ErrState", key, err)
			}
		})
	}
}

// The revocation list is decoded strictly: a repeated JSON member, a
// repeated entry or trailing bytes are corruption, as unknown fields are.
func TestStrictRevocationState(t *testing.T) {
	for name, val := range map[string]string{
		"repeated list":          `{"cti":[],"cti":[{"id":"AQ=="}],"hash":[]}`,
		"repeated entry member":  `{"cti":[{"id":"AQ==","id":"Ag=="}],"hash":[]}`,
		"repeated until":         `{"cti":[{"id":"AQ==","until":5,"until":6}],"hash":[]}`,
		"repeated cti":           `{"cti":[{"id":"AQ=="},{"id":"AQ=="}],"hash":[]}`,
		"repeated hash":          `{"cti":[],"hash":[{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"trailing brace":         `{"cti":[],"hash":[]}}`,
		"trailing value":         `{"cti":[],"hash":[]} {}`,
		"case-folded member":     `{"CTI":[],"hash":[]}`,
		"repeated case-folded":   `{"cti":[],"Cti":[{"id":"AQ=="}],"hash":[]}`,
		"negative until":         `{"cti":[{"id":"AQ==","until":-1}],"hash":[]}`,
		"not an object":          `[]`,
		"null list":              `{"cti":null,"hash":[]}`,
		"empty cti":              `{"cti":[{"id":""}],"hash":[]}`,
		"short hash":             `{"cti":[],"hash":[{"id":"AQ=="}]}`,
		"unknown member":         `{"cti":[],"hash":[],"x":1}`,
		"unknown entry member":   `{"cti":[{"id":"AQ==","x":1}],"hash":[]}`,
		"string until":           `{"cti":[{"id":"AQ==","until":"5"}],"hash":[]}`,
		"fractional until":       `{"cti":[{"id":"AQ==","until":5.5}],"hash":[]}`,
		"repeated after escapes": `{"cti":[],"c\u0074i":[],"hash":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			st := &device.MemoryState{}
			if err := st.Store("revocations", []byte(val)); err != nil {
				t.Fatal(err)
			}
			if err := newWithState(t, st); !errors.Is(err, device.ErrState) {
				t.Fatalf("New on %s: %v, want ErrState", val, err)
			}
		})
	}
	// What the device writes loads.
	st := &device.MemoryState{}
	st.Store("revocations", []byte(`{"cti":[{"id":"AQ==","until":5},{"id":"Ag=="}],"hash":[{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`))
	if err := newWithState(t, st); err != nil {
		t.Fatalf("a well-formed list: %v", err)
	}
}

// worstCaseRevocations returns the persisted form of n revoked ctis of the
// largest size, 64 bytes, each with the largest until: the longest list of
// n entries the device can be asked to write. ctiAt(i) is the i-th id.
func worstCaseRevocations(n int) []byte {
	b := []byte(`{"cti":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = base64.StdEncoding.AppendEncode(b, ctiAt(i))
		b = append(b, `","until":9223372036854775807}`...)
	}
	return append(b, `],"hash":[]}`...)
}

func ctiAt(i int) []byte {
	id := bytes.Repeat([]byte{0xee}, 64)
	binary.BigEndian.PutUint32(id, uint32(i))
	return id
}

// The revocation list holds MaxMaxRevocations entries of the largest size
// in a FileState: revoking up to the limit works, one more is refused as
// "list full" (not as a storage failure), and the full list survives a
// restart.
func TestRevocationListHoldsItsMaximum(t *testing.T) {
	const max = device.MaxMaxRevocations
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "revocations"), worstCaseRevocations(max-1), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := device.OpenFileState(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(c *device.Config) {
		c.State = st
		c.MaxRevocations = max
	})
	admin := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke read-data") })
	until := token.Int(1<<63 - 1)
	if r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text(hex.EncodeToString(ctiAt(max-1))), until); r.Status != wire.StatusSuccess {
		t.Fatalf("revoking entry %d of %d: %v", max, max, d.Err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "revocations")); err != nil {
		t.Fatal(err)
	} else if fi.Size() < 500_000 {
		t.Fatalf("the full list takes %d bytes: not the largest entries", fi.Size())
	}
	r, d := w.do(admin, device.RevokeOperation, token.Text("cti"), token.Text(hex.EncodeToString(ctiAt(max))), until)
	expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrRevocationListFull)

	w.restart()
	for _, i := range []int{0, max / 2, max - 1} {
		victim := w.token(func(c *token.Claims) { c.ID = ctiAt(i) })
		r, d := w.do(victim, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	}
	if r, d := w.do(w.token(func(c *token.Claims) { c.ID = ctiAt(max) }), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("the refused revocation was applied: %v", d.Err)
	}
}

func TestMaxRevocationsBounded(t *testing.T) {
	for _, n := range []int{-1, device.MaxMaxRevocations + 1} {
		_, err := device.New(device.Config{Identity: hvac, Anchors: newWorld(t).store, MaxRevocations: n})
		if !errors.Is(err, device.ErrConfig) {
			t.Errorf("MaxRevocations %d: %v, want ErrConfig", n, err)
		}
	}
}

// FuzzRevocationState gives New arbitrary bytes as the persisted revocation
// list: New fails with ErrState or starts, and an agent that started
// revokes one more token and starts again on what it wrote.
func FuzzRevocationState(f *testing.F) {
	w := newWorld(f, func(c *device.Config) { c.MaxRevocations = 4 })
	admin := w.token(func(c *token.Claims) { c.Scope, _ = token.ParseScope("sda-revoke") })
	for _, s := range []string{
		`{"cti":[{"id":"AQ==","until":5},{"id":"Ag=="}],"hash":[{"id":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		`{"cti":[],"hash":[]}`,
		`{"hash":[],"cti":[{"id":"AQ==","until":5,"until":6}]}`,
		`{"cti":[],"hash":[]}}`,
		string(worstCaseRevocations(3)),
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &device.MemoryState{}
		if err := st.Store("revocations", b); err != nil {
			t.Fatal(err)
		}
		cfg := w.cfg
		cfg.State = st
		a, err := device.New(cfg)
		if err != nil {
			if !errors.Is(err, device.ErrState) {
				t.Fatalf("New: %v, want nil or ErrState", err)
			}
			return
		}
		nr, err := wire.DecodeResponse(a.Process(ctx, wire.NonceRequest))
		if err != nil || nr.Status != wire.StatusSuccess {
			t.Fatalf("nonce: %+v %v", nr, err)
		}
		signed, err := token.SignRequest(&token.Request{Nonce: nr.Nonce, Operation: token.Operation{
			Name: device.RevokeOperation, Args: []token.Arg{token.Text("cti"), token.Text("ff")},
		}, Token: admin}, w.pop, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, d := a.Handle(ctx, wire.EncodeOperationRequest(signed))
		if d.Err != nil && !errors.Is(d.Err, device.ErrRevocationListFull) {
			t.Fatalf("revoking on the loaded list: %v", d.Err)
		}
		if _, err := device.New(cfg); err != nil {
			t.Fatalf("the device does not start on the list it wrote: %v", err)
		}
	})
}

// OpenFileState removes the temporary files that writes a crash interrupted
// left behind, and only those.
func TestFileStateRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	var temps []string
	for _, key := range []string{"revocations", "time-floor", "revocations"} {
		temps = append(temps, atomicfiletest.Crash(t, filepath.Join(dir, key)))
	}
	unrelated := []string{"notes", ".revocations.12a.tmp", ".revocations..tmp", "revocations.123.tmp", ".Bad_Key.123.tmp", ".revocations.123.tmp.keep"}
	atomicfiletest.Unrelated(t, dir, unrelated...)
	st, err := device.OpenFileState(dir)
	if err != nil {
		t.Fatal(err)
	}
	atomicfiletest.CheckRemoved(t, dir, temps, unrelated...)
	if err := st.Store("revocations", []byte(`{"cti":[],"hash":[]}`)); err != nil {
		t.Fatal(err)
	}
}
