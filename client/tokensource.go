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
//
// raw may also be a delegated token ([AccessToken.Bytes], what
// [Delegate] and "sdactl token delegate" make): the session then sends
// its chain with every request and checks that the chain's last key is
// the session's key. A delegated token that does not parse is reported by
// Token as a [*TokenCheckError] ("parse").
func StaticToken(raw []byte) TokenProvider {
	return staticToken{raw: bytes.Clone(raw)}
}

type staticToken struct{ raw []byte }

// Token implements TokenProvider.
func (s staticToken) Token(context.Context) (*AccessToken, error) {
	if len(s.raw) == 0 || s.raw[0]>>5 != 4 { // not a CBOR array: a token
		return &AccessToken{Raw: bytes.Clone(s.raw)}, nil
	}
	d, err := token.ParseDelegatedToken(s.raw)
	if err != nil {
		return nil, &TokenCheckError{Check: "parse", Reason: "not a well-formed delegated token", Err: err}
	}
	return &AccessToken{Raw: bytes.Clone(d.Token), Chain: d.Chain}, nil
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
// With Status set it also caches status updates (v2, docs/PROTOCOL.md
// section 12): whenever it fetches a token it fetches the update of every
// audience of Request, and keeps the newest one it has seen for each
// ([token.StatusUpdate.NewerThan], read unverified: Status verifies them
// when it is a [*TokenClient] with anchors). A failed update fetch does
// not fail the token fetch and keeps the update held. It is the
// [StatusProvider] of a [Session]: [TokenSource.StatusUpdate] answers from
// the cache, without network.
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
	// Status, when set, fetches the status update of each audience of
	// Request whenever a token is fetched, usually the same *TokenClient as
	// Fetcher.
	Status StatusProvider
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once      sync.Once
	sem       chan struct{} // held while fetching; guards the fields below
	tok       *AccessToken
	refreshAt time.Time
	failedAt  time.Time

	mu      sync.Mutex        // guards updates
	updates map[string][]byte // newest status update by audience
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
	if s.Request.CNonce != nil {
		// A token with a cnonce is good for one request: never cached
		// (see Session.DoFresh).
		return nil, invalid("token source request with a cnonce")
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
	s.fetchUpdates(ctx)
	return tok, nil
}

// fetchUpdates fetches the status update of each audience of the request
// and keeps it when it is for that audience and newer than the one held.
// Failures keep what is held.
func (s *TokenSource) fetchUpdates(ctx context.Context) {
	if s.Status == nil {
		return
	}
	for _, aud := range s.Request.Audience {
		raw, err := s.Status.StatusUpdate(ctx, aud)
		if err != nil || raw == nil {
			continue
		}
		p, u, err := parseStatusFor(raw, aud)
		if err != nil || u == nil {
			continue
		}
		s.mu.Lock()
		if held, err := token.ParseStatus(s.updates[aud]); err != nil || p.UnverifiedNewerThan(held.UnverifiedUpdate().Sequence, held.UnverifiedUpdate().Time) {
			if s.updates == nil {
				s.updates = make(map[string][]byte, len(s.Request.Audience))
			}
			s.updates[aud] = p.Bytes()
		}
		s.mu.Unlock()
	}
}

// StatusUpdate returns the newest status update cached for aud, or nil
// when there is none (see [TokenSource]). It makes no network request
// and does not wait for a fetch in progress: it implements
// [StatusProvider] for a [Session].
func (s *TokenSource) StatusUpdate(_ context.Context, aud string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.updates[aud]), nil
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
