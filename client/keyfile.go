package client

import (
	"crypto"
	"crypto/cipher"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// Encrypted key file format (PEM block "SDA ENCRYPTED PRIVATE KEY", no PEM
// headers). The body is:
//
//	offset size
//	0      1    version = 1
//	1      1    KDF = 1: scrypt (RFC 7914) with r = 8, p = 1
//	2      1    log2(N), the scrypt work factor
//	3      16   salt
//	19     1    AEAD = 1: ChaCha20-Poly1305 (RFC 8439)
//	20     12   nonce
//	32     ...  sealed PKCS#8 PrivateKeyInfo (ciphertext and 16-byte tag)
//
// The 32 header bytes are the additional data of the AEAD, so a changed
// parameter fails authentication like a wrong passphrase. The key is
// derived from the passphrase and a fresh random salt for every file, so it
// is never reused; the nonce is random too.
//
// Only the work factor is variable, and it is bounded on reading: a file
// cannot make the reader spend more than [MaxScryptWorkFactor] (1 GiB of
// memory), in the same way age caps the scrypt work factor of its files.
const (
	keyFileVersion    = 1
	keyFileKDFScrypt  = 1
	keyFileAEADChaCha = 1
	keyFileSaltSize   = 16
	keyFileHeader     = 32
	scryptR           = 8
	scryptP           = 1
)

// Bounds of the scrypt work factor log2(N) of encrypted key files. Memory
// use is 128 * r * N bytes: 256 MiB at the default, 1 GiB at the maximum.
const (
	// DefaultScryptWorkFactor is used when [EncryptPrivateKeyPEM] is given
	// zero. It is what age uses for passphrase-encrypted files.
	DefaultScryptWorkFactor = 18
	// MinScryptWorkFactor is the smallest work factor written or read.
	// Values below 15 are for tests only.
	MinScryptWorkFactor = 10
	// MaxScryptWorkFactor is the largest work factor written or read: a
	// key file asking for more is refused before any work is done.
	MaxScryptWorkFactor = 20
)

// EncryptPrivateKeyPEM returns key as a PEM "SDA ENCRYPTED PRIVATE KEY"
// block: its PKCS#8 encoding sealed with ChaCha20-Poly1305 under a key derived
// from passphrase with scrypt at the given work factor (log2 N, from
// [MinScryptWorkFactor] to [MaxScryptWorkFactor]; 0 means
// [DefaultScryptWorkFactor]). The passphrase must not be empty. Only
// software keys can be exported (see [MarshalPrivateKeyPEM]).
func EncryptPrivateKeyPEM(key crypto.Signer, passphrase []byte, workFactor int) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, invalid("empty passphrase")
	}
	if workFactor == 0 {
		workFactor = DefaultScryptWorkFactor
	}
	if workFactor < MinScryptWorkFactor || workFactor > MaxScryptWorkFactor {
		return nil, invalid("scrypt work factor %d outside %d..%d", workFactor, MinScryptWorkFactor, MaxScryptWorkFactor)
	}
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, keyFileHeader, keyFileHeader+len(der)+16)
	hdr[0], hdr[1], hdr[2] = keyFileVersion, keyFileKDFScrypt, byte(workFactor)
	hdr[19] = keyFileAEADChaCha
	if _, err := rand.Read(hdr[3:19]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(hdr[20:32]); err != nil {
		return nil, err
	}
	aead, err := keyFileAEAD(passphrase, hdr)
	if err != nil {
		return nil, err
	}
	body := aead.Seal(hdr, hdr[20:32], der, hdr)
	clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedKey, Bytes: body}), nil
}

// DecryptPrivateKeyPEM decrypts a key file made by [EncryptPrivateKeyPEM].
// The work factor is read from the file and checked against the bounds
// before any key derivation. A wrong passphrase (or a modified file) gives
// [ErrWrongPassphrase]; an unencrypted file gives [ErrKeyNotEncrypted].
func DecryptPrivateKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	if len(passphrase) == 0 {
		return nil, invalid("empty passphrase")
	}
	block, err := decodeKeyPEM(data)
	if err != nil {
		return nil, err
	}
	if block.Type != pemEncryptedKey {
		return nil, ErrKeyNotEncrypted
	}
	body := block.Bytes
	if err := checkKeyFileHeader(body); err != nil {
		return nil, err
	}
	aead, err := keyFileAEAD(passphrase, body[:keyFileHeader])
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, body[20:32], body[keyFileHeader:], body[:keyFileHeader])
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(der)
	return parsePKCS8(der)
}

// checkKeyFileHeader validates the fixed header of an encrypted key file,
// in particular the attacker-controllable work factor.
func checkKeyFileHeader(body []byte) error {
	if len(body) < keyFileHeader+16 {
		return fmt.Errorf("%w: encrypted body of %d bytes is too short", ErrMalformedKey, len(body))
	}
	if body[0] != keyFileVersion || body[1] != keyFileKDFScrypt || body[19] != keyFileAEADChaCha {
		return fmt.Errorf("%w: unknown version %d, KDF %d or AEAD %d", ErrMalformedKey, body[0], body[1], body[19])
	}
	if wf := int(body[2]); wf < MinScryptWorkFactor || wf > MaxScryptWorkFactor {
		return fmt.Errorf("%w: scrypt work factor %d outside %d..%d", ErrMalformedKey, wf, MinScryptWorkFactor, MaxScryptWorkFactor)
	}
	return nil
}

// keyFileAEAD derives the file key from the passphrase and the (already
// validated) header.
func keyFileAEAD(passphrase, hdr []byte) (cipher.AEAD, error) {
	k, err := scrypt.Key(passphrase, hdr[3:19], 1<<hdr[2], scryptR, scryptP, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	defer clear(k)
	return chacha20poly1305.New(k)
}
