package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/testca"
)

// tlsClient is an HTTPS client that trusts only ca and makes a new
// connection (a new handshake) for every request.
func tlsClient(ca *testca.CA) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: true,
	}}
}

// servedCN returns the common name of the certificate url serves, checked
// against the test CA, and the /healthz status.
func servedCN(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Status != "ok" {
		t.Fatalf("GET /healthz: HTTP %d, %+v, %v", resp.StatusCode, body, err)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

// waitCN polls until url serves the certificate named cn.
func waitCN(t *testing.T, c *http.Client, url, cn string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for servedCN(t, c, url) != cn {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve %q", url, cn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStderr polls until the server's stderr holds n occurrences of s.
func waitStderr(t *testing.T, srv *server, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(srv.stderr.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("stderr has not %d %q:\n%s", n, s, srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuthServerTLS: the service serves HTTPS with a certificate of a test
// CA, which clients verify; it reloads the pair on SIGHUP and when the
// files change, keeps the old pair when the new one is bad, and serves the
// probes on both listeners.
func TestAuthServerTLS(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "authserver", "-store", "store.json", "-init")
	ca := testca.New(t, "sdactl test CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "one")
	adminDir := filepath.Join(dir, "admin")
	if err := os.Mkdir(adminDir, 0o700); err != nil {
		t.Fatal(err)
	}
	adminCert, adminKey := ca.WriteFiles(t, adminDir, "admin-one")

	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-listen", "127.0.0.1:0",
		"-tls-cert", certFile, "-tls-key", keyFile, "-tls-watch", "50ms",
		"-admin-listen", "127.0.0.1:0", "-admin-tls-cert", adminCert, "-admin-tls-key", adminKey)
	if !strings.HasPrefix(srv.addr, "https://") {
		t.Fatalf("listening on %s, want https", srv.addr)
	}
	adminURL := adminListeningRE.FindStringSubmatch(srv.waitLine(adminListeningRE.String()))[1]
	if !strings.HasPrefix(adminURL, "https://") {
		t.Fatalf("administration API on %s, want https", adminURL)
	}
	c := tlsClient(ca)
	if cn := servedCN(t, c, srv.addr); cn != "one" {
		t.Fatalf("served %q, want one", cn)
	}
	if cn := servedCN(t, c, adminURL); cn != "admin-one" {
		t.Fatalf("administration listener served %q, want admin-one", cn)
	}
	for _, u := range []string{srv.addr, adminURL} {
		resp, err := c.Get(u + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"ready"`) {
			t.Fatalf("GET %s/readyz: HTTP %d %s", u, resp.StatusCode, b)
		}
	}
	// A client that does not trust the test CA is refused.
	if resp, err := http.Get(srv.addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the test CA connected")
	}
	// Plain HTTP on the TLS port is refused too.
	if resp, err := http.Get("http://" + strings.TrimPrefix(srv.addr, "https://") + "/healthz"); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("plain HTTP served on the TLS listener")
	}

	t.Run("SIGHUP", func(t *testing.T) {
		// The watcher may reload first; either way the new pair is served,
		// and a SIGHUP does not stop the process.
		ca.WriteFiles(t, dir, "two")
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitCN(t, c, srv.addr, "two")
		waitStderr(t, srv, "sda.tls.reloaded", 1)
		n := strings.Count(srv.stderr.String(), "trigger=SIGHUP")
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitStderr(t, srv, "trigger=SIGHUP", n+1)
	})
	t.Run("bad pair kept out", func(t *testing.T) {
		testca.WriteFile(t, keyFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Reported once, by the SIGHUP or by the watcher, whichever came
		// first: the other does not try the same bad contents again.
		waitStderr(t, srv, "sda.tls.reload_failed", 1)
		if cn := servedCN(t, c, srv.addr); cn != "two" {
			t.Fatalf("after a bad pair served %q, want two", cn)
		}
	})
	t.Run("file change", func(t *testing.T) {
		ca.WriteFiles(t, dir, "three")
		waitCN(t, c, srv.addr, "three")
		ca.WriteFiles(t, adminDir, "admin-two")
		waitCN(t, c, adminURL, "admin-two")
	})
	if code := srv.stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", code, srv.stderr.String())
	}
}

// TestAuthServerServingFlags: plain HTTP needs -insecure-http and, on an
// address that is not loopback, -insecure-http-any-address; TLS files
// that cannot be used stop the start.
func TestAuthServerServingFlags(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	ok(t, dir, "authserver", "-store", "store.json", "-init")
	ca := testca.New(t, "sdactl test CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "one")
	base := []string{"authserver", "-store", "store.json", "-key", "anchor.key"}
	for _, tc := range []struct {
		name string
		code int
		args []string
	}{
		{"no TLS", exitUsage, []string{"-listen", "127.0.0.1:0"}},
		{"plain HTTP on every interface", exitUsage, []string{"-insecure-http", "-listen", ":0"}},
		{"plain HTTP on a non-loopback address", exitUsage, []string{"-insecure-http", "-listen", "192.0.2.1:0"}},
		{"plain administration API", exitUsage, []string{"-insecure-http", "-listen", "127.0.0.1:0", "-admin-listen", "0.0.0.0:0"}},
		{"cert without key", exitUsage, []string{"-tls-cert", certFile, "-listen", "127.0.0.1:0"}},
		{"admin cert without admin listener", exitUsage, []string{"-tls-cert", certFile, "-tls-key", keyFile, "-admin-tls-cert", certFile, "-admin-tls-key", keyFile}},
		{"mismatched pair", exitInput, []string{"-tls-cert", certFile, "-tls-key", certFile, "-listen", "127.0.0.1:0"}},
		{"missing key file", exitIO, []string{"-tls-cert", certFile, "-tls-key", filepath.Join(dir, "none"), "-listen", "127.0.0.1:0"}},
		{"negative rate", exitUsage, []string{"-insecure-http", "-listen", "127.0.0.1:0", "-rate-key", "-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, tc.code, dir, "", append(base, tc.args...)...)
		})
	}
	// Plain HTTP on every interface when asked twice: served (on loopback
	// here, the test's only network).
	srv := start(t, dir, append(base, "-insecure-http", "-insecure-http-any-address", "-listen", "127.0.0.1:0")...)
	if !strings.HasPrefix(srv.addr, "http://") {
		t.Fatalf("listening on %s", srv.addr)
	}
}

// TestAuthServerRateLimit: the token endpoint answers 429 with
// Retry-After beyond -rate-address-burst.
func TestAuthServerRateLimit(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	ok(t, dir, "authserver", "-store", "store.json", "-init")
	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0",
		"-rate-address", "0.001", "-rate-address-burst", "2")
	var codes []int
	for range 3 {
		resp, err := http.Post(srv.addr+"/ace-auth/token", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			var e struct{ Type string }
			if err := json.Unmarshal(b, &e); err != nil || e.Type != "too_many_requests" {
				t.Fatalf("429 body %s", b)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "1000" {
				t.Fatalf("Retry-After %q, want 1000", ra)
			}
		}
	}
	if fmt.Sprint(codes) != "[401 401 429]" {
		t.Fatalf("HTTP statuses %v, want [401 401 429]", codes)
	}
	// The probes are not limited.
	for range 5 {
		resp, err := http.Get(srv.addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /healthz: HTTP %d", resp.StatusCode)
		}
	}
}

// TestAuthServerGracefulShutdown: on SIGTERM a request in flight (its body
// still arriving) finishes and is answered, new connections are refused,
// and the process exits 0 once it is done.
func TestAuthServerGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	adminSecret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)
	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-insecure-http", "-listen", "127.0.0.1:0",
		"-shutdown-timeout", "60s")
	host := strings.TrimPrefix(srv.addr, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"grant_type":"client_credentials"}`
	// With "Expect: 100-continue" the server says "100 Continue" when the
	// handler, past authentication, starts reading the body: the request
	// is then in flight for sure.
	fmt.Fprintf(conn, "POST /ace-auth/token HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, adminSecret, len(body))
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("no 100 Continue: %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line after it
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, body[:5]); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitStderr(t, srv, "shutting down", 1)
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c2, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			break
		}
		c2.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-srv.exited:
		t.Fatalf("exited (%d) with a request in flight; stderr:\n%s", srv.code, srv.stderr.String())
	default:
	}
	// The rest of the body: the request is answered (400: the body lacks
	// the fields of a token request).
	if _, err := io.WriteString(conn, body[5:]); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "validation_error") {
		t.Fatalf("HTTP %d %s, want 400 validation_error", resp.StatusCode, b)
	}
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after the last request")
	}
	if srv.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", srv.code, srv.stderr.String())
	}
	wantContains(t, "stderr", srv.stderr.String(), "stopped")
}
