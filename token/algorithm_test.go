package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// TestECDSAVerifyDERBufferFitsLongest: verifySignature turns the raw r||s
// signature into DER in one buffer sized for the longest signature (both
// components of full length with the high bit set: 72 bytes of DER for
// P-256, 104 for P-384), so the conversion costs at most that buffer: one
// allocation more than hashing and crypto/ecdsa over the same DER, never a
// regrowth.
func TestECDSAVerifyDERBufferFitsLongest(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   Algorithm
	}{{elliptic.P256(), AlgES256}, {elliptic.P384(), AlgES384}} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			key, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.alg.ecdsaSize()
			longest := 2 + 2*(3+n)
			tbs := []byte("to be signed")
			digest, _ := tc.alg.digest(tbs)
			var der []byte
			for i := 0; i < 1000 && len(der) != longest; i++ {
				if der, err = ecdsa.SignASN1(rand.Reader, key, digest); err != nil {
					t.Fatal(err)
				}
			}
			if len(der) != longest {
				t.Fatalf("no signature of %d bytes of DER in 1000 tries", longest)
			}
			sig, err := derToRaw(der, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := rawToDER(nil, sig[:n], sig[n:]); string(got) != string(der) {
				t.Fatalf("rawToDER gave %x, want %x", got, der)
			}
			pub := &key.PublicKey
			ours := testing.AllocsPerRun(20, func() {
				if err := verifySignature(pub, tc.alg, tbs, sig); err != nil {
					t.Fatal(err)
				}
			})
			bare := testing.AllocsPerRun(20, func() {
				d, _ := tc.alg.digest(tbs)
				if !ecdsa.VerifyASN1(pub, d, der) {
					t.Fatal("bare verification failed")
				}
			})
			if ours > bare+1 {
				t.Fatalf("verifySignature allocates %v times, hashing and ecdsa.VerifyASN1 %v: more than one for the DER", ours, bare)
			}
		})
	}
}
