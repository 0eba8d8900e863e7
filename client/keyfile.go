package client

import (
	"crypto"
	"encoding/pem"
	"fmt"
)

// Encrypted key files (docs/PROTOCOL.md section 11, "PoP key files").
//
// Written: the standard encrypted PKCS#8 file that OpenSSL and other tools
// read, PEM "ENCRYPTED PRIVATE KEY" (RFC 7468 section 11) holding an
// EncryptedPrivateKeyInfo (RFC 5958 section 3) whose encryption is PBES2
// (RFC 8018 section 6.2) with the scrypt KDF (RFC 7914 section 7) and
// AES-256-CBC with PKCS#7 padding (RFC 8018 appendix B.2.5). See pbes2.go.
//
// Read: that format with any scrypt parameters within the bounds below,
// and this package's first format, PEM "SDA ENCRYPTED PRIVATE KEY" (see
// keyfile_sda.go), so that files written before keep opening.

// Bounds of the scrypt work factor log2(N) of encrypted key files. Memory
// use is 128 * N * r bytes: 256 MiB at the default (r = 8), 1 GiB at the
// maximum.
const (
	// DefaultScryptWorkFactor is the work factor [EncryptPrivateKeyPEM]
	// uses unless [KeyFileOptions] say otherwise. It is what age uses for
	// passphrase-encrypted files.
	DefaultScryptWorkFactor = 18
	// MinScryptWorkFactor is the smallest work factor written or read.
	// Values below 15 are for tests only.
	MinScryptWorkFactor = 10
	// MaxScryptWorkFactor is the largest work factor written or read: a
	// key file asking for more is refused before any work is done.
	MaxScryptWorkFactor = 20
)

const (
	// defaultScryptR and defaultScryptP are r and p unless
	// [KeyFileOptions] say otherwise.
	defaultScryptR = 8
	defaultScryptP = 1
	// maxScryptCost bounds N * r * p of the files written and read at
	// 2^23 = 2^20 * 8 * 1, the largest work factor at the default r and p.
	// scrypt's time is proportional to N * r * p and its memory to N * r
	// (128 * N * r bytes), so a file can demand neither more time nor more
	// memory (1 GiB) than the largest work factor alone.
	maxScryptCost = 1 << (MaxScryptWorkFactor + 3)
)

// KeyFileOptions control how [EncryptPrivateKeyPEM] and [WriteKeyFile]
// encrypt a key. A nil *KeyFileOptions, or a zero field, means the
// default: scrypt with N = 2^18 ([DefaultScryptWorkFactor]), r = 8, p = 1
// (256 MiB of memory).
//
// OpenSSL 3 cannot read files at the default: reading a key file, its
// scrypt refuses to use more than its default limit of 32 MiB of memory
// (128 * r * (N + p + 2) bytes), and fails with "memory limit exceeded".
// N = 2^14 with r = 8 (16 MiB) fits, N = 2^15 with r = 8 does not. For files that `openssl
// pkey` must read, use [OpenSSLKeyFileOptions]. Any other parameters must
// stay within the bounds this package reads: N = 2^10 .. 2^20 and
// N * r * p <= 2^23.
type KeyFileOptions struct {
	// WorkFactor is log2 of scrypt's cost parameter N, from
	// [MinScryptWorkFactor] to [MaxScryptWorkFactor]; 0 means
	// [DefaultScryptWorkFactor].
	WorkFactor int
	// R is scrypt's block size r; 0 means 8.
	R int
	// P is scrypt's parallelization p; 0 means 1.
	P int
}

// OpenSSLKeyFileOptions returns the scrypt parameters of key files that
// OpenSSL 3 reads: N = 2^14, r = 8, p = 16. They cost the same time as the
// default (N * r * p is 2^21 in both) but 16 MiB of memory instead of
// 256 MiB, so they are 16 times less memory-hard: an attacker guessing
// passphrases on hardware with much parallelism and little memory per
// core (GPUs, ASICs) gains up to that factor.
func OpenSSLKeyFileOptions() *KeyFileOptions {
	return &KeyFileOptions{WorkFactor: 14, R: 8, P: 16}
}

// scryptParams are the parameters of one derivation, within the bounds.
type scryptParams struct {
	logN uint8
	r, p int
}

// params returns the scrypt parameters o selects, checked against the
// bounds of the files this package reads.
func (o *KeyFileOptions) params() (scryptParams, error) {
	var wf, r, p int
	if o != nil {
		wf, r, p = o.WorkFactor, o.R, o.P
	}
	if wf == 0 {
		wf = DefaultScryptWorkFactor
	}
	if r == 0 {
		r = defaultScryptR
	}
	if p == 0 {
		p = defaultScryptP
	}
	if wf < MinScryptWorkFactor || wf > MaxScryptWorkFactor || r < 0 || p < 0 {
		return scryptParams{}, invalid("scrypt work factor %d, r = %d, p = %d: want a work factor within %d..%d and positive r and p",
			wf, r, p, MinScryptWorkFactor, MaxScryptWorkFactor)
	}
	sp, ok := checkScrypt(uint64(1)<<wf, uint64(r), uint64(p))
	if !ok {
		return scryptParams{}, invalid("scrypt N = 2^%d, r = %d, p = %d: N * r * p is more than 2^%d", wf, r, p, MaxScryptWorkFactor+3)
	}
	return sp, nil
}

// checkScrypt checks scrypt parameters against the bounds of the files
// this package writes and reads: N a power of 2 from 2^MinScryptWorkFactor
// to 2^MaxScryptWorkFactor, r and p at least 1, and N * r * p at most
// maxScryptCost (so that N * r, the memory, is bounded too). It works on
// the raw values of a file, without overflow.
func checkScrypt(n, r, p uint64) (scryptParams, bool) {
	if n == 0 || n&(n-1) != 0 || n < 1<<MinScryptWorkFactor || n > 1<<MaxScryptWorkFactor {
		return scryptParams{}, false
	}
	if r == 0 || p == 0 {
		return scryptParams{}, false
	}
	rp := uint64(maxScryptCost) / n // at least 8: n <= 2^20
	if r > rp || p > rp/r {
		return scryptParams{}, false
	}
	logN := uint8(0)
	for n > 1 {
		n >>= 1
		logN++
	}
	return scryptParams{logN: logN, r: int(r), p: int(p)}, true
}

// EncryptPrivateKeyPEM returns key as a PEM "ENCRYPTED PRIVATE KEY" block:
// an encrypted PKCS#8 file (RFC 5958) that OpenSSL and other tools read,
// encrypted with PBES2 (RFC 8018): AES-256-CBC under a key derived from
// passphrase with scrypt (RFC 7914), a fresh random 16-byte salt and IV.
// opts selects the scrypt parameters (nil: N = 2^18, r = 8, p = 1, which
// OpenSSL 3 cannot read; see [KeyFileOptions] and
// [OpenSSLKeyFileOptions]). The passphrase must not be empty. Only
// software keys can be exported (see [MarshalPrivateKeyPEM]).
func EncryptPrivateKeyPEM(key crypto.Signer, passphrase []byte, opts *KeyFileOptions) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, invalid("empty passphrase")
	}
	sp, err := opts.params()
	if err != nil {
		return nil, err
	}
	der, err := marshalPKCS8(key)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	body, err := encryptPBES2(der, passphrase, sp)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedKey, Bytes: body}), nil
}

// DecryptPrivateKeyPEM decrypts an encrypted key file: one written by
// [EncryptPrivateKeyPEM] or by another tool in the same format (OpenSSL's
// `openssl pkcs8 -topk8 -scrypt`), or one in this package's first format
// (PEM "SDA ENCRYPTED PRIVATE KEY"). The scrypt parameters come from the
// file and are checked before any key derivation: N from 2^10 to 2^20,
// N * r * p at most 2^23, salt of 8 to 64 bytes, key length 32. Other key
// derivation functions or ciphers (PBKDF2, which `openssl pkcs8 -topk8`
// uses without -scrypt, or AES-128) give [ErrUnsupportedKeyEncryption].
//
// A wrong passphrase gives [ErrWrongPassphrase]; an unencrypted file gives
// [ErrKeyNotEncrypted]. A modified file gives ErrWrongPassphrase too,
// except that the standard format has no integrity protection: a file
// changed by someone without the passphrase may decrypt to a different key
// (see the package documentation's "Security considerations").
func DecryptPrivateKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	if len(passphrase) == 0 {
		return nil, invalid("empty passphrase")
	}
	block, err := decodeKeyPEM(data)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case pemEncryptedKey:
		return decryptPBES2(block.Bytes, passphrase)
	case pemSDAEncryptedKey:
		return decryptSDAKeyFile(block.Bytes, passphrase)
	}
	return nil, ErrKeyNotEncrypted
}

func malformedKey(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedKey, fmt.Sprintf(format, args...))
}

func unsupportedKeyEncryption(format string, args ...any) error {
	return fmt.Errorf("%w (%w): %s", ErrUnsupportedKeyEncryption, ErrMalformedKey, fmt.Sprintf(format, args...))
}
