package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"
)

// session is a signed-in administrator: the API key the console calls the
// administration API with, held only here (never sent back to the browser),
// and the session's CSRF token.
type session struct {
	apiKey   string
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessionStore holds the sessions in memory, by the SHA-256 of the session
// id (so that the map's lookup time does not depend on a secret's
// bytes), bounded by max.
type sessionStore struct {
	mu          sync.Mutex
	byID        map[[sha256.Size]byte]*session
	max         int
	idle        time.Duration
	lifetime    time.Duration
	rand        io.Reader
	nextSweep   time.Time
	sweepPeriod time.Duration
}

func newSessionStore(max int, idle, lifetime time.Duration, rand io.Reader) *sessionStore {
	return &sessionStore{byID: map[[sha256.Size]byte]*session{}, max: max, idle: idle, lifetime: lifetime,
		rand: rand, sweepPeriod: min(idle, time.Minute)}
}

// randomToken returns n random bytes in base64url.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("console: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session for apiKey and returns its id.
func (st *sessionStore) create(apiKey string, now time.Time) (string, *session, error) {
	id, err := randomToken(st.rand, sessionIDBytes)
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken(st.rand, csrfTokenBytes)
	if err != nil {
		return "", nil, err
	}
	s := &session{apiKey: apiKey, csrf: csrf, created: now, lastSeen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.byID) >= st.max {
		st.sweepLocked(now)
	}
	if len(st.byID) >= st.max {
		st.evictLRULocked()
	}
	st.byID[sha256.Sum256([]byte(id))] = s
	return id, s, nil
}

// get returns a copy of the session of id if it exists and has not
// expired, and marks it used; an expired session is ended. expired tells whether a
// session of that id existed but expired.
func (st *sessionStore) get(id string, now time.Time) (s *session, expired bool) {
	if id == "" {
		return nil, false
	}
	h := sha256.Sum256([]byte(id))
	st.mu.Lock()
	defer st.mu.Unlock()
	s = st.byID[h]
	if s != nil && st.expired(s, now) {
		st.dropLocked(h, s)
		s, expired = nil, true
	}
	if !now.Before(st.nextSweep) {
		st.sweepLocked(now)
	}
	if s == nil {
		return nil, expired
	}
	s.lastSeen = now
	c := *s // a copy: the stored one may be dropped meanwhile
	return &c, false
}

// end ends the session of id, if any.
func (st *sessionStore) end(id string) {
	h := sha256.Sum256([]byte(id))
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.byID[h]; s != nil {
		st.dropLocked(h, s)
	}
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byID)
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) >= st.idle || now.Sub(s.created) >= st.lifetime
}

// dropLocked removes the session and forgets its API key.
func (st *sessionStore) dropLocked(h [sha256.Size]byte, s *session) {
	s.apiKey = ""
	s.csrf = ""
	delete(st.byID, h)
}

// sweepLocked ends every expired session.
func (st *sessionStore) sweepLocked(now time.Time) {
	for h, s := range st.byID {
		if st.expired(s, now) {
			st.dropLocked(h, s)
		}
	}
	st.nextSweep = now.Add(st.sweepPeriod)
}

// evictLRULocked ends the least recently used session.
func (st *sessionStore) evictLRULocked() {
	var oldest *session
	var oh [sha256.Size]byte
	for h, s := range st.byID {
		if oldest == nil || s.lastSeen.Before(oldest.lastSeen) {
			oldest, oh = s, h
		}
	}
	if oldest != nil {
		st.dropLocked(oh, oldest)
	}
}

// validCSRF compares a form's CSRF token with the session's in constant time.
func (s *session) validCSRF(got string) bool {
	return s.csrf != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
