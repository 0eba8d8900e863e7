package client

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/scrypt"

	"github.com/securedeviceaccess/sda/token"
)

// The object identifiers of encrypted PKCS#8 files, as the tests spell
// them, independently of keyfile.go.
var (
	testOIDPBES2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}     // RFC 8018 A.4
	testOIDScrypt    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}  // RFC 7914 section 7
	testOIDAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42} // RFC 8018 B.2.5
	testOIDAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	testOIDPBKDF2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	testOIDPBES1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 10} // pbeWithSHA1AndDES-CBC
)

// testScryptParams is scrypt-params of RFC 7914 section 7.
type testScryptParams struct {
	Salt   []byte
	N      *big.Int
	R, P   *big.Int
	KeyLen *big.Int `asn1:"optional"`
}

type testPBES2Params struct {
	KDF, Enc pkix.AlgorithmIdentifier
}

// testEPKI is EncryptedPrivateKeyInfo of RFC 5958 section 3.
type testEPKI struct {
	Alg  pkix.AlgorithmIdentifier
	Data []byte
}

// pbes2Spec is an encrypted PKCS#8 file as the tests build it with
// encoding/asn1. newSpec fills in a well-formed one.
type pbes2Spec struct {
	pass     []byte
	encAlg   asn1.ObjectIdentifier // PBES2 or something else
	kdf      asn1.ObjectIdentifier
	kdfParam []byte // DER of the KDF parameters; nil: scrypt-params below
	salt     []byte
	n, r, p  *big.Int
	keyLen   *big.Int // nil: no keyLength field, as OpenSSL writes
	cipher   asn1.ObjectIdentifier
	iv       []byte
	key      []byte // the AES key; nil: derived with scrypt from the fields above
	plain    []byte // the plaintext, padded by build unless ct or nopad is set
	nopad    bool   // plain is whole blocks, encrypted without padding
	ct       []byte // the ciphertext as is
	trailer  []byte // appended to the DER
}

func newSpec(t testing.TB, plain []byte) *pbes2Spec {
	t.Helper()
	s := &pbes2Spec{
		pass:   []byte("pw"),
		encAlg: testOIDPBES2,
		kdf:    testOIDScrypt,
		salt:   make([]byte, 16),
		n:      big.NewInt(1 << MinScryptWorkFactor),
		r:      big.NewInt(8),
		p:      big.NewInt(1),
		keyLen: big.NewInt(32),
		cipher: testOIDAES256CBC,
		iv:     make([]byte, 16),
		plain:  plain,
	}
	if _, err := rand.Read(s.salt); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(s.iv); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustDER(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badPad returns b followed by filler and the given final bytes, a whole
// number of blocks.
func badPad(b []byte, final ...byte) []byte {
	out := bytes.Clone(b)
	for (len(out)+len(final))%16 != 0 {
		out = append(out, 0xAA)
	}
	return append(out, final...)
}

func pkcs7Pad(b []byte) []byte {
	n := 16 - len(b)%16
	return append(bytes.Clone(b), bytes.Repeat([]byte{byte(n)}, n)...)
}

// build returns the PEM file of s.
func (s *pbes2Spec) build(t testing.TB) []byte {
	t.Helper()
	ct := s.ct
	if ct == nil {
		key := s.key
		if key == nil {
			var err error
			key, err = scrypt.Key(s.pass, s.salt, int(s.n.Int64()), int(s.r.Int64()), int(s.p.Int64()), 32)
			if err != nil {
				t.Fatal(err)
			}
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		ct = pkcs7Pad(s.plain)
		if s.nopad {
			ct = bytes.Clone(s.plain)
		}
		cipher.NewCBCEncrypter(block, s.iv).CryptBlocks(ct, ct)
	}
	kdfParam := s.kdfParam
	if kdfParam == nil {
		kdfParam = mustDER(t, testScryptParams{Salt: s.salt, N: s.n, R: s.r, P: s.p, KeyLen: s.keyLen})
	}
	params := testPBES2Params{
		KDF: pkix.AlgorithmIdentifier{Algorithm: s.kdf, Parameters: asn1.RawValue{FullBytes: kdfParam}},
		Enc: pkix.AlgorithmIdentifier{Algorithm: s.cipher, Parameters: asn1.RawValue{FullBytes: mustDER(t, s.iv)}},
	}
	der := mustDER(t, testEPKI{
		Alg:  pkix.AlgorithmIdentifier{Algorithm: s.encAlg, Parameters: asn1.RawValue{FullBytes: mustDER(t, params)}},
		Data: ct,
	})
	der = append(der, s.trailer...)
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

// parseEncryptedPKCS8 decodes an encrypted PKCS#8 file written by
// EncryptPrivateKeyPEM with encoding/asn1 and returns its scrypt
// parameters, IV, ciphertext and the plaintext for passphrase.
func parseEncryptedPKCS8(t testing.TB, file, passphrase []byte) (sp testScryptParams, iv, plain []byte) {
	t.Helper()
	b, rest := pem.Decode(file)
	if b == nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one PEM block:\n%s", file)
	}
	if b.Type != "ENCRYPTED PRIVATE KEY" || len(b.Headers) != 0 {
		t.Fatalf("PEM block %q with headers %v, want ENCRYPTED PRIVATE KEY (RFC 7468 section 11)", b.Type, b.Headers)
	}
	var epki testEPKI
	if rest, err := asn1.Unmarshal(b.Bytes, &epki); err != nil || len(rest) != 0 {
		t.Fatalf("EncryptedPrivateKeyInfo: %v, %d bytes after it", err, len(rest))
	}
	if !epki.Alg.Algorithm.Equal(testOIDPBES2) {
		t.Fatalf("encryption algorithm %v, want PBES2 %v", epki.Alg.Algorithm, testOIDPBES2)
	}
	var params testPBES2Params
	if rest, err := asn1.Unmarshal(epki.Alg.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		t.Fatalf("PBES2-params: %v", err)
	}
	if !params.KDF.Algorithm.Equal(testOIDScrypt) || !params.Enc.Algorithm.Equal(testOIDAES256CBC) {
		t.Fatalf("KDF %v and cipher %v, want scrypt %v and aes256-CBC-PAD %v", params.KDF.Algorithm, params.Enc.Algorithm, testOIDScrypt, testOIDAES256CBC)
	}
	if rest, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &sp); err != nil || len(rest) != 0 {
		t.Fatalf("scrypt-params: %v", err)
	}
	if rest, err := asn1.Unmarshal(params.Enc.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != 16 {
		t.Fatalf("IV: %v, %d bytes", err, len(iv))
	}
	if !sp.N.IsInt64() || !sp.R.IsInt64() || !sp.P.IsInt64() || sp.N.Int64() > 1<<MaxScryptWorkFactor {
		t.Fatalf("scrypt parameters N=%v r=%v p=%v", sp.N, sp.R, sp.P)
	}
	if passphrase == nil {
		return sp, iv, nil
	}
	key, err := scrypt.Key(passphrase, sp.Salt, int(sp.N.Int64()), int(sp.R.Int64()), int(sp.P.Int64()), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(epki.Data) == 0 || len(epki.Data)%16 != 0 {
		t.Fatalf("ciphertext of %d bytes", len(epki.Data))
	}
	plain = make([]byte, len(epki.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, epki.Data)
	n := int(plain[len(plain)-1])
	if n < 1 || n > 16 || !bytes.Equal(plain[len(plain)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("bad PKCS#7 padding %x", plain[len(plain)-16:])
	}
	return sp, iv, plain[:len(plain)-n]
}

// TestEncryptedKeyFileFormat: an encrypted key file is a standard
// EncryptedPrivateKeyInfo (RFC 5958) with PBES2 (RFC 8018): scrypt (RFC
// 7914 section 7) with a 16-byte salt and keyLength 32, and AES-256-CBC with
// PKCS#7 padding and a 16-byte IV. The test decodes and decrypts it with
// encoding/asn1, x/crypto/scrypt and crypto/cipher alone.
func TestEncryptedKeyFileFormat(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyP384, KeyEd25519} {
		t.Run(kt.String(), func(t *testing.T) {
			k := mustKey(t, kt)
			enc, err := EncryptPrivateKeyPEM(k, []byte("correct horse"), testKeyFileOptions)
			if err != nil {
				t.Fatal(err)
			}
			sp, _, plain := parseEncryptedPKCS8(t, enc, []byte("correct horse"))
			if len(sp.Salt) != 16 || sp.N.Int64() != 1<<testWorkFactor || sp.R.Int64() != 8 || sp.P.Int64() != 1 || sp.KeyLen == nil || sp.KeyLen.Int64() != 32 {
				t.Errorf("scrypt salt of %d bytes, N=%v r=%v p=%v keyLength=%v; want 16 bytes, 2^%d, 8, 1, 32",
					len(sp.Salt), sp.N, sp.R, sp.P, sp.KeyLen, testWorkFactor)
			}
			want, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, want) {
				t.Errorf("plaintext is not the key's PKCS#8 encoding:\n got %x\nwant %x", plain, want)
			}
		})
	}
	// Salt and IV are fresh for every file.
	k := mustKey(t, KeyP256)
	a, err := EncryptPrivateKeyPEM(k, []byte("pw"), testKeyFileOptions)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncryptPrivateKeyPEM(k, []byte("pw"), testKeyFileOptions)
	if err != nil {
		t.Fatal(err)
	}
	spA, ivA, _ := parseEncryptedPKCS8(t, a, nil)
	spB, ivB, _ := parseEncryptedPKCS8(t, b, nil)
	if bytes.Equal(spA.Salt, spB.Salt) || bytes.Equal(ivA, ivB) {
		t.Error("two files share their salt or IV")
	}
}

// TestDecryptEncryptedPKCS8 reads files built by the test: the shapes
// other tools write (OpenSSL: an 8-byte salt and no keyLength; p > 1), and
// files whose parameters are refused before any key derivation, whose
// algorithms are not the supported ones, or whose content does not
// decrypt.
func TestDecryptEncryptedPKCS8(t *testing.T) {
	k := fixedKey(t, 7)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	big2 := func(e uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), e) }
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := func(f func(s *pbes2Spec)) []byte {
		s := newSpec(t, der)
		f(s)
		return s.build(t)
	}
	// noKDF builds a file whose key is not derived (parameters refused
	// before derivation must not be derived by the test either).
	noKDF := func(f func(s *pbes2Spec)) []byte {
		s := newSpec(t, der)
		s.key = random(32)
		f(s)
		return s.build(t)
	}
	for name, file := range map[string][]byte{
		"as written":                         good(func(s *pbes2Spec) {}),
		"OpenSSL: 8-byte salt, no keyLength": good(func(s *pbes2Spec) { s.salt, s.keyLen = s.salt[:8], nil }),
		"p = 2":                              good(func(s *pbes2Spec) { s.p = big.NewInt(2) }),
		"r = 1":                              good(func(s *pbes2Spec) { s.r = big.NewInt(1) }),
		"64-byte salt":                       good(func(s *pbes2Spec) { s.salt = random(64) }),
	} {
		t.Run("accepted/"+name, func(t *testing.T) {
			got, err := DecryptPrivateKeyPEM(file, []byte("pw"))
			if err != nil {
				t.Fatal(err)
			}
			signsLike(t, k, got)
			if _, err := DecryptPrivateKeyPEM(file, []byte("pv")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
			}
		})
	}
	tests := []struct {
		name string
		file []byte
		want error
	}{
		// Bounds, checked before any derivation: without them the first
		// cases would not finish.
		{"N = 2^40", noKDF(func(s *pbes2Spec) { s.n = big2(40) }), ErrMalformedKey},
		{"N = 2^64", noKDF(func(s *pbes2Spec) { s.n = big2(64) }), ErrMalformedKey},
		{"N = 2^21", noKDF(func(s *pbes2Spec) { s.n = big2(MaxScryptWorkFactor + 1) }), ErrMalformedKey},
		{"N = 2^9", noKDF(func(s *pbes2Spec) { s.n = big2(MinScryptWorkFactor - 1) }), ErrMalformedKey},
		{"N not a power of 2", noKDF(func(s *pbes2Spec) { s.n = big.NewInt(1<<12 + 1) }), ErrMalformedKey},
		{"N = 0", noKDF(func(s *pbes2Spec) { s.n = big.NewInt(0) }), ErrMalformedKey},
		{"N negative", noKDF(func(s *pbes2Spec) { s.n = big.NewInt(-1 << 12) }), ErrMalformedKey},
		{"memory: N = 2^20, r = 16", noKDF(func(s *pbes2Spec) { s.n, s.r = big2(20), big.NewInt(16) }), ErrMalformedKey},
		{"CPU: N = 2^20, r = 8, p = 2", noKDF(func(s *pbes2Spec) { s.n, s.p = big2(20), big.NewInt(2) }), ErrMalformedKey},
		{"CPU: N = 2^14, r = 8, p = 65", noKDF(func(s *pbes2Spec) { s.n, s.p = big2(14), big.NewInt(65) }), ErrMalformedKey},
		{"r = 2^40", noKDF(func(s *pbes2Spec) { s.r = big2(40) }), ErrMalformedKey},
		{"p = 2^40", noKDF(func(s *pbes2Spec) { s.p = big2(40) }), ErrMalformedKey},
		{"r = 0", noKDF(func(s *pbes2Spec) { s.r = big.NewInt(0) }), ErrMalformedKey},
		{"p = 0", noKDF(func(s *pbes2Spec) { s.p = big.NewInt(0) }), ErrMalformedKey},
		{"p negative", noKDF(func(s *pbes2Spec) { s.p = big.NewInt(-1) }), ErrMalformedKey},
		{"salt of 7 bytes", noKDF(func(s *pbes2Spec) { s.salt = s.salt[:7] }), ErrMalformedKey},
		{"salt of 65 bytes", noKDF(func(s *pbes2Spec) { s.salt = random(65) }), ErrMalformedKey},
		{"keyLength 16", noKDF(func(s *pbes2Spec) { s.keyLen = big.NewInt(16) }), ErrMalformedKey},
		{"keyLength 2^40", noKDF(func(s *pbes2Spec) { s.keyLen = big2(40) }), ErrMalformedKey},
		{"IV of 8 bytes", noKDF(func(s *pbes2Spec) { s.iv, s.ct = s.iv[:8], random(160) }), ErrMalformedKey},
		// Other algorithms.
		{"AES-128-CBC", noKDF(func(s *pbes2Spec) { s.cipher = testOIDAES128CBC }), ErrUnsupportedKeyEncryption},
		{"PBKDF2", noKDF(func(s *pbes2Spec) {
			s.kdf = testOIDPBKDF2
			s.kdfParam = mustDER(t, struct {
				Salt []byte
				Iter int
			}{s.salt, 2048})
		}), ErrUnsupportedKeyEncryption},
		{"PBES1", noKDF(func(s *pbes2Spec) { s.encAlg = testOIDPBES1 }), ErrUnsupportedKeyEncryption},
		// Structure.
		{"data after the DER", noKDF(func(s *pbes2Spec) { s.trailer = []byte{0} }), ErrMalformedKey},
		{"ciphertext not whole blocks", noKDF(func(s *pbes2Spec) { s.ct = random(47) }), ErrMalformedKey},
		{"no ciphertext", noKDF(func(s *pbes2Spec) { s.ct = []byte{} }), ErrMalformedKey},
		{"trailing data in scrypt-params", noKDF(func(s *pbes2Spec) {
			s.kdfParam = mustDER(t, struct {
				Salt       []byte
				N, R, P, L int
				Extra      bool
			}{s.salt, 1 << 10, 8, 1, 32, true})
		}), ErrMalformedKey},
		// No integrity: whatever does not decrypt to one PKCS#8 structure
		// is a wrong passphrase (or a damaged file).
		{"random key", noKDF(func(s *pbes2Spec) {}), ErrWrongPassphrase},
		{"padding 3, 3, 2", good(func(s *pbes2Spec) { s.plain, s.nopad = badPad(der, 3, 3, 2), true }), ErrWrongPassphrase},
		{"padding 0", good(func(s *pbes2Spec) { s.plain, s.nopad = badPad(der, 0), true }), ErrWrongPassphrase},
		{"padding 17", good(func(s *pbes2Spec) { s.plain, s.nopad = badPad(der, 17), true }), ErrWrongPassphrase},
		{"not PKCS#8", good(func(s *pbes2Spec) { s.plain = random(100) }), ErrWrongPassphrase},
		{"PKCS#8 and more", good(func(s *pbes2Spec) { s.plain = append(bytes.Clone(der), 0, 0) }), ErrWrongPassphrase},
		{"empty plaintext", good(func(s *pbes2Spec) { s.plain = nil }), ErrWrongPassphrase},
		// A correct file of a key type this package does not use.
		{"RSA key", good(func(s *pbes2Spec) { s.plain = rsaDER }), token.ErrUnsupportedKey},
	}
	for _, tc := range tests {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := DecryptPrivateKeyPEM(tc.file, []byte("pw"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == ErrUnsupportedKeyEncryption && !errors.Is(err, ErrMalformedKey) {
				t.Errorf("%v does not match ErrMalformedKey", err)
			}
			if _, perr := ParsePrivateKeyPEM(tc.file); !errors.Is(perr, ErrKeyEncrypted) {
				t.Errorf("ParsePrivateKeyPEM: %v, want ErrKeyEncrypted", perr)
			}
		})
	}
}

// TestScryptBounds: the scrypt parameters written and read are N = 2^10 ..
// 2^20 and N * r * p <= 2^23, so that a file costs at most the time and the
// memory (1 GiB) of N = 2^20, r = 8, p = 1. The accepted edges are tested
// here, without deriving a key.
func TestScryptBounds(t *testing.T) {
	for _, tc := range []struct {
		n, r, p uint64
		ok      bool
	}{
		{1 << 10, 8, 1, true},
		{1 << 20, 8, 1, true},
		{1 << 18, 8, 1, true},
		{1 << 14, 8, 16, true},
		{1 << 14, 8, 64, true},
		{1 << 10, 1 << 13, 1, true}, // 1 GiB
		{1 << 10, 1, 1 << 13, true},
		{1 << 14, 8, 65, false},
		{1 << 20, 8, 2, false},
		{1 << 20, 9, 1, false},
		{1 << 10, 1<<13 + 1, 1, false},
		{1 << 10, 1 << 63, 1 << 63, false},
		{1 << 9, 8, 1, false},
		{1 << 21, 1, 1, false},
		{3 << 10, 8, 1, false},
		{0, 8, 1, false},
		{1 << 10, 0, 1, false},
		{1 << 10, 8, 0, false},
	} {
		if _, ok := checkScrypt(tc.n, tc.r, tc.p); ok != tc.ok {
			t.Errorf("N = %d, r = %d, p = %d: accepted %v, want %v", tc.n, tc.r, tc.p, ok, tc.ok)
		}
	}
	for _, o := range []*KeyFileOptions{nil, {}, OpenSSLKeyFileOptions(), {WorkFactor: MaxScryptWorkFactor}, {WorkFactor: 14, P: 64}} {
		if _, err := o.params(); err != nil {
			t.Errorf("options %+v: %v", o, err)
		}
	}
	if sp, _ := (*KeyFileOptions)(nil).params(); sp != (scryptParams{logN: 18, r: 8, p: 1}) {
		t.Errorf("default scrypt parameters %+v, want N = 2^18, r = 8, p = 1", sp)
	}
	if sp, _ := OpenSSLKeyFileOptions().params(); sp != (scryptParams{logN: 14, r: 8, p: 16}) {
		t.Errorf("OpenSSL scrypt parameters %+v, want N = 2^14, r = 8, p = 16", sp)
	}
}

// TestWrongKeyIsWrongPassphrase: without a MAC, a wrong passphrase is
// recognised by the padding and the structure of the plaintext. Decrypting
// one file with many random keys always gives ErrWrongPassphrase, never a
// key and never another error (about 1 in 256 keys passes the padding
// check, so the structure check is exercised too).
func TestWrongKeyIsWrongPassphrase(t *testing.T) {
	k := fixedKey(t, 9)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	spec := newSpec(t, der)
	spec.key = make([]byte, 32)
	if _, err := rand.Read(spec.key); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(spec.build(t))
	f, err := parsePBES2(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	right, err := aes.NewCipher(spec.key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openPBES2(right, f.iv, f.data); err != nil || !token.EqualKeys(got.Public(), k.Public()) {
		t.Fatalf("the right key: %v", err)
	}
	const trials = 1 << 14
	key := make([]byte, 32)
	for range trials {
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		wrong, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openPBES2(wrong, f.iv, f.data); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("a random key: %v, want ErrWrongPassphrase", err)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the testdata/pkcs8-*.key vectors (from the keys of testdata/sda-v1-*.key)")

// The encrypted PKCS#8 vectors, all encrypted with vectorPassphrase: the
// keys of testdata/sda-v1-NAME.key (public keys testdata/sda-v1-NAME.pem)
// at the test work factor, and the P-256 one at the default parameters and
// at OpenSSLKeyFileOptions.
const vectorPassphrase = "correct horse battery staple"

var pkcs8Vectors = []struct {
	file, pub string
	opts      *KeyFileOptions
}{
	{"pkcs8-p256.key", "sda-v1-p256.pem", testKeyFileOptions},
	{"pkcs8-p384.key", "sda-v1-p384.pem", testKeyFileOptions},
	{"pkcs8-ed25519.key", "sda-v1-ed25519.pem", testKeyFileOptions},
	{"pkcs8-p256-default.key", "sda-v1-p256.pem", nil},
	{"pkcs8-p256-openssl.key", "sda-v1-p256.pem", OpenSSLKeyFileOptions()},
}

// TestKeyFileVectorsPKCS8: encrypted PKCS#8 files written by this package
// keep opening, and carry the parameters they were written with. Files at
// the test work factor are decrypted; the default and OpenSSL ones (256 MiB
// and 2^21 rounds) are only decoded here, and read by openssl in
// TestOpenSSLScryptMemoryLimit. Run with -update to write them anew.
func TestKeyFileVectorsPKCS8(t *testing.T) {
	if *update {
		writePKCS8Vectors(t)
	}
	for _, v := range pkcs8Vectors {
		t.Run(v.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", v.file))
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			sp, _, _ := parseEncryptedPKCS8(t, data, nil)
			want, err := v.opts.params()
			if err != nil {
				t.Fatal(err)
			}
			if sp.N.Int64() != 1<<want.logN || sp.R.Int64() != int64(want.r) || sp.P.Int64() != int64(want.p) || len(sp.Salt) != 16 {
				t.Fatalf("scrypt N = %v, r = %v, p = %v, %d-byte salt; want N = 2^%d, r = %d, p = %d, 16 bytes",
					sp.N, sp.R, sp.P, len(sp.Salt), want.logN, want.r, want.p)
			}
			if v.opts != testKeyFileOptions {
				return
			}
			pub := vectorPublicKey(t, v.pub)
			k, err := ReadKeyFile(filepath.Join("testdata", v.file), []byte(vectorPassphrase))
			if err != nil {
				t.Fatal(err)
			}
			signsFor(t, pub, k)
			if _, err := DecryptPrivateKeyPEM(data, []byte(vectorPassphrase+" ")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
			}
		})
	}
}

func vectorPublicKey(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	pubPEM, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// writePKCS8Vectors writes the pkcs8Vectors from the keys of the SDA v1
// vectors.
func writePKCS8Vectors(t *testing.T) {
	for _, v := range pkcs8Vectors {
		src := filepath.Join("testdata", strings.TrimSuffix(v.pub, ".pem")+".key")
		k, err := ReadKeyFile(src, []byte(vectorPassphrase))
		if err != nil {
			t.Fatal(err)
		}
		data, err := EncryptPrivateKeyPEM(k, []byte(vectorPassphrase), v.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", v.file), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote testdata/%s", v.file)
	}
}

// TestTamperedECKeyIsDetected: CBC is malleable, so flipping a bit of an
// encrypted P-256 file's ciphertext changes the private scalar while the
// rest still parses. EC keys carry their public key (SEC1 publicKey, which
// Go and OpenSSL write), and a scalar that does not match it is refused:
// ErrWrongPassphrase for an encrypted file, ErrMalformedKey in clear.
func TestTamperedECKeyIsDetected(t *testing.T) {
	k := fixedKey(t, 5)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// The scalar is bytes 36..67 of Go's P-256 PKCS#8; flipping bit 0 of
	// ciphertext byte 48 garbles plaintext bytes 48..63 (scalar) and flips
	// bit 0 of byte 64 (scalar too): the result still parses.
	if !bytes.Equal(der[34:36], []byte{0x04, 0x20}) {
		t.Fatalf("unexpected PKCS#8 layout % x", der[:40])
	}
	spec := newSpec(t, der)
	block, _ := pem.Decode(spec.build(t))
	f, err := parsePBES2(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pbes2Cipher(spec.pass, f.salt, f.scrypt)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(f.data)
	data[48] ^= 1
	got, err := openPBES2(c, f.iv, data)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("tampered scalar: key %v, error %v; want ErrWrongPassphrase", got != nil, err)
	}
	// Flipping bit 1 of ciphertext byte 52 garbles scalar bytes 52..67
	// and turns the publicKey tag at byte 68 ([1], a1) into [3] (a3),
	// which x509.ParsePKCS8PrivateKey skips as an unknown trailing field.
	if der[68] != 0xa1 {
		t.Fatalf("unexpected PKCS#8 layout at 68: % x", der[68:70])
	}
	data = bytes.Clone(f.data)
	data[52] ^= 2
	got, err = openPBES2(c, f.iv, data)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("tampered scalar and public key tag: key %v, error %v; want ErrWrongPassphrase", got != nil, err)
	}

	// In clear: another key's scalar under this key's public key.
	other, err := x509.MarshalPKCS8PrivateKey(fixedKey(t, 6))
	if err != nil {
		t.Fatal(err)
	}
	mixed := bytes.Clone(der)
	copy(mixed[36:68], other[36:68])
	file := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mixed})
	if _, err := ParsePrivateKeyPEM(file); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("mismatched public key in clear: %v, want ErrMalformedKey", err)
	}
}

// TestECPublicKeyForms: a P-256 key in clear whose SEC1 publicKey is in
// compressed form (as `openssl ec -conv_form compressed` writes) opens when
// it matches the scalar and is ErrMalformedKey when it does not; a key
// without the field opens on its scalar alone.
func TestECPublicKeyForms(t *testing.T) {
	type ecPrivateKey struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	type pkcs8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	k := fixedKey(t, 7)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var outer pkcs8
	var inner ecPrivateKey
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(outer.PrivateKey, &inner); err != nil {
		t.Fatal(err)
	}
	full := inner.PublicKey.Bytes
	compressed := append([]byte{2 | full[64]&1}, full[1:33]...)
	wrongY := append([]byte{3 ^ full[64]&1}, full[1:33]...)
	for _, c := range []struct {
		name string
		pub  []byte
		want error
	}{
		{"compressed", compressed, nil},
		{"compressed, other y", wrongY, ErrMalformedKey},
		{"absent", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := inner
			in.PublicKey = asn1.BitString{Bytes: c.pub, BitLength: 8 * len(c.pub)}
			b, err := asn1.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out := outer
			out.PrivateKey = b
			d, err := asn1.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: d}))
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err == nil && !token.EqualKeys(got.Public(), k.Public()) {
				t.Fatal("a different key")
			}
		})
	}
}
