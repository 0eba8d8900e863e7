package token_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// The proof-of-possession key of these tests is the P-256 key "11" of the
// COSE WG examples (testdata/cose-wg), so the cnf bytes are public values.
const (
	popX = "bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff"
	popY = "20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e"
	popD = "57c92077664146e876760c9520d054aa93c3afb04e306705db6090308507b4d3"
)

func fixedPoP(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d, _ := hex.DecodeString(popD)
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// annotated is a byte layout written as (hex, explanation) rows.
type annotated [][2]string

func (a annotated) bytes(t *testing.T) []byte {
	t.Helper()
	var b []byte
	for _, row := range a {
		h, err := hex.DecodeString(strings.ReplaceAll(row[0], " ", ""))
		if err != nil {
			t.Fatalf("bad hex in row %q: %v", row[1], err)
		}
		b = append(b, h...)
	}
	return b
}

func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

// TestSerializationV1Token pins the SDA v1 access token layout (docs/PROTOCOL.md
// section 4): every byte before the signature is explained below, and
// the 64-byte r||s signature after it must verify.
func TestSerializationV1Token(t *testing.T) {
	anchor := newKey(t, "P-256")
	pop := fixedPoP(t)
	claims := &token.Claims{
		Issuer:    "mbed.ta.TEST",
		Audience:  []string{"ep:hvac-1"},
		Expiry:    time.Unix(1800000000, 0),
		NotBefore: time.Unix(1700000000, 0),
		Scope:     mustScope(t, "read-data configure"),
		Key:       pop.Public(),
	}
	tok, err := token.Issue(claims, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := annotated{
		{"d8 3d", "tag 61: CWT (RFC 8392)"},
		{"d2", "tag 18: COSE_Sign1"},
		{"84", "array of 4"},
		{"43 a1 01 26", "protected header: bstr of 3 bytes holding {1: -7} (alg ES256)"},
		{"a0", "unprotected header: empty map"},
		{"58 8b", "payload: bstr of 139 bytes holding the claims"},
		{"a6", "  map of 6 claims; keys sorted by their encoding"},
		{"01 6c" + hexOf("mbed.ta.TEST"), "  1 iss: text(12) \"mbed.ta.TEST\""},
		{"03 81 69" + hexOf("ep:hvac-1"), "  3 aud: array(1) of text(9) \"ep:hvac-1\""},
		{"04 1a 6b49d200", "  4 exp: uint32 1800000000"},
		{"05 1a 6553f100", "  5 nbf: uint32 1700000000"},
		{"0c 73" + hexOf("read-data configure"), "  12 scope (SDA v1 key): text(19)"},
		{"18 19", "  25 cnf (SDA v1 key)"},
		{"a1 01", "    {1: COSE_Key}"},
		{"a4", "      COSE_Key: map of 4"},
		{"01 02", "      kty: EC2"},
		{"20 01", "      crv (-1): P-256"},
		{"21 58 20" + popX, "      x (-2): bstr(32)"},
		{"22 58 20" + popY, "      y (-3): bstr(32)"},
		{"58 40", "signature: bstr of 64 bytes, r||s"},
	}.bytes(t)
	if len(tok) != len(want)+64 || !bytes.Equal(tok[:len(want)], want) {
		t.Fatalf("v1 token layout\n got %x\nwant %x + 64 signature bytes", tok, want)
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(anchor.Public()); err != nil {
		t.Fatal(err)
	}
}

// TestSerializationV1Request pins the signed bundle and its envelope (docs/PROTOCOL.md
// sections 6 and 2) as the original technician SDK lays them
// out.
func TestSerializationV1Request(t *testing.T) {
	anchor := newKey(t, "P-256")
	pop := fixedPoP(t)
	tok, err := token.Issue(&token.Claims{
		Issuer: "mbed.ta.TEST", Audience: []string{"ep:hvac-1"},
		Expiry: time.Unix(1800000000, 0), NotBefore: time.Unix(1700000000, 0),
		Scope: mustScope(t, "read-data configure"), Key: pop.Public(),
	}, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 216 {
		t.Fatalf("token of %d bytes, the layout below assumes 216", len(tok))
	}
	req, err := token.SignRequest(&token.Request{
		Nonce:     0x1122334455667788,
		Operation: token.Operation{Name: "configure", Args: []token.Arg{token.Int(21), token.Text("fan")}},
		Token:     tok,
	}, pop, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := annotated{
		{"d2", "tag 18: COSE_Sign1"},
		{"84", "array of 4"},
		{"43 a1 01 26", "protected header: bstr(3) {1: -7} (ES256)"},
		{"a0", "unprotected header: empty map"},
		{"58 f6", "payload: bstr of 246 bytes holding the bundle"},
		{"83", "  Bundle: array of 3"},
		{"1b 1122334455667788", "  nonce: uint64"},
		{"83", "  Operation: array of 3"},
		{"01", "    type 1: function call"},
		{"69" + hexOf("configure"), "    name: text(9)"},
		{"82 15 63" + hexOf("fan"), "    arguments: array(2) of 21 and text(3) \"fan\""},
		{"58 d8" + hex.EncodeToString(tok), "  token: bstr(216), the access token bytes"},
		{"58 40", "signature: bstr of 64 bytes, r||s, by the PoP key"},
	}.bytes(t)
	if len(req) != len(want)+64 || !bytes.Equal(req[:len(want)], want) {
		t.Fatalf("v1 request layout\n got %x\nwant %x + 64 signature bytes", req, want)
	}
	sr, err := token.ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sr.Verify(pop.Public()); err != nil {
		t.Fatal(err)
	}

	env := wire.EncodeOperationRequest(req)
	wantEnv := annotated{
		{"82", "envelope: array of 2"},
		{"03", "message type 3: operation request"},
		{"59 0141", "bstr of 321 bytes: the signed bundle"},
	}.bytes(t)
	if !bytes.Equal(env[:len(wantEnv)], wantEnv) || !bytes.Equal(env[len(wantEnv):], req) || len(req) != 321 {
		t.Fatalf("envelope\n got %x\nwant %x + request", env[:8], wantEnv)
	}
	if !bytes.Equal(wire.NonceRequest, []byte{0x81, 0x01}) {
		t.Fatalf("nonce request %x, want 81 01", wire.NonceRequest)
	}
}
