package policy

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// brokenSigner fails to sign, or signs with another key.
type brokenSigner struct {
	crypto.Signer
	fail  bool
	other crypto.Signer
}

func (s brokenSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if s.fail {
		return nil, errors.New("token removed")
	}
	return s.other.Sign(r, d, o)
}

func wantJSON(t *testing.T, w interface{ Header() http.Header }, body []byte, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
}

// TestProbes: /healthz and /readyz answer on every handler without a
// credential, in JSON; /readyz answers 503 while the store cannot be read
// or the signer cannot sign, and /healthz stays 200.
func TestProbes(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	for _, h := range testHandlers(env) {
		t.Run(h.name, func(t *testing.T) {
			for path, want := range map[string]string{HealthzPath: "ok", ReadyzPath: "ready"} {
				for _, m := range []string{"GET", "HEAD"} {
					w := env.doWith(h.h, m, path, "", "")
					if w.Code != http.StatusOK {
						t.Fatalf("%s %s: HTTP %d: %s", m, path, w.Code, w.Body)
					}
					if m == "HEAD" {
						continue
					}
					var body struct{ Status string }
					wantJSON(t, w, w.Body.Bytes(), &body)
					if body.Status != want {
						t.Fatalf("%s %s: status %q, want %q", m, path, body.Status, want)
					}
				}
				if w := env.doWith(h.h, "POST", path, "", "{}"); w.Code != http.StatusMethodNotAllowed {
					t.Fatalf("POST %s: HTTP %d, want 405", path, w.Code)
				}
			}
		})
	}

	notReady := map[string]*Service{
		"store down":        {Store: failingStore{}, Signer: env.anchor},
		"no signer":         {Store: env.store},
		"signer fails":      {Store: env.store, Signer: brokenSigner{Signer: env.anchor, fail: true}},
		"signer's key":      {Store: env.store, Signer: brokenSigner{Signer: env.anchor, other: mustKey(t, env.anchor.Curve)}},
		"unsupported key":   {Store: env.store, Signer: brokenSigner{Signer: mustRSAKeyless{}}},
		"store without log": {Store: storeOnly{env.store}, Signer: env.anchor},
	}
	for name, svc := range notReady {
		t.Run(name, func(t *testing.T) {
			err := svc.Ready(context.Background())
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ready: %v, want ErrUnavailable", err)
			}
			w := env.doWith(svc, "GET", ReadyzPath, "", "")
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("GET /readyz: HTTP %d, want 503: %s", w.Code, w.Body)
			}
			var body errorBody
			wantJSON(t, w, w.Body.Bytes(), &body)
			if body.Type != errTypeUnavailable || body.Code != 503 {
				t.Fatalf("GET /readyz: %+v", body)
			}
			if w := env.doWith(svc, "GET", HealthzPath, "", ""); w.Code != http.StatusOK {
				t.Fatalf("GET /healthz: HTTP %d, want 200", w.Code)
			}
		})
	}

	t.Run("store back", func(t *testing.T) {
		flaky := &readFailingStore{MemoryStore: env.store}
		svc := &Service{Store: flaky, Signer: env.anchor}
		if err := svc.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
		flaky.down.Store(true)
		if err := svc.Ready(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ready with the store down: %v, want ErrUnavailable", err)
		}
		flaky.down.Store(false)
		if err := svc.Ready(context.Background()); err != nil {
			t.Fatalf("Ready with the store back: %v", err)
		}
	})
}

// storeOnly hides the Ledger of a store.
type storeOnly struct{ Store }

// mustRSAKeyless has a public key of a type tokens cannot be signed with.
type mustRSAKeyless struct{ crypto.Signer }

func (mustRSAKeyless) Public() crypto.PublicKey { return "not a key" }
