package policy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// Paths of the probes, served by every handler of the Service without a
// credential (docs/PROTOCOL.md section 9, "Probes").
const (
	// HealthzPath answers 200 while the process serves HTTP: a liveness
	// probe. It touches neither the store nor the signer.
	HealthzPath = "/healthz"
	// ReadyzPath answers 200 when [Service.Ready] succeeds, else 503 in
	// the JSON error format: a readiness probe.
	ReadyzPath = "/readyz"
)

// probeJSON is the body of a successful probe.
type probeJSON struct {
	Status string `json:"status"`
}

// probeRoutes maps the probes' patterns to their handlers.
func (s *Service) probeRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		"GET " + HealthzPath: s.serveHealthz,
		"GET " + ReadyzPath:  s.serveReadyz,
	}
}

func (s *Service) serveHealthz(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeJSON(w, http.StatusOK, probeJSON{Status: "ok"})
	return nil
}

func (s *Service) serveReadyz(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := s.serving.ready.check(r.Context(), s.Ready); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, probeJSON{Status: "ready"})
	return nil
}

// Ready reports whether the service can issue tokens now: it reads the
// Store's new changes (as [Service.Sync] does, whatever MaxStaleness is),
// checks that a [Ledger] is configured, and signs a test message with the
// Signer and verifies the signature with the Signer's public key, so that
// a hardware key that is gone or a signer whose key is not the anchor's is
// found. An error matches [ErrUnavailable] (with [ErrConfig] for a
// missing Store, Signer or Ledger).
//
// Each call costs one read of the Store and one signature. The /readyz
// handler runs one call at a time: concurrent probes share its result.
func (s *Service) Ready(ctx context.Context) error {
	if s.Store == nil {
		return fmt.Errorf("%w: %w: no store configured", ErrUnavailable, ErrConfig)
	}
	if s.Signer == nil {
		return fmt.Errorf("%w: %w: no signing key configured", ErrUnavailable, ErrConfig)
	}
	if _, err := s.ledger(); err != nil {
		return err
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	if err := checkSigner(s.Signer, s.Rand); err != nil {
		return fmt.Errorf("%w: signer: %w", ErrUnavailable, err)
	}
	return nil
}

// readinessProbe is the test message the Signer signs in [Service.Ready].
var readinessProbe = []byte("sda policy.Service readiness probe")

// checkSigner signs readinessProbe with signer as tokens are signed
// (SHA-256 or SHA-384 digest for ECDSA, the message for Ed25519) and
// verifies the signature with signer's public key.
func checkSigner(signer crypto.Signer, rnd io.Reader) error {
	pub := signer.Public()
	alg, err := token.AlgorithmFor(pub)
	if err != nil {
		return err
	}
	msg, hash := readinessProbe, crypto.Hash(0)
	switch alg {
	case token.AlgES256:
		d := sha256.Sum256(readinessProbe)
		msg, hash = d[:], crypto.SHA256
	case token.AlgES384:
		d := sha512.Sum384(readinessProbe)
		msg, hash = d[:], crypto.SHA384
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	sig, err := signer.Sign(rnd, msg, hash)
	if err != nil {
		return err
	}
	var ok bool
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, msg, sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	}
	if !ok {
		return errors.New("the test signature does not verify with the signer's public key")
	}
	return nil
}

// readiness runs one readiness check at a time; callers arriving while it
// runs wait for its result instead of starting their own, so that probes
// cost at most one Store read and one signature at a time.
type readiness struct {
	mu     sync.Mutex
	flight *readyFlight
}

type readyFlight struct {
	done chan struct{}
	err  error
}

// check runs f, or waits for the run in flight, until ctx ends.
func (rd *readiness) check(ctx context.Context, f func(context.Context) error) error {
	rd.mu.Lock()
	fl := rd.flight
	if fl == nil {
		fl = &readyFlight{done: make(chan struct{})}
		rd.flight = fl
		rd.mu.Unlock()
		// The check is not tied to the first caller's context alone: it
		// ends with that context, and its error is everyone's.
		fl.err = f(ctx)
		rd.mu.Lock()
		rd.flight = nil
		rd.mu.Unlock()
		close(fl.done)
		return fl.err
	}
	rd.mu.Unlock()
	select {
	case <-fl.done:
		return fl.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}
