package certreload_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/certreload"
	"github.com/securedeviceaccess/sda/internal/testca"
)

// serve serves HTTPS on 127.0.0.1:0 with r's pair and returns its URL.
func serve(t *testing.T, r *certreload.Reloader) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: r.TLSConfig(),
	}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}

// servedCN connects with a client trusting only ca, verifying the server's
// certificate, and returns the common name of the certificate served.
func servedCN(t *testing.T, ca *testca.CA, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool},
		DisableKeepAlives: true, // a new handshake each time
	}, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}

func TestReloader(t *testing.T) {
	ca := testca.New(t, "test CA")
	t.Run("client verifies the served pair", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := ca.WriteFiles(t, dir, "one")
		r, err := certreload.New(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		url := serve(t, r)
		if cn := servedCN(t, ca, url); cn != "one" {
			t.Fatalf("served %q, want one", cn)
		}
		// A client trusting another CA refuses it.
		other := testca.New(t, "other CA")
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.Pool}}}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			t.Fatal("a client trusting another CA connected")
		}
	})
	t.Run("Reload serves the new pair, keeps connections", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := ca.WriteFiles(t, dir, "one")
		r, err := certreload.New(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		url := serve(t, r)
		// A kept-alive connection made with the old pair.
		keep := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
		get := func() *http.Response {
			t.Helper()
			resp, err := keep.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		get()
		ca.WriteFiles(t, dir, "two")
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
		if cn := servedCN(t, ca, url); cn != "two" {
			t.Fatalf("after Reload served %q, want two", cn)
		}
		second := get()
		if cn := second.TLS.PeerCertificates[0].Subject.CommonName; cn != "one" {
			t.Fatalf("the kept-alive connection changed: %q", cn)
		}
	})
	t.Run("a bad new pair keeps the old one", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := ca.WriteFiles(t, dir, "one")
		r, err := certreload.New(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		url := serve(t, r)
		// A key that does not match the certificate.
		_, otherKey := ca.Issue(t, "other")
		testca.WriteFile(t, keyFile, otherKey)
		if err := r.Reload(); !errors.Is(err, certreload.ErrInvalid) {
			t.Fatalf("Reload with a mismatched key: %v, want ErrInvalid", err)
		}
		if changed, err := r.ReloadIfChanged(); changed || err != nil {
			t.Fatalf("ReloadIfChanged on the refused pair again: %v, %v; want false, nil", changed, err)
		}
		// Garbage, then a missing file.
		testca.WriteFile(t, certFile, []byte("not PEM"))
		if _, err := r.ReloadIfChanged(); !errors.Is(err, certreload.ErrInvalid) {
			t.Fatalf("ReloadIfChanged with garbage: %v, want ErrInvalid", err)
		}
		os.Remove(keyFile)
		if err := r.Reload(); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Reload without the key file: %v, want fs.ErrNotExist", err)
		}
		if cn := servedCN(t, ca, url); cn != "one" {
			t.Fatalf("after bad pairs served %q, want one", cn)
		}
	})
	t.Run("New refuses a bad pair", func(t *testing.T) {
		dir := t.TempDir()
		certFile, _ := ca.WriteFiles(t, dir, "one")
		if _, err := certreload.New(certFile, certFile); !errors.Is(err, certreload.ErrInvalid) {
			t.Fatalf("New(cert, cert): %v, want ErrInvalid", err)
		}
		if _, err := certreload.New(certFile, filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("New with a missing key: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("Watch reloads when the files change", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := ca.WriteFiles(t, dir, "one")
		r, err := certreload.New(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		url := serve(t, r)
		reloaded := make(chan struct{}, 10)
		failed := make(chan error, 10)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			r.Watch(ctx, 5*time.Millisecond, func() { reloaded <- struct{}{} }, func(err error) { failed <- err })
		})
		defer func() { cancel(); wg.Wait() }()

		testca.WriteFile(t, keyFile, []byte("garbage"))
		select {
		case err := <-failed:
			if !errors.Is(err, certreload.ErrInvalid) {
				t.Fatalf("Watch reported %v, want ErrInvalid", err)
			}
		case <-reloaded:
			t.Fatal("Watch reloaded a bad pair")
		case <-time.After(30 * time.Second):
			t.Fatal("Watch reported nothing about a bad key file")
		}
		ca.WriteFiles(t, dir, "two")
		select {
		case <-reloaded:
		case err := <-failed:
			// The pair may be seen half-written (new key, old cert).
			if !errors.Is(err, certreload.ErrInvalid) {
				t.Fatal(err)
			}
			select {
			case <-reloaded:
			case <-time.After(30 * time.Second):
				t.Fatal("Watch did not reload the new pair")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Watch did not reload the new pair")
		}
		if cn := servedCN(t, ca, url); cn != "two" {
			t.Fatalf("after Watch served %q, want two", cn)
		}
	})
}
