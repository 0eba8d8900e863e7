package client

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	encasn1 "encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/scrypt"
)

// The encrypted PKCS#8 file this package writes, in DER:
//
//	EncryptedPrivateKeyInfo ::= SEQUENCE {              -- RFC 5958 section 3
//	  encryptionAlgorithm SEQUENCE {
//	    algorithm  id-PBES2,                            -- RFC 8018 A.4
//	    parameters PBES2-params ::= SEQUENCE {
//	      keyDerivationFunc SEQUENCE {
//	        algorithm  id-scrypt,                       -- RFC 7914 section 7
//	        parameters scrypt-params ::= SEQUENCE {
//	          salt OCTET STRING,                        -- 16 bytes (8..64 read)
//	          costParameter INTEGER,                    -- N
//	          blockSize INTEGER,                        -- r
//	          parallelizationParameter INTEGER,         -- p
//	          keyLength INTEGER OPTIONAL } },           -- 32 (absent or 32 read)
//	      encryptionScheme SEQUENCE {
//	        algorithm  aes256-CBC-PAD,                  -- RFC 8018 B.2.5
//	        parameters OCTET STRING (SIZE(16)) } } },   -- IV
//	  encryptedData OCTET STRING }                      -- PKCS#8 PrivateKeyInfo, PKCS#7-padded
//
// The AES-256 key is scrypt(passphrase, salt, N, r, p, 32). The format has
// no integrity protection: a wrong passphrase is recognised by the padding
// and the structure of the decrypted PrivateKeyInfo.
var (
	oidPBES2     = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidScrypt    = encasn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidAES256CBC = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// Sizes in encrypted PKCS#8 files.
const (
	pbes2SaltSize    = 16 // written
	pbes2MinSaltSize = 8  // read: what OpenSSL writes, and RFC 8018's minimum
	pbes2MaxSaltSize = 64 // read
	pbes2KeySize     = 32 // AES-256
)

// encryptPBES2 returns the DER EncryptedPrivateKeyInfo of the PKCS#8
// encoding der.
func encryptPBES2(der, passphrase []byte, sp scryptParams) ([]byte, error) {
	salt := make([]byte, pbes2SaltSize)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	block, err := pbes2Cipher(passphrase, salt, sp)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	ct := make([]byte, len(der)+pad)
	copy(ct, der)
	for i := len(der); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)

	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncryptedPrivateKeyInfo
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // encryptionAlgorithm
			b.AddASN1ObjectIdentifier(oidPBES2)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // PBES2-params
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // keyDerivationFunc
					b.AddASN1ObjectIdentifier(oidScrypt)
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // scrypt-params
						b.AddASN1OctetString(salt)
						b.AddASN1Uint64(1 << sp.logN)
						b.AddASN1Uint64(uint64(sp.r))
						b.AddASN1Uint64(uint64(sp.p))
						b.AddASN1Uint64(pbes2KeySize)
					})
				})
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // encryptionScheme
					b.AddASN1ObjectIdentifier(oidAES256CBC)
					b.AddASN1OctetString(iv)
				})
			})
		})
		b.AddASN1OctetString(ct)
	})
	return b.Bytes()
}

// pbes2File is a decoded EncryptedPrivateKeyInfo whose parameters are
// within the bounds.
type pbes2File struct {
	scrypt scryptParams
	salt   []byte
	iv     []byte
	data   []byte // whole blocks, at least one
}

// parsePBES2 decodes a DER EncryptedPrivateKeyInfo and checks everything
// the reader controls before any work is done: the algorithms, and the
// scrypt parameters against the bounds of checkScrypt.
func parsePBES2(der []byte) (*pbes2File, error) {
	var (
		in                                   = cryptobyte.String(der)
		epki, alg, params, kdf, sparams, enc cryptobyte.String
		oid                                  encasn1.ObjectIdentifier
		f                                    pbes2File
		salt, iv, data                       []byte
		n, r, p                              uint64
	)
	if !in.ReadASN1(&epki, asn1.SEQUENCE) || !in.Empty() ||
		!epki.ReadASN1(&alg, asn1.SEQUENCE) ||
		!epki.ReadASN1Bytes(&data, asn1.OCTET_STRING) || !epki.Empty() ||
		!alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, malformedKey("not an EncryptedPrivateKeyInfo (RFC 5958)")
	}
	if !oid.Equal(oidPBES2) {
		return nil, unsupportedKeyEncryption("encryption scheme %v, want PBES2 %v", oid, oidPBES2)
	}
	if !alg.ReadASN1(&params, asn1.SEQUENCE) || !alg.Empty() ||
		!params.ReadASN1(&kdf, asn1.SEQUENCE) || !params.ReadASN1(&enc, asn1.SEQUENCE) || !params.Empty() ||
		!kdf.ReadASN1ObjectIdentifier(&oid) {
		return nil, malformedKey("bad PBES2-params (RFC 8018 A.4)")
	}
	if !oid.Equal(oidScrypt) {
		return nil, unsupportedKeyEncryption("key derivation function %v, want scrypt %v", oid, oidScrypt)
	}
	if !kdf.ReadASN1(&sparams, asn1.SEQUENCE) || !kdf.Empty() ||
		!sparams.ReadASN1Bytes(&salt, asn1.OCTET_STRING) ||
		!sparams.ReadASN1Integer(&n) || !sparams.ReadASN1Integer(&r) || !sparams.ReadASN1Integer(&p) {
		return nil, malformedKey("bad scrypt-params (RFC 7914 section 7)")
	}
	if !sparams.Empty() {
		var keyLen uint64
		if !sparams.ReadASN1Integer(&keyLen) || !sparams.Empty() {
			return nil, malformedKey("bad scrypt-params (RFC 7914 section 7)")
		}
		if keyLen != pbes2KeySize {
			return nil, malformedKey("scrypt keyLength %d, want %d", keyLen, pbes2KeySize)
		}
	}
	sp, ok := checkScrypt(n, r, p)
	if !ok {
		return nil, malformedKey("scrypt N = %d, r = %d, p = %d outside the bounds: N = 2^%d..2^%d, N * r * p <= 2^%d",
			n, r, p, MinScryptWorkFactor, MaxScryptWorkFactor, MaxScryptWorkFactor+3)
	}
	if len(salt) < pbes2MinSaltSize || len(salt) > pbes2MaxSaltSize {
		return nil, malformedKey("scrypt salt of %d bytes, want %d..%d", len(salt), pbes2MinSaltSize, pbes2MaxSaltSize)
	}
	if !enc.ReadASN1ObjectIdentifier(&oid) {
		return nil, malformedKey("bad encryption scheme")
	}
	if !oid.Equal(oidAES256CBC) {
		return nil, unsupportedKeyEncryption("cipher %v, want aes256-CBC-PAD %v", oid, oidAES256CBC)
	}
	if !enc.ReadASN1Bytes(&iv, asn1.OCTET_STRING) || !enc.Empty() || len(iv) != aes.BlockSize {
		return nil, malformedKey("bad AES-CBC parameters: want a %d-byte IV", aes.BlockSize)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, malformedKey("encrypted data of %d bytes is not whole AES blocks", len(data))
	}
	f.scrypt, f.salt, f.iv, f.data = sp, salt, iv, data
	return &f, nil
}

// decryptPBES2 decrypts the body of a PEM "ENCRYPTED PRIVATE KEY" block.
func decryptPBES2(der, passphrase []byte) (crypto.Signer, error) {
	f, err := parsePBES2(der)
	if err != nil {
		return nil, err
	}
	block, err := pbes2Cipher(passphrase, f.salt, f.scrypt)
	if err != nil {
		return nil, err
	}
	return openPBES2(block, f.iv, f.data)
}

// pbes2Cipher derives the AES-256 key from the passphrase.
func pbes2Cipher(passphrase, salt []byte, sp scryptParams) (cipher.Block, error) {
	key, err := scrypt.Key(passphrase, salt, 1<<sp.logN, sp.r, sp.p, pbes2KeySize)
	if err != nil {
		return nil, malformedKey("scrypt: %v", err)
	}
	defer clear(key)
	return aes.NewCipher(key)
}

// openPBES2 decrypts data (whole blocks) and parses the PKCS#8
// PrivateKeyInfo in it. Without a MAC, the only signs of a wrong key are
// the padding and the structure: whatever is not valid PKCS#7 padding
// around exactly one DER SEQUENCE that parses as PKCS#8 is
// ErrWrongPassphrase. A random key passes the padding check with a
// probability of about 2^-8 and the rest with far less.
func openPBES2(block cipher.Block, iv, data []byte) (crypto.Signer, error) {
	plain := make([]byte, len(data))
	defer clear(plain)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, ErrWrongPassphrase
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, ErrWrongPassphrase
		}
	}
	der := plain[:len(plain)-pad]
	var rest cryptobyte.String = der
	var seq cryptobyte.String
	if !rest.ReadASN1Element(&seq, asn1.SEQUENCE) || !rest.Empty() {
		return nil, ErrWrongPassphrase
	}
	key, err := parsePKCS8(der)
	if errors.Is(err, ErrMalformedKey) {
		return nil, ErrWrongPassphrase
	}
	return key, err
}
