package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
	"github.com/securedeviceaccess/sda/token"
)

// KeyType selects the kind of proof-of-possession key [GenerateKey] makes.
type KeyType uint8

const (
	// KeyP256 is an ECDSA P-256 key (ES256), the zero value and the only
	// kind SDA v1 devices understand.
	KeyP256 KeyType = iota
	// KeyEd25519 is an Ed25519 key (EdDSA), for v2 devices.
	KeyEd25519
	// KeyP384 is an ECDSA P-384 key (ES384), for v2 devices.
	KeyP384
)

// String names the key type.
func (t KeyType) String() string {
	switch t {
	case KeyP256:
		return "P-256"
	case KeyEd25519:
		return "Ed25519"
	case KeyP384:
		return "P-384"
	}
	return fmt.Sprintf("KeyType(%d)", uint8(t))
}

// PEM block types of private key files.
const (
	// pemPrivateKey is a PKCS#8 PrivateKeyInfo (RFC 5208) in clear.
	pemPrivateKey = "PRIVATE KEY"
	// pemEncryptedKey is an EncryptedPrivateKeyInfo (RFC 5958 section 3,
	// RFC 7468 section 11), written and read (see pbes2.go).
	pemEncryptedKey = "ENCRYPTED PRIVATE KEY"
	// pemSDAEncryptedKey is this package's first encrypted format, read
	// only (see keyfile_sda.go).
	pemSDAEncryptedKey = "SDA ENCRYPTED PRIVATE KEY"
)

// MaxKeyFileSize bounds the size of a private key file this package reads.
// Real files are a few hundred bytes.
const MaxKeyFileSize = 16 << 10

// GenerateKey returns a new proof-of-possession key of type t from the
// operating system's secure random source. The result is an
// *ecdsa.PrivateKey or an ed25519.PrivateKey.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, invalid("unknown key type %v", t)
}

// MarshalPrivateKeyPEM returns key as a PEM "PRIVATE KEY" block (PKCS#8,
// RFC 5208), unencrypted. Only software keys can be exported: key must be an
// *ecdsa.PrivateKey (P-256 or P-384) or an ed25519.PrivateKey. A key held in
// a hardware keystore is used directly as a crypto.Signer and never written
// out.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

func marshalPKCS8(key crypto.Signer) ([]byte, error) {
	switch key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: cannot export a %T", token.ErrUnsupportedKey, key)
	}
	if _, err := token.AlgorithmFor(key.Public()); err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(key)
}

// ParsePrivateKeyPEM parses an unencrypted PEM "PRIVATE KEY" block
// (PKCS#8) holding a P-256, P-384 or Ed25519 key. data must hold exactly
// that one block, with nothing but whitespace around it. An encrypted file gives
// [ErrKeyEncrypted]; other failures match [ErrMalformedKey] or
// token.ErrUnsupportedKey.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, err := decodeKeyPEM(data)
	if err != nil {
		return nil, err
	}
	if block.Type != pemPrivateKey {
		return nil, ErrKeyEncrypted
	}
	defer clear(block.Bytes) // the parsed key shares nothing with it
	return parsePKCS8(block.Bytes)
}

func decodeKeyPEM(data []byte) (*pem.Block, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedKey, len(data), MaxKeyFileSize)
	}
	// Exactly one block and nothing but whitespace around it: a file with
	// two keys is refused rather than read as its first.
	const space = " \t\r\n"
	trimmed := bytes.TrimLeft(data, space)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("%w: does not start with a PEM block", ErrMalformedKey)
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformedKey)
	}
	if len(bytes.TrimLeft(rest, space)) != 0 {
		clear(block.Bytes)
		return nil, fmt.Errorf("%w: more than one PEM block, or data after it", ErrMalformedKey)
	}
	if block.Type != pemPrivateKey && block.Type != pemEncryptedKey && block.Type != pemSDAEncryptedKey {
		return nil, fmt.Errorf("%w: PEM block type %q", ErrMalformedKey, block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: unexpected PEM headers", ErrMalformedKey)
	}
	return block, nil
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", token.ErrUnsupportedKey, k)
	}
	switch s := s.(type) {
	case *ecdsa.PrivateKey:
		if err := checkECPublicKey(der, s); err != nil {
			return nil, err
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: %T", token.ErrUnsupportedKey, k)
	}
	if _, err := token.AlgorithmFor(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// checkECPublicKey compares the public key that an EC PKCS#8 key carries
// (the optional publicKey of SEC1's ECPrivateKey, RFC 5915, which Go and
// OpenSSL write) with the one its private scalar gives, which is all that
// x509.ParsePKCS8PrivateKey looks at. A mismatch means a damaged or
// tampered file: without it, a bit flipped in the ciphertext of an
// encrypted file (CBC is malleable) would give a different key unnoticed.
// A key without the field passes on the scalar alone, one in compressed
// form is compared in that form; fields that RFC 5915 and RFC 5208 do not
// define (which x509.ParsePKCS8PrivateKey ignores) are refused, since a
// changed tag could otherwise hide the public key.
func checkECPublicKey(der []byte, k *ecdsa.PrivateKey) error {
	in := cryptobyte.String(der)
	var info, sec1, ecKey cryptobyte.String
	var version int64
	if !in.ReadASN1(&info, casn1.SEQUENCE) ||
		!info.ReadASN1Integer(&version) ||
		!info.SkipASN1(casn1.SEQUENCE) ||
		!info.ReadASN1(&sec1, casn1.OCTET_STRING) ||
		!sec1.ReadASN1(&ecKey, casn1.SEQUENCE) ||
		!ecKey.SkipASN1(casn1.INTEGER) ||
		!ecKey.SkipASN1(casn1.OCTET_STRING) ||
		!ecKey.SkipOptionalASN1(casn1.Tag(0).Constructed().ContextSpecific()) {
		return fmt.Errorf("%w: EC private key structure", ErrMalformedKey)
	}
	var pubField cryptobyte.String
	var present bool
	if !ecKey.ReadOptionalASN1(&pubField, &present, casn1.Tag(1).Constructed().ContextSpecific()) {
		return fmt.Errorf("%w: EC public key field", ErrMalformedKey)
	}
	if !ecKey.Empty() || !info.Empty() && !info.PeekASN1Tag(casn1.Tag(0).Constructed().ContextSpecific()) {
		return fmt.Errorf("%w: unexpected fields in the EC private key", ErrMalformedKey)
	}
	if !present {
		return nil
	}
	var pub []byte
	if !pubField.ReadASN1BitStringAsBytes(&pub) || !pubField.Empty() {
		return fmt.Errorf("%w: EC public key field", ErrMalformedKey)
	}
	want, err := k.PublicKey.ECDH()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	full := want.Bytes() // 0x04 || X || Y
	if len(pub) > 0 && (pub[0] == 2 || pub[0] == 3) {
		size := (len(full) - 1) / 2
		compressed := make([]byte, 1+size)
		compressed[0] = 2 | full[len(full)-1]&1
		copy(compressed[1:], full[1:1+size])
		full = compressed
	}
	if !bytes.Equal(pub, full) {
		return fmt.Errorf("%w: the EC public key in the file does not match its private key", ErrMalformedKey)
	}
	return nil
}

// WriteKeyFile writes key to a new file at path, readable by its owner
// only (mode 0600). With a non-empty passphrase the key is encrypted with
// [EncryptPrivateKeyPEM] and opts (nil: the default scrypt parameters,
// which OpenSSL 3 cannot read; see [KeyFileOptions]); a nil passphrase
// writes it in clear, and opts must then be nil.
//
// It refuses to overwrite an existing file (the error matches
// fs.ErrExist). When it returns nil the file is on disk: its content and
// its directory entry have been synced. The file appears at path only
// complete: it is written and synced under a temporary name in the same
// directory and then linked to path, so the directory's file system must
// support hard links. On error nothing is left behind.
func WriteKeyFile(path string, key crypto.Signer, passphrase []byte, opts *KeyFileOptions) (err error) {
	var data []byte
	switch {
	case passphrase != nil:
		data, err = EncryptPrivateKeyPEM(key, passphrase, opts)
	case opts != nil:
		return invalid("key file options without a passphrase: the key would be written in clear")
	default:
		data, err = MarshalPrivateKeyPEM(key)
	}
	if err != nil {
		return err
	}
	// Best effort: the garbage collector may have copied it, but the
	// buffer this function made does not outlive it with a key in clear.
	defer clear(data)
	return atomicfile.Create(path, data, 0o600, nil)
}

// ReadKeyFile reads a private key file written by [WriteKeyFile], or any
// PKCS#8 PEM file in the formats [ParsePrivateKeyPEM] and
// [DecryptPrivateKeyPEM] read. An encrypted file needs its passphrase; a nil passphrase
// reads an unencrypted file, and a non-nil one insists on an encrypted file
// ([ErrKeyNotEncrypted] otherwise), so that a key silently stored in clear is
// noticed. At most [MaxKeyFileSize] bytes are read.
func ReadKeyFile(path string, passphrase []byte) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	defer clear(data)
	if err != nil {
		return nil, err
	}
	if passphrase == nil {
		return ParsePrivateKeyPEM(data)
	}
	return DecryptPrivateKeyPEM(data, passphrase)
}
