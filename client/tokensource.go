package client

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// TokenProvider supplies the access token a [Session] presents. It is
// called with the context of each operation and must not keep it.
type TokenProvider interface {
	Token(ctx context.Context) (*AccessToken, error)
}

// TokenFetcher fetches a new token for a request; [*TokenClient] is one.
type TokenFetcher interface {
	Fetch(ctx context.Context, req *token.AccessRequest) (*AccessToken, error)
}

// StaticToken returns a TokenProvider that always supplies the token raw
// (for example a token provisioned out of band). Its expiry is unknown; the
// [Session] still checks that its cnf key is the session's key.
func StaticToken(raw []byte) TokenProvider {
	return staticToken{raw: bytes.Clone(raw)}
}

type staticToken struct{ raw []byte }

// Token implements TokenProvider.
func (s staticToken) Token(context.Context) (*AccessToken, error) {
	return &AccessToken{Raw: bytes.Clone(s.raw)}, nil
}

// DefaultRefreshBefore is how long before its expiry a [TokenSource]
// replaces a token when RefreshBefore is zero.
const DefaultRefreshBefore = 5 * time.Minute

// refreshRetryDelay is how long a TokenSource waits after a failed refresh
// before it tries again, as long as its current token is still valid.
const refreshRetryDelay = 10 * time.Second

// TokenSource caches a token and fetches a new one before the cached one
// expires. It is safe for concurrent use: concurrent callers share one
// fetch. It keeps no context: each call's context bounds the fetch made
// within it, and a caller whose context ends stops waiting without
// disturbing the others.
//
// Its fields must not change once it is in use.
type TokenSource struct {
	// Fetcher fetches tokens, usually a *TokenClient. Required.
	Fetcher TokenFetcher
	// Request is what every fetch asks for.
	Request token.AccessRequest
	// RefreshBefore is how long before expiry the token is replaced; zero
	// means DefaultRefreshBefore. A token whose whole lifetime is shorter
	// than twice this is replaced at half its lifetime instead.
	RefreshBefore time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once      sync.Once
	sem       chan struct{} // held while fetching; guards the fields below
	tok       *AccessToken
	refreshAt time.Time
	failedAt  time.Time
}

// Token returns a cached token that is valid now, fetching a new one when
// there is none or when the cached one is due for refresh. If a refresh
// fails while the cached token is still valid, the cached token is returned
// and the refresh is tried again at the next call after a short pause; if
// there is no valid token, the fetch error is returned.
func (s *TokenSource) Token(ctx context.Context) (*AccessToken, error) {
	if s.Fetcher == nil {
		return nil, invalid("token source without a fetcher")
	}
	s.once.Do(func() { s.sem = make(chan struct{}, 1) })
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("client: waiting for a token: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	now := s.now()
	valid := s.tok != nil && now.Before(s.tok.Expiry)
	if valid && (now.Before(s.refreshAt) || now.Sub(s.failedAt) < refreshRetryDelay) {
		return copyToken(s.tok), nil
	}
	tok, err := s.Fetcher.Fetch(ctx, &s.Request)
	if err == nil && tok.Expiry.IsZero() {
		err = badResponse("fetched token has no expiry")
	}
	if err != nil {
		if valid {
			s.failedAt = now
			return copyToken(s.tok), nil
		}
		return nil, err
	}
	got := s.now()
	before := s.RefreshBefore
	if before <= 0 {
		before = DefaultRefreshBefore
	}
	if half := tok.Expiry.Sub(got) / 2; half < before {
		before = half
	}
	s.tok, s.refreshAt, s.failedAt = copyToken(tok), tok.Expiry.Add(-before), time.Time{}
	return tok, nil
}

func (s *TokenSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func copyToken(t *AccessToken) *AccessToken {
	c := *t
	c.Raw = bytes.Clone(t.Raw)
	c.Audience = append([]string(nil), t.Audience...)
	return &c
}
