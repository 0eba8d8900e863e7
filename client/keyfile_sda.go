package client

import (
	"crypto"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// This package's first encrypted key file format, read so that files
// written before keep opening, and no longer written (PEM block
// "SDA ENCRYPTED PRIVATE KEY", no PEM headers). The body is:
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
// parameter fails authentication like a wrong passphrase. The work factor
// is bounded like that of the standard format ([MinScryptWorkFactor] to
// [MaxScryptWorkFactor]) before any derivation.
const (
	sdaKeyFileVersion    = 1
	sdaKeyFileKDFScrypt  = 1
	sdaKeyFileAEADChaCha = 1
	sdaKeyFileHeader     = 32
	sdaKeyFileScryptR    = 8
	sdaKeyFileScryptP    = 1
)

// decryptSDAKeyFile decrypts the body of a PEM "SDA ENCRYPTED PRIVATE KEY"
// block.
func decryptSDAKeyFile(body, passphrase []byte) (crypto.Signer, error) {
	if len(body) < sdaKeyFileHeader+chacha20poly1305.Overhead {
		return nil, malformedKey("encrypted body of %d bytes is too short", len(body))
	}
	hdr := body[:sdaKeyFileHeader]
	if hdr[0] != sdaKeyFileVersion || hdr[1] != sdaKeyFileKDFScrypt || hdr[19] != sdaKeyFileAEADChaCha {
		return nil, unsupportedKeyEncryption("SDA key file version %d, KDF %d or AEAD %d, want 1, 1, 1", hdr[0], hdr[1], hdr[19])
	}
	if wf := int(hdr[2]); wf < MinScryptWorkFactor || wf > MaxScryptWorkFactor {
		return nil, malformedKey("scrypt work factor %d outside %d..%d", wf, MinScryptWorkFactor, MaxScryptWorkFactor)
	}
	k, err := scrypt.Key(passphrase, hdr[3:19], 1<<hdr[2], sdaKeyFileScryptR, sdaKeyFileScryptP, chacha20poly1305.KeySize)
	if err != nil {
		return nil, malformedKey("scrypt: %v", err)
	}
	defer clear(k)
	aead, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, hdr[20:32], body[sdaKeyFileHeader:], hdr)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(der)
	return parsePKCS8(der)
}
