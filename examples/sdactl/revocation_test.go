package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

// revocationServer starts "sdactl authserver" (v2, kid) on a new store,
// seeds it (alice, hvac-1, her API key in alice.apikey) and writes the
// administrator's key to admin.apikey, anchor.pem and tech.key to dir.
func revocationServer(t *testing.T, dir string) (*server, *admin) {
	t.Helper()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	secret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)
	writeFile(t, filepath.Join(dir, "admin.apikey"), secret+"\n")
	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0",
		"-profile", "v2", "-kid")
	a := &admin{t: t, url: srv.addr, secret: secret}
	a.seed(dir)
	return srv, a
}

// fetchToken fetches a token for alice on hvac-1 into file and returns its
// cti in hex.
func fetchToken(t *testing.T, dir, url, file string) string {
	t.Helper()
	ok(t, dir, "token", "fetch", "-url", url, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "read-data", "-pop", "tech.key", "-anchor", "anchor.pem", "-o", file, "-timeout", "20s")
	return field(t, ok(t, dir, "token", "inspect", file).stdout, "cti")
}

// statusFile reads a status update written by "status show -o", verifies
// it with the anchor key of dir and returns it.
func statusFile(t *testing.T, dir, name string, raw bool) *token.StatusUpdate {
	t.Helper()
	data := readFile(t, filepath.Join(dir, name))
	if !raw {
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	s, err := token.ParseStatus(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pub, err := token.ParsePublicKeyPEM(readFile(t, filepath.Join(dir, "anchor.pem")))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Verify(pub)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return u
}

// TestRevocation is the owner's revocation work with sdactl against a real
// authorization service: a token fetched is listed in the ledger, alice's
// tokens are revoked by a subject cut-off, the revocation is listed, and the
// status update of hvac-1 shows the cut-off and verifies with the anchor.
func TestRevocation(t *testing.T) {
	dir := t.TempDir()
	srv, _ := revocationServer(t, dir)
	url := srv.addr
	cred := []string{"-url", url, "-credential-file", "admin.apikey"}
	// cmd puts the service and the administrator's credential after the
	// two words of a command.
	cmd := func(words ...string) []string {
		return append(append(words[:2:2], cred...), words[2:]...)
	}

	cti := fetchToken(t, dir, url, "alice.token")
	cti2 := fetchToken(t, dir, url, "alice2.token")

	// The ledger: a table by default, JSON with -json, filters.
	r := ok(t, dir, cmd("tokens", "list")...)
	wantContains(t, "tokens list", r.stdout, "CTI", "SUBJECT", cti, cti2, "alice", "ep:hvac-1", "read-data")
	r = ok(t, dir, cmd("tokens", "list", "-json", "-subject", "alice", "-aud", "ep:hvac-1")...)
	var recs []policy.IssuedRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("tokens list -json: %v, %d records:\n%s", err, len(recs), r.stdout)
	}
	hashes := map[string]string{}
	for _, rec := range recs {
		hashes[rec.TokenID] = rec.TokenHash
	}
	if hashes[cti] == "" || hashes[cti2] == "" {
		t.Fatalf("tokens list -json does not list %s and %s:\n%s", cti, cti2, r.stdout)
	}
	anchorKeyID := recs[0].AnchorKeyID
	r = ok(t, dir, cmd("tokens", "list", "-json", "-subject", "bob")...)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("tokens list -subject bob: %q, want []", r.stdout)
	}
	r = ok(t, dir, cmd("tokens", "list", "-limit", "1")...)
	if n := strings.Count(r.stdout, "alice"); n != 1 {
		t.Errorf("tokens list -limit 1 lists %d tokens:\n%s", n, r.stdout)
	}

	// No revocation yet: the status update is empty, and verifies.
	r = ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1", "-anchor", "anchor.pem", "-o", "empty.status")...)
	wantContains(t, "status show", r.stdout, "verified", "aud:", "ep:hvac-1", "seq:")
	if u := statusFile(t, dir, "empty.status", false); len(u.Subjects)+len(u.Hashes)+len(u.TokenIDs)+len(u.Anchors) != 0 {
		t.Fatalf("status update before any revocation: %+v", u)
	}

	// Revoke alice's tokens by a subject cut-off.
	r = ok(t, dir, cmd("revoke", "subject", "-subject", "alice", "-reason", "phone stolen")...)
	wantContains(t, "revoke subject", r.stdout, "subject", "alice", "phone stolen")
	r = ok(t, dir, cmd("revocations", "list")...)
	wantContains(t, "revocations list", r.stdout, "subject", "alice", "phone stolen")
	r = ok(t, dir, cmd("revocations", "list", "-json")...)
	var revs []policy.Revocation
	if err := json.Unmarshal([]byte(r.stdout), &revs); err != nil || len(revs) != 1 || revs[0].Subject != "alice" {
		t.Fatalf("revocations list -json: %v:\n%s", err, r.stdout)
	}

	// The status update of hvac-1 carries the cut-off, verified.
	r = ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1", "-anchor", "anchor.pem", "-o", "hvac-1.status")...)
	wantContains(t, "status show", r.stdout, "verified", "subject cut-offs", "alice")
	wantMode0600(t, filepath.Join(dir, "hvac-1.status"))
	u := statusFile(t, dir, "hvac-1.status", false)
	if len(u.Subjects) != 1 || u.Subjects[0].Subject != "alice" || u.Audience != "ep:hvac-1" {
		t.Fatalf("status update: %+v", u)
	}
	ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1", "-o", "hvac-1.cbor", "-raw")...)
	statusFile(t, dir, "hvac-1.cbor", true)
	// Without -anchor it says it is not verified; -o - writes the update
	// on stdout and the description on stderr.
	r = ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1")...)
	wantContains(t, "status show without -anchor", r.stdout, "UNVERIFIED", "alice")
	r = ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1", "-o", "-")...)
	if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout)); err != nil {
		t.Errorf("status show -o -: stdout is not base64: %v\n%s", err, r.stdout)
	}
	wantContains(t, "status show -o - stderr", r.stderr, "alice")

	// Every kind of revocation.
	r = ok(t, dir, cmd("revoke", "token", "-cti", cti)...)
	wantContains(t, "revoke token -cti", r.stdout, "token", cti)
	r = ok(t, dir, cmd("revoke", "token", "-hash", hashes[cti2], "-json")...)
	var created []policy.Revocation
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created) != 1 || created[0].TokenID != cti2 {
		t.Fatalf("revoke token -hash -json: %v:\n%s", err, r.stdout)
	}
	cti3 := fetchToken(t, dir, url, "alice3.token")
	r = ok(t, dir, cmd("revoke", "device", "-device", "ep:hvac-1")...)
	wantContains(t, "revoke device", r.stdout, cti3)
	before := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	r = ok(t, dir, cmd("revoke", "anchor", "-anchor", anchorKeyID, "-before", before)...)
	wantContains(t, "revoke anchor", r.stdout, "anchor", anchorKeyID, before)
	r = ok(t, dir, cmd("status", "show", "-aud", "ep:hvac-1", "-anchor", "anchor.pem", "-o", "all.status")...)
	wantContains(t, "status show", r.stdout, "token hashes (3)", "anchor cut-offs (1)", anchorKeyID)
	u = statusFile(t, dir, "all.status", false)
	if len(u.Hashes) != 3 || len(u.Anchors) != 1 || len(u.Subjects) != 1 {
		t.Fatalf("status update after every kind of revocation: %+v", u)
	}
	// A device that the ledger names with no token: nothing to revoke.
	r = ok(t, dir, cmd("revoke", "device", "-device", "0123456789abcdef0123456789abcdef")...)
	wantContains(t, "revoke device again", r.stdout, "token")

	// Errors. Usage: 2, before anything is sent.
	for _, args := range [][]string{
		{"revoke", "token", "-cti", cti, "-hash", hashes[cti]},
		{"revoke", "token"},
		{"revoke", "token", "-cti", "xyz"},
		{"revoke", "token", "-hash", "abcd"},
		{"revoke", "subject"},
		{"revoke", "subject", "-subject", "alice", "-before", "yesterday"},
		{"revoke", "anchor", "-anchor", "zz"},
		{"revoke", "device"},
		{"revoke", "device", "-device", "hvac-1"},
		{"tokens", "list", "-limit", "-1"},
		{"status", "show"},
		{"status", "show", "-aud", "hvac-1"},
		{"tokens", "list", "extra"},
	} {
		expect(t, exitUsage, dir, "", cmd(args...)...)
	}
	expect(t, exitUsage, dir, "", "tokens", "list", "-credential-file", "admin.apikey")
	expect(t, exitUsage, dir, "", "tokens", "list", "-url", url)
	r = expect(t, exitUsage, dir, "", "tokens", "list", "-url", "http://example.com", "-credential-file", "admin.apikey")
	wantContains(t, "plain http to another host", r.stderr, "https")
	// An unknown device: 3.
	r = expect(t, exitInput, dir, "", cmd("status", "show", "-aud", "ep:nope")...)
	wantContains(t, "unknown device", r.stderr, "not_found")
	// A non-administrator key: denied, 1. An unknown key: 3.
	r = expect(t, exitFailed, dir, "", "tokens", "list", "-url", url, "-credential-file", "alice.apikey")
	wantContains(t, "non-admin key", r.stderr, "forbidden")
	expect(t, exitFailed, dir, "", "revoke", "subject", "-url", url, "-credential-file", "alice.apikey", "-subject", "alice")
	writeFile(t, filepath.Join(dir, "bogus.apikey"), "sda_bogus\n")
	expect(t, exitInput, dir, "", "revocations", "list", "-url", url, "-credential-file", "bogus.apikey")
	// A technician's key may fetch status updates (public endpoint).
	ok(t, dir, "status", "show", "-url", url, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1", "-anchor", "anchor.pem")
	// A wrong anchor: 3.
	ok(t, dir, "keys", "generate", "-o", "other.key", "-pub", "other.pem")
	r = expect(t, exitInput, dir, "", cmd("status", "show", "-aud", "ep:hvac-1", "-anchor", "other.pem", "-o", "x.status")...)
	wantContains(t, "wrong anchor", r.stderr, "unknown-anchor")
	if _, err := os.Stat(filepath.Join(dir, "x.status")); err == nil {
		t.Error("status show wrote an update that does not verify")
	}
	// An existing output file, a service that is not there: 4.
	expect(t, exitIO, dir, "", cmd("status", "show", "-aud", "ep:hvac-1", "-o", "hvac-1.status")...)
	expect(t, exitIO, dir, "", "tokens", "list", "-url", "http://"+freeAddr(t), "-credential-file", "admin.apikey", "-timeout", "5s")

	// The bound: a 65th token id for every device is refused (409): 1,
	// with the service's advice.
	a := &admin{t: t, url: url, secret: strings.TrimSpace(string(readFile(t, filepath.Join(dir, "admin.apikey"))))}
	for i := range token.MaxStatusTokenIDs {
		a.do("POST", "/admin/v1/revocations", map[string]any{"kind": "token", "cti": fmt.Sprintf("ff%04x", i)}, 201)
	}
	r = expect(t, exitFailed, dir, "", cmd("revoke", "token", "-cti", "eeee")...)
	wantContains(t, "bound refusal", r.stderr, "conflict", "cut-off")

	if code := srv.stop(); code != 0 {
		t.Fatalf("authserver exit %d; stderr:\n%s", code, srv.stderr.String())
	}
	wantContains(t, "authserver stderr", srv.stderr.String(), "sda.token.revoked")
}

// TestRevocationHelpExamples runs the examples of the help of the ledger,
// revocation and status commands as printed, against a service seeded as
// the help of "sdactl authserver" shows; the only change is the service's
// address.
func TestRevocationHelpExamples(t *testing.T) {
	dir := t.TempDir()
	srv, _ := revocationServer(t, dir)
	fetchToken(t, dir, srv.addr, "alice.token")
	const printed = "http://127.0.0.1:8080"
	ran := 0
	for _, c := range []*command{tokensListCmd, revokeTokenCmd, revokeSubjectCmd, revokeDeviceCmd, revokeAnchorCmd, revocationsListCmd, statusShowCmd} {
		help := ok(t, dir, append([]string{"help"}, strings.Fields(c.name)...)...).stdout
		cmds := exampleLines(help)
		if len(cmds) == 0 {
			t.Errorf("sdactl help %s has no example", c.name)
		}
		for _, line := range cmds {
			if !strings.Contains(line, printed) {
				t.Errorf("sdactl help %s: example %q does not use %s", c.name, line, printed)
			}
			words, err := shellWords(strings.ReplaceAll(line, printed, srv.addr), nil)
			if err != nil {
				t.Fatalf("example %q: %v", line, err)
			}
			if words[0] != "sdactl" {
				t.Fatalf("example %q: not an sdactl command", line)
			}
			ok(t, dir, words[1:]...)
			ran++
		}
	}
	if ran < 7 {
		t.Errorf("ran %d examples", ran)
	}
}

// TestTokensListPages: "tokens list" follows has_more page by page until
// the ledger is listed, and stops at -limit. In process, against a
// policy.Service on a loopback listener, with pages of 2.
func TestTokensListPages(t *testing.T) {
	ctx := context.Background()
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: policy.NewMemoryStore(), Signer: anchor}
	secret, key, err := policy.NewAPIKey(nil, "root", "root", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "root", Kind: policy.User}),
		policy.PutAPIKey(key),
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1"}),
		policy.PutPolicy(&policy.Policy{
			ID: "p1", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Users: []string{"alice"}},
			Operations:    []policy.OperationRule{{Name: "read-data"}},
			Devices:       policy.DeviceSelector{All: true},
			TokenLifetime: 2 * time.Hour,
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for range 5 {
		tok, err := svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: &pop.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		want[hex.EncodeToString(tok.Claims.ID)] = true
	}
	hs := httptest.NewServer(svc)
	defer hs.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "admin.apikey"), secret+"\n")

	defer func(n int) { listPageSize = n }(listPageSize)
	listPageSize = 2
	list := func(args ...string) []policy.IssuedRecord {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"tokens", "list", "-url", hs.URL, "-credential-file", filepath.Join(dir, "admin.apikey"), "-json"}, args...)
		if code := run(ctx, args, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("sdactl %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		var recs []policy.IssuedRecord
		if err := json.Unmarshal(stdout.Bytes(), &recs); err != nil {
			t.Fatalf("%v:\n%s", err, stdout.String())
		}
		return recs
	}
	recs := list()
	got := map[string]bool{}
	for _, r := range recs {
		got[r.TokenID] = true
	}
	if len(recs) != 5 || len(got) != 5 {
		t.Fatalf("tokens list with pages of 2 listed %d records (%d distinct), want 5", len(recs), len(got))
	}
	for cti := range want {
		if !got[cti] {
			t.Errorf("token %s not listed", cti)
		}
	}
	if recs := list("-limit", "3"); len(recs) != 3 {
		t.Errorf("tokens list -limit 3 listed %d records", len(recs))
	}
}

// TestServiceRedirect: the API key never follows a redirect to plain http
// on another host; the answer is refused (3) without connecting there.
func TestServiceRedirect(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/admin/v1/revocations", http.StatusFound)
	}))
	defer hs.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "admin.apikey"), "sda_secret\n")
	var stdout, stderr bytes.Buffer
	args := []string{"revocations", "list", "-url", hs.URL, "-credential-file", filepath.Join(dir, "admin.apikey"), "-timeout", "20s"}
	if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != exitInput {
		t.Fatalf("redirect to plain http: exit %d, want %d\n%s", code, exitInput, stderr.String())
	}
	wantContains(t, "stderr", stderr.String(), "redirects")
}
