package token_test

import (
	"bytes"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/token"
)

// rfc8392 reads an example of RFC 8392 Appendix A from testdata/rfc8392
// (hex copied from the RFC; see testdata/README.md).
func rfc8392(t testing.TB, name string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join("testdata", "rfc8392", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// coseKeyParam returns the byte string under label in a COSE_Key of the
// RFC's examples (which carry private and symmetric keys, so the package's
// ParseCOSEKey, built for public keys, rightly refuses them).
func coseKeyParam(t testing.TB, key []byte, label int) []byte {
	t.Helper()
	var m map[int]cbor.RawMessage
	if err := cbor.Unmarshal(key, &m); err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := cbor.Unmarshal(m[label], &b); err != nil {
		t.Fatalf("label %d: %v", label, err)
	}
	return b
}

// coseArray decodes tag(array) and checks the tag number and length.
func coseArray(t testing.TB, msg []byte, tags []uint64, n int) []cbor.RawMessage {
	t.Helper()
	var raw cbor.RawMessage = msg
	for _, want := range tags {
		var tag cbor.RawTag
		if err := cbor.Unmarshal(raw, &tag); err != nil || tag.Number != want {
			t.Fatalf("tag %d: %v (%d)", want, err, tag.Number)
		}
		raw = tag.Content
	}
	var items []cbor.RawMessage
	if err := cbor.Unmarshal(raw, &items); err != nil || len(items) != n {
		t.Fatalf("want an array of %d: %d items, %v", n, len(items), err)
	}
	return items
}

func bstr(t testing.TB, raw cbor.RawMessage) []byte {
	t.Helper()
	var b []byte
	if err := cbor.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// ccmOpen decrypts AES-CCM with a 13-byte nonce and an 8-byte tag (COSE
// AES-CCM-16-64-128, RFC 9053 section 4.2; CCM is RFC 3610), which the
// standard library does not offer.
func ccmOpen(t testing.TB, key, nonce, ciphertext, aad []byte) ([]byte, bool) {
	t.Helper()
	const tagLen, lenLen = 8, 2
	block, err := aes.NewCipher(key)
	if err != nil || len(nonce) != 15-lenLen || len(ciphertext) < tagLen {
		t.Fatalf("ccm parameters: %v", err)
	}
	msg := make([]byte, len(ciphertext)-tagLen)
	ctr := func(i uint16) []byte {
		a := append(append([]byte{lenLen - 1}, nonce...), byte(i>>8), byte(i))
		s := make([]byte, 16)
		block.Encrypt(s, a)
		return s
	}
	for i := 0; i < len(msg); i += 16 {
		s := ctr(uint16(i/16 + 1))
		for j := i; j < len(msg) && j < i+16; j++ {
			msg[j] = ciphertext[j] ^ s[j-i]
		}
	}
	// CBC-MAC over B0, the encoded AAD length and AAD, then the message,
	// each padded to the block size.
	b0 := append([]byte{0x40 | (tagLen-2)/2<<3 | (lenLen - 1)}, nonce...)
	b0 = append(b0, byte(len(msg)>>8), byte(len(msg)))
	in := append(b0, byte(len(aad)>>8), byte(len(aad)))
	in = append(in, aad...)
	in = append(in, make([]byte, (16-len(in)%16)%16)...)
	in = append(in, msg...)
	in = append(in, make([]byte, (16-len(in)%16)%16)...)
	x := make([]byte, 16)
	for i := 0; i < len(in); i += 16 {
		for j := range x {
			x[j] ^= in[i+j]
		}
		block.Encrypt(x, x)
	}
	s0 := ctr(0)
	for j := 0; j < tagLen; j++ {
		x[j] ^= s0[j]
	}
	return msg, hmac.Equal(x[:tagLen], ciphertext[len(msg):])
}

// TestRFC8392Vectors checks that the copied examples are the RFC's, byte
// for byte, by their own cryptography: A.3 verifies with the A.2.3 key,
// A.4's MAC is HMAC 256/64 with the A.2.2 key, A.5 and A.6 decrypt with
// the A.2.1 key, and A.6's plaintext is A.3 (a nested CWT).
func TestRFC8392Vectors(t *testing.T) {
	claims := "a70175636f61703a2f2f61732e6578616d706c652e636f6d02656572696b77037818636f61703a2f2f6c696768742e6578616d706c652e636f6d041a5612aeb0051a5610d9f0061a5610d9f007420b71" // A.1
	signed := rfc8392(t, "a3-signed")
	t.Run("A.3 signed", func(t *testing.T) {
		key := rfc8392(t, "a2-3-ec256")
		pt := append(append([]byte{4}, coseKeyParam(t, key, -2)...), coseKeyParam(t, key, -3)...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			t.Fatal(err)
		}
		items := coseArray(t, signed, []uint64{18}, 4)
		if hex.EncodeToString(bstr(t, items[2])) != claims {
			t.Fatal("payload is not the A.1 claims")
		}
		tbs, _ := cbor.Marshal([]any{"Signature1", bstr(t, items[0]), []byte{}, bstr(t, items[2])})
		d := sha256.Sum256(tbs)
		sig := bstr(t, items[3])
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, d[:], r, s) {
			t.Fatal("signature does not verify")
		}
	})
	t.Run("A.4 MACed", func(t *testing.T) {
		items := coseArray(t, rfc8392(t, "a4-maced"), []uint64{61, 17}, 4)
		if hex.EncodeToString(bstr(t, items[2])) != claims {
			t.Fatal("payload is not the A.1 claims")
		}
		tbm, _ := cbor.Marshal([]any{"MAC0", bstr(t, items[0]), []byte{}, bstr(t, items[2])})
		m := hmac.New(sha256.New, coseKeyParam(t, rfc8392(t, "a2-2-symmetric256"), -1))
		m.Write(tbm)
		if !bytes.Equal(m.Sum(nil)[:8], bstr(t, items[3])) {
			t.Fatal("MAC does not verify")
		}
	})
	for _, tc := range []struct{ name, file, plaintext string }{
		{"A.5 encrypted", "a5-encrypted", claims},
		{"A.6 nested", "a6-nested", hex.EncodeToString(signed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := coseArray(t, rfc8392(t, tc.file), []uint64{16}, 3)
			var unprot map[int]cbor.RawMessage
			if err := cbor.Unmarshal(items[1], &unprot); err != nil {
				t.Fatal(err)
			}
			aad, _ := cbor.Marshal([]any{"Encrypt0", bstr(t, items[0]), []byte{}})
			pt, ok := ccmOpen(t, coseKeyParam(t, rfc8392(t, "a2-1-symmetric128"), -1), bstr(t, unprot[5]), bstr(t, items[2]), aad)
			if !ok || hex.EncodeToString(pt) != tc.plaintext {
				t.Fatalf("tag ok %v, plaintext %x", ok, pt)
			}
		})
	}
}

// TestUnsupportedCWTForms: a CWT this package does not implement (MACed,
// encrypted, multi-signer or nested, RFC 8392 section 6 and Appendix A.4
// to A.6) is refused with ErrUnsupportedForm, still a malformed token, and
// told apart from garbage and from a signed CWT that merely lacks claims.
func TestUnsupportedCWTForms(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	signed := rfc8392(t, "a3-signed")
	tagged := func(n uint64, content any) []byte { return enc(t, cbor.Tag{Number: n, Content: content}) }
	prot := []byte{0xa1, 0x01, 0x26}
	for _, tc := range []struct {
		name string
		tok  []byte
		want bool // ErrUnsupportedForm
	}{
		{"A.4 MACed CWT 61(17(COSE_Mac0))", rfc8392(t, "a4-maced"), true},
		{"A.4 without the CWT tag, 17(COSE_Mac0)", rfc8392(t, "a4-maced")[2:], true},
		{"A.5 encrypted CWT 16(COSE_Encrypt0)", rfc8392(t, "a5-encrypted"), true},
		{"A.5 with the CWT tag, 61(16(COSE_Encrypt0))", append([]byte{0xd8, 0x3d}, rfc8392(t, "a5-encrypted")...), true},
		{"A.6 nested CWT, 16(COSE_Encrypt0) around A.3", rfc8392(t, "a6-nested"), true},
		{"COSE_Encrypt 96", tagged(96, []any{prot, map[int]any{}, []byte{1}, []any{}}), true},
		{"COSE_Mac 97", tagged(61, cbor.Tag{Number: 97, Content: []any{prot, map[int]any{}, []byte{1}, []byte{2}, []any{}}}), true},
		{"COSE_Sign 98", tagged(98, []any{prot, map[int]any{}, []byte{1}, []any{}}), true},
		{"nested: a COSE_Sign1 whose payload is the signed CWT of A.3", rawSign1(t, anchor, cwtTags, protES256, emptyMap, signed), true},
		{"nested: payload a CWT tag 61", rawSign1(t, anchor, cwtTags, protES256, emptyMap, append([]byte{0xd8, 0x3d}, signed...)), true},
		{"nested: content type 61 in the protected header", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 3: 61}), emptyMap, signed[1:]), true},
		{"nested: content type application/cwt", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 3: "application/cwt"}), emptyMap, signed[1:]), true},

		{"A.3 signed CWT without SDA claims", signed, false},
		{"garbage", []byte("not a token"), false},
		{"another tag", tagged(19, []any{prot, map[int]any{}, []byte{1}, []byte{2}}), false},
		{"payload with an unrelated tag", rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, cbor.Tag{Number: 1, Content: 0})), false},
		{"truncated tag", []byte{0xd8}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.Parse(tc.tok)
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("Parse: %v, want ErrMalformed", err)
			}
			if got := errors.Is(err, token.ErrUnsupportedForm); got != tc.want {
				t.Fatalf("Parse: %v; matches ErrUnsupportedForm %v, want %v", err, got, tc.want)
			}
			var pe *token.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse: %v is not a *ParseError", err)
			}
		})
	}
}
