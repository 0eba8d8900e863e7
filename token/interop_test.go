package token

// Interoperability with github.com/veraison/go-cose, an independent COSE
// implementation: what we sign, it verifies; what it signs (with alg in the
// protected header), we verify.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/veraison/go-cose"
)

var interopAlgs = []struct {
	name    string
	alg     Algorithm
	coseAlg cose.Algorithm
	newKey  func() (crypto.Signer, error)
}{
	{"ES256", AlgES256, cose.AlgorithmES256, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"ES384", AlgES384, cose.AlgorithmES384, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }},
	{"EdDSA", AlgEdDSA, cose.AlgorithmEdDSA, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
}

func interopClaims(t *testing.T, pop crypto.PublicKey) *Claims {
	t.Helper()
	sc, err := ParseScope("read-data configure")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	return &Claims{
		Issuer:    "mbed.ta.TEST",
		Audience:  []string{"ep:hvac-1"},
		Expiry:    now.Add(time.Hour),
		NotBefore: now.Add(-time.Minute),
		Scope:     sc,
		Key:       pop,
	}
}

// goCOSEVerify verifies a tagged COSE_Sign1 with go-cose and returns its
// payload.
func goCOSEVerify(t *testing.T, msg []byte, alg cose.Algorithm, pub crypto.PublicKey) ([]byte, error) {
	t.Helper()
	v, err := cose.NewVerifier(alg, pub)
	if err != nil {
		t.Fatal(err)
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		t.Fatalf("go-cose cannot decode: %v", err)
	}
	return m.Payload, m.Verify(nil, v)
}

// TestInteropOursVerifiedByGoCOSE: tokens (61(18(COSE_Sign1)); go-cose reads
// the inner 18(...)) and requests (18(COSE_Sign1)) from Issue and
// SignRequest verify with go-cose's Sign1Message.Verify, and a changed
// signature does not.
func TestInteropOursVerifiedByGoCOSE(t *testing.T) {
	for _, a := range interopAlgs {
		t.Run(a.name, func(t *testing.T) {
			anchor, err := a.newKey()
			if err != nil {
				t.Fatal(err)
			}
			pop, err := a.newKey()
			if err != nil {
				t.Fatal(err)
			}
			opts := &IssueOptions{Profile: ProfileV2, KeyID: []byte("anchor-1")}
			if a.alg == AlgES256 {
				opts = nil // an SDA v1 token
			}
			tok, err := Issue(interopClaims(t, pop.Public()), anchor, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(tok, tagCWTPrefix) {
				t.Fatalf("token starts with % x", tok[:3])
			}
			inner := tok[len(tagCWTPrefix)-len(tagSign1Prefix):] // 18(COSE_Sign1)
			payload, err := goCOSEVerify(t, inner, a.coseAlg, anchor.Public())
			if err != nil {
				t.Fatalf("go-cose rejects our token: %v", err)
			}
			if _, err := decodeClaims(payload); err != nil {
				t.Fatalf("claims as go-cose sees them: %v", err)
			}

			req, err := SignRequest(&Request{Nonce: 7, Operation: Operation{Name: "configure", Args: []Arg{Int(21)}}, Token: tok}, pop, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := goCOSEVerify(t, req, a.coseAlg, pop.Public()); err != nil {
				t.Fatalf("go-cose rejects our request: %v", err)
			}

			bad := bytes.Clone(req)
			bad[len(bad)-1] ^= 1
			if _, err := goCOSEVerify(t, bad, a.coseAlg, pop.Public()); err == nil {
				t.Fatal("go-cose accepts a changed signature")
			}
		})
	}
}

// TestInteropGoCOSEVerifiedByUs: COSE_Sign1 messages signed by go-cose, with
// alg in the protected header, a kid in the unprotected header and external
// AAD, parse with parseSign1 and verify with (*sign1).verify; and a token
// whose claims we encode but go-cose signs goes through the public Parse and
// Token.Verify.
func TestInteropGoCOSEVerifiedByUs(t *testing.T) {
	for _, a := range interopAlgs {
		t.Run(a.name, func(t *testing.T) {
			key, err := a.newKey()
			if err != nil {
				t.Fatal(err)
			}
			signer, err := cose.NewSigner(a.coseAlg, key)
			if err != nil {
				t.Fatal(err)
			}
			headers := cose.Headers{
				Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: a.coseAlg},
				Unprotected: cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte("kid-1")},
			}
			aad := []byte("external")
			msg, err := cose.Sign1(rand.Reader, signer, headers, []byte("This is the content."), aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(msg, tagSign1Prefix) {
				t.Fatalf("go-cose message starts with %#x", msg[0])
			}
			m, err := parseSign1("go-cose", bytes.Clone(msg[len(tagSign1Prefix):]))
			if err != nil {
				t.Fatal(err)
			}
			if m.alg != a.alg || string(m.kid) != "kid-1" || string(m.payload) != "This is the content." {
				t.Fatalf("parsed alg %v kid %q payload %q", m.alg, m.kid, m.payload)
			}
			if err := m.verify(key.Public(), aad); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := m.verify(key.Public(), nil); !errors.Is(err, ErrSignature) {
				t.Fatalf("verify without the external AAD: %v, want ErrSignature", err)
			}

			// A whole token: our claims, go-cose's signature, tag 61 added.
			pop, err := a.newKey()
			if err != nil {
				t.Fatal(err)
			}
			payload, err := encodeClaims(interopClaims(t, pop.Public()), ProfileV2)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := cose.Sign1(rand.Reader, signer, cose.Headers{
				Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: a.coseAlg},
			}, payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			tok := append(bytes.Clone(tagCWTPrefix[:len(tagCWTPrefix)-len(tagSign1Prefix)]), signed...)
			parsed, err := Parse(tok)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := parsed.Verify(key.Public())
			if err != nil {
				t.Fatalf("token signed by go-cose: %v", err)
			}
			if !EqualKeys(claims.Key, pop.Public()) || claims.Issuer != "mbed.ta.TEST" {
				t.Fatalf("claims %+v", claims)
			}
		})
	}
}
