package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// COSE_Key values (RFC 9053 section 7).
const (
	ktyOKP = 1
	ktyEC2 = 2

	crvP256    = 1
	crvP384    = 2
	crvEd25519 = 6
)

// ParseCOSEKey decodes a COSE_Key (RFC 9052 section 7) holding a public key:
// EC2 on P-256 or P-384 with uncompressed coordinates of exactly the field
// size, or OKP Ed25519. It returns *ecdsa.PublicKey or ed25519.PublicKey.
// EC2 points are checked to be on the curve. An Ed25519 key of small order
// or in a non-canonical encoding is refused with [ErrWeakKey]; an Ed25519
// encoding that is not a curve point is not detected (the standard library
// offers no point validation) and fails every signature verification. Keys
// carrying private material are rejected.
func ParseCOSEKey(data []byte) (crypto.PublicKey, error) {
	if err := codec.Check(data); err != nil {
		return nil, wrapMalformed("cose_key", err)
	}
	return parseCOSEKey("cose_key", data)
}

func parseCOSEKey(field string, data []byte) (crypto.PublicKey, error) {
	var kty, crv, alg int64
	var x, y []byte
	var seen uint8
	err := codec.ReadMap(data, func(k, v []byte) error {
		label, err := codec.ReadInt(k)
		if err != nil {
			return malformed(field, "label is not an integer")
		}
		var bit uint8
		switch label {
		case 1:
			bit = 1
			kty, err = codec.ReadInt(v)
		case 2: // kid: accepted, not used
			bit = 2
			_, err = codec.ReadBytes(v)
		case 3:
			bit = 4
			alg, err = codec.ReadInt(v)
		case -1:
			bit = 8
			crv, err = codec.ReadInt(v)
		case -2:
			bit = 16
			x, err = codec.ReadBytes(v)
		case -3: // a byte string, or a bool sign bit for a compressed point
			bit = 32
			y = v
		case -4:
			return malformed(field, "private key material (label -4) present")
		default:
			return malformed(field, "unsupported label %d", label)
		}
		if seen&bit != 0 {
			return malformed(field, "label %d repeated", label)
		}
		seen |= bit
		if err != nil {
			return malformed(field, "label %d: %v", label, err)
		}
		return nil
	})
	if err != nil {
		if _, ok := err.(*ParseError); ok {
			return nil, err
		}
		return nil, wrapMalformed(field, err)
	}
	if seen&(1|8|16) != 1|8|16 {
		return nil, malformed(field, "kty, crv and x are required")
	}
	var pub crypto.PublicKey
	var keyAlg Algorithm
	switch {
	case kty == ktyEC2 && (crv == crvP256 || crv == crvP384):
		curve, n := elliptic.P256(), 32
		keyAlg = AlgES256
		if crv == crvP384 {
			curve, n, keyAlg = elliptic.P384(), 48, AlgES384
		}
		if len(x) != n || y == nil {
			return nil, malformed(field, "EC2 key needs a %d-byte x and a y", n)
		}
		var ek *ecdsa.PublicKey
		switch y[0] {
		case 0xf4, 0xf5: // compressed point: y is its sign bit (RFC 9053 section 7.1.1)
			ek, err = decompressPoint(curve, append([]byte{2 + y[0] - 0xf4}, x...))
		default:
			yb, rerr := codec.ReadBytes(y)
			if rerr != nil || len(yb) != n {
				return nil, malformed(field, "EC2 y must be a %d-byte string or a bool", n)
			}
			point := make([]byte, 1+2*n)
			point[0] = 4
			copy(point[1:], x)
			copy(point[1+n:], yb)
			if ek, err = ecdsa.ParseUncompressedPublicKey(curve, point); err != nil {
				err = fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
			}
		}
		if err != nil {
			return nil, &ParseError{Field: field, Err: err}
		}
		pub = ek
	case kty == ktyOKP && crv == crvEd25519:
		if len(x) != ed25519.PublicKeySize || y != nil {
			return nil, malformed(field, "Ed25519 key must have a 32-byte x and no y")
		}
		if err := checkEd25519(x); err != nil {
			return nil, &ParseError{Field: field, Err: err}
		}
		pub, keyAlg = ed25519.PublicKey(bytes.Clone(x)), AlgEdDSA
	default:
		return nil, &ParseError{Field: field, Err: fmt.Errorf("%w: kty %d crv %d", ErrUnsupportedKey, kty, crv)}
	}
	if seen&4 != 0 && Algorithm(alg) != keyAlg {
		return nil, &ParseError{Field: field, Err: fmt.Errorf("%w: key alg %d for a %v key", ErrAlgorithmMismatch, alg, keyAlg)}
	}
	return pub, nil
}

// MarshalCOSEKey encodes a public key as a COSE_Key with only the required
// parameters, deterministically encoded: {1: 2, -1: crv, -2: x, -3: y} for
// EC2 (coordinates left-padded to the field size) and {1: 1, -1: 6, -2: x}
// for Ed25519. For a P-256 key this is exactly the SDA v1 cnf key.
func MarshalCOSEKey(pub crypto.PublicKey) ([]byte, error) {
	return appendCOSEKey(nil, pub, false)
}

// appendCOSEKey appends the COSE_Key of pub. With compact, EC2 points are
// compressed (y is the sign bit, RFC 9053 section 7.1.1): 32 bytes shorter
// for P-256; v2 tokens use it for cnf.
func appendCOSEKey(b []byte, pub crypto.PublicKey, compact bool) ([]byte, error) {
	alg, err := keyAlgorithm(pub) // and Bytes below checks an ECDSA point
	if err != nil {
		return nil, err
	}
	if alg == AlgEdDSA {
		b = append(b, 0xa3, 0x01, ktyOKP, 0x20, crvEd25519, 0x21)
		return codec.AppendBytes(b, pub.(ed25519.PublicKey)), nil
	}
	pt, err := pub.(*ecdsa.PublicKey).Bytes() // 04 || x || y, each left-padded
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	n := (len(pt) - 1) / 2
	crv := byte(crvP256)
	if alg == AlgES384 {
		crv = crvP384
	}
	b = append(b, 0xa4, 0x01, ktyEC2, 0x20, crv, 0x21)
	b = append(codec.AppendBytes(b, pt[1:1+n]), 0x22)
	if compact {
		return append(b, 0xf4|pt[len(pt)-1]&1), nil // false: even y, true: odd y
	}
	return codec.AppendBytes(b, pt[1+n:]), nil
}

// Thumbprint returns the COSE Key Thumbprint of pub (RFC 9679): the SHA-256
// hash of the deterministic encoding of the key's required parameters. It is
// the recommended key id (kid) for anchors and PoP keys.
func Thumbprint(pub crypto.PublicKey) ([]byte, error) {
	b, err := MarshalCOSEKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// ParsePublicKeyDER parses a DER SubjectPublicKeyInfo holding a supported
// public key (ECDSA P-256 or P-384, Ed25519).
func ParsePublicKeyDER(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, &ParseError{Field: "subject_public_key_info", Err: err}
	}
	if _, err := AlgorithmFor(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo,
// RFC 7468 section 13) holding a supported key. data must hold exactly that
// one block, without PEM headers, and nothing but whitespace before or after
// it: anything else, a second key in particular, is malformed rather than
// silently ignored, so that nothing is ever bound to one key of several.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	const space = " \t\r\n"
	trimmed := bytes.TrimLeft(data, space)
	if !bytes.HasPrefix(trimmed, pemBegin) {
		return nil, malformed("pem", "does not start with a PEM block")
	}
	if n := bytes.Count(trimmed, pemBegin); n != 1 {
		return nil, malformed("pem", "%d PEM blocks, want exactly one", n)
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, malformed("pem", "not a well-formed PEM block")
	}
	if len(bytes.TrimLeft(rest, space)) != 0 {
		return nil, malformed("pem", "data after the PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, malformed("pem", "block type %q, want \"PUBLIC KEY\"", block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, malformed("pem", "PEM headers in a public key block")
	}
	return ParsePublicKeyDER(block.Bytes)
}

// pemBegin starts every PEM block (RFC 7468 section 2).
var pemBegin = []byte("-----BEGIN ")

// MarshalPublicKeyDER returns the DER SubjectPublicKeyInfo of a supported
// public key.
func MarshalPublicKeyDER(pub crypto.PublicKey) ([]byte, error) {
	if _, err := AlgorithmFor(pub); err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// MarshalPublicKeyPEM returns the PEM "PUBLIC KEY" encoding of a supported
// public key.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := MarshalPublicKeyDER(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// AnchorNamePrefix starts every SDA-style trust anchor name.
const AnchorNamePrefix = "mbed.ta."

// AnchorName returns the SDA name of a trust anchor key: "mbed.ta." followed
// by the upper-case hex SHA-256 of the key's DER SubjectPublicKeyInfo. SDA v1
// issuers put this name in the iss claim and devices find the anchor by it.
func AnchorName(pub crypto.PublicKey) (string, error) {
	der, err := MarshalPublicKeyDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return AnchorNamePrefix + strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// EqualKeys reports whether two public keys are the same supported key.
func EqualKeys(a, b crypto.PublicKey) bool {
	if _, err := AlgorithmFor(a); err != nil {
		return false
	}
	if _, err := AlgorithmFor(b); err != nil {
		return false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}
