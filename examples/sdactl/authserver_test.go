package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/testenv"
)

// admin calls the authorization service's administration API.
type admin struct {
	t      *testing.T
	url    string
	secret string
}

func (a *admin) do(method, path string, body any, wantStatus int) []byte {
	a.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		a.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, wantStatus, out)
	}
	return out
}

// seed creates, through the administration API, what a technician needs:
// the subject alice, the device hvac-1, a policy allowing her read-data on
// it, and her API key, whose secret it writes to alice.apikey in dir.
func (a *admin) seed(dir string) {
	a.t.Helper()
	a.do("PUT", "/admin/v1/subjects/alice", map[string]any{"id": "alice", "kind": "user"}, 200)
	a.do("PUT", "/admin/v1/devices/0123456789abcdef0123456789abcdef",
		map[string]any{"id": "0123456789abcdef0123456789abcdef", "endpoint_name": "hvac-1"}, 200)
	a.do("PUT", "/admin/v1/policies/roof", map[string]any{
		"id": "roof", "status": "active", "effect": "allow",
		"subjects":               map[string]any{"users": []string{"alice"}},
		"operations":             []map[string]any{{"name": "read-data"}},
		"devices":                map[string]any{"endpoint_names": []string{"hvac-1"}},
		"token_lifetime_seconds": 3600,
	}, 200)
	var key struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(a.do("POST", "/admin/v1/api-keys", map[string]any{"id": "alice-key", "subject": "alice"}, 201), &key); err != nil || key.Secret == "" {
		a.t.Fatalf("api key: %v", err)
	}
	writeFile(a.t, filepath.Join(dir, "alice.apikey"), key.Secret+"\n")
}

// TestAuthServer runs the authorization service on a JSON store: bootstrap
// with -init, seed through the administration API, fetch a token with
// "sdactl token fetch", and use it on a device.
func TestAuthServer(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")

	// Bootstrap: the administrator's API key is printed once.
	r := ok(t, dir, "authserver", "-store", "store.json", "-init")
	adminSecret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(adminSecret, "sda_") || strings.Contains(adminSecret, "\n") {
		t.Fatalf("authserver -init printed %q", r.stdout)
	}
	wantMode0600(t, filepath.Join(dir, "store.json"))
	if bytes.Contains(readFile(t, filepath.Join(dir, "store.json")), []byte(adminSecret)) {
		t.Fatal("the store file holds the API key secret")
	}
	expect(t, 1, dir, "", "authserver", "-store", "store.json", "-init") // not twice
	writeFile(t, filepath.Join(dir, "admin.apikey"), adminSecret+"\n")

	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0")
	(&admin{t: t, url: srv.addr, secret: adminSecret}).seed(dir)

	fetch := func(code int, cred, scope string, extra ...string) result {
		t.Helper()
		return expect(t, code, dir, "", append([]string{"token", "fetch", "-url", srv.addr, "-credential-file", cred,
			"-aud", "ep:hvac-1", "-scope", scope, "-pop", "tech.key", "-timeout", "20s"}, extra...)...)
	}
	fetch(0, "alice.apikey", "read-data", "-anchor", "anchor.pem", "-o", "alice.token")
	wantMode0600(t, filepath.Join(dir, "alice.token"))
	r = ok(t, dir, "token", "verify", "-anchor", "anchor.pem", "-aud", "ep:hvac-1", "alice.token")
	wantContains(t, "token verify", r.stdout, "sub: alice\n", "scope: read-data\n")

	// Denied by the policies: 1. A wrong credential: 3. A service that is
	// not there: 4.
	r = fetch(1, "alice.apikey", "configure")
	wantContains(t, "denied fetch", r.stderr, "access_denied")
	writeFile(t, filepath.Join(dir, "bogus.apikey"), "sda_bogus\n")
	fetch(3, "bogus.apikey", "read-data")
	expect(t, 4, dir, "", "token", "fetch", "-url", "http://"+freeAddr(t), "-credential-file", "alice.apikey",
		"-aud", "ep:hvac-1", "-scope", "read-data", "-pop", "tech.key", "-timeout", "5s")
	expect(t, 2, dir, "", "token", "fetch", "-url", "ftp://x", "-credential-file", "alice.apikey",
		"-aud", "ep:hvac-1", "-scope", "read-data", "-pop", "tech.key")

	// The fetched token works on the device.
	dev := start(t, dir, "device", "-anchor", "anchor.pem", "-endpoint", "hvac-1")
	r = ok(t, dir, "call", "-token", "alice.token", "-key", "tech.key", dev.addr, "read-data")
	wantContains(t, "call", r.stdout, "status: success\n")

	// Graceful shutdown; the policies survive a restart.
	if code := srv.stop(); code != 0 {
		t.Fatalf("authserver exit %d after SIGTERM; stderr:\n%s", code, srv.stderr.String())
	}
	wantContains(t, "authserver stderr", srv.stderr.String(), "sda.token.issued", "sda.token.denied", "stopped")
	srv = start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0")
	fetch(0, "alice.apikey", "read-data", "-anchor", "anchor.pem")

	// Usage.
	expect(t, 2, dir, "", "authserver", "-key", "anchor.key")                                             // no store
	expect(t, 2, dir, "", "authserver", "-store", "store.json", "-postgres", "postgres://x", "-key", "a") // both
	expect(t, 2, dir, "", "authserver", "-store", "store.json")                                           // no key
	writeFile(t, filepath.Join(dir, "broken.json"), "{")
	expect(t, 3, dir, "", "authserver", "-store", "broken.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0")
}

// TestAuthServerAdminListen: with -admin-listen the administration API is
// served on its own listener and not on -listen, which serves the token
// endpoint and the trust anchors only.
func TestAuthServerAdminListen(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	adminSecret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)

	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	m := adminListeningRE.FindStringSubmatch(srv.waitLine(adminListeningRE.String()))
	adminURL := m[1]
	if adminURL == srv.addr {
		t.Fatalf("the administration API is on the public address %s", adminURL)
	}
	(&admin{t: t, url: adminURL, secret: adminSecret}).seed(dir)
	ok(t, dir, "token", "fetch", "-url", srv.addr, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "read-data", "-pop", "tech.key", "-anchor", "anchor.pem", "-timeout", "20s")

	// Neither listener serves the other's paths.
	(&admin{t: t, url: srv.addr, secret: adminSecret}).do("GET", "/admin/v1/policies/roof", nil, http.StatusNotFound)
	(&admin{t: t, url: srv.addr, secret: adminSecret}).do("POST", "/admin/v1/api-keys", map[string]any{"id": "eve-key", "subject": "alice"}, http.StatusNotFound)
	(&admin{t: t, url: adminURL, secret: adminSecret}).do("GET", "/v3/trust-anchors", nil, http.StatusNotFound)
	r := expect(t, 3, dir, "", "token", "fetch", "-url", adminURL, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "read-data", "-pop", "tech.key", "-timeout", "20s")
	wantContains(t, "token fetch from the administration listener", r.stderr, "not_found")

	if code := srv.stop(); code != 0 {
		t.Fatalf("authserver exit %d after SIGTERM; stderr:\n%s", code, srv.stderr.String())
	}
	wantContains(t, "authserver stderr", srv.stderr.String(), "sda.admin.create", "sda.token.issued", "stopped")

	// An administration address in use: an I/O error before serving.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = mustNotStart(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0", "-admin-listen", l.Addr().String())
	if r.code != exitIO {
		t.Errorf("-admin-listen in use: exit %d, want %d\n%v", r.code, exitIO, r)
	}
}

var adminListeningRE = regexp.MustCompile(`^administration API listening on (https?://127\.0\.0\.1:\d+)$`)

// TestAuthServerPostgresUnreachable: a database that cannot be reached is
// an I/O error, reported within the connection timeout.
func TestAuthServerPostgresUnreachable(t *testing.T) {
	dir := t.TempDir()
	dsn := "postgres://sda@" + freeAddr(t) + "/sda?sslmode=disable&connect_timeout=5"
	r := expect(t, 4, dir, "", "authserver", "-postgres", dsn, "-init")
	wantContains(t, "stderr", r.stderr, "PostgreSQL")
}

// TestAuthServerPostgres runs the service on PostgreSQL when
// SDA_TEST_POSTGRES_DSN names one (see .ci/postgres.sh); it is skipped
// otherwise, except in CI.
func TestAuthServerPostgres(t *testing.T) {
	dsn := os.Getenv("SDA_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Missing(t, "SDA_TEST_POSTGRES_DSN is not set; start PostgreSQL with: eval \"$(bash .ci/postgres.sh start)\"")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "sdactl_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
	})
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	r := ok(t, dir, "authserver", "-postgres", dsn, "-schema", schema, "-init")
	adminSecret := strings.TrimSpace(r.stdout)
	srv := start(t, dir, "authserver", "-postgres", dsn, "-schema", schema, "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0")
	(&admin{t: t, url: srv.addr, secret: adminSecret}).seed(dir)
	ok(t, dir, "token", "fetch", "-url", srv.addr, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "read-data", "-pop", "tech.key", "-anchor", "anchor.pem", "-o", "alice.token")
	ok(t, dir, "token", "verify", "-anchor", "anchor.pem", "-aud", "ep:hvac-1", "alice.token")
	if code := srv.stop(); code != 0 {
		t.Fatalf("authserver exit %d; stderr:\n%s", code, srv.stderr.String())
	}
}

// TestAuthServerStoreDirectory: a -store file whose directory is missing
// (or is not a directory) fails at start, with the directory named, not at
// the first write.
func TestAuthServerStoreDirectory(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	writeFile(t, filepath.Join(dir, "plain"), "")
	for _, store := range []string{filepath.Join(dir, "missing", "x.json"), filepath.Join(dir, "plain", "x.json")} {
		for _, args := range [][]string{
			{"authserver", "-store", store, "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0"},
			{"authserver", "-store", store, "-init"},
		} {
			r := mustNotStart(t, dir, args...)
			if r.code != exitIO {
				t.Errorf("sdactl %s: exit %d, want %d\n%v", strings.Join(args, " "), r.code, exitIO, r)
			}
			wantContains(t, "stderr", r.stderr, filepath.Dir(store))
		}
	}
}

// mustNotStart runs a server command that must fail before serving: it
// fails the test if the command prints its "listening on" line (and stops
// it), else returns how it exited.
func mustNotStart(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, serverBin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stdout)
	first, _ := br.ReadString('\n') // a line, or all until the exit
	if strings.HasPrefix(first, "listening on") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("sdactl %s started serving: %s", strings.Join(args, " "), first)
	}
	rest, _ := io.ReadAll(br)
	err = cmd.Wait()
	return result{stdout: first + string(rest), stderr: stderr.String(), code: exitStatus(t, args, err)}
}

// TestAuthServerConsole: the web console is served at /console/ on the
// listener of the administration API, and not with -console=false.
func TestAuthServerConsole(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	adminSecret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)
	get := func(url string) (int, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}

	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	adminURL := adminListeningRE.FindStringSubmatch(srv.waitLine(adminListeningRE.String()))[1]
	code, h := get(adminURL + "/console/sign-in")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /console/sign-in on the administration listener: %d %v", code, h)
	}
	if code, _ := get(srv.addr + "/console/sign-in"); code != http.StatusNotFound {
		t.Errorf("GET /console/sign-in on the public listener: %d, want 404", code)
	}
	// Sign in with the administrator's key; the API still answers beside it.
	req, err := http.NewRequest(http.MethodPost, adminURL+"/console/sign-in", strings.NewReader("api_key="+adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", adminURL)
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/policies" {
		t.Errorf("sign-in: %d to %q, want 303 to /console/policies", resp.StatusCode, resp.Header.Get("Location"))
	}
	(&admin{t: t, url: adminURL, secret: adminSecret}).do("GET", "/admin/v1/policies", nil, http.StatusOK)
	if code, _ := get(adminURL + "/console"); code != http.StatusOK { // redirected to /console/, then sign-in
		t.Errorf("GET /console: %d", code)
	}
	srv.stop()

	srv = start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0", "-console=false")
	if code, _ := get(srv.addr + "/console/sign-in"); code != http.StatusNotFound {
		t.Errorf("-console=false: GET /console/sign-in: %d, want 404", code)
	}
	(&admin{t: t, url: srv.addr, secret: adminSecret}).do("GET", "/admin/v1/policies", nil, http.StatusOK)
}
