package conformance

import (
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// t0 is the device's clock when every case starts, unless the case says
// otherwise.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// The device of every case unless the case says otherwise.
const (
	endpoint = "hvac-1"
	deviceID = "0123456789abcdef0123456789abcdef"
)

// genError carries a failure of the generator out of the case builders to
// Files, which returns it. The generator's input is its own code, so a
// failure is a bug in a case, not bad input.
type genError struct{ err error }

func fail(format string, args ...any) {
	panic(genError{fmt.Errorf(format, args...)})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(genError{err})
	}
	return v
}

// gen holds the keys and the groups of vectors being generated.
type gen struct {
	keys   map[string]*key
	groups []*group
	names  map[string]bool
}

// group is one file of vectors. Its cases are kept by pointer so that a
// builder's case stays the group's while other cases are added.
type group struct {
	g     *gen
	file  File
	cases []*Case
}

// builder builds one case.
type builder struct {
	g      *gen
	c      *Case
	values map[uint64]bool // nonce values used in the case
	seq    int
	device crypto.Signer
	ops    map[string]Operation
}

func (g *gen) key(name string) *key {
	k, ok := g.keys[name]
	if !ok {
		fail("unknown key %q", name)
	}
	return k
}

// issuer returns the SDA name of a key as an anchor (token.AnchorName).
func (g *gen) issuer(keyName string) string {
	return must(token.AnchorName(g.key(keyName).public))
}

// anchor returns an anchor for the key, named as SDA names anchors.
func (g *gen) anchor(keyName string) Anchor {
	k := g.key(keyName)
	return Anchor{
		Issuer: g.issuer(keyName), Algorithm: k.Algorithm, Key: k.Name,
		PublicKeyDER: k.PublicKeyDER, PublicKeyCOSE: k.PublicKeyCOSE,
	}
}

// defaultOperations are the handlers of every device unless a case says
// otherwise: each returns "ok:" and its name.
func defaultOperations() []Operation {
	var ops []Operation
	for _, name := range []string{"read-data", "configure", "set-temperature", "c"} {
		ops = append(ops, Operation{Name: name, Result: "data", Data: hex.EncodeToString([]byte("ok:" + name))})
	}
	return ops
}

func (g *gen) defaultSetup() Setup {
	return Setup{
		Identity:             Identity{Endpoint: endpoint, DeviceID: deviceID},
		Time:                 t0.Unix(),
		ClockMode:            "trusted",
		LeewaySeconds:        300,
		MaxNonces:            10,
		NonceLifetimeSeconds: 300,
		Throttle:             Throttle{Failures: 5, WindowSeconds: 60, LockoutSeconds: 60},
		MaxMessageSize:       2048,
		MaxResponseSize:      2048,
		Anchors:              []Anchor{g.anchor("anchor-p256")},
		Operations:           defaultOperations(),
		Revocations:          []Revocation{},
		Nonces:               []string{},
	}
}

// newGroup starts a file of vectors.
func (g *gen) newGroup(name, description string) *group {
	gr := &group{g: g, file: File{Format: Format, Group: name, Description: description}}
	g.groups = append(g.groups, gr)
	return gr
}

// add starts a case of the group with the default setup changed by edits.
func (gr *group) add(name, description string, edits ...func(*Setup)) *builder {
	g := gr.g
	full := gr.file.Group + "/" + name
	if g.names[full] {
		fail("case %s defined twice", full)
	}
	g.names[full] = true
	c := &Case{Name: full, Description: description, Setup: g.defaultSetup()}
	gr.cases = append(gr.cases, c)
	for _, edit := range edits {
		edit(&c.Setup)
	}
	b := &builder{g: g, c: c, values: map[uint64]bool{}, ops: map[string]Operation{}}
	for _, op := range c.Setup.Operations {
		b.ops[op.Name] = op
	}
	if k := c.Setup.DeviceKey; k != nil {
		b.device = g.key(k.Name).signer
	}
	return b
}

// differs records how the reference device is known to answer otherwise.
func (b *builder) differs(text string) *builder {
	b.c.DiffersFromReference = text
	return b
}

// value returns a fresh nonce value of the case: never 0, never repeated.
func (b *builder) value() uint64 {
	for {
		b.seq++
		h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", b.c.Name, b.seq))
		n := binary.BigEndian.Uint64(h[:8])
		if n != 0 && !b.values[n] {
			b.values[n] = true
			return n
		}
	}
}

// outstanding adds a nonce that the device has issued when the case
// starts (at the setup's time: a case that moves the clock past the nonce
// lifetime asks for fresh nonces instead).
func (b *builder) outstanding() uint64 {
	n := b.value()
	b.c.Setup.Nonces = append(b.c.Setup.Nonces, nonceHex(n))
	return n
}

// draw returns the next nonce the device issues during the steps.
func (b *builder) draw() uint64 {
	n := b.value()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], n)
	b.c.Setup.Random += hex.EncodeToString(buf[:])
	return n
}

func nonceHex(n uint64) string { return fmt.Sprintf("%016x", n) }

// step adds s to the case.
func (b *builder) step(s Step) {
	b.c.Steps = append(b.c.Steps, s)
}

// nonceRequest adds a nonce request [1] that the device answers with a
// fresh nonce, and returns the nonce.
func (b *builder) nonceRequest(description string) uint64 {
	return b.nonceRequestAfter(description, 0)
}

// nonceRequestAfter is nonceRequest after the clock moved forward.
func (b *builder) nonceRequestAfter(description string, advance int64) uint64 {
	n := b.draw()
	b.step(Step{
		Description: description, AdvanceSeconds: advance, Request: hex.EncodeToString(wire.NonceRequest),
		Response:     hex.EncodeToString(wire.Response{Type: wire.TypeNonceResponse, Status: wire.StatusSuccess, Nonce: n}.Encode()),
		ResponseType: wire.TypeNonceResponse, Check: "none",
	})
	return n
}

// nonceRefused adds a nonce request that the device refuses with status 8
// (busy) for reason, after advancing its clock.
func (b *builder) nonceRefused(description string, advance int64, reason string) {
	b.step(Step{
		Description: description, AdvanceSeconds: advance, Request: hex.EncodeToString(wire.NonceRequest),
		Response:     hex.EncodeToString(wire.Response{Type: wire.TypeNonceResponse, Status: wire.StatusBusy}.Encode()),
		ResponseType: wire.TypeNonceResponse, Status: uint32(wire.StatusBusy), Check: "nonce-issue", Reason: reason,
	})
}

// outcome is what a step expects of an operation request.
type outcome struct {
	status  wire.Status
	check   string // the failed check, "none" for success
	reason  string // the SDK's sentinel, "" for success
	advance int64  // seconds the clock moves before the request
	noNext  bool   // v2: no next nonce although the nonce verified (throttled)
	// respType, when not 0, is the type of the response to a request
	// refused at the size or envelope check, instead of the error
	// response: an envelope that starts as an operation request gets an
	// operation response.
	respType uint64
}

// ok is the outcome of a request that runs its operation successfully.
var ok = outcome{status: wire.StatusSuccess, check: "none"}

// rejected is the outcome of a request refused by check for reason.
func rejected(status wire.Status, check, reason string) outcome {
	return outcome{status: status, check: check, reason: reason}
}

// after returns o with the clock moved forward first.
func (o outcome) after(seconds int64) outcome {
	o.advance = seconds
	return o
}

// Checks after which the proof-of-possession signature has verified, and
// after which the nonce has also been consumed.
var (
	popVerified   = []string{"none", "nonce", "revocation", "scope", "operation", "response"}
	nonceVerified = []string{"none", "revocation", "scope", "operation", "response"}
)

// request is an operation request made as a technician makes one.
type request struct {
	nonce uint64
	token []byte
	chain []byte // the encoded delegation chain (v2), nil for none
	pop   string // the key that signs the request
	op    string
	args  []token.Arg
}

// encode signs the request and wraps it in the envelope.
func (b *builder) encode(r request) ([]byte, *Built) {
	signed := must(token.SignRequest(&token.Request{Nonce: r.nonce, Operation: token.Operation{Name: r.op, Args: r.args}, Token: r.token, Chain: r.chain}, b.g.key(r.pop).signer, nil))
	args := make([]string, len(r.args))
	for i, a := range r.args {
		args[i] = a.String()
	}
	return wire.EncodeOperationRequest(signed), &Built{
		Nonce: nonceHex(r.nonce), Operation: r.op,
		Args: hex.EncodeToString(must(codec.Marshal(append([]token.Arg{}, r.args...)))), ArgsDiagnostic: "[" + strings.Join(args, ", ") + "]",
		Token: hex.EncodeToString(r.token), Chain: hex.EncodeToString(r.chain), PoPKey: r.pop,
	}
}

// op adds an operation request built from r with its expected outcome.
func (b *builder) op(description string, r request, o outcome) {
	req, built := b.encode(r)
	b.send(description, req, built, r.nonce, r.op, o)
}

// call adds an operation request signed with pop-p256.
func (b *builder) call(description string, o outcome, nonce uint64, tok []byte, op string, args ...token.Arg) {
	b.op(description, request{nonce: nonce, token: tok, pop: "pop-p256", op: op, args: args}, o)
}

// once adds an operation request signed with pop-p256 that uses a nonce
// outstanding when the case starts.
func (b *builder) once(description string, o outcome, tok []byte, op string, args ...token.Arg) {
	b.call(description, o, b.outstanding(), tok, op, args...)
}

// raw adds a request given as bytes. nonce and op are what the request
// carries, when the expected response depends on them.
func (b *builder) raw(description string, req []byte, nonce uint64, op string, o outcome) {
	b.send(description, req, nil, nonce, op, o)
}

// send adds a step: the request, and the response the outcome makes. For
// operation responses it draws the next nonce (v2) when the nonce verified
// and signs the response (v2) when the PoP signature verified, as the
// device must.
func (b *builder) send(description string, req []byte, built *Built, nonce uint64, op string, o outcome) {
	s := Step{
		Description: description, AdvanceSeconds: o.advance, Request: hex.EncodeToString(req), Built: built,
		Status: uint32(o.status), Check: o.check, Reason: o.reason,
	}
	if (o.check == "none") != (o.reason == "") || (o.check == "none") != (o.status == wire.StatusSuccess) {
		fail("%s: status %v, check %q, reason %q disagree", b.c.Name, o.status, o.check, o.reason)
	}
	var resp wire.Response
	switch o.check {
	case "size", "envelope":
		resp = wire.Response{Type: wire.TypeErrorResponse, Status: o.status}
		if o.respType != 0 {
			resp.Type = o.respType
		}
	default:
		resp = wire.Response{Type: wire.TypeOperationResponse, Status: o.status}
		s.HandlerRan = o.check == "none" || o.check == "response" ||
			o.check == "operation" && (o.status == wire.StatusOperationFailed || o.status == wire.StatusInternalError)
		if o.status == wire.StatusSuccess {
			resp.Data = []byte{}
			if h, found := b.ops[op]; found {
				resp.Data = must(hex.DecodeString(h.Data))
			} else if op != "sda-revoke" {
				fail("%s: success of %q, which has no handler", b.c.Name, op)
			}
		}
		if b.c.Setup.NextNonce && slices.Contains(nonceVerified, o.check) && !o.noNext {
			resp.NextNonce = b.draw()
		}
		if b.device != nil && slices.Contains(popVerified, o.check) {
			id := token.Identity{Endpoint: b.c.Setup.Identity.Endpoint, DeviceID: b.c.Setup.Identity.DeviceID}
			resp.Signed = must(token.SignResponse(&token.DeviceResponse{Status: uint32(o.status), Data: resp.Data, Nonce: nonce, Device: id}, b.device, nil))
		}
	}
	s.ResponseType = resp.Type
	s.Response = hex.EncodeToString(resp.Encode())
	b.step(s)
}
