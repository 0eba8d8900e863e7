package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"
	"time"
)

// TestSignerKeyCheck: the point of a signing key is validated once and
// its outcome kept with the key's curve and coordinates
// (signerAlgorithm), so that signing again with the same key does not
// validate it again, while a key whose coordinates changed since, or
// another key, is validated again and refused when its point is bad.
func TestSignerKeyCheck(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	scope, err := ParseScope("read")
	if err != nil {
		t.Fatal(err)
	}
	c := &Claims{Issuer: "iss", Audience: []string{"ep:a"}, Scope: scope,
		IssuedAt: time.Unix(1e9, 0), NotBefore: time.Unix(1e9, 0), Expiry: time.Unix(1e9+60, 0), Key: &k.PublicKey, ID: []byte{1}}
	if _, err := Issue(c, k, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("kept", func(t *testing.T) {
		if n := testing.AllocsPerRun(100, func() {
			if alg, err := signerAlgorithm(k.Public()); err != nil || alg != AlgES256 {
				t.Fatalf("algorithm %v, %v", alg, err)
			}
		}); n != 0 {
			t.Fatalf("checking a signing key checked before allocates %.0f times, want 0", n)
		}
	})
	t.Run("changed", func(t *testing.T) {
		bad := *k
		//lint:ignore SA1019 building a key with a point off the curve
		bad.PublicKey.Y = new(big.Int).Add(k.Y, big.NewInt(1))
		if _, err := Issue(c, &bad, nil); !errors.Is(err, ErrUnsupportedKey) {
			t.Fatalf("a signing key off the curve: %v, want ErrUnsupportedKey", err)
		}
		// The same key object, changed in place after a signature.
		k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := Issue(c, k2, nil); err != nil {
			t.Fatal(err)
		}
		k2.Y.Add(k2.Y, big.NewInt(1))
		if _, err := signerAlgorithm(k2.Public()); !errors.Is(err, ErrUnsupportedKey) {
			t.Fatalf("a key changed in place: %v, want ErrUnsupportedKey", err)
		}
	})
}
