package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"math/big"
	"sync/atomic"
)

// ed25519SmallOrder lists the canonical encodings of the y coordinates of
// the 8 Ed25519 points of small order (the torsion subgroup, order dividing
// 8), compared with the sign bit (x's parity) masked. The list of libsodium
// (ge25519_has_small_order) without its two non-canonical entries, p and
// p + 1, which checkEd25519 refuses with every other y >= p.
var ed25519SmallOrder = [5][32]byte{
	// y = 0: the two points of order 4, (±sqrt(-1), 0).
	{},
	// y = 1: the identity (0, 1), order 1.
	{0x01},
	// y = p - 1: (0, -1), order 2.
	{
		0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	},
	// y and p - y of the four points of order 8.
	{
		0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
	},
	{
		0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
	},
}

// checkEd25519 refuses, with [ErrWeakKey], an Ed25519 public key (32 bytes,
// RFC 8032 section 5.1.2: y little-endian, x's parity in the top bit) that
// is a point of small order, whatever its sign bit, or whose y is not
// reduced modulo p = 2^255 - 19. With a small-order key A and S = 0 the
// verification equation [S]B = R + [k]A holds for R = [-k]A, one of the 8
// small-order points: crypto/ed25519 then accepts signatures made without a
// private key. A non-canonical y names the same point under a second
// encoding. The check is a few comparisons: it allocates nothing and does
// no field arithmetic, so the verification path runs it on every use.
//
// An encoding that is not a curve point at all is not refused here (that
// needs a square root in the field); crypto/ed25519 rejects it on every
// verification, so nothing verifies with it.
func checkEd25519(pub []byte) error {
	if len(pub) != 32 {
		return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(pub))
	}
	for i := range ed25519SmallOrder {
		w := &ed25519SmallOrder[i]
		var diff byte
		for j := 0; j < 31; j++ {
			diff |= pub[j] ^ w[j]
		}
		if diff|(pub[31]&0x7f^w[31]) == 0 {
			return fmt.Errorf("%w: an Ed25519 point of small order", ErrWeakKey)
		}
	}
	// y >= p: the top 255 bits are 2^255 - 19 .. 2^255 - 1, that is
	// 0x7fff...ff with a low byte of 0xed or more.
	if pub[31]&0x7f == 0x7f && pub[0] >= 0xed {
		high := byte(0xff)
		for _, b := range pub[1:31] {
			high &= b
		}
		if high == 0xff {
			return fmt.Errorf("%w: a non-canonical Ed25519 encoding (y >= 2^255-19)", ErrWeakKey)
		}
	}
	return nil
}

// checkECDSAPoint refuses, with [ErrUnsupportedKey], an ECDSA key whose
// point is not on its curve, is the point at infinity, or has a coordinate
// that is negative or not reduced modulo the field prime (SP 800-89 section
// 5.3.2, via crypto/ecdsa's own validation). It allocates; the
// verification path leaves the check to crypto/ecdsa, which makes it on
// every verification.
func checkECDSAPoint(k *ecdsa.PublicKey) error {
	if _, err := k.Bytes(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return nil
}

// checkedSigner is the last ECDSA signing key whose point passed
// checkECDSAPoint: its curve and a copy of its coordinates.
type checkedSigner struct {
	curve elliptic.Curve
	x, y  *big.Int
}

// lastSigner is the memo of signerAlgorithm: a service signs every token
// with the same key.
var lastSigner atomic.Pointer[checkedSigner]

// signerAlgorithm is AlgorithmFor for the public key of a signer: the
// point of an ECDSA key equal (curve and coordinates, compared with the
// key as it is now, not by identity) to the last one that passed
// checkECDSAPoint is not validated again, the check being a function of
// those values alone. Comparing two coordinates costs a few word
// comparisons; the check allocates and does field arithmetic. Whether a
// key was the last one checked shows in timing, which tells nothing
// secret about a public key.
func signerAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return AlgorithmFor(pub)
	}
	alg, err := keyAlgorithm(k) // also refuses a key without coordinates
	if err != nil {
		return 0, err
	}
	//lint:ignore SA1019 comparing the coordinates with those of the key checked last
	x, y := k.X, k.Y
	if c := lastSigner.Load(); c != nil && c.curve == k.Curve && c.x.Cmp(x) == 0 && c.y.Cmp(y) == 0 {
		return alg, nil
	}
	if err := checkECDSAPoint(k); err != nil {
		return 0, err
	}
	lastSigner.Store(&checkedSigner{curve: k.Curve, x: new(big.Int).Set(x), y: new(big.Int).Set(y)})
	return alg, nil
}
