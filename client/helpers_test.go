package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// testNow is the fixed time of the tests that take a clock.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, kt KeyType) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue returns an SDA v1 token (v2 for non-P-256 PoP keys) for pop,
// signed by anchor.
func issue(t testing.TB, anchor crypto.Signer, pop crypto.PublicKey, aud []string, scope string, exp time.Time) []byte {
	t.Helper()
	sc, err := token.ParseScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.AnchorName(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	opts := &token.IssueOptions{}
	if alg, _ := token.AlgorithmFor(pop); alg != token.AlgES256 {
		opts.Profile = token.ProfileV2
	}
	raw, err := token.Issue(&token.Claims{
		Issuer: iss, Audience: aud, Scope: sc, Key: pop,
		NotBefore: exp.Add(-2 * time.Hour), Expiry: exp,
	}, anchor, opts)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// testDevice is a minimal device agent for the session's unit tests: it
// verifies tokens and requests with the token package, keeps single-use
// nonces, runs operations through handler and counts everything. script,
// when set, rewrites its answers to inject scripted faults. The end-to-end
// tests use the real device package instead.
type testDevice struct {
	anchor    crypto.PublicKey
	identity  token.Identity
	key       crypto.Signer // signs responses when set (v2)
	nextNonce bool          // offer a next nonce in operation responses (v2)
	handler   func(op token.Operation) (wire.Status, []byte)
	// script rewrites the answer to the i-th message received (from 0):
	// it returns the messages to send instead (nil: none).
	script func(i int, msg, answer []byte) [][]byte

	mu        sync.Mutex
	nonces    map[uint64]bool
	received  int
	nonceReqs int
	opReqs    int
	runs      int
	ran       []token.Operation
}

func newTestDevice(anchor crypto.PublicKey) *testDevice {
	return &testDevice{
		anchor:   anchor,
		identity: token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"},
		handler: func(op token.Operation) (wire.Status, []byte) {
			return wire.StatusSuccess, []byte("ok:" + op.Name)
		},
		nonces: map[uint64]bool{},
	}
}

func (d *testDevice) counts() (nonceReqs, opReqs, runs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonceReqs, d.opReqs, d.runs
}

func (d *testDevice) newNonce() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		n := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if n != 0 {
			d.nonces[n] = true
			return n
		}
	}
}

// process answers one message, as the device would.
func (d *testDevice) process(msg []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := wire.DecodeMessage(msg)
	if err != nil {
		return wire.Response{Type: wire.TypeErrorResponse, Status: wire.StatusInvalidRequest}.Encode()
	}
	if m.Type == wire.TypeNonceRequest {
		d.nonceReqs++
		return wire.Response{Type: wire.TypeNonceResponse, Nonce: d.newNonce()}.Encode()
	}
	d.opReqs++
	fail := func(s wire.Status) []byte {
		return wire.Response{Type: wire.TypeOperationResponse, Status: s}.Encode()
	}
	sr, err := token.ParseRequest(m.Signed)
	if err != nil {
		return fail(wire.StatusInvalidRequest)
	}
	tok, err := token.Parse(sr.UnverifiedToken())
	if err != nil {
		return fail(wire.StatusInvalidRequest)
	}
	claims, err := tok.Verify(d.anchor)
	if err != nil || claims.Validate(token.Validation{Identity: d.identity, Now: time.Now(), Leeway: 300 * time.Second}) != nil {
		return fail(wire.StatusVerificationError)
	}
	req, err := sr.Verify(claims.Key)
	if err != nil || !d.nonces[req.Nonce] {
		return fail(wire.StatusVerificationError)
	}
	delete(d.nonces, req.Nonce)
	if claims.Scope.Check(req.Operation) != nil {
		return fail(wire.StatusAccessDenied)
	}
	d.runs++
	d.ran = append(d.ran, req.Operation)
	status, data := d.handler(req.Operation)
	r := wire.Response{Type: wire.TypeOperationResponse, Status: status, Data: data}
	if d.nextNonce {
		r.NextNonce = d.newNonce()
	}
	if d.key != nil {
		r.Signed, err = token.SignResponse(&token.DeviceResponse{Status: uint32(status), Data: data, Nonce: req.Nonce, Device: d.identity}, d.key, nil)
		if err != nil {
			panic(err)
		}
	}
	return r.Encode()
}

// serve answers messages on c until it fails; the returned function closes c
// and waits for the server to stop.
func (d *testDevice) serve(c transport.Conn) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			msg, err := c.Receive(context.Background())
			if err != nil {
				return
			}
			answer := d.process(msg)
			out := [][]byte{answer}
			if d.script != nil {
				d.mu.Lock()
				i := d.received
				d.mu.Unlock()
				out = d.script(i, msg, answer)
			}
			d.mu.Lock()
			d.received++
			d.mu.Unlock()
			for _, b := range out {
				if err := c.Send(context.Background(), b); err != nil {
					return
				}
			}
		}
	}()
	return func() { c.Close(); wg.Wait() }
}

// fixture is a technician and a test device joined by a pipe.
type fixture struct {
	dev     *testDevice
	anchor  *ecdsa.PrivateKey
	pop     crypto.Signer
	tok     []byte
	session *Session
	conn    transport.Conn // the technician's end
}

func newFixture(t *testing.T, setup func(*testDevice)) *fixture {
	t.Helper()
	f := &fixture{anchor: mustP256(t), pop: mustKey(t, KeyP256)}
	f.dev = newTestDevice(f.anchor.Public())
	if setup != nil {
		setup(f.dev)
	}
	f.tok = issue(t, f.anchor, f.pop.Public(), []string{"ep:hvac-1"}, "read-data configure", time.Now().Add(time.Hour))
	a, b := transport.Pipe()
	stop := f.dev.serve(b)
	t.Cleanup(func() { a.Close(); stop() })
	f.conn = a
	f.session = &Session{Conn: a, Key: f.pop, Tokens: StaticToken(f.tok), Timeout: 5 * time.Second, NonceTimeout: time.Second}
	return f
}

// isAny reports whether err matches any of the targets (test helper).
func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
