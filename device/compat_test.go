package device_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
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

// v1Token signs v1 claims for the world's technician, issued by iss, with
// key (ES256), protected and unprotected headers given encoded.
func (w *world) v1Token(key crypto.Signer, iss string, protected, unprotected []byte) []byte {
	w.t.Helper()
	claims := v1Claims(iss, "ep:hvac-1", testNow.Add(time.Hour).Unix(), testNow.Add(-time.Minute).Unix(), "read-data", &w.pop.(*ecdsa.PrivateKey).PublicKey, nil)
	return rawSign1(w.t, []byte{0xd8, 0x3d, 0xd2}, protected, unprotected, claims, key.(*ecdsa.PrivateKey))
}

// withKid returns the ES256 protected header {1: -7, 4: kid} and the
// unprotected header {4: kid}, encoded.
func withKid(kid []byte) (protected, unprotected []byte) {
	return appendBstr([]byte{0xa2, 0x01, 0x26, 0x04}, kid), appendBstr([]byte{0xa1, 0x04}, kid)
}

// Deployed v1 devices ignore kid and find the anchor by iss, so a v1 token
// that carries a kid (the v1 issuer sends none, but other issuers and COSE
// libraries do) is accepted whatever the kid: it only decides which of the
// issuer's anchors are tried first. v2 tokens keep selecting by kid.
func TestV1TokenWithKidFindsTheAnchorByIssuer(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.Throttle.Failures = -1 })
	kid := []byte("AsymmetricECDSA256")
	prot, unprot := withKid(kid)
	plain := []byte{0xa1, 0x01, 0x26}
	// The world's anchor has no key id (its key id is its thumbprint).
	for name, tok := range map[string][]byte{
		"kid protected":   w.v1Token(w.anchorKey, w.anchor.Issuer, prot, []byte{0xa0}),
		"kid unprotected": w.v1Token(w.anchorKey, w.anchor.Issuer, plain, unprot),
	} {
		if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
			t.Errorf("%s: status %v, check %v: %v", name, r.Status, d.Check, d.Err)
		}
	}

	// A second anchor of the issuer, with a key id: the kid chooses, and
	// a kid naming the other anchor, or none of them, still finds the key.
	second := newKey(t, "P-256")
	if err := w.store.Add(trust.Anchor{Issuer: w.anchor.Issuer, KeyID: []byte("2026"), Key: second.Public()}); err != nil {
		t.Fatal(err)
	}
	thumb, _ := token.Thumbprint(w.anchorKey.Public())
	for name, c := range map[string]struct {
		key crypto.Signer
		kid []byte
	}{
		"second by its kid":         {second, []byte("2026")},
		"second by the first's kid": {second, thumb},
		"second by an unknown kid":  {second, kid},
		"first by the second's kid": {w.anchorKey, []byte("2026")},
		"first by its thumbprint":   {w.anchorKey, thumb},
	} {
		prot, _ := withKid(c.kid)
		if r, d := w.do(w.v1Token(c.key, w.anchor.Issuer, prot, []byte{0xa0}), "read-data"); r.Status != wire.StatusSuccess {
			t.Errorf("%s: status %v, check %v: %v", name, r.Status, d.Check, d.Err)
		}
	}

	// The kid never stands in for the signature or the issuer.
	r, d := w.do(w.v1Token(newKey(t, "P-256"), w.anchor.Issuer, prot, []byte{0xa0}), "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckTokenSignature, token.ErrSignature)
	r, d = w.do(w.v1Token(w.anchorKey, "mbed.ta.UNKNOWN", prot, []byte{0xa0}), "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrUnknownAnchor)

	// v2: the kid selects (docs/PROTOCOL.md section 4.1).
	r, d = w.do(w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2, KeyID: kid}, nil), "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckAnchor, device.ErrUnknownAnchor)
}

// The reference device answers every envelope that starts as an operation
// request, an array whose first element is 3, with an operation response
// ({_ 1: 4, 2: 2} when it is malformed), and other malformed envelopes with
// an error response ({_ 1: 255, 2: 2}).
func TestV1MalformedEnvelopes(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name, req, want string
	}{
		{"[3, 1]", "8203 01", "bf01040202ff"},
		{"[3, text]", "8203 6161", "bf01040202ff"},
		{"[3, []]", "8203 80", "bf01040202ff"},
		{"[3, {}]", "8203 a0", "bf01040202ff"},
		{"[3, false]", "8203 f4", "bf01040202ff"},
		{"[3]", "8103", "bf01040202ff"},
		{"[3, h'']", "8203 40", "bf01040202ff"},
		{"[3, bstr, 0]", "8303 4100 00", "bf01040202ff"},
		{"[_ 3, bstr]", "9f03 4100 ff", "bf01040202ff"},
		{"[3, bstr] 0", "8203 4100 00", "bf01040202ff"},
		{"[3, bstr] (malformed bundle)", "8203 4100", "bf01040202ff"},
		{"[]", "80", "bf0118ff0202ff"},
		{"[2]", "8102", "bf0118ff0202ff"},
		{"[1, 0]", "8201 00", "bf0118ff0202ff"},
		{"[-3, bstr]", "8222 4100", "bf0118ff0202ff"},
		{"{3: h''}", "a103 40", "bf0118ff0202ff"},
		{"3", "03", "bf0118ff0202ff"},
	} {
		req, _ := hex.DecodeString(strings.ReplaceAll(tc.req, " ", ""))
		resp, d := w.agent.Handle(context.Background(), req)
		if got := hex.EncodeToString(resp); got != tc.want {
			t.Errorf("%s: response %s, want %s", tc.name, got, tc.want)
		}
		if d.Status != wire.StatusInvalidRequest || !errors.Is(d.Err, token.ErrMalformed) {
			t.Errorf("%s: decision %v %v", tc.name, d.Status, d.Err)
		}
	}
}
