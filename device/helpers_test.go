package device_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// testNow is the wall time of every scenario unless a test moves the clock.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || k == nil {
		t.Fatalf("key %s: %v", kind, err)
	}
	return k
}

// world is one device with its anchor, a technician's PoP key and the
// record of everything the device decided: the scenarios read as stories
// told in its terms.
type world struct {
	t         testing.TB
	clock     *fakeClock
	anchorKey crypto.Signer
	anchor    *trust.Anchor
	store     *trust.MemoryStore
	pop       crypto.Signer
	cfg       device.Config
	agent     *device.Agent
	ran       map[string]int
	calls     []*device.Call
	mu        sync.Mutex

	bigSubjects []token.SubjectCutoff // the cut-offs of the last bigStatus
}

// identity of the device of every scenario.
var hvac = token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"}

func newWorld(t testing.TB, configure ...func(*device.Config)) *world {
	t.Helper()
	w := &world{t: t, clock: &fakeClock{t: testNow}, ran: map[string]int{}}
	w.anchorKey = newKey(t, "P-256")
	var err error
	if w.anchor, err = trust.NewAnchor(w.anchorKey.Public()); err != nil {
		t.Fatal(err)
	}
	if w.store, err = trust.NewMemoryStore(*w.anchor); err != nil {
		t.Fatal(err)
	}
	w.pop = newKey(t, "P-256")
	reg := &device.Registry{}
	for _, name := range []string{"read-data", "configure", "set-temperature", "c"} {
		if err := reg.RegisterFunc(name, func(_ context.Context, call *device.Call) ([]byte, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.ran[call.Operation.Name]++
			if len(w.calls) < 64 { // the first calls, enough for assertions; bounded for long runs
				w.calls = append(w.calls, call)
			}
			return []byte("ok:" + call.Operation.Name), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = device.Config{
		Identity:   hvac,
		Anchors:    w.store,
		Operations: reg,
		Clock:      w.clock.Now,
	}
	for _, f := range configure {
		f(&w.cfg)
	}
	w.restart()
	return w
}

// restart builds a new agent from the world's configuration, as a device
// reboot would (persistent state survives only through cfg.State).
func (w *world) restart() {
	w.t.Helper()
	var err error
	if w.agent, err = device.New(w.cfg); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) runs(op string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ran[op]
}

// claims returns the claims of a valid v1 token for the world's technician.
func (w *world) claims() *token.Claims {
	sc, err := token.ParseScope("read-data configure")
	if err != nil {
		w.t.Fatal(err)
	}
	return &token.Claims{
		Issuer:    w.anchor.Issuer,
		Subject:   "alice",
		Audience:  []string{"ep:hvac-1"},
		Expiry:    testNow.Add(time.Hour),
		NotBefore: testNow.Add(-time.Minute),
		IssuedAt:  testNow.Add(-time.Minute),
		ID:        []byte{0xc7, 0x01},
		Scope:     sc,
		Key:       w.pop.Public(),
	}
}

// token issues a token signed by the world's anchor, after edit changes
// the default claims.
func (w *world) token(edit func(*token.Claims)) []byte {
	w.t.Helper()
	return w.tokenWith(w.anchorKey, nil, edit)
}

func (w *world) tokenWith(key crypto.Signer, opts *token.IssueOptions, edit func(*token.Claims)) []byte {
	w.t.Helper()
	c := w.claims()
	if edit != nil {
		edit(c)
	}
	tok, err := token.Issue(c, key, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// nonce asks the device for a nonce and requires success.
func (w *world) nonce() uint64 {
	w.t.Helper()
	r, d := w.send(wire.NonceRequest)
	if r.Type != wire.TypeNonceResponse || r.Status != wire.StatusSuccess || d.Err != nil {
		w.t.Fatalf("nonce request: type %d status %v: %v", r.Type, r.Status, d.Err)
	}
	return r.Nonce
}

// request returns the envelope of an operation request signed with pop.
func (w *world) request(nonce uint64, tok []byte, pop crypto.Signer, name string, args ...token.Arg) []byte {
	w.t.Helper()
	signed, err := token.SignRequest(&token.Request{Nonce: nonce, Operation: token.Operation{Name: name, Args: args}, Token: tok}, pop, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return wire.EncodeOperationRequest(signed)
}

// send processes one request and decodes the response, which must always
// be well formed.
func (w *world) send(req []byte) (wire.Response, device.Outcome) {
	w.t.Helper()
	out, d := w.agent.Handle(context.Background(), req)
	r, err := wire.DecodeResponse(out)
	if err != nil {
		w.t.Fatalf("response %x does not decode: %v", out, err)
	}
	if r.Status != d.Status {
		w.t.Fatalf("wire status %v, decision status %v", r.Status, d.Status)
	}
	return r, d
}

// do runs a whole exchange: nonce, then the operation with the given token
// signed by the world's PoP key.
func (w *world) do(tok []byte, name string, args ...token.Arg) (wire.Response, device.Outcome) {
	w.t.Helper()
	return w.send(w.request(w.nonce(), tok, w.pop, name, args...))
}

// expect asserts a rejection: its status, the check that failed and the
// typed reason.
func expect(t testing.TB, r wire.Response, d device.Outcome, status wire.Status, check device.Check, reason error) {
	t.Helper()
	if r.Status != status || d.Status != status {
		t.Errorf("status: wire %v, decision %v, want %v (check %v, err %v)", r.Status, d.Status, status, d.Check, d.Err)
	}
	if d.Check != check {
		t.Errorf("check %v, want %v (err %v)", d.Check, check, d.Err)
	}
	if !errors.Is(d.Err, reason) {
		t.Errorf("reason %v, want %v", d.Err, reason)
	}
	if r.Data != nil {
		t.Errorf("rejected request got data %q", r.Data)
	}
}

// rawSign1 builds a COSE_Sign1 by hand with tags prefix, the protected
// header bytes, the unprotected header bytes and the payload, signed (ES256
// or ES384 by the key's curve) over the Sig_structure: tests use it to
// build messages the token package refuses to build.
func rawSign1(t testing.TB, prefix, protected, unprotected, payload []byte, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tbs := []byte{0x84, 0x6a}
	tbs = append(tbs, "Signature1"...)
	tbs = appendBstr(tbs, protected)
	tbs = appendBstr(tbs, nil)
	tbs = appendBstr(tbs, payload)
	var digest []byte
	n := 32
	if key.Curve == elliptic.P384() {
		d := sha512.Sum384(tbs)
		digest, n = d[:], 48
	} else {
		d := sha256.Sum256(tbs)
		digest = d[:]
	}
	r, s, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 2*n)
	r.FillBytes(sig[:n])
	s.FillBytes(sig[n:])
	out := append([]byte{}, prefix...)
	out = append(out, 0x84)
	out = appendBstr(out, protected)
	out = append(out, unprotected...)
	out = appendBstr(out, payload)
	return appendBstr(out, sig)
}

func appendBstr(b, v []byte) []byte {
	n := len(v)
	switch {
	case n < 24:
		b = append(b, 0x40|byte(n))
	case n < 256:
		b = append(b, 0x58, byte(n))
	default:
		b = append(b, 0x59, byte(n>>8), byte(n))
	}
	return append(b, v...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(b, byte(v))
	case v < 1<<8:
		return append(b, 0x18, byte(v))
	case v < 1<<16:
		return append(b, 0x19, byte(v>>8), byte(v))
	case v < 1<<32:
		return append(b, 0x1a, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0x1b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendTstr(b []byte, s string) []byte {
	if len(s) < 24 {
		b = append(b, 0x60|byte(len(s)))
	} else {
		b = append(b, 0x78, byte(len(s)))
	}
	return append(b, s...)
}

// v1Claims encodes v1 claims by hand in the layout of the original cloud,
// with extra appended raw (for duplicate keys and the like).
func v1Claims(iss string, aud string, exp, nbf int64, scope string, pop *ecdsa.PublicKey, extra []byte) []byte {
	pb, _ := pop.Bytes()
	b := []byte{0xa6}
	b = appendTstr(append(b, 0x01), iss)
	b = appendTstr(append(b, 0x03, 0x81), aud)
	b = appendUint(append(b, 0x04), uint64(exp))
	b = appendUint(append(b, 0x05), uint64(nbf))
	b = appendTstr(append(b, 0x0c), scope)
	b = append(b, 0x18, 0x19, 0xa1, 0x01, 0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20)
	b = append(b, pb[1:33]...)
	b = append(b, 0x22, 0x58, 0x20)
	b = append(b, pb[33:]...)
	if len(extra) > 0 {
		b[0]++
		b = append(b, extra...)
	}
	return b
}
