//lint:file-ignore SA1019 the tests build invalid ECDSA keys from raw coordinates on purpose

package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// Edwards25519 (RFC 8032 section 5.1) in math/big: the test's own
// computation of the points of small order, independent of the package
// under test and of crypto/ed25519. Slow and simple, affine coordinates.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int { // -121665/121666
		d := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, edP)
	}()
	edL, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10) // 2^252 + 27742317777372353535851937790883648493
)

type edPoint struct{ x, y *big.Int }

var edIdentity = edPoint{big.NewInt(0), big.NewInt(1)}

func (a edPoint) equal(b edPoint) bool { return a.x.Cmp(b.x) == 0 && a.y.Cmp(b.y) == 0 }

// add is the complete twisted Edwards addition law with a = -1.
func (a edPoint) add(b edPoint) edPoint {
	mod := func(v *big.Int) *big.Int { return v.Mod(v, edP) }
	xx, yy := mod(new(big.Int).Mul(a.x, b.x)), mod(new(big.Int).Mul(a.y, b.y))
	dxy := mod(new(big.Int).Mul(edD, mod(new(big.Int).Mul(xx, yy))))
	xNum := mod(new(big.Int).Add(new(big.Int).Mul(a.x, b.y), new(big.Int).Mul(a.y, b.x)))
	yNum := mod(new(big.Int).Add(yy, xx))
	xDen := new(big.Int).ModInverse(mod(new(big.Int).Add(big.NewInt(1), dxy)), edP)
	yDen := new(big.Int).ModInverse(mod(new(big.Int).Sub(big.NewInt(1), dxy)), edP)
	return edPoint{mod(xNum.Mul(xNum, xDen)), mod(yNum.Mul(yNum, yDen))}
}

func (a edPoint) mul(k *big.Int) edPoint {
	r := edIdentity
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = r.add(r)
		if k.Bit(i) == 1 {
			r = r.add(a)
		}
	}
	return r
}

// edDecode returns the point with coordinate y whose x has the given
// parity (RFC 8032 section 5.1.3, without its canonicity checks).
func edDecode(y *big.Int, odd uint) (edPoint, bool) {
	y = new(big.Int).Mod(y, edP)
	yy := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(yy, big.NewInt(1))
	v := new(big.Int).Add(new(big.Int).Mul(edD, yy), big.NewInt(1))
	xx := new(big.Int).Mul(u, new(big.Int).ModInverse(v.Mod(v, edP), edP))
	xx.Mod(xx, edP)
	x := new(big.Int).ModSqrt(xx, edP)
	if x == nil {
		return edPoint{}, false
	}
	if x.Bit(0) != odd {
		x.Sub(edP, x).Mod(x, edP)
	}
	return edPoint{x, y}, true
}

// edEncode returns the 32-byte little-endian encoding of y, plus p times
// extraP, with the sign bit set to sign (RFC 8032 section 5.1.2, and the
// non-canonical encodings a verifier may be given).
func edEncode(y *big.Int, extraP int64, sign uint) []byte {
	v := new(big.Int).Add(y, new(big.Int).Mul(edP, big.NewInt(extraP)))
	b := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	b[31] |= byte(sign << 7)
	return b
}

// smallOrderPoints computes the 8 points of order dividing 8: the torsion
// component [l]P of curve points P, until one has order 8, and its
// multiples.
func smallOrderPoints(t testing.TB) []edPoint {
	t.Helper()
	for y := int64(2); y < 100; y++ {
		p, ok := edDecode(big.NewInt(y), 0)
		if !ok {
			continue
		}
		tor := p.mul(edL)
		if tor.mul(big.NewInt(4)).equal(edIdentity) {
			continue // order 1, 2 or 4: try another point
		}
		if !tor.mul(big.NewInt(8)).equal(edIdentity) {
			t.Fatalf("[8][l]P is not the identity for y = %d", y)
		}
		pts := []edPoint{edIdentity}
		for k := 1; k < 8; k++ {
			pts = append(pts, pts[k-1].add(tor))
		}
		return pts
	}
	t.Fatal("no point of order 8 found")
	return nil
}

// weakEd25519Encodings returns every 32-byte encoding of a point of small
// order a verifier may be handed: each point's y with either sign bit, and
// y + p when that still fits in 255 bits. Fourteen in all.
func weakEd25519Encodings(t testing.TB, pts []edPoint) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pt := range pts {
		for sign := uint(0); sign < 2; sign++ {
			for extra := int64(0); extra < 2; extra++ {
				if extra == 1 && pt.y.Cmp(big.NewInt(19)) >= 0 {
					continue // y + p would need 256 bits
				}
				enc := edEncode(pt.y, extra, sign)
				name := fmt.Sprintf("y=%x sign %d", pt.y.Bytes(), sign)
				if extra == 1 {
					name = fmt.Sprintf("y=p+%d sign %d", pt.y, sign)
				}
				out[name] = enc
			}
		}
	}
	if len(out) != 14 {
		t.Fatalf("%d encodings of small-order points, want 14", len(out))
	}
	return out
}

// forgeEdDSA finds, without any private key, an i and a signature R || 0
// that crypto/ed25519.Verify accepts over msg(i) for the public key pub:
// with a small-order key A and S = 0, the check [S]B = R + [k]A holds
// whenever R = [-k]A, and R ranges over the 8 small-order points.
func forgeEdDSA(t testing.TB, pub []byte, pts []edPoint, msg func(i int) []byte) (int, []byte) {
	t.Helper()
	for i := 0; i < 64; i++ {
		m := msg(i)
		for _, r := range pts {
			sig := append(edEncode(r.y, 0, uint(r.x.Bit(0))), make([]byte, 32)...)
			if ed25519.Verify(pub, m, sig) {
				return i, sig
			}
		}
	}
	t.Fatalf("no forgery found for %x", pub)
	return 0, nil
}

// edDSARequest builds an operation request signed with EdDSA by hand,
// 18([h'A10127', {}, bstr .cbor [nonce, [1, "open", []], token], sig]),
// and returns it with the bytes its signature covers.
func edDSARequest(t testing.TB, nonce uint64, tok, sig []byte) (req, tbs []byte) {
	t.Helper()
	protected := []byte{0xa1, 0x01, 0x27}
	payload := enc(t, []any{nonce, []any{1, "open", []any{}}, tok})
	tbs = enc(t, []any{"Signature1", protected, []byte{}, payload})
	return append([]byte{0xd2}, enc(t, []any{protected, map[int]any{}, payload, sig})...), tbs
}

// ed25519SPKI is the DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410).
func ed25519SPKI(pub []byte) []byte {
	return append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, pub...)
}

// TestWeakEd25519KeysAreRefused: with an Ed25519 public key of small
// order, crypto/ed25519.Verify accepts signatures made without any private
// key (shown here for each of the 14 encodings). Every entry point of a
// public key refuses all of them with ErrWeakKey, which also matches
// ErrUnsupportedKey: the request verification (the attack itself), the
// COSE_Key, DER and PEM parsers, a token's cnf, Issue, token verification,
// and the encoders.
func TestWeakEd25519KeysAreRefused(t *testing.T) {
	pts := smallOrderPoints(t)
	anchor, pop := newKey(t, "P-256"), newKey(t, "Ed25519")
	goodTok, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: mustScope(t, "open"), Key: pop.Public()},
		anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	weak := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, token.ErrWeakKey) || !errors.Is(err, token.ErrUnsupportedKey) {
			t.Errorf("%s: %v, want ErrWeakKey (and ErrUnsupportedKey)", what, err)
		}
	}
	for name, a := range weakEd25519Encodings(t, pts) {
		t.Run(name, func(t *testing.T) {
			pub := ed25519.PublicKey(a)

			// The attack: a request "signed" without a private key.
			i, sig := forgeEdDSA(t, a, pts, func(i int) []byte {
				_, tbs := edDSARequest(t, uint64(i+1), goodTok, nil)
				return tbs
			})
			req, _ := edDSARequest(t, uint64(i+1), goodTok, sig)
			sr, err := token.ParseRequest(req)
			if err != nil {
				t.Fatalf("forged request does not parse: %v", err)
			}
			_, err = sr.Verify(pub)
			weak(t, "SignedRequest.Verify", err)
			signedResp, err := token.SignResponse(&token.DeviceResponse{Nonce: 1}, pop, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = token.VerifyResponse(signedResp, pub)
			weak(t, "VerifyResponse with the key as the device's", err)

			// Parsers.
			cose := enc(t, map[int]any{1: 1, -1: 6, -2: a})
			_, err = token.ParseCOSEKey(cose)
			weak(t, "ParseCOSEKey", err)
			if !errors.Is(err, token.ErrMalformed) {
				t.Errorf("ParseCOSEKey: %v is not a parse error", err)
			}
			_, err = token.ParsePublicKeyDER(ed25519SPKI(a))
			weak(t, "ParsePublicKeyDER", err)
			_, err = token.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ed25519SPKI(a)}))
			weak(t, "ParsePublicKeyPEM", err)

			// A token whose cnf is the weak key, signed by a real anchor.
			m2 := claimsMap(t, anchor.(*ecdsa.PrivateKey))
			m2[8], m2[9] = map[int]any{1: map[int]any{1: 1, -1: 6, -2: a}}, "open"
			delete(m2, 12)
			delete(m2, 25)
			_, err = token.Parse(rawSign1(t, anchor.(*ecdsa.PrivateKey), cwtTags, protES256, emptyMap, enc(t, m2)))
			weak(t, "Parse of a token with the key as cnf", err)

			// Issuing, verifying and encoding.
			_, err = token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: mustScope(t, "open"), Key: pub},
				anchor, &token.IssueOptions{Profile: token.ProfileV2})
			weak(t, "Issue with the key as cnf", err)
			p, err := token.Parse(goodTok)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Verify(pub)
			weak(t, "Token.Verify with the key as anchor", err)
			_, err = token.AlgorithmFor(pub)
			weak(t, "AlgorithmFor", err)
			_, err = token.MarshalCOSEKey(pub)
			weak(t, "MarshalCOSEKey", err)
			_, err = token.MarshalPublicKeyDER(pub)
			weak(t, "MarshalPublicKeyDER", err)
			_, err = token.Thumbprint(pub)
			weak(t, "Thumbprint", err)
			if token.EqualKeys(pub, pub) {
				t.Error("EqualKeys accepted a weak key")
			}
		})
	}
}

// badSigner is a crypto.Signer whose public key is pub and which never
// gets to sign.
type badSigner struct {
	ecdsa.PrivateKey
	pub *ecdsa.PublicKey
}

func (s *badSigner) Public() crypto.PublicKey { return s.pub }

// TestInvalidECDSAKeysAreRefused: a hand-built *ecdsa.PublicKey whose
// point is off its curve, is the point at infinity (written (0, 0) by
// crypto/elliptic), or has a coordinate out of range is refused by every
// function with ErrUnsupportedKey, never used to verify (an ECDSA verifier
// that took the point at infinity as key would accept forgeries).
func TestInvalidECDSAKeysAreRefused(t *testing.T) {
	for _, kind := range []string{"P-256", "P-384"} {
		k := newKey(t, kind).(*ecdsa.PrivateKey)
		p := k.Curve.Params().P
		anchor := newKey(t, kind).(*ecdsa.PrivateKey)
		tok, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: mustScope(t, "open"), Key: k.Public()},
			anchor, &token.IssueOptions{Profile: token.ProfileV2})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := token.SignRequest(&token.Request{Nonce: 1, Operation: token.Operation{Name: "open"}, Token: tok}, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, pub := range map[string]*ecdsa.PublicKey{
			"off the curve":   {Curve: k.Curve, X: k.X, Y: new(big.Int).Add(k.Y, big.NewInt(1))},
			"infinity (0, 0)": {Curve: k.Curve, X: new(big.Int), Y: new(big.Int)},
			"x + p":           {Curve: k.Curve, X: new(big.Int).Add(k.X, p), Y: k.Y},
			"y + p":           {Curve: k.Curve, X: k.X, Y: new(big.Int).Add(k.Y, p)},
			"negative y":      {Curve: k.Curve, X: k.X, Y: new(big.Int).Neg(k.Y)},
		} {
			t.Run(kind+" "+name, func(t *testing.T) {
				bad := func(what string, err error) {
					t.Helper()
					if !errors.Is(err, token.ErrUnsupportedKey) {
						t.Errorf("%s: %v, want ErrUnsupportedKey", what, err)
					}
				}
				_, err := token.AlgorithmFor(pub)
				bad("AlgorithmFor", err)
				_, err = token.MarshalCOSEKey(pub)
				bad("MarshalCOSEKey", err)
				_, err = token.MarshalPublicKeyDER(pub)
				bad("MarshalPublicKeyDER", err)
				_, err = token.Thumbprint(pub)
				bad("Thumbprint", err)
				_, err = token.AnchorName(pub)
				bad("AnchorName", err)
				parsed, err := token.Parse(tok)
				if err != nil {
					t.Fatal(err)
				}
				_, err = parsed.Verify(pub)
				bad("Token.Verify", err)
				sr, err := token.ParseRequest(signed)
				if err != nil {
					t.Fatal(err)
				}
				_, err = sr.Verify(pub)
				bad("SignedRequest.Verify", err)
				_, err = token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: mustScope(t, "open"), Key: pub},
					anchor, &token.IssueOptions{Profile: token.ProfileV2})
				bad("Issue with the key as cnf", err)
				_, err = token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: mustScope(t, "open"), Key: k.Public()},
					&badSigner{*anchor, pub}, &token.IssueOptions{Profile: token.ProfileV2})
				bad("Issue by a signer with the key", err)
				if token.EqualKeys(pub, pub) {
					t.Error("EqualKeys accepted the key")
				}
			})
		}
	}
}

// TestEd25519KeyCheckBoundaries: the check refuses every encoding with
// y >= p (non-canonical), and nothing a key generator produces, nor the
// canonical neighbours of p, nor a point of mixed order (small-order
// component plus a real key, harmless without the real key's private half).
func TestEd25519KeyCheckBoundaries(t *testing.T) {
	for extra := int64(2); extra < 19; extra++ {
		for sign := uint(0); sign < 2; sign++ {
			a := edEncode(big.NewInt(extra), 1, sign) // p + extra
			if _, err := token.AlgorithmFor(ed25519.PublicKey(a)); !errors.Is(err, token.ErrWeakKey) {
				t.Errorf("y = p+%d, sign %d: %v, want ErrWeakKey", extra, sign, err)
			}
		}
	}
	for below := int64(2); below < 20; below++ {
		y := new(big.Int).Sub(edP, big.NewInt(below))
		if _, err := token.AlgorithmFor(ed25519.PublicKey(edEncode(y, 0, 0))); err != nil {
			t.Errorf("y = p-%d: %v", below, err)
		}
	}
	for i := 0; i < 200; i++ {
		pub := newKey(t, "Ed25519").Public()
		if _, err := token.AlgorithmFor(pub); err != nil {
			t.Fatalf("generated key %x: %v", pub, err)
		}
	}
	pts := smallOrderPoints(t)
	prime, ok := edDecode(big.NewInt(9), 0)
	if !ok {
		t.Fatal("y = 9 is not on the curve")
	}
	prime = prime.mul(big.NewInt(8)) // in the prime-order subgroup
	mixed := prime.add(pts[1])
	if _, err := token.AlgorithmFor(ed25519.PublicKey(edEncode(mixed.y, 0, uint(mixed.x.Bit(0))))); err != nil {
		t.Errorf("mixed-order key: %v", err)
	}
}
