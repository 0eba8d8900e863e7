package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
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
	p := token.ProfileV1
	if alg, _ := token.AlgorithmFor(pop); alg != token.AlgES256 {
		p = token.ProfileV2
	}
	return issueProfile(t, anchor, pop, aud, scope, exp, p, nil)
}

// issueV2 returns an SDA v2 token for pop, signed by anchor, carrying
// cnonce when it is not nil.
func issueV2(t testing.TB, anchor crypto.Signer, pop crypto.PublicKey, aud []string, scope string, exp time.Time, cnonce []byte) []byte {
	t.Helper()
	return issueProfile(t, anchor, pop, aud, scope, exp, token.ProfileV2, cnonce)
}

func issueProfile(t testing.TB, anchor crypto.Signer, pop crypto.PublicKey, aud []string, scope string, exp time.Time, p token.Profile, cnonce []byte) []byte {
	t.Helper()
	return issueDelegation(t, anchor, pop, aud, scope, exp, p, cnonce, nil)
}

// issueDelegation is issueProfile with the delegation claim d (v2).
func issueDelegation(t testing.TB, anchor crypto.Signer, pop crypto.PublicKey, aud []string, scope string, exp time.Time, p token.Profile, cnonce []byte, d *token.Delegation) []byte {
	t.Helper()
	sc, err := token.ParseScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.AnchorName(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := token.Issue(&token.Claims{
		Issuer: iss, Audience: aud, Scope: sc, Key: pop, CNonce: cnonce,
		NotBefore: exp.Add(-2 * time.Hour), Expiry: exp, Delegation: d,
	}, anchor, &token.IssueOptions{Profile: p})
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
	// takesStatus makes it a device that takes status updates (v2): it
	// sends response key 7, and installs a carried update that verifies
	// with anchor, names it and is newer than the one it holds.
	takesStatus bool
	// requireCNonce makes it accept only tokens whose cnonce is the
	// request's nonce, 8 bytes big-endian (v2).
	requireCNonce bool
	handler       func(op token.Operation) (wire.Status, []byte)
	// script rewrites the answer to the i-th message received (from 0):
	// it returns the messages to send instead (nil: none; see lose).
	script func(i int, msg, answer []byte) [][]byte
	// expired carries the answers lost with lose to the technician's
	// expiringConn.
	expired chan struct{}

	mu        sync.Mutex
	nonces    map[uint64]bool
	received  int
	changed   chan struct{} // closed when received changes; see waitReceived
	nonceReqs int
	opReqs    int
	runs      int
	ran       []token.Operation
	held      map[string]wire.Sequence // installed status updates by issuer
	carried   [][]byte                 // the status updates carried to it
	opMsgs    [][]byte                 // the operation requests as received
}

func newTestDevice(anchor crypto.PublicKey) *testDevice {
	return &testDevice{
		anchor:   anchor,
		identity: token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"},
		handler: func(op token.Operation) (wire.Status, []byte) {
			return wire.StatusSuccess, []byte("ok:" + op.Name)
		},
		nonces:  map[uint64]bool{},
		expired: make(chan struct{}, 8),
	}
}

// lose drops an answer as a lossy link would, for a script to return, and
// has the technician notice the loss at once: its expiringConn fails the
// Receive waiting for the answer as the passing of the deadline would. A
// test that waited for the real deadline instead would need a deadline
// short enough to keep the test fast, and on a loaded machine such a
// deadline also cuts short the answers that are not lost.
func (d *testDevice) lose() [][]byte {
	d.expired <- struct{}{}
	return nil
}

// waitReceived waits until the device has received (and counted) n
// messages: a message the session sent just before Do returned may still be
// on its way.
func (d *testDevice) waitReceived(t testing.TB, n int) {
	t.Helper()
	watchdog := time.NewTimer(time.Minute) // a hang, not a measurement
	defer watchdog.Stop()
	for {
		d.mu.Lock()
		got := d.received
		if got >= n {
			d.mu.Unlock()
			return
		}
		if d.changed == nil {
			d.changed = make(chan struct{})
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-watchdog.C:
			t.Fatalf("the device received %d messages, want %d", got, n)
		}
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
		return d.withSequences(wire.Response{Type: wire.TypeNonceResponse, Nonce: d.newNonce()}).Encode()
	}
	d.opReqs++
	d.opMsgs = append(d.opMsgs, bytes.Clone(msg))
	fail := func(s wire.Status) []byte {
		return d.withSequences(wire.Response{Type: wire.TypeOperationResponse, Status: s}).Encode()
	}
	if m.Status != nil {
		if !d.takesStatus {
			return fail(wire.StatusInvalidRequest) // the 3-element form is malformed here
		}
		d.carried = append(d.carried, bytes.Clone(m.Status))
		d.install(m.Status)
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
	if d.requireCNonce && !bytes.Equal(claims.CNonce, binary.BigEndian.AppendUint64(nil, req.Nonce)) {
		return fail(wire.StatusVerificationError)
	}
	if claims.Scope.Check(req.Operation) != nil {
		return fail(wire.StatusAccessDenied)
	}
	d.runs++
	d.ran = append(d.ran, req.Operation)
	status, data := d.handler(req.Operation)
	r := d.withSequences(wire.Response{Type: wire.TypeOperationResponse, Status: status, Data: data})
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

// withSequences adds response key 7 when the device takes status updates.
func (d *testDevice) withSequences(r wire.Response) wire.Response {
	if d.takesStatus {
		r.HasSequences = true
		for _, s := range d.held {
			r.Sequences = append(r.Sequences, s)
		}
	}
	return r
}

// install installs a carried status update as docs/PROTOCOL.md section 12
// says, or ignores it.
func (d *testDevice) install(raw []byte) {
	p, err := token.ParseStatus(raw)
	if err != nil {
		return
	}
	held := d.held[p.UnverifiedIssuer()]
	if !p.UnverifiedNewerThan(held.Seq, time.Unix(int64(held.Time), 0)) {
		return
	}
	u, err := p.Verify(d.anchor)
	if err != nil || !d.identity.Matches(u.Audience) {
		return
	}
	if d.held == nil {
		d.held = map[string]wire.Sequence{}
	}
	d.held[u.Issuer] = wire.Sequence{Issuer: u.Issuer, Seq: u.Sequence, Time: uint64(u.Time.Unix())}
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
			if d.changed != nil {
				close(d.changed)
				d.changed = nil
			}
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
	f.conn = &expiringConn{Conn: a, expired: f.dev.expired}
	f.session = &Session{Conn: f.conn, Key: f.pop, Tokens: StaticToken(f.tok), Timeout: 5 * time.Second, NonceTimeout: time.Second}
	return f
}

// expiringConn is the technician's end of a fixture: a Receive fails with
// context.DeadlineExceeded, as when its deadline passes, as soon as the
// test device has lost an answer (testDevice.lose). The session cannot
// tell the difference: its deadlines end a Receive the same way.
type expiringConn struct {
	transport.Conn
	expired chan struct{}
}

// Receive implements transport.Conn.
func (c *expiringConn) Receive(ctx context.Context) ([]byte, error) {
	rctx, cancel := context.WithCancel(ctx)
	lost := make(chan bool, 1)
	go func() {
		select {
		case <-c.expired:
			cancel()
			lost <- true
		case <-rctx.Done():
			lost <- false
		}
	}()
	b, err := c.Conn.Receive(rctx)
	cancel()
	if !<-lost {
		return b, err
	}
	if err == nil { // a message came first: the loss is for the next Receive
		c.expired <- struct{}{}
		return b, nil
	}
	return nil, fmt.Errorf("transport: receive: %w", context.DeadlineExceeded)
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
