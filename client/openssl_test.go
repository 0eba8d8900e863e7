package client

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/token"
)

// The interoperability tests run the openssl binary. Without it they are
// skipped on a developer's machine and fail in CI (.ci/run installs
// Debian's openssl package).

// openssl runs the openssl binary in dir and returns its standard output;
// err is set if it failed, with its standard error in stderr.
func openssl(t *testing.T, dir string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	bin, lerr := exec.LookPath("openssl")
	if lerr != nil {
		testenv.Missing(t, "openssl not found (%v); install it (Debian package openssl)", lerr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OPENSSL_CONF=/dev/null")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

func mustOpenSSL(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, stderr, err := openssl(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr)
	}
	return out
}

// opensslDir returns a new directory holding the file "pass" with the
// passphrase as openssl's -passin/-passout file: reads it.
func opensslDir(t *testing.T, passphrase string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpenSSLReadsKeyFile: openssl pkey decrypts the key files this
// package writes, and finds the same key in them.
func TestOpenSSLReadsKeyFile(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyP384, KeyEd25519} {
		t.Run(kt.String(), func(t *testing.T) {
			dir := opensslDir(t, "correct horse battery staple")
			k := mustKey(t, kt)
			enc, err := EncryptPrivateKeyPEM(k, []byte("correct horse battery staple"), testKeyFileOptions)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "k.key"), enc, 0o600); err != nil {
				t.Fatal(err)
			}
			out := mustOpenSSL(t, dir, "pkey", "-in", "k.key", "-passin", "file:pass", "-pubout")
			pub, err := token.ParsePublicKeyPEM(out)
			if err != nil {
				t.Fatalf("openssl pkey -pubout: %v\n%s", err, out)
			}
			if !token.EqualKeys(pub, k.Public()) {
				t.Fatal("openssl found another key in the file")
			}
			if err := os.WriteFile(filepath.Join(dir, "wrong"), []byte("correct horse battery stapler\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := openssl(t, dir, "pkey", "-in", "k.key", "-passin", "file:wrong", "-noout"); err == nil {
				t.Error("openssl read the file with a wrong passphrase")
			}
		})
	}
}

// TestKeyFileReadsOpenSSL: this package reads the encrypted PKCS#8 files
// that openssl pkcs8 -topk8 -scrypt writes (an 8-byte salt and no
// keyLength field), at OpenSSL's default scrypt parameters (N = 2^14, r =
// 8, p = 1) and at others.
func TestKeyFileReadsOpenSSL(t *testing.T) {
	tests := []struct {
		kt      KeyType
		n, r, p int // 0: OpenSSL's default
	}{
		{KeyP256, 0, 0, 0},
		{KeyP384, 1 << 10, 8, 2},
		{KeyEd25519, 1 << 10, 4, 1},
	}
	for _, tc := range tests {
		t.Run(tc.kt.String(), func(t *testing.T) {
			dir := opensslDir(t, "correct horse battery staple")
			k := mustKey(t, tc.kt)
			clear, err := MarshalPrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "clear.pem"), clear, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"pkcs8", "-topk8", "-scrypt", "-in", "clear.pem", "-passout", "file:pass", "-out", "k.key"}
			if tc.n != 0 {
				args = append(args, "-scrypt_N", strconv.Itoa(tc.n), "-scrypt_r", strconv.Itoa(tc.r), "-scrypt_p", strconv.Itoa(tc.p))
			}
			mustOpenSSL(t, dir, args...)
			enc, err := os.ReadFile(filepath.Join(dir, "k.key"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptPrivateKeyPEM(enc, []byte("correct horse battery staple"))
			if err != nil {
				t.Fatal(err)
			}
			signsLike(t, k, got)
			if _, err := DecryptPrivateKeyPEM(enc, []byte("correct horse battery stapler")); !errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
			}
			got, err = ReadKeyFile(filepath.Join(dir, "k.key"), []byte("correct horse battery staple"))
			if err != nil {
				t.Fatal(err)
			}
			signsLike(t, k, got)
		})
	}
}

// TestOpenSSLScryptMemoryLimit pins what the documentation says about
// OpenSSL (KeyFileOptions, the package documentation, docs/PROTOCOL.md
// section 11, sdactl keys generate -h): openssl reads the vector written
// with OpenSSLKeyFileOptions, and refuses the one written at the default
// parameters because its scrypt is limited to 32 MiB of memory. If a later
// OpenSSL reads the default file, this test fails: update those texts.
func TestOpenSSLScryptMemoryLimit(t *testing.T) {
	dir := opensslDir(t, vectorPassphrase)
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	pub := vectorPublicKey(t, "sda-v1-p256.pem")
	for _, v := range pkcs8Vectors {
		if v.opts == nil {
			continue
		}
		out := mustOpenSSL(t, dir, "pkey", "-in", filepath.Join(testdata, v.file), "-passin", "file:pass", "-pubout")
		got, err := token.ParsePublicKeyPEM(out)
		if err != nil {
			t.Fatalf("%s: openssl pkey -pubout: %v\n%s", v.file, err, out)
		}
		if !token.EqualKeys(got, vectorPublicKey(t, v.pub)) {
			t.Errorf("%s: openssl found another key", v.file)
		}
	}
	out, stderr, err := openssl(t, dir, "pkey", "-in", filepath.Join(testdata, "pkcs8-p256-default.key"), "-passin", "file:pass", "-pubout")
	if err == nil {
		got, perr := token.ParsePublicKeyPEM(out)
		t.Fatalf("openssl now reads a key file at the default scrypt parameters (N = 2^%d, r = 8, p = 1; same key: %v, %v): "+
			"update what KeyFileOptions, OpenSSLKeyFileOptions, client/doc.go, docs/PROTOCOL.md section 11 and sdactl keys generate -h say about OpenSSL",
			DefaultScryptWorkFactor, perr == nil && token.EqualKeys(got, pub), perr)
	}
	if !bytes.Contains(stderr, []byte("memory limit exceeded")) {
		t.Errorf("openssl refused the default file, but not for its scrypt memory limit:\n%s", stderr)
	}
}
