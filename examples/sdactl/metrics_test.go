package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/internal/promtest"
)

var metricsListeningRE = regexp.MustCompile(`^metrics listening on (http://127\.0\.0\.1:\d+)$`)

// TestAuthServerMetrics: with -metrics-listen the service serves its
// metrics at /metrics on a listener of their own, counting the tokens it
// issues and denies as a Prometheus server scraping it reads them.
func TestAuthServerMetrics(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	adminSecret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)

	srv := start(t, dir, "authserver", "-store", "store.json", "-key", "anchor.key", "-listen", "127.0.0.1:0", "-insecure-http", "-metrics-listen", "127.0.0.1:0")
	metricsURL := metricsListeningRE.FindStringSubmatch(srv.waitLine(metricsListeningRE.String()))[1]
	(&admin{t: t, url: srv.addr, secret: adminSecret}).seed(dir)
	for range 2 {
		ok(t, dir, "token", "fetch", "-url", srv.addr, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
			"-scope", "read-data", "-pop", "tech.key", "-anchor", "anchor.pem", "-timeout", "20s")
	}
	expect(t, 1, dir, "", "token", "fetch", "-url", srv.addr, "-credential-file", "alice.apikey", "-aud", "ep:hvac-1",
		"-scope", "reboot", "-pop", "tech.key", "-timeout", "20s")

	f := promtest.Scrape(t, nil, metricsURL+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sda_tokens_issued_total", nil, 2},
		{"sda_tokens_denied_total", []string{"reason", "policy"}, 1},
		{"sda_http_requests_total", []string{"route", "POST /ace-auth/token", "code", "200"}, 2},
		{"sda_signing_duration_seconds", nil, 2},
	} {
		if got := f.Value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, found := f.Lookup("go_goroutines"); !found {
		t.Error("no Go runtime metrics (go_goroutines)")
	}
	// The service's listener does not serve the metrics.
	resp, err := http.Get(srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on -listen: %d, want 404", resp.StatusCode)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("authserver exit %d after SIGTERM; stderr:\n%s", code, srv.stderr.String())
	}
}
