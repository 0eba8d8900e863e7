package device_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// Every bound of Config is accepted at exactly its limit and refused one
// beyond it.
func TestConfigBounds(t *testing.T) {
	store := &trust.MemoryStore{}
	base := func(edit func(*device.Config)) device.Config {
		c := device.Config{Identity: hvac, Anchors: store}
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*device.Config)
		ok   bool
	}{
		{"MaxNonces at its bound", func(c *device.Config) { c.MaxNonces = device.MaxMaxNonces }, true},
		{"MaxNonces beyond its bound", func(c *device.Config) { c.MaxNonces = device.MaxMaxNonces + 1 }, false},
		{"MaxNonces 1", func(c *device.Config) { c.MaxNonces = 1 }, true},
		{"negative MaxNonces", func(c *device.Config) { c.MaxNonces = -1 }, false},
		{"negative NonceLifetime", func(c *device.Config) { c.NonceLifetime = -1 }, false},
		{"TokenCacheSize at its bound", func(c *device.Config) { c.TokenCacheSize = device.MaxTokenCacheSize }, true},
		{"TokenCacheSize beyond its bound", func(c *device.Config) { c.TokenCacheSize = device.MaxTokenCacheSize + 1 }, false},
		{"negative TokenCacheSize", func(c *device.Config) { c.TokenCacheSize = -1 }, false},
		{"MaxRevocations at its bound", func(c *device.Config) { c.MaxRevocations = device.MaxMaxRevocations }, true},
		{"MaxRevocations beyond its bound", func(c *device.Config) { c.MaxRevocations = device.MaxMaxRevocations + 1 }, false},
		{"Throttle.Failures at its bound", func(c *device.Config) { c.Throttle.Failures = device.MaxThrottleFailures }, true},
		{"Throttle.Failures beyond its bound", func(c *device.Config) { c.Throttle.Failures = device.MaxThrottleFailures + 1 }, false},
		{"negative MaxMessageSize", func(c *device.Config) { c.MaxMessageSize = -1 }, false},
		{"negative MaxResponseSize", func(c *device.Config) { c.MaxResponseSize = -1 }, false},
		{"ClockStrict", func(c *device.Config) { c.ClockMode = device.ClockStrict }, true},
		{"clock mode after ClockStrict", func(c *device.Config) { c.ClockMode = device.ClockStrict + 1 }, false},
		{"endpoint name only", func(c *device.Config) { c.Identity = token.Identity{Endpoint: "hvac-1"} }, true},
		{"device id only", func(c *device.Config) { c.Identity = token.Identity{DeviceID: hvac.DeviceID} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := device.New(base(tc.edit))
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, device.ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
}

// A device id is exactly 32 hexadecimal digits, in either case.
func TestDeviceIDIsHex32(t *testing.T) {
	store := &trust.MemoryStore{}
	for _, id := range []string{
		"0123456789abcdef0123456789abcdef",
		"0123456789ABCDEF0123456789ABCDEF",
		"09afAF09afAF09afAF09afAF09afAF09",
	} {
		if _, err := device.New(device.Config{Identity: token.Identity{DeviceID: id}, Anchors: store}); err != nil {
			t.Errorf("device id %q: %v", id, err)
		}
	}
	good := "0123456789abcdef0123456789abcdef"
	bad := []string{good[:31], good + "0", strings.Repeat("z", 32)}
	// Each character just outside a range of hex digits, at the start, in
	// the middle and at the end.
	for _, c := range "/:`g@G" {
		for _, at := range []int{0, 16, 31} {
			bad = append(bad, good[:at]+string(c)+good[at+1:])
		}
	}
	for _, id := range bad {
		if _, err := device.New(device.Config{Identity: token.Identity{DeviceID: id}, Anchors: store}); !errors.Is(err, device.ErrConfig) {
			t.Errorf("device id %q: %v, want ErrConfig", id, err)
		}
	}
}

// exp and nbf are checked with the leeway: a token is usable until exp
// plus the leeway and from nbf minus the leeway, both included (CWT times
// are whole seconds). A negative Config.Leeway means none.
func TestLeewayBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration // configured
		eff    time.Duration // in effect
	}{
		{"default", 0, device.DefaultLeeway},
		{"explicit", 10 * time.Second, 10 * time.Second},
		{"none", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, func(c *device.Config) { c.Leeway = tc.leeway })
			for _, step := range []struct {
				name string
				edit func(*token.Claims)
				err  error
			}{
				{"exp at the edge", func(c *token.Claims) { c.Expiry = testNow.Add(-tc.eff) }, nil},
				{"exp a second beyond", func(c *token.Claims) { c.Expiry = testNow.Add(-tc.eff - time.Second) }, token.ErrExpired},
				{"nbf at the edge", func(c *token.Claims) { c.NotBefore = testNow.Add(tc.eff) }, nil},
				{"nbf a second beyond", func(c *token.Claims) { c.NotBefore = testNow.Add(tc.eff + time.Second) }, token.ErrNotYetValid},
			} {
				edit := func(c *token.Claims) {
					// An hour old: the lower bound of time stays behind the clock.
					c.IssuedAt, c.NotBefore = testNow.Add(-time.Hour), testNow.Add(-time.Hour)
					step.edit(c)
				}
				r, d := w.do(w.token(edit), "read-data")
				if step.err == nil {
					if !d.Allowed() {
						t.Fatalf("%s: %v %v", step.name, d.Check, d.Err)
					}
					continue
				}
				expect(t, r, d, wire.StatusVerificationError, device.CheckTime, step.err)
			}
		})
	}
}

// The documented defaults of the connection timeouts (the package doc and
// Config say 5 s and 30 s); a zero Config field means them.
func TestDefaultTimeouts(t *testing.T) {
	if device.DefaultFrameTimeout != 5*time.Second || device.DefaultIdleTimeout != 30*time.Second {
		t.Fatalf("DefaultFrameTimeout %v, DefaultIdleTimeout %v; the documentation says 5s and 30s", device.DefaultFrameTimeout, device.DefaultIdleTimeout)
	}
}
