package device_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

// seqReader yields the bytes 01 02 03 ... so nonces are predictable.
type seqReader struct{ next byte }

func (r *seqReader) Read(p []byte) (int, error) {
	for i := range p {
		r.next++
		p[i] = r.next
	}
	return len(p), nil
}

// A request laid out byte for byte as the original technician SDK builds it
// (the v1 profile of docs/PROTOCOL.md) is accepted, and the responses are the v1 layout: an
// indefinite-length map with keys 3/4 before 1/2.
func TestV1Compatibility(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.Rand = &seqReader{} })
	ctx := context.Background()

	// Nonce request [1] -> {3: nonce, 1: 2, 2: 0}, indefinite length.
	resp := w.agent.Process(ctx, []byte{0x81, 0x01})
	if got, want := hex.EncodeToString(resp), "bf031b010203040506070801020200ff"; got != want {
		t.Fatalf("nonce response\n got %s\nwant %s", got, want)
	}
	const nonce = 0x0102030405060708

	tok := w.token(nil)
	if !bytes.HasPrefix(tok, []byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}) {
		t.Fatalf("v1 token layout: %x", tok[:9])
	}
	// Bundle = [nonce, [1, "read-data", [42, "zone"]], token]
	bundle := []byte{0x83, 0x1b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	bundle = append(bundle, 0x83, 0x01, 0x69)
	bundle = append(bundle, "read-data"...)
	bundle = append(bundle, 0x82, 0x18, 0x2a, 0x64)
	bundle = append(bundle, "zone"...)
	bundle = appendBstr(bundle, tok)
	// COSE_Sign1: 18([h'A10126', {}, bundle, r||s]) signed by the PoP key
	// over ["Signature1", h'A10126', h'', bundle].
	tbs := append([]byte{0x84, 0x6a}, "Signature1"...)
	tbs = append(tbs, 0x43, 0xa1, 0x01, 0x26, 0x40)
	tbs = appendBstr(tbs, bundle)
	digest := sha256.Sum256(tbs)
	r, s, err := ecdsa.Sign(rand.Reader, w.pop.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	signed := append([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}, appendBstr(nil, bundle)...)
	signed = append(append(signed, 0x58, 0x40), sig...)
	// Envelope [3, bstr .cbor signed]
	req := append([]byte{0x82, 0x03}, appendBstr(nil, signed)...)

	// token.SignRequest lays out the same bytes (up to the signature).
	ours, err := token.SignRequest(&token.Request{Nonce: nonce, Operation: token.Operation{Name: "read-data", Args: []token.Arg{token.Int(42), token.Text("zone")}}, Token: tok}, w.pop, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours[:len(ours)-64], signed[:len(signed)-64]) {
		t.Fatalf("SignRequest layout differs from the v1 SDK\n ours %x\n   v1 %x", ours[:len(ours)-64], signed[:len(signed)-64])
	}

	resp = w.agent.Process(ctx, req)
	// {4: h'6F6B3A726561642D64617461' ("ok:read-data"), 1: 4, 2: 0}
	if got, want := hex.EncodeToString(resp), "bf044c6f6b3a726561642d6461746101040200ff"; got != want {
		t.Fatalf("operation response\n got %s\nwant %s", got, want)
	}
	if w.calls[0].Operation.Args[1] != token.Text("zone") {
		t.Fatalf("args %v", w.calls[0].Operation.Args)
	}
	// Replayed: {1: 4, 2: 4}
	if got, want := hex.EncodeToString(w.agent.Process(ctx, req)), "bf01040204ff"; got != want {
		t.Fatalf("verification error response\n got %s\nwant %s", got, want)
	}
	// Unparseable: {1: 255, 2: 2}
	if got, want := hex.EncodeToString(w.agent.Process(ctx, []byte{0x80})), "bf0118ff0202ff"; got != want {
		t.Fatalf("error response\n got %s\nwant %s", got, want)
	}
}
