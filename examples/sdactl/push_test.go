package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/client"
)

// TestStatusPush carries a revocation to a device with "status push": the
// device installs the update before it decides the request, so the
// revoked technician's own request both delivers it and is refused; a
// second push finds the device up to date; a device that does not take
// updates is never sent one.
func TestStatusPush(t *testing.T) {
	dir := t.TempDir()
	srv, _ := revocationServer(t, dir)
	cred := []string{"-url", srv.addr, "-credential-file", "admin.apikey"}
	fetchToken(t, dir, srv.addr, "alice.token")

	dev := start(t, dir, "device", "-listen", "127.0.0.1:0", "-anchor", "anchor.pem", "-endpoint", "hvac-1", "-status-updates")
	old := start(t, dir, "device", "-listen", "127.0.0.1:0", "-anchor", "anchor.pem", "-endpoint", "hvac-1")
	call := func(code int, target, op string) result {
		t.Helper()
		return expect(t, code, dir, "", "call", "-token", "alice.token", "-key", "tech.key", "-timeout", "20s", target, op)
	}

	// Before the revocation: alice reads the data.
	call(0, dev.addr, "read-data")
	ok(t, dir, append([]string{"revoke", "subject"}, append(cred, "-subject", "alice")...)...)
	ok(t, dir, append([]string{"status", "show"}, append(cred, "-aud", "ep:hvac-1", "-anchor", "anchor.pem", "-o", "hvac-1.status")...)...)
	// Still accepted: the device has not heard of it.
	call(0, dev.addr, "read-data")

	// Pushed with alice's own request: installed first, then her request is
	// refused by it.
	r := expect(t, 1, dir, "", "status", "push", "-update", "hvac-1.status", "-token", "alice.token", "-key", "tech.key",
		"-timeout", "20s", dev.addr, "read-data")
	wantContains(t, "status push", r.stderr, "carried; the device now holds seq")
	wantContains(t, "status push", r.stdout, "verification error")
	dev.waitLine(`check=revocation .*update=installed update-seq=\d+`)

	// Again: the device holds it, nothing is carried.
	r = expect(t, 1, dir, "", "status", "push", "-update", "hvac-1.status", "-token", "alice.token", "-key", "tech.key",
		"-timeout", "20s", dev.addr, "read-data")
	wantContains(t, "status push again", r.stderr, "not carried: the device holds seq")

	// A device without -status-updates is not sent the update.
	r = expect(t, 0, dir, "", "status", "push", "-update", "hvac-1.status", "-token", "alice.token", "-key", "tech.key",
		"-timeout", "20s", old.addr, "read-data")
	wantContains(t, "status push to a device without updates", r.stderr, "does not take status updates")

	// The help's example, as printed but for the device's address, in a
	// directory of its own: the files it names are those of this test,
	// with tech.key encrypted under pass.txt as "sdactl help keys
	// generate" makes it.
	exdir := t.TempDir()
	key, err := client.ParsePrivateKeyPEM(readFile(t, filepath.Join(dir, "tech.key")))
	if err != nil {
		t.Fatal(err)
	}
	const pass = "correct horse battery staple"
	encrypted, err := client.EncryptPrivateKeyPEM(key, []byte(pass), client.OpenSSLKeyFileOptions())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(exdir, "tech.key"), string(encrypted))
	writeFile(t, filepath.Join(exdir, "pass.txt"), pass+"\n")
	for _, f := range []string{"alice.token", "hvac-1.status"} {
		writeFile(t, filepath.Join(exdir, f), string(readFile(t, filepath.Join(dir, f))))
	}
	help := ok(t, dir, "help", "status", "push").stdout
	examples := exampleLines(help)
	if len(examples) != 1 {
		t.Fatalf("help status push: %d examples", len(examples))
	}
	words, err := shellWords(strings.ReplaceAll(examples[0], "tcp://127.0.0.1:7301", dev.addr), nil)
	if err != nil || words[0] != "sdactl" {
		t.Fatalf("example %q: %v", examples[0], err)
	}
	r = expect(t, 1, exdir, "", words[1:]...)
	wantContains(t, "status push help example", r.stderr, "not carried: the device holds seq")

	// Usage: -update is required; a file that is not an update is refused.
	expect(t, 2, dir, "", "status", "push", "-token", "alice.token", "-key", "tech.key", dev.addr, "read-data")
	expect(t, 3, dir, "", "status", "push", "-update", "alice.token", "-token", "alice.token", "-key", "tech.key", dev.addr, "read-data")
}
