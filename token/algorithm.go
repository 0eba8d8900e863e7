package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm is a COSE signature algorithm identifier (RFC 9053, IANA "COSE
// Algorithms").
//
// The key decides the algorithm: a P-256 key signs and verifies ES256 only, a
// P-384 key ES384 only, an Ed25519 key EdDSA only. A message's alg header
// must agree with the key; it never selects one.
type Algorithm int64

// The supported algorithms.
const (
	AlgES256 Algorithm = -7  // ECDSA P-256 with SHA-256 (RFC 9053 section 2.1); the only one of SDA v1
	AlgEdDSA Algorithm = -8  // Ed25519 (RFC 9053 section 2.2)
	AlgES384 Algorithm = -35 // ECDSA P-384 with SHA-384 (RFC 9053 section 2.1)
)

// String returns the IANA name of the algorithm.
func (a Algorithm) String() string {
	switch a {
	case AlgES256:
		return "ES256"
	case AlgES384:
		return "ES384"
	case AlgEdDSA:
		return "EdDSA"
	}
	return fmt.Sprintf("Algorithm(%d)", int64(a))
}

func (a Algorithm) supported() bool {
	return a == AlgES256 || a == AlgES384 || a == AlgEdDSA
}

// AlgorithmFor returns the algorithm a public key pins. It accepts
// *ecdsa.PublicKey on P-256 or P-384 and ed25519.PublicKey, and refuses
// with [ErrUnsupportedKey] every other key and every invalid one: an ECDSA
// point off its curve, at infinity or with a coordinate out of range, and
// (with [ErrWeakKey]) an Ed25519 key of small order or in a non-canonical
// encoding, with which signatures could verify without a private key. It
// is the gate every key of this package passes.
func AlgorithmFor(pub crypto.PublicKey) (Algorithm, error) {
	alg, err := keyAlgorithm(pub)
	if err != nil {
		return 0, err
	}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		if err := checkECDSAPoint(k); err != nil {
			return 0, err
		}
	}
	return alg, nil
}

// keyAlgorithm is AlgorithmFor without the ECDSA point check, which
// allocates: it is for the paths that validate the point anyway
// (crypto/ecdsa on every verification, PublicKey.Bytes when encoding).
// Ed25519 keys are checked in full: the check is cheap, and crypto/ed25519
// does not make it.
func keyAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		// A key without a point is invalid; the standard library's
		// Bytes, Equal and Verify dereference the coordinates.
		//lint:ignore SA1019 only reading the coordinates to reject a key without them
		if k == nil || k.X == nil || k.Y == nil {
			break
		}
		switch k.Curve {
		case elliptic.P256():
			return AlgES256, nil
		case elliptic.P384():
			return AlgES384, nil
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			break
		}
		if err := checkEd25519(k); err != nil {
			return 0, err
		}
		return AlgEdDSA, nil
	}
	return 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// ecdsaSize returns the byte length of one signature component.
func (a Algorithm) ecdsaSize() int {
	switch a {
	case AlgES256:
		return 32
	case AlgES384:
		return 48
	}
	return 0
}

// signatureSize returns the length of a COSE signature of the algorithm
// (RFC 9053 sections 2.1 and 2.2).
func (a Algorithm) signatureSize() int {
	if a == AlgEdDSA {
		return ed25519.SignatureSize
	}
	return 2 * a.ecdsaSize()
}

func (a Algorithm) digest(msg []byte) ([]byte, crypto.Hash) {
	switch a {
	case AlgES256:
		d := sha256.Sum256(msg)
		return d[:], crypto.SHA256
	case AlgES384:
		d := sha512.Sum384(msg)
		return d[:], crypto.SHA384
	}
	return msg, crypto.Hash(0) // EdDSA signs the message itself
}

// sign signs the COSE ToBeSigned bytes with signer, whose public key pins
// alg (the caller checked it with AlgorithmFor), and returns the COSE
// signature encoding (RFC 9053: r||s, each left-padded to the field size,
// for ECDSA; the 64-byte signature for EdDSA). Any crypto.Signer works, so
// keys may live in hardware.
func sign(signer crypto.Signer, alg Algorithm, tbs []byte, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	digest, hash := alg.digest(tbs)
	sig, err := signer.Sign(rnd, digest, hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigner, err)
	}
	if alg == AlgEdDSA {
		if len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: a %d-byte Ed25519 signature", ErrSigner, len(sig))
		}
		return sig, nil
	}
	raw, err := derToRaw(sig, alg.ecdsaSize())
	if err != nil {
		return nil, fmt.Errorf("%w: bad ECDSA signature: %v", ErrSigner, err)
	}
	return raw, nil
}

// verifySignature checks sig over tbs with pub, which pins the algorithm;
// alg is what the message claims and must agree. It is the one verification
// path of the package: tokens, requests, links (through
// verifySignatureDigest) and the test vectors go through it.
// A weak Ed25519 key is refused before any verification; an invalid ECDSA
// point fails crypto/ecdsa's verification, and is then reported as the
// key's fault (ErrUnsupportedKey) rather than the signature's, at no cost
// to a valid key.
func verifySignature(pub crypto.PublicKey, alg Algorithm, tbs, sig []byte) error {
	return verifySignatureDigest(pub, alg, tbs, nil, sig)
}

// verifySignatureDigest is verifySignature with the digest of tbs under
// alg already computed (nil: not yet), for a caller that needs it too.
func verifySignatureDigest(pub crypto.PublicKey, alg Algorithm, tbs, digest, sig []byte) error {
	want, err := keyAlgorithm(pub)
	if err != nil {
		return err
	}
	if alg != want {
		return fmt.Errorf("%w: message says %v, key is %v", ErrAlgorithmMismatch, alg, want)
	}
	if alg == AlgEdDSA {
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub.(ed25519.PublicKey), tbs, sig) {
			return ErrSignature
		}
		return nil
	}
	k := pub.(*ecdsa.PublicKey)
	n := alg.ecdsaSize()
	if len(sig) != 2*n {
		return ErrSignature
	}
	var buf [2*(2+1+48) + 2]byte
	der := rawToDER(buf[:0], sig[:n], sig[n:])
	if digest == nil {
		digest, _ = alg.digest(tbs)
	}
	if !ecdsa.VerifyASN1(k, digest, der) {
		if err := checkECDSAPoint(k); err != nil {
			return err
		}
		return ErrSignature
	}
	return nil
}

// rawToDER appends the DER encoding of the ECDSA signature (r, s) to b.
// Components are unsigned big-endian; the total stays below 128 bytes for
// the curves supported, so short-form lengths suffice.
func rawToDER(b, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	n := derIntLen(r) + derIntLen(s)
	b = append(b, 0x30, byte(n))
	b = appendDERInt(b, r)
	return appendDERInt(b, s)
}

func trimZeros(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	return v
}

func derIntLen(v []byte) int {
	if v[0]&0x80 != 0 {
		return 3 + len(v)
	}
	return 2 + len(v)
}

func appendDERInt(b, v []byte) []byte {
	if v[0]&0x80 != 0 {
		b = append(b, 0x02, byte(len(v)+1), 0)
	} else {
		b = append(b, 0x02, byte(len(v)))
	}
	return append(b, v...)
}

// derToRaw converts an ASN.1 ECDSA signature to r||s of 2*n bytes.
func derToRaw(der []byte, n int) ([]byte, error) {
	var inner, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1(&r, asn1.INTEGER) || !inner.ReadASN1(&s, asn1.INTEGER) || !inner.Empty() {
		return nil, fmt.Errorf("not a DER ECDSA signature")
	}
	out := make([]byte, 2*n)
	for i, v := range [][]byte{r, s} {
		// A DER INTEGER is minimal two's complement: non-empty, no
		// negative value, a leading zero only before a set high bit.
		if len(v) == 0 || v[0]&0x80 != 0 || len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
			return nil, fmt.Errorf("signature component is not a minimal non-negative DER INTEGER")
		}
		if v[0] == 0 {
			v = v[1:]
		}
		if len(v) == 0 || v[0] == 0 || len(v) > n {
			return nil, fmt.Errorf("signature component out of range")
		}
		copy(out[(i+1)*n-len(v):(i+1)*n], v)
	}
	return out, nil
}
