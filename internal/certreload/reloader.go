package certreload

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the certificate and key pair of a TLS server, read from a
// certificate file (the leaf first, then any intermediates) and a key file,
// both PEM. It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string

	cur atomic.Pointer[tls.Certificate]

	mu       sync.Mutex // serialises loads; guards the sums
	loaded   [2][sha256.Size]byte
	rejected [2][sha256.Size]byte // contents last refused, not reported again by Watch
}

// New loads the pair from certFile and keyFile and returns a Reloader
// serving it. An error means the pair cannot be used (see [ErrInvalid]).
func New(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.load(false); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate returns the pair loaded last, for [tls.Config].GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// CertFile returns the name of the certificate file.
func (r *Reloader) CertFile() string { return r.certFile }

// Certificate returns the pair loaded last.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// TLSConfig returns a server configuration serving the Reloader's pair,
// TLS 1.2 at least.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// Reload reads both files and serves the pair they hold from the next
// handshake on. On error the pair served before stays in use.
func (r *Reloader) Reload() error {
	_, err := r.load(false)
	return err
}

// ReloadIfChanged reloads the pair if either file's contents differ from
// those loaded last, and reports whether it did. Contents that were
// refused before and have not changed since are not tried again: it
// returns (false, nil) for them, so that a poller reports a bad pair once.
func (r *Reloader) ReloadIfChanged() (bool, error) {
	return r.load(true)
}

// Watch calls ReloadIfChanged every interval until ctx ends, and calls
// onReload (if not nil) after each reload and onError (if not nil) with
// each failure. It returns when ctx ends.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration, onReload func(), onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.ReloadIfChanged()
		switch {
		case err != nil && onError != nil:
			onError(err)
		case changed && onReload != nil:
			onReload()
		}
	}
}

// load reads and parses the pair. With ifChanged, contents equal to those
// loaded or refused last are skipped.
func (r *Reloader) load(ifChanged bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err := readFile(r.certFile)
	if err != nil {
		return false, err
	}
	keyPEM, err := readFile(r.keyFile)
	if err != nil {
		return false, err
	}
	sums := [2][sha256.Size]byte{sha256.Sum256(certPEM), sha256.Sum256(keyPEM)}
	if ifChanged && (sums == r.loaded || sums == r.rejected) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		r.rejected = sums
		return false, fmt.Errorf("%w: %s and %s: %v", ErrInvalid, r.certFile, r.keyFile, err)
	}
	r.cur.Store(&cert)
	r.loaded, r.rejected = sums, [2][sha256.Size]byte{}
	return true, nil
}

// readFile reads at most maxFileBytes of name.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, name, maxFileBytes)
	}
	return b, nil
}
