package device_test

//go:generate go run ./internal/conformance/genvectors -dir testdata/conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/internal/conformance"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// vectorDir holds the conformance vectors (docs/CONFORMANCE.md).
const vectorDir = "testdata/conformance"

// regenerate is the command that rewrites the vectors.
const regenerate = "go generate ./device"

// reasons maps the reasons the vectors name to the SDK's errors.
var reasons = map[string]error{
	"device.ErrMessageTooLarge":     device.ErrMessageTooLarge,
	"token.ErrMalformed":            token.ErrMalformed,
	"token.ErrUnsupportedForm":      token.ErrUnsupportedForm,
	"token.ErrWeakKey":              token.ErrWeakKey,
	"token.ErrUnsupportedKey":       token.ErrUnsupportedKey,
	"token.ErrUnsupportedAlgorithm": token.ErrUnsupportedAlgorithm,
	"token.ErrCritical":             token.ErrCritical,
	"device.ErrUnknownAnchor":       device.ErrUnknownAnchor,
	"device.ErrAnchorRevoked":       device.ErrAnchorRevoked,
	"token.ErrSignature":            token.ErrSignature,
	"token.ErrAlgorithmMismatch":    token.ErrAlgorithmMismatch,
	"device.ErrProfile":             device.ErrProfile,
	"device.ErrAnchorConstraint":    device.ErrAnchorConstraint,
	"token.ErrNotDelegable":         token.ErrNotDelegable,
	"token.ErrDelegationDepth":      token.ErrDelegationDepth,
	"token.ErrLinkSignature":        token.ErrLinkSignature,
	"token.ErrNotNarrower":          token.ErrNotNarrower,
	"token.ErrDelegationLoop":       token.ErrDelegationLoop,
	"token.ErrWrongAudience":        token.ErrWrongAudience,
	"token.ErrExpired":              token.ErrExpired,
	"token.ErrNotYetValid":          token.ErrNotYetValid,
	"device.ErrTimeUnknown":         device.ErrTimeUnknown,
	"device.ErrNonceUnknown":        device.ErrNonceUnknown,
	"device.ErrNonceReplayed":       device.ErrNonceReplayed,
	"device.ErrNonceExpired":        device.ErrNonceExpired,
	"device.ErrRevoked":             device.ErrRevoked,
	"token.ErrOutOfScope":           token.ErrOutOfScope,
	"device.ErrUnknownOperation":    device.ErrUnknownOperation,
	"device.ErrOperationFailed":     device.ErrOperationFailed,
	"device.ErrHandlerPanic":        device.ErrHandlerPanic,
	"device.ErrResponseTooLarge":    device.ErrResponseTooLarge,
	"device.ErrNoncesExhausted":     device.ErrNoncesExhausted,
	"device.ErrThrottled":           device.ErrThrottled,
}

// The committed vectors are exactly what the generator makes: they cannot
// drift from the code that generates them.
func TestConformanceVectorsAreCurrent(t *testing.T) {
	want, err := conformance.Files()
	if err != nil {
		t.Fatal(err)
	}
	again, err := conformance.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		if !bytes.Equal(again[name], data) {
			t.Errorf("%s: two runs of the generator differ", name)
		}
	}
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatalf("%v (run %s)", err, regenerate)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("%s/%s is not made by the generator any more: run %s", vectorDir, e.Name(), regenerate)
		}
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Errorf("%v: run %s", err, regenerate)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s/%s differs from what the generator makes: run %s", vectorDir, name, regenerate)
		}
	}
}

// readVectors returns the committed vector files but keys.json, in name
// order, decoded strictly.
func readVectors(t *testing.T) []conformance.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []conformance.File
	for _, name := range names {
		if filepath.Base(name) == conformance.KeysFile {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f conformance.File
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Format != conformance.Format || len(f.Cases) == 0 {
			t.Fatalf("%s: format %q, %d cases", name, f.Format, len(f.Cases))
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no vectors in %s: run %s", vectorDir, regenerate)
	}
	return files
}

// Every committed vector, run against a real agent built from the vector's
// setup alone, gets the response bytes, status, check and reason the
// vector says.
func TestConformanceVectors(t *testing.T) {
	for _, f := range readVectors(t) {
		t.Run(f.Group, func(t *testing.T) {
			for _, c := range f.Cases {
				t.Run(strings.TrimPrefix(c.Name, f.Group+"/"), func(t *testing.T) { runVector(t, &c) })
			}
		})
	}
}

// The vectors exercise every check of the verification order (all but the
// recovery of an internal panic and the freshness check) and every reason
// they may name.
func TestConformanceVectorsCoverEveryCheck(t *testing.T) {
	checks, named := map[string]bool{}, map[string]bool{}
	for _, f := range readVectors(t) {
		for _, c := range f.Cases {
			for _, s := range c.Steps {
				checks[s.Check], named[s.Reason] = true, true
			}
		}
	}
	for c := device.CheckNone; c < device.CheckInternal; c++ {
		// Freshness requirements (v2) are a device's configuration that
		// the vectors' format does not carry: freshness_test.go covers
		// the check.
		if !checks[c.String()] && c != device.CheckFreshness {
			t.Errorf("no vector fails at check %q", c)
		}
	}
	for name := range reasons {
		if !named[name] {
			t.Errorf("no vector is rejected for %s", name)
		}
	}
}

func unhex(t *testing.T, what, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return b
}

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// vectorDevice is an agent built from a vector's setup, and what its
// handlers did.
type vectorDevice struct {
	agent *device.Agent
	clock *fakeClock
	ran   int
}

func newVectorDevice(t *testing.T, s *conformance.Setup) *vectorDevice {
	t.Helper()
	v := &vectorDevice{clock: &fakeClock{t: time.Unix(s.Time, 0).UTC()}}
	var anchors []trust.Anchor
	for _, a := range s.Anchors {
		key, err := token.ParsePublicKeyDER(unhex(t, "anchor key", a.PublicKeyDER))
		if err != nil {
			t.Fatalf("anchor %s: %v", a.Issuer, err)
		}
		cose, err := token.ParseCOSEKey(unhex(t, "anchor COSE_Key", a.PublicKeyCOSE))
		if err != nil || !token.EqualKeys(key, cose) {
			t.Fatalf("anchor %s: the COSE_Key is not the DER key (%v)", a.Issuer, err)
		}
		if alg, err := token.AlgorithmFor(key); err != nil || alg.String() != a.Algorithm {
			t.Fatalf("anchor %s: algorithm %v, vector says %s (%v)", a.Issuer, alg, a.Algorithm, err)
		}
		var kid []byte
		if a.KeyID != "" {
			kid = unhex(t, "key id", a.KeyID)
		}
		anchors = append(anchors, trust.Anchor{
			Issuer: a.Issuer, KeyID: kid, Key: key,
			NotBefore: unixOrZero(a.NotBefore), NotAfter: unixOrZero(a.NotAfter), RetiredAt: unixOrZero(a.RetiredAt), Revoked: a.Revoked,
			Constraints: trust.Constraints{
				Operations: a.Constraints.Operations, Audiences: a.Constraints.Audiences,
				MaxLifetime: time.Duration(a.Constraints.MaxLifetimeSeconds) * time.Second,
			},
		})
	}
	store, err := trust.NewMemoryStore(anchors...)
	if err != nil {
		t.Fatal(err)
	}
	reg := &device.Registry{}
	for _, op := range s.Operations {
		data := unhex(t, "operation data", op.Data)
		var h func(context.Context, *device.Call) ([]byte, error)
		switch op.Result {
		case "data":
			h = func(context.Context, *device.Call) ([]byte, error) { v.ran++; return data, nil }
		case "error":
			h = func(context.Context, *device.Call) ([]byte, error) {
				v.ran++
				return nil, errors.New("the operation failed")
			}
		case "crash":
			h = func(context.Context, *device.Call) ([]byte, error) { v.ran++; panic("the operation crashed") }
		default:
			t.Fatalf("operation %s: result %q", op.Name, op.Result)
		}
		if err := reg.RegisterFunc(op.Name, h); err != nil {
			t.Fatal(err)
		}
	}
	// The revocation list goes in as the agent persists it (State key
	// "revocations"), as after a restart.
	state := &device.MemoryState{}
	if len(s.Revocations) > 0 {
		type entry struct {
			ID    []byte `json:"id"`
			Until int64  `json:"until,omitempty"`
		}
		list := map[string][]entry{"cti": {}, "hash": {}}
		for _, r := range s.Revocations {
			list[r.Kind] = append(list[r.Kind], entry{ID: unhex(t, "revocation", r.ID), Until: r.Until})
		}
		data, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		state.Store("revocations", data)
	}
	var random []byte
	for _, n := range s.Nonces {
		random = append(random, unhex(t, "nonce", n)...)
	}
	random = append(random, unhex(t, "random", s.Random)...)
	modes := map[string]device.ClockMode{"trusted": device.ClockTrusted, "lower-bound": device.ClockLowerBound, "strict": device.ClockStrict}
	mode, ok := modes[s.ClockMode]
	if !ok {
		t.Fatalf("clock mode %q", s.ClockMode)
	}
	cfg := device.Config{
		Identity:   token.Identity{Endpoint: s.Identity.Endpoint, DeviceID: s.Identity.DeviceID},
		Anchors:    store,
		Operations: reg,
		Clock:      v.clock.Now,
		ClockMode:  mode,
		MinTime:    unixOrZero(s.MinTime),
		Leeway:     time.Duration(s.LeewaySeconds) * time.Second,
		MaxNonces:  s.MaxNonces, NonceLifetime: time.Duration(s.NonceLifetimeSeconds) * time.Second,
		Throttle: device.Throttle{
			Failures: s.Throttle.Failures,
			Window:   time.Duration(s.Throttle.WindowSeconds) * time.Second, Lockout: time.Duration(s.Throttle.LockoutSeconds) * time.Second,
		},
		MaxMessageSize: s.MaxMessageSize, MaxResponseSize: s.MaxResponseSize,
		State:          state,
		Rand:           bytes.NewReader(random),
		RejectV1:       s.RejectV1,
		NextNonce:      s.NextNonce,
		TokenCacheSize: s.TokenCacheSize,
	}
	if s.LeewaySeconds == 0 {
		cfg.Leeway = -1 // none
	}
	if k := s.DeviceKey; k != nil {
		if k.Algorithm != "EdDSA" {
			t.Fatalf("device key %s: %s, want an Ed25519 key", k.Name, k.Algorithm)
		}
		cfg.SigningKey = ed25519.NewKeyFromSeed(unhex(t, "device key", k.Private))
	}
	if v.agent, err = device.New(cfg); err != nil {
		t.Fatal(err)
	}
	// The nonces outstanding at the start: issued now, in order.
	for _, n := range s.Nonces {
		r, err := wire.DecodeResponse(v.agent.Process(context.Background(), wire.NonceRequest))
		if err != nil || r.Status != wire.StatusSuccess || fmt.Sprintf("%016x", r.Nonce) != n {
			t.Fatalf("setting up nonce %s: got %+v, %v", n, r, err)
		}
	}
	return v
}

func runVector(t *testing.T, c *conformance.Case) {
	v := newVectorDevice(t, &c.Setup)
	for i, s := range c.Steps {
		v.clock.Advance(time.Duration(s.AdvanceSeconds) * time.Second)
		before := v.ran
		resp, d := v.agent.Handle(context.Background(), unhex(t, "request", s.Request))
		where := func() string { return fmt.Sprintf("step %d (%s)", i+1, s.Description) }
		if got := hex.EncodeToString(resp); got != s.Response {
			t.Errorf("%s: response\n got %s\nwant %s\n(check %v, reason %v)", where(), got, s.Response, d.Check, d.Err)
		}
		r, err := wire.DecodeResponse(resp)
		if err != nil {
			t.Fatalf("%s: response does not decode: %v", where(), err)
		}
		if r.Type != s.ResponseType || uint32(r.Status) != s.Status || uint32(d.Status) != s.Status {
			t.Errorf("%s: type %d status %d (decided %d), want type %d status %d", where(), r.Type, r.Status, d.Status, s.ResponseType, s.Status)
		}
		if d.Check.String() != s.Check {
			t.Errorf("%s: check %q, want %q (%v)", where(), d.Check, s.Check, d.Err)
		}
		if s.Reason == "" {
			if d.Err != nil {
				t.Errorf("%s: reason %v, want none", where(), d.Err)
			}
		} else if want, ok := reasons[s.Reason]; !ok {
			t.Errorf("%s: unknown reason %q", where(), s.Reason)
		} else if !errors.Is(d.Err, want) {
			t.Errorf("%s: reason %v, want %s", where(), d.Err, s.Reason)
		}
		ran := v.ran > before ||
			d.Operation == device.RevokeOperation && slices.Contains([]device.Check{device.CheckNone, device.CheckOperation, device.CheckResponse}, d.Check)
		if ran != s.HandlerRan {
			t.Errorf("%s: handler ran %v, want %v", where(), ran, s.HandlerRan)
		}
	}
}
