package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/internal/testenv"
)

// TestAuthServerPKCS11 keeps the anchor key in a SoftHSM2 token: keys
// generate -pkcs11 makes it there, authserver -key pkcs11:... signs tokens
// with it, and a device trusting its public key accepts them.
func TestAuthServerPKCS11(t *testing.T) {
	if !cgoEnabled {
		testenv.Missing(t, "sdactl is built without cgo: PKCS#11 modules cannot be loaded")
	}
	tok := testenv.SoftHSM(t, "sda-hsm") // SOFTHSM2_CONF, inherited by the sdactl processes
	dir := t.TempDir()
	uri := "pkcs11:token=" + tok.Label + ";object=anchor?module-path=" + tok.Module

	// Generated in the token with the PIN on stdin; its URI is printed with
	// the key's id.
	r := expect(t, 0, dir, tok.PIN+"\n", "keys", "generate", "-pkcs11", uri, "-pin-file", "-", "-pub", "anchor.pem")
	wantContains(t, "keys generate -pkcs11", r.stdout, "private key: pkcs11:token=sda-hsm;object=anchor;id=%", "type=private?module-path=", "anchor name: mbed.ta.")
	if strings.Contains(r.stdout, tok.PIN) {
		t.Fatalf("keys generate printed the PIN:\n%v", r)
	}
	readFile(t, filepath.Join(dir, "anchor.pem"))
	ok(t, dir, "keys", "generate", "-o", "tech.key")

	// Refused: the label again (1), a wrong PIN (3), the PIN in the URI
	// (3), flags that do not go with -pkcs11 (2), a -pub file that exists
	// (4, before generating).
	expect(t, 1, dir, tok.PIN, "keys", "generate", "-pkcs11", uri, "-pin-file", "-")
	expect(t, 3, dir, "0000", "keys", "generate", "-pkcs11", strings.Replace(uri, "anchor", "other", 1), "-pin-file", "-")
	expect(t, 3, dir, "", "keys", "generate", "-pkcs11", uri+"&pin-value="+tok.PIN)
	expect(t, 2, dir, "", "keys", "generate", "-pkcs11", uri, "-o", "x.key")
	expect(t, 2, dir, "", "keys", "generate", "-pkcs11", uri, "-ed25519")
	expect(t, 2, dir, "", "keys", "generate", "-o", "y.key", "-pin-file", tok.PINFile)
	expect(t, 4, dir, tok.PIN, "keys", "generate", "-pkcs11", strings.Replace(uri, "anchor", "third", 1), "-pin-file", "-", "-pub", "anchor.pem")

	adminSecret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)
	srv := start(t, dir, "authserver", "-store", "store.json", "-key", uri, "-pin-file", tok.PINFile, "-listen", "127.0.0.1:0", "-insecure-http")
	(&admin{t: t, url: srv.addr, secret: adminSecret}).seed(dir)
	ok(t, dir, "token", "fetch", "-url", srv.addr, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "read-data", "-pop", "tech.key", "-timeout", "20s", "-anchor", "anchor.pem", "-o", "alice.token")
	dev := start(t, dir, "device", "-anchor", "anchor.pem", "-endpoint", "hvac-1")
	r = ok(t, dir, "call", "-token", "alice.token", "-key", "tech.key", dev.addr, "read-data")
	wantContains(t, "call", r.stdout, "status: success\n")

	// The service does not start with a wrong PIN, an unknown key, a
	// passphrase flag, or -pin-file with a key file.
	writeFile(t, filepath.Join(dir, "wrong.pin"), "0000\n")
	if r := mustNotStart(t, dir, "authserver", "-store", "store.json", "-key", uri, "-pin-file", "wrong.pin", "-listen", "127.0.0.1:0", "-insecure-http"); r.code != 3 {
		t.Fatalf("wrong PIN: %v", r)
	}
	if r := mustNotStart(t, dir, "authserver", "-store", "store.json", "-key", strings.Replace(uri, "anchor", "nothing", 1), "-pin-file", tok.PINFile, "-listen", "127.0.0.1:0", "-insecure-http"); r.code != 3 {
		t.Fatalf("unknown key: %v", r)
	}
	if r := mustNotStart(t, dir, "authserver", "-store", "store.json", "-key", uri, "-passphrase-file", tok.PINFile, "-listen", "127.0.0.1:0", "-insecure-http"); r.code != 2 {
		t.Fatalf("-passphrase-file with a pkcs11 key: %v", r)
	}
	if r := mustNotStart(t, dir, "authserver", "-store", "store.json", "-key", "tech.key", "-pin-file", tok.PINFile, "-listen", "127.0.0.1:0", "-insecure-http"); r.code != 2 {
		t.Fatalf("-pin-file with a key file: %v", r)
	}
}
