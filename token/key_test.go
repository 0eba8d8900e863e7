package token_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// The example key of RFC 9679 section 6.
const (
	rfc9679X          = "65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d"
	rfc9679Y          = "1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c"
	rfc9679Thumbprint = "496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec"
	// Computed independently: SHA-256 over the DER SubjectPublicKeyInfo
	// 3059301306072a8648ce3d020106082a8648ce3d030107034200 || 04 || x || y.
	rfc9679AnchorName = "mbed.ta.EB28A65877D2B84B92A6A9B5FD762A45E50665933D97FC0C724E70A161F2031A"
)

func rfc9679Key(t *testing.T) *ecdsa.PublicKey {
	t.Helper()
	b, _ := hex.DecodeString("04" + rfc9679X + rfc9679Y)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestThumbprintAndAnchorName(t *testing.T) {
	k := rfc9679Key(t)
	tp, err := token.Thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(tp) != rfc9679Thumbprint {
		t.Fatalf("thumbprint %x, want %s (RFC 9679 section 6)", tp, rfc9679Thumbprint)
	}
	name, err := token.AnchorName(k)
	if err != nil {
		t.Fatal(err)
	}
	if name != rfc9679AnchorName {
		t.Fatalf("anchor name %s, want %s", name, rfc9679AnchorName)
	}
}

func TestKeyEncodings(t *testing.T) {
	for _, kind := range []string{"P-256", "P-384", "Ed25519"} {
		t.Run(kind, func(t *testing.T) {
			pub := newKey(t, kind).Public()
			ck, err := token.MarshalCOSEKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			got, err := token.ParseCOSEKey(ck)
			if err != nil || !token.EqualKeys(got, pub) {
				t.Fatalf("COSE_Key round trip: %v", err)
			}
			pemBytes, err := token.MarshalPublicKeyPEM(pub)
			if err != nil {
				t.Fatal(err)
			}
			got, err = token.ParsePublicKeyPEM(pemBytes)
			if err != nil || !token.EqualKeys(got, pub) {
				t.Fatalf("PEM round trip: %v", err)
			}
			der, _ := token.MarshalPublicKeyDER(pub)
			got, err = token.ParsePublicKeyDER(der)
			if err != nil || !token.EqualKeys(got, pub) {
				t.Fatalf("DER round trip: %v", err)
			}
		})
	}
	// Left padding: a coordinate with leading zero bytes stays 32 bytes long.
	for i := 0; i < 300; i++ {
		pub := newKey(t, "P-256").Public().(*ecdsa.PublicKey)
		b, _ := pub.Bytes()
		if b[1] != 0 && b[33] != 0 {
			continue
		}
		ck, _ := token.MarshalCOSEKey(pub)
		if !bytes.Contains(ck, append([]byte{0x21, 0x58, 0x20}, b[1:33]...)) || !bytes.Contains(ck, append([]byte{0x22, 0x58, 0x20}, b[33:]...)) {
			t.Fatalf("coordinates not left-padded in %x", ck)
		}
		return
	}
	t.Log("no key with a leading zero coordinate byte in 300 tries; padding checked by the round trips only")
}

func TestParseCOSEKeyRejects(t *testing.T) {
	x, _ := hex.DecodeString(rfc9679X)
	y, _ := hex.DecodeString(rfc9679Y)
	_, edPriv, _ := ed25519.GenerateKey(nil)
	edPub := []byte(edPriv.Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name string
		key  any
		want error
	}{
		{"valid", map[int]any{1: 2, -1: 1, -2: x, -3: y}, nil},
		{"valid with kid and alg", map[int]any{1: 2, -1: 1, -2: x, -3: y, 2: []byte("k"), 3: -7}, nil},
		{"compressed", map[int]any{1: 2, -1: 1, -2: x, -3: y[31]&1 == 1}, nil},
		{"Ed25519", map[int]any{1: 1, -1: 6, -2: edPub}, nil},
		{"wrong compressed sign still on curve", map[int]any{1: 2, -1: 1, -2: x, -3: y[31]&1 == 0}, nil},
		{"alg mismatch", map[int]any{1: 2, -1: 1, -2: x, -3: y, 3: -35}, token.ErrAlgorithmMismatch},
		{"not on curve", map[int]any{1: 2, -1: 1, -2: x, -3: x}, token.ErrUnsupportedKey},
		{"P-521", map[int]any{1: 2, -1: 3, -2: x, -3: y}, token.ErrUnsupportedKey},
		{"Ed448", map[int]any{1: 1, -1: 7, -2: edPub}, token.ErrUnsupportedKey},
		{"Ed25519 identity point", map[int]any{1: 1, -1: 6, -2: append([]byte{1}, make([]byte, 31)...)}, token.ErrWeakKey},
		{"symmetric", map[int]any{1: 4, -1: []byte("secret")}, token.ErrMalformed},
		{"private", map[int]any{1: 2, -1: 1, -2: x, -3: y, -4: x}, token.ErrMalformed},
		{"short x", map[int]any{1: 2, -1: 1, -2: x[1:], -3: y}, token.ErrMalformed},
		{"long y", map[int]any{1: 2, -1: 1, -2: x, -3: append([]byte{0}, y...)}, token.ErrMalformed},
		{"missing y", map[int]any{1: 2, -1: 1, -2: x}, token.ErrMalformed},
		{"missing crv", map[int]any{1: 2, -2: x, -3: y}, token.ErrMalformed},
		{"Ed25519 with y", map[int]any{1: 1, -1: 6, -2: edPub, -3: y}, token.ErrMalformed},
		{"text label", map[any]any{1: 2, -1: 1, -2: x, -3: y, "x": 1}, token.ErrMalformed},
		{"unknown label", map[int]any{1: 2, -1: 1, -2: x, -3: y, 9: 1}, token.ErrMalformed},
		{"not a map", []any{1, 2}, token.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.ParseCOSEKey(enc(t, tc.key))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := token.ParsePublicKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("private key PEM: %v", err)
	}
	if _, err := token.ParsePublicKeyPEM([]byte("not pem")); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("not PEM: %v", err)
	}
}

// TestParsePublicKeyPEMStrict: a PEM public key is exactly one "PUBLIC
// KEY" block with nothing but whitespace around it; a second key (which
// would be silently ignored), text around the block and PEM headers are
// malformed.
func TestParsePublicKeyPEMStrict(t *testing.T) {
	one, err := token.MarshalPublicKeyPEM(newKey(t, "P-256").Public())
	if err != nil {
		t.Fatal(err)
	}
	two, _ := token.MarshalPublicKeyPEM(newKey(t, "P-256").Public())
	priv := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withHeader := bytes.Replace(one, []byte("-----\n"), []byte("-----\nComment: x\n\n"), 1)
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"one block", one, true},
		{"whitespace around", cat([]byte("\n \t\r\n"), one, []byte("\n\n  ")), true},
		{"CRLF line ends", bytes.ReplaceAll(one, []byte("\n"), []byte("\r\n")), true},
		{"no final newline", bytes.TrimSpace(one), true},
		{"two keys", cat(one, two), false},
		{"the same key twice", cat(one, one), false},
		{"a private key after", cat(one, priv), false},
		{"text before", cat([]byte("key:\n"), one), false},
		{"text after", cat(one, []byte("trailer\n")), false},
		{"a truncated second block", cat(one, []byte("-----BEGIN PUBLIC KEY-----\n")), false},
		{"PEM headers", withHeader, false},
		{"empty", nil, false},
		{"whitespace only", []byte(" \n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := token.ParsePublicKeyPEM(tc.data)
			if tc.ok && (err != nil || pub == nil) {
				t.Fatalf("ParsePublicKeyPEM: %v", err)
			}
			if !tc.ok && !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParsePublicKeyPEM = %v, %v; want ErrMalformed", pub, err)
			}
		})
	}
}

func TestEqualKeys(t *testing.T) {
	a, b := newKey(t, "P-256").Public(), newKey(t, "P-256").Public()
	if !token.EqualKeys(a, a) || token.EqualKeys(a, b) {
		t.Fatal("EqualKeys compares wrongly")
	}
	var nilKey *ecdsa.PublicKey
	if token.EqualKeys(nilKey, a) || token.EqualKeys(a, nilKey) || token.EqualKeys(nil, nil) {
		t.Fatal("EqualKeys accepted a nil key")
	}
}

// TestKeyWithoutCoordinates: an *ecdsa.PublicKey with a curve but no point
// (a zero value filled in halfway, say in an anchor store) is an invalid
// key for every function of the package, never a panic.
func TestKeyWithoutCoordinates(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		k := &ecdsa.PublicKey{Curve: curve}
		t.Run(curve.Params().Name, func(t *testing.T) {
			if _, err := token.AlgorithmFor(k); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("AlgorithmFor: %v", err)
			}
			if _, err := token.MarshalCOSEKey(k); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("MarshalCOSEKey: %v", err)
			}
			if _, err := token.Thumbprint(k); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("Thumbprint: %v", err)
			}
			if _, err := token.AnchorName(k); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("AnchorName: %v", err)
			}
			if token.EqualKeys(k, k) {
				t.Error("EqualKeys accepted a key without a point")
			}
			anchor := newKey(t, "P-256")
			tok, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, NotBefore: testNow,
				Scope: mustScope(t, "ab"), Key: anchor.Public()}, anchor, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := token.Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Verify(k); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("Verify: %v", err)
			}
			if _, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, NotBefore: testNow,
				Scope: mustScope(t, "ab"), Key: k}, anchor, nil); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("Issue with the key as cnf: %v", err)
			}
		})
	}
}

// derSigner is a P-256 crypto.Signer that returns a fixed DER signature.
type derSigner struct {
	pub crypto.PublicKey
	der []byte
}

func (s derSigner) Public() crypto.PublicKey { return s.pub }
func (s derSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return s.der, nil
}

// TestSignerDERChecked: the DER signature of a crypto.Signer (an HSM, say)
// is converted to r||s only when r and s are DER INTEGERs in 1..2^256-1; a
// zero, negative, non-minimal or oversized component is an error, not a
// token nobody can verify.
func TestSignerDERChecked(t *testing.T) {
	pub := newKey(t, "P-256").Public()
	big33 := append([]byte{0x02, 0x21, 0x01}, bytes.Repeat([]byte{0xff}, 32)...)
	one := []byte{0x02, 0x01, 0x01}
	seq := func(r, s []byte) []byte {
		return append([]byte{0x30, byte(len(r) + len(s))}, append(append([]byte{}, r...), s...)...)
	}
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"r zero", seq([]byte{0x02, 0x01, 0x00}, one)},
		{"s zero", seq(one, []byte{0x02, 0x01, 0x00})},
		{"r negative", seq([]byte{0x02, 0x01, 0x80}, one)},
		{"r not minimal", seq([]byte{0x02, 0x02, 0x00, 0x01}, one)},
		{"r empty", seq([]byte{0x02, 0x00}, one)},
		{"r of 257 bits", seq(big33, one)},
		{"trailing bytes", append(seq(one, one), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &token.Request{Nonce: 1, Operation: token.Operation{Name: "x"}, Token: []byte{1}}
			if b, err := token.SignRequest(req, derSigner{pub, tc.der}, nil); !errors.Is(err, token.ErrSigner) {
				t.Fatalf("signature %x: %x, %v; want ErrSigner", tc.der, b, err)
			}
		})
	}
	// A component with its high bit set carries a leading zero in DER.
	high := append([]byte{0x02, 0x21, 0x00, 0x80}, bytes.Repeat([]byte{0x01}, 31)...)
	if _, err := token.SignRequest(&token.Request{Nonce: 1, Operation: token.Operation{Name: "x"}, Token: []byte{1}},
		derSigner{pub, seq(high, one)}, nil); err != nil {
		t.Fatalf("a well-formed signature with a high r: %v", err)
	}
}
