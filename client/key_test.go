package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// testWorkFactor keeps scrypt cheap in tests: testKeyFileOptions are the
// options of the tests' encrypted key files.
const testWorkFactor = MinScryptWorkFactor

var testKeyFileOptions = &KeyFileOptions{WorkFactor: testWorkFactor}

func signsLike(t *testing.T, a, b crypto.Signer) {
	t.Helper()
	signsFor(t, a.Public(), b)
}

// signsFor checks that b is the private half of pub: the public keys are
// equal and a request signed with b verifies with pub.
func signsFor(t *testing.T, pub crypto.PublicKey, b crypto.Signer) {
	t.Helper()
	if !token.EqualKeys(pub, b.Public()) {
		t.Fatal("public keys differ")
	}
	raw := issue(t, mustP256(t), pub, []string{"ep:x"}, "read-data", testNow)
	signed, err := token.SignRequest(&token.Request{Nonce: 7, Operation: readData, Token: raw}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := token.ParseRequest(signed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sr.Verify(pub); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyEd25519, KeyP384} {
		t.Run(kt.String(), func(t *testing.T) {
			k := mustKey(t, kt)
			pemBytes, err := MarshalPrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(pemBytes); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("not a PKCS#8 PEM block:\n%s", pemBytes)
			}
			k2, err := ParsePrivateKeyPEM(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			signsLike(t, k, k2)

			enc, err := EncryptPrivateKeyPEM(k, []byte("correct horse"), testKeyFileOptions)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(enc, pemBytes[28:60]) {
				t.Fatal("encrypted file contains the clear key")
			}
			k3, err := DecryptPrivateKeyPEM(enc, []byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			signsLike(t, k, k3)
			if _, err := DecryptPrivateKeyPEM(enc, []byte("correct horsf")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v", err)
			}
			if _, err := ParsePrivateKeyPEM(enc); !errors.Is(err, ErrKeyEncrypted) {
				t.Errorf("parsing an encrypted key: %v", err)
			}
			if _, err := DecryptPrivateKeyPEM(pemBytes, []byte("x")); !errors.Is(err, ErrKeyNotEncrypted) {
				t.Errorf("decrypting a clear key: %v", err)
			}
		})
	}
	if _, err := GenerateKey(KeyType(9)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown key type: %v", err)
	}
}

func encryptedBody(t *testing.T, data []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM")
	}
	return b.Bytes
}

func reencode(body []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "SDA ENCRYPTED PRIVATE KEY", Bytes: body})
}

// TestSDAKeyFileTampering: in this package's first format (read only) the
// work factor comes from the file: it is bounded before any work, and it is
// authenticated like the rest of the header.
func TestSDAKeyFileTampering(t *testing.T) {
	enc, err := os.ReadFile(filepath.Join("testdata", "sda-v1-p256.key"))
	if err != nil {
		t.Fatal(err)
	}
	const pass = "correct horse battery staple"
	body := encryptedBody(t, enc)
	if body[2] != testWorkFactor {
		t.Fatalf("work factor byte %d, want %d (format of keyfile_sda.go)", body[2], testWorkFactor)
	}
	if _, err := DecryptPrivateKeyPEM(reencode(body), []byte(pass)); err != nil {
		t.Fatalf("the vector itself: %v", err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return reencode(f(bytes.Clone(body))) }
	tests := []struct {
		name string
		file []byte
		want error
	}{
		// 2^40 iterations of scrypt, or 128 TiB of memory: refused at once
		// (without the bound this test would not finish).
		{"huge work factor", mutate(func(b []byte) []byte { b[2] = 40; return b }), ErrMalformedKey},
		{"above maximum", mutate(func(b []byte) []byte { b[2] = MaxScryptWorkFactor + 1; return b }), ErrMalformedKey},
		{"below minimum", mutate(func(b []byte) []byte { b[2] = MinScryptWorkFactor - 1; return b }), ErrMalformedKey},
		{"other work factor", mutate(func(b []byte) []byte { b[2]++; return b }), ErrWrongPassphrase},
		{"version", mutate(func(b []byte) []byte { b[0] = 2; return b }), ErrUnsupportedKeyEncryption},
		{"kdf", mutate(func(b []byte) []byte { b[1] = 2; return b }), ErrUnsupportedKeyEncryption},
		{"aead", mutate(func(b []byte) []byte { b[19] = 2; return b }), ErrUnsupportedKeyEncryption},
		{"salt", mutate(func(b []byte) []byte { b[5] ^= 1; return b }), ErrWrongPassphrase},
		{"nonce", mutate(func(b []byte) []byte { b[25] ^= 1; return b }), ErrWrongPassphrase},
		{"ciphertext", mutate(func(b []byte) []byte { b[40] ^= 1; return b }), ErrWrongPassphrase},
		{"tag", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrWrongPassphrase},
		{"short", mutate(func(b []byte) []byte { return b[:40] }), ErrMalformedKey},
		{"empty", mutate(func(b []byte) []byte { return nil }), ErrMalformedKey},
		{"headers", []byte("-----BEGIN SDA ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END SDA ENCRYPTED PRIVATE KEY-----\n"), ErrMalformedKey},
		{"headers (standard format)", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), ErrMalformedKey},
		{"not pem", []byte("hello"), ErrMalformedKey},
		{"huge", make([]byte, MaxKeyFileSize+1), ErrMalformedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecryptPrivateKeyPEM(tc.file, []byte(pass)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	k := mustKey(t, KeyP256)
	for _, o := range []KeyFileOptions{
		{WorkFactor: -1},
		{WorkFactor: MinScryptWorkFactor - 1},
		{WorkFactor: MaxScryptWorkFactor + 1},
		{WorkFactor: 64},
		{WorkFactor: testWorkFactor, R: -1},
		{WorkFactor: testWorkFactor, P: -1},
		{WorkFactor: MaxScryptWorkFactor, P: 2},              // twice the time of the largest work factor
		{WorkFactor: MaxScryptWorkFactor, R: 16},             // twice its memory
		{WorkFactor: 14, R: 8, P: 65},                        // N * r * p = 2^23 + 2^17
		{WorkFactor: testWorkFactor, R: 1 << 62, P: 1 << 62}, // overflows
	} {
		if _, err := EncryptPrivateKeyPEM(k, []byte("pw"), &o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", o, err)
		}
	}
	if _, err := EncryptPrivateKeyPEM(k, nil, testKeyFileOptions); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty passphrase: %v", err)
	}
	if _, err := DecryptPrivateKeyPEM([]byte("x"), []byte{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty passphrase: %v", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := ParsePrivateKeyPEM(rsaPEM); !errors.Is(err, token.ErrUnsupportedKey) {
		t.Errorf("RSA key: %v", err)
	}
	if _, err := MarshalPrivateKeyPEM(rk); !errors.Is(err, token.ErrUnsupportedKey) {
		t.Errorf("exporting an RSA key: %v", err)
	}
	for name, data := range map[string][]byte{
		"garbage DER": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01}}),
		"public key":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"EC key":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"nothing":     nil,
	} {
		if _, err := ParsePrivateKeyPEM(data); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A key file holds exactly one key: a second block, or other text around
// the block, is refused rather than ignored, so nothing is ever signed with
// one key of several that the file's reader did not choose.
func TestKeyFileHoldsOneKey(t *testing.T) {
	one, err := MarshalPrivateKeyPEM(mustKey(t, KeyP256))
	if err != nil {
		t.Fatal(err)
	}
	other, err := MarshalPrivateKeyPEM(mustKey(t, KeyEd25519))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptPrivateKeyPEM(mustKey(t, KeyP256), []byte("pw"), testKeyFileOptions)
	if err != nil {
		t.Fatal(err)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	if _, err := ParsePrivateKeyPEM(cat([]byte("\r\n\n"), one, []byte(" \t\r\n\n"))); err != nil {
		t.Fatalf("one key with whitespace around it: %v", err)
	}
	for name, data := range map[string][]byte{
		"two keys":            cat(one, other),
		"a key and a public":  cat(one, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")),
		"text before":         cat([]byte("my key:\n"), one),
		"text after":          cat(one, []byte("trailing")),
		"an encrypted second": cat(one, enc),
	} {
		if _, err := ParsePrivateKeyPEM(data); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: %v, want ErrMalformedKey", name, err)
		}
	}
	if _, err := DecryptPrivateKeyPEM(cat(enc, one), []byte("pw")); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("an encrypted key and a second: %v, want ErrMalformedKey", err)
	}
}

// TestDegenerateKeys: a proof-of-possession key with which signatures
// verify without any private key (an Ed25519 key whose public half is the
// identity point, built by hand), or an ECDSA key off its curve, is refused
// before a token is requested for it and before it is written out.
func TestDegenerateKeys(t *testing.T) {
	identity := append([]byte{1}, make([]byte, 31)...)
	weak := ed25519.PrivateKey(append(ed25519.NewKeyFromSeed(make([]byte, 32))[:32:32], identity...))
	if _, err := MarshalPrivateKeyPEM(weak); !errors.Is(err, token.ErrWeakKey) {
		t.Errorf("MarshalPrivateKeyPEM: %v, want token.ErrWeakKey", err)
	}
	if _, err := EncryptPrivateKeyPEM(weak, []byte("pw"), testKeyFileOptions); !errors.Is(err, token.ErrWeakKey) {
		t.Errorf("EncryptPrivateKeyPEM: %v, want token.ErrWeakKey", err)
	}
	path := filepath.Join(t.TempDir(), "weak.pem")
	if err := WriteKeyFile(path, weak, nil, nil); !errors.Is(err, token.ErrWeakKey) {
		t.Errorf("WriteKeyFile: %v, want token.ErrWeakKey", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was written: %v", err)
	}
	k := mustKey(t, KeyP256).(*ecdsa.PrivateKey)
	//lint:ignore SA1019 building an invalid key on purpose needs the raw coordinates
	offCurve := &ecdsa.PublicKey{Curve: k.Curve, X: k.X, Y: new(big.Int).Add(k.Y, big.NewInt(1))}
	for name, tc := range map[string]struct {
		key    crypto.PublicKey
		reason error
	}{
		"small order":   {weak.Public(), token.ErrWeakKey},
		"off the curve": {offCurve, token.ErrUnsupportedKey},
	} {
		r := &token.AccessRequest{Audience: []string{"ep:a"}, Scope: []string{"read"}, Key: tc.key}
		if err := r.Validate(); !errors.Is(err, token.ErrInvalid) || !errors.Is(err, tc.reason) {
			t.Errorf("%s: token.AccessRequest.Validate: %v, want token.ErrInvalid and %v", name, err, tc.reason)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t, KeyP256)
	clearPath, encPath := filepath.Join(dir, "clear.key"), filepath.Join(dir, "enc.key")
	if err := WriteKeyFile(clearPath, k, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The default work factor (256 MiB of memory) is too slow under the
	// race detector; write the encrypted file at the test work factor.
	if err := WriteKeyFile(encPath, k, []byte("pw"), testKeyFileOptions); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(encPath)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(before); b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("WriteKeyFile with a passphrase wrote:\n%s", before)
	}
	// Existing files are never replaced, and refusals leave nothing behind.
	if err := WriteKeyFile(encPath, k, []byte("pw"), testKeyFileOptions); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwriting an existing key file: %v, want fs.ErrExist", err)
	}
	if err := WriteKeyFile(encPath, k, nil, nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwriting an existing key file: %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(encPath); !bytes.Equal(before, after) {
		t.Error("WriteKeyFile changed an existing key file")
	}
	if err := WriteKeyFile(filepath.Join(dir, "opts.key"), k, nil, testKeyFileOptions); !errors.Is(err, ErrInvalid) {
		t.Errorf("options without a passphrase: %v, want ErrInvalid", err)
	}
	if err := WriteKeyFile(filepath.Join(dir, "missing", "k.key"), k, nil, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file in a missing directory: %v, want fs.ErrNotExist", err)
	}
	if err := WriteKeyFile(filepath.Join(dir, "hw.key"), hardwareKey{k}, nil, nil); !errors.Is(err, token.ErrUnsupportedKey) {
		t.Errorf("hardware key: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"clear.key", "enc.key"}; !slices.Equal(names, want) {
		t.Errorf("the directory holds %v, want %v: a failed write left something behind", names, want)
	}
	for _, path := range []string{clearPath, encPath} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
	}
	k2, err := ReadKeyFile(clearPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	signsLike(t, k, k2)
	k3, err := ReadKeyFile(encPath, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	signsLike(t, k, k3)
	if _, err := ReadKeyFile(clearPath, []byte("pw")); !errors.Is(err, ErrKeyNotEncrypted) {
		t.Errorf("clear file read with a passphrase: %v", err)
	}
	if _, err := ReadKeyFile(encPath, nil); !errors.Is(err, ErrKeyEncrypted) {
		t.Errorf("encrypted file read without a passphrase: %v", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestKeyFileVectorsSDAv1: key files written by the first version of this
// package (PEM "SDA ENCRYPTED PRIVATE KEY", format version 1, at the
// minimum work factor so the test stays fast) keep opening. Each
// testdata/sda-v1-NAME.key was encrypted with the passphrase below;
// testdata/sda-v1-NAME.pem is its public key.
func TestKeyFileVectorsSDAv1(t *testing.T) {
	const passphrase = "correct horse battery staple"
	for _, name := range []string{"p256", "p384", "ed25519"} {
		t.Run(name, func(t *testing.T) {
			keyPath := filepath.Join("testdata", "sda-v1-"+name+".key")
			pubPEM, err := os.ReadFile(filepath.Join("testdata", "sda-v1-"+name+".pem"))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := token.ParsePublicKeyPEM(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(data); b == nil || b.Type != "SDA ENCRYPTED PRIVATE KEY" || b.Bytes[0] != 1 || b.Bytes[2] != MinScryptWorkFactor {
				t.Fatalf("%s is not a version 1 SDA key file at work factor %d", keyPath, MinScryptWorkFactor)
			}
			k, err := ReadKeyFile(keyPath, []byte(passphrase))
			if err != nil {
				t.Fatal(err)
			}
			signsFor(t, pub, k)
			if _, err := DecryptPrivateKeyPEM(data, []byte(passphrase+" ")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
			}
			if _, err := ReadKeyFile(keyPath, nil); !errors.Is(err, ErrKeyEncrypted) {
				t.Errorf("read without a passphrase: %v, want ErrKeyEncrypted", err)
			}
		})
	}
}
