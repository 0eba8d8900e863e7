package policy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject is the subject id that token requests are decided for.
	Subject string
	// Admin allows the administration API.
	Admin bool
}

// Authenticator authenticates the caller of an HTTP request. It returns an
// error matching [ErrUnauthenticated] for a missing or unknown credential.
// Implementations must not read the request body.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
}

// apiKeyAuth is the default Authenticator: "Authorization: Bearer <secret>"
// with the secret's hash looked up among the API keys of the service.
type apiKeyAuth struct{ s *Service }

func (a apiKeyAuth) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	secret, ok := bearer(r)
	if !ok {
		return Principal{}, fmt.Errorf("%w: missing bearer credential", ErrUnauthenticated)
	}
	if err := a.s.sync(ctx); err != nil {
		return Principal{}, err
	}
	k := a.s.engine.lookupAPIKey(HashAPIKey(secret))
	if k == nil {
		return Principal{}, fmt.Errorf("%w: unknown API key", ErrUnauthenticated)
	}
	return Principal{Subject: k.Subject, Admin: k.Admin}, nil
}

// bearer returns the credential of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, cred, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" || len(cred) > maxBearerLen {
		return "", false
	}
	return cred, true
}

// NewAPIKey makes a new random API key secret for subject and the record
// that stores its hash. Show the secret to its owner once; store only the
// record (for example with [PutAPIKey]). A nil rand means crypto/rand.
func NewAPIKey(rand io.Reader, id, subject string, admin bool, now time.Time) (secret string, key *APIKey, err error) {
	var b [32]byte
	if err := readRand(rand, b[:]); err != nil {
		return "", nil, err
	}
	secret = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	key = &APIKey{ID: id, Subject: subject, Admin: admin, Hash: HashAPIKey(secret), CreatedAt: now.UTC().Truncate(time.Second)}
	if err := key.Validate(); err != nil {
		return "", nil, err
	}
	return secret, key, nil
}

func readRand(r io.Reader, b []byte) error {
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("policy: reading randomness: %w", err)
	}
	return nil
}
