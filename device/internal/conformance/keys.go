package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/securedeviceaccess/sda/token"
)

// The keys of the vectors, by name. Each is derived from a fixed label, so
// every run of the generator makes the same keys.
var keySpecs = []struct{ name, role, alg string }{
	{"anchor-p256", "trust anchor (v1 and v2 tokens)", "ES256"},
	{"anchor-p384", "trust anchor (v2 tokens)", "ES384"},
	{"anchor-ed25519", "trust anchor (v2 tokens)", "EdDSA"},
	{"pop-p256", "technician proof-of-possession key", "ES256"},
	{"pop-ed25519", "technician proof-of-possession key (v2)", "EdDSA"},
	{"device-ed25519", "device response signing key (v2)", "EdDSA"},
	{"stranger-p256", "attacker: a key no device trusts", "ES256"},
	{"stranger-p384", "attacker: a key no device trusts", "ES384"},
	{"thief-p256", "attacker: signs requests with a stolen token", "ES256"},
	{"delegate-p256", "technician a token is delegated to (v2)", "ES256"},
	{"delegate-ed25519", "technician a delegated token is delegated on to (v2)", "EdDSA"},
}

// key is a key pair of the vectors.
type key struct {
	Key
	signer crypto.Signer
	public crypto.PublicKey
}

// deterministic is an ECDSA key that signs as RFC 6979 says (crypto/ecdsa
// does when given no random source), so signatures, and the vectors, are
// the same on every run.
type deterministic struct{ k *ecdsa.PrivateKey }

func (d deterministic) Public() crypto.PublicKey { return d.k.Public() }

func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(nil, digest, opts)
}

// newKey derives the key name from its label.
func newKey(name, role, alg string) (*key, error) {
	label := []byte("sda conformance vectors: " + name)
	k := &key{Key: Key{Name: name, Role: role, Algorithm: alg}}
	var private []byte
	switch alg {
	case "ES256", "ES384":
		curve, d := elliptic.P256(), sha256.Sum256(label)
		private = d[:]
		if alg == "ES384" {
			d := sha512.Sum384(label)
			curve, private = elliptic.P384(), d[:]
		}
		ek, err := ecdsa.ParseRawPrivateKey(curve, private)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", name, err)
		}
		k.signer = deterministic{ek}
	case "EdDSA":
		seed := sha256.Sum256(label)
		private = seed[:]
		k.signer = ed25519.NewKeyFromSeed(private)
	default:
		return nil, fmt.Errorf("key %s: unknown algorithm %s", name, alg)
	}
	k.public = k.signer.Public()
	der, err := token.MarshalPublicKeyDER(k.public)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	cose, err := token.MarshalCOSEKey(k.public)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	k.Private = hex.EncodeToString(private)
	k.PublicKeyDER = hex.EncodeToString(der)
	k.PublicKeyCOSE = hex.EncodeToString(cose)
	return k, nil
}
