package device_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/securedeviceaccess/sda/device"
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
			st, err := device.NewFileState(dir)
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
