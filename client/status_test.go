package client

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// serveStatus answers GET StatusPath?aud=... as docs/PROTOCOL.md section 12
// says: the update held for the audience, or 404.
func (a *authServer) serveStatus(w http.ResponseWriter, r *http.Request) {
	a.statusRequests.Add(1)
	if r.Header.Get("Authorization") != "Bearer "+a.credential {
		writeError(w, http.StatusUnauthorized, "unauthorized", "bad credential")
		return
	}
	aud := r.URL.Query().Get("aud")
	a.statusMu.Lock()
	override, raw := a.statusBody, a.updates[aud]
	a.statusMu.Unlock()
	if override != nil {
		code, body := override(aud)
		w.WriteHeader(code)
		w.Write([]byte(body))
		return
	}
	if raw == nil {
		writeError(w, http.StatusNotFound, "not_found", "no such device")
		return
	}
	p, err := token.ParseStatus(raw)
	if err != nil {
		a.t.Error(err)
		return
	}
	u := p.UnverifiedUpdate()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"status_update": base64.StdEncoding.EncodeToString(raw),
		"aud":           u.Audience,
		"seq":           u.Sequence,
		"time":          u.Time.UTC().Format(time.RFC3339),
	})
}

// setUpdate makes the server answer raw for aud.
func (a *authServer) setUpdate(aud string, raw []byte) {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	if a.updates == nil {
		a.updates = map[string][]byte{}
	}
	a.updates[aud] = raw
}

// signUpdate returns a status update of anchor's issuer for aud.
func signUpdate(t testing.TB, anchor crypto.Signer, aud string, seq uint64, at time.Time) []byte {
	t.Helper()
	iss, err := token.AnchorName(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := token.SignStatus(&token.StatusUpdate{Issuer: iss, Sequence: seq, Time: at, Audience: aud, TokenIDs: [][]byte{[]byte("revoked-1")}}, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// updateSeq returns the sequence number of a status update (0 for nil).
func updateSeq(t testing.TB, raw []byte) uint64 {
	t.Helper()
	if raw == nil {
		return 0
	}
	p, err := token.ParseStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p.UnverifiedUpdate().Sequence
}

func TestFetchStatusUpdate(t *testing.T) {
	a, srv := newAuthServer(t)
	want := signUpdate(t, a.anchor, "ep:hvac-1", 7, testNow)
	a.setUpdate("ep:hvac-1", want)
	for _, anchored := range []bool{false, true} {
		t.Run("anchors "+strconv.FormatBool(anchored), func(t *testing.T) {
			c := newTokenClient(a, srv)
			if anchored {
				c.Anchors = a.anchors(t, nil)
			}
			got, err := c.StatusUpdate(context.Background(), "ep:hvac-1")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got %x, want the service's update", got)
			}
			// The function for online devices fetches the same.
			got, err = c.StatusFetcher("ep:hvac-1")(context.Background())
			if err != nil || string(got) != string(want) {
				t.Errorf("StatusFetcher: %x, %v", got, err)
			}
		})
	}
}

func TestFetchStatusUpdateErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("unauthorized", func(t *testing.T) {
		a, srv := newAuthServer(t)
		a.setUpdate("ep:hvac-1", signUpdate(t, a.anchor, "ep:hvac-1", 1, testNow))
		c := newTokenClient(a, srv)
		c.Credential = "wrong"
		_, err := c.StatusUpdate(ctx, "ep:hvac-1")
		var se *ServiceError
		if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || se.Type != "unauthorized" {
			t.Fatalf("got %v, want a 401 ServiceError", err)
		}
	})
	t.Run("unknown device", func(t *testing.T) {
		a, srv := newAuthServer(t)
		_, err := newTokenClient(a, srv).StatusUpdate(ctx, "ep:nowhere")
		var se *ServiceError
		if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
			t.Fatalf("got %v, want a 404 ServiceError", err)
		}
	})
	body := func(update []byte, aud string, seq uint64) string {
		b, _ := json.Marshal(map[string]any{"status_update": base64.StdEncoding.EncodeToString(update), "aud": aud, "seq": seq, "time": testNow.Format(time.RFC3339)})
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		body  func(a *authServer) string
		check string // "" for ErrBadResponse, else the StatusCheckError's check
		also  error
	}{
		{"not json", func(*authServer) string { return "<html>" }, "", nil},
		{"no update", func(*authServer) string { return `{"aud":"ep:hvac-1","seq":1}` }, "", nil},
		{"not base64", func(*authServer) string { return `{"status_update":"%%%","aud":"ep:hvac-1","seq":1}` }, "", nil},
		{"malformed update", func(a *authServer) string {
			u := signUpdate(t, a.anchor, "ep:hvac-1", 1, testNow)
			return body(u[:len(u)-1], "ep:hvac-1", 1)
		}, "parse", token.ErrMalformed},
		{"a token, not an update", func(a *authServer) string {
			return body(issue(t, a.anchor, mustKey(t, KeyP256).Public(), []string{"ep:hvac-1"}, "read-data", testNow), "ep:hvac-1", 1)
		}, "parse", token.ErrMalformed},
		{"another audience", func(a *authServer) string {
			return body(signUpdate(t, a.anchor, "ep:hvac-2", 1, testNow), "ep:hvac-1", 1)
		}, "aud", nil},
		{"fields disagree", func(a *authServer) string {
			return body(signUpdate(t, a.anchor, "ep:hvac-1", 1, testNow), "ep:hvac-1", 2)
		}, "seq", nil},
		{"bad signature", func(a *authServer) string {
			return body(signUpdate(t, mustP256(t), "ep:hvac-1", 1, testNow), "ep:hvac-1", 1)
		}, "signature", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := newAuthServer(t)
			a.statusBody = func(string) (int, string) { return http.StatusOK, tc.body(a) }
			c := newTokenClient(a, srv)
			c.Anchors = a.anchors(t, nil)
			got, err := c.StatusUpdate(ctx, "ep:hvac-1")
			if got != nil {
				t.Errorf("returned %x with the error", got)
			}
			var ce *StatusCheckError
			switch {
			case tc.check == "":
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("got %v, want ErrBadResponse", err)
				}
			case !errors.As(err, &ce) || ce.Check != tc.check || !errors.Is(err, ErrStatusMismatch):
				t.Fatalf("got %v, want a StatusCheckError %q", err, tc.check)
			case tc.also != nil && !errors.Is(err, tc.also):
				t.Fatalf("got %v, want it to match %v", err, tc.also)
			}
		})
	}
	t.Run("signed by another issuer's key", func(t *testing.T) {
		// Without anchors the update is read unverified; with them, an update
		// signed by a key that is no anchor of its issuer is refused.
		a, srv := newAuthServer(t)
		a.setUpdate("ep:hvac-1", signUpdate(t, a.anchor, "ep:hvac-1", 1, testNow))
		c := newTokenClient(a, srv)
		c.Anchors = a.anchors(t, mustP256(t).Public())
		var ce *StatusCheckError
		if _, err := c.StatusUpdate(ctx, "ep:hvac-1"); !errors.As(err, &ce) || ce.Check != "signature" || !errors.Is(err, token.ErrSignature) {
			t.Fatalf("got %v, want a signature StatusCheckError", err)
		}
	})
	t.Run("invalid input", func(t *testing.T) {
		a, srv := newAuthServer(t)
		for _, aud := range []string{"", "hvac-1", "ep:", "ep:bad/\x00"} {
			if _, err := newTokenClient(a, srv).StatusUpdate(ctx, aud); !errors.Is(err, ErrInvalid) {
				t.Errorf("audience %q: got %v, want ErrInvalid", aud, err)
			}
		}
		c := newTokenClient(a, srv)
		c.StatusEndpoint = "http://example.com" + StatusPath
		if _, err := c.StatusUpdate(ctx, "ep:hvac-1"); !errors.Is(err, ErrInvalid) {
			t.Errorf("plain http endpoint: got %v, want ErrInvalid", err)
		}
		if n := a.statusRequests.Load(); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
	t.Run("too large", func(t *testing.T) {
		a, srv := newAuthServer(t)
		a.statusBody = func(string) (int, string) {
			return http.StatusOK, `{"status_update":"` + base64.StdEncoding.EncodeToString(make([]byte, MaxStatusResponseSize)) + `"}`
		}
		if _, err := newTokenClient(a, srv).StatusUpdate(ctx, "ep:hvac-1"); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v, want ErrBadResponse", err)
		}
	})
}

// StatusEndpoint, when set, is used instead of the path on the token
// endpoint's host.
func TestStatusEndpointOverride(t *testing.T) {
	a, srv := newAuthServer(t)
	a.setUpdate("id:0123456789abcdef0123456789abcdef", signUpdate(t, a.anchor, "id:0123456789abcdef0123456789abcdef", 3, testNow))
	c := &TokenClient{Endpoint: "https://auth.invalid" + TokenPath, StatusEndpoint: srv.URL + StatusPath, Credential: a.credential, HTTPClient: srv.Client()}
	got, err := c.StatusUpdate(context.Background(), "id:0123456789abcdef0123456789abcdef")
	if err != nil || updateSeq(t, got) != 3 {
		t.Fatalf("got seq %d, %v", updateSeq(t, got), err)
	}
}

// statusFunc is a StatusProvider from a function.
type statusFunc func(ctx context.Context, aud string) ([]byte, error)

func (f statusFunc) StatusUpdate(ctx context.Context, aud string) ([]byte, error) { return f(ctx, aud) }

// The TokenSource fetches the updates of its audiences with every token
// and keeps the newest per audience; a failed fetch keeps the old one.
func TestTokenSourceCachesStatusUpdates(t *testing.T) {
	anchor := mustP256(t)
	var mu sync.Mutex
	served := map[string][]byte{}
	fail := map[string]error{}
	calls := map[string]int{}
	s, _, clock := newSource(time.Hour, 5*time.Minute)
	s.Request.Audience = []string{"ep:hvac-1", "ep:hvac-2"}
	s.Status = statusFunc(func(_ context.Context, aud string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[aud]++
		return served[aud], fail[aud]
	})
	set := func(aud string, raw []byte, err error) {
		mu.Lock()
		served[aud], fail[aud] = raw, err
		mu.Unlock()
	}
	cached := func(aud string) uint64 {
		t.Helper()
		raw, err := s.StatusUpdate(context.Background(), aud)
		if err != nil {
			t.Fatal(err)
		}
		return updateSeq(t, raw)
	}
	set("ep:hvac-1", signUpdate(t, anchor, "ep:hvac-1", 5, testNow), nil)
	set("ep:hvac-2", nil, &ServiceError{StatusCode: http.StatusNotFound})
	if cached("ep:hvac-1") != 0 {
		t.Error("an update cached before any token was fetched")
	}
	tokenNumber(t, s)
	if got := cached("ep:hvac-1"); got != 5 {
		t.Errorf("hvac-1: cached seq %d, want 5", got)
	}
	if got := cached("ep:hvac-2"); got != 0 {
		t.Errorf("hvac-2: cached seq %d, want none", got)
	}
	// No network on the way to the cache, and none while the token is cached.
	tokenNumber(t, s)
	mu.Lock()
	if calls["ep:hvac-1"] != 1 || calls["ep:hvac-2"] != 1 {
		t.Errorf("fetches %v, want one per audience", calls)
	}
	mu.Unlock()

	// Refresh: a failed fetch keeps the cached update, an older one does
	// not replace it, a newer one does.
	set("ep:hvac-1", nil, errors.New("service down"))
	clock.advance(56 * time.Minute)
	if n := tokenNumber(t, s); n != 2 {
		t.Fatalf("token %d, want a refreshed one", n)
	}
	if got := cached("ep:hvac-1"); got != 5 {
		t.Errorf("after a failed fetch: seq %d, want the cached 5", got)
	}
	set("ep:hvac-1", signUpdate(t, anchor, "ep:hvac-1", 4, testNow.Add(time.Hour)), nil)
	clock.advance(56 * time.Minute)
	tokenNumber(t, s)
	if got := cached("ep:hvac-1"); got != 5 {
		t.Errorf("after fetching an older update: seq %d, want 5", got)
	}
	set("ep:hvac-1", signUpdate(t, anchor, "ep:hvac-1", 6, testNow), nil)
	set("ep:hvac-2", signUpdate(t, anchor, "ep:hvac-1", 9, testNow), nil) // for another device
	clock.advance(56 * time.Minute)
	tokenNumber(t, s)
	if got := cached("ep:hvac-1"); got != 6 {
		t.Errorf("after fetching a newer update: seq %d, want 6", got)
	}
	if got := cached("ep:hvac-2"); got != 0 {
		t.Errorf("hvac-2 cached an update for another audience (seq %d)", got)
	}
	if got := cached("ep:elsewhere"); got != 0 {
		t.Errorf("an audience not requested: seq %d", got)
	}
}

// A failed status fetch never fails the token fetch.
func TestTokenSourceStatusFailureKeepsToken(t *testing.T) {
	s, _, _ := newSource(time.Hour, 5*time.Minute)
	s.Request.Audience = []string{"ep:hvac-1"}
	s.Status = statusFunc(func(context.Context, string) ([]byte, error) { return nil, errors.New("boom") })
	if n := tokenNumber(t, s); n != 1 {
		t.Errorf("token %d", n)
	}
}

// A TokenSource over a TokenClient fetches both from the same service.
func TestTokenSourceStatusWithTokenClient(t *testing.T) {
	a, srv := newAuthServer(t)
	a.setUpdate("ep:hvac-1", signUpdate(t, a.anchor, "ep:hvac-1", 11, testNow))
	c := newTokenClient(a, srv)
	c.Anchors = a.anchors(t, nil)
	pop := mustKey(t, KeyP256)
	s := &TokenSource{Fetcher: c, Status: c, Request: token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()}}
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := s.StatusUpdate(context.Background(), "ep:hvac-1")
	if err != nil || updateSeq(t, raw) != 11 {
		t.Fatalf("cached seq %d, %v", updateSeq(t, raw), err)
	}
	if n := a.statusRequests.Load(); n != 1 {
		t.Errorf("%d status requests, want 1", n)
	}
}

// Concurrent tokens and cached updates, for the race detector.
func TestTokenSourceStatusConcurrent(t *testing.T) {
	anchor := mustP256(t)
	var seq sync.Mutex
	n := uint64(0)
	s, _, clock := newSource(time.Hour, 5*time.Minute)
	s.Request.Audience = []string{"ep:hvac-1"}
	s.Status = statusFunc(func(context.Context, string) ([]byte, error) {
		seq.Lock()
		n++
		v := n
		seq.Unlock()
		return signUpdate(t, anchor, "ep:hvac-1", v, testNow), nil
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if i%2 == 0 {
					clock.advance(time.Minute)
					if _, err := s.Token(context.Background()); err != nil {
						t.Error(err)
					}
				} else if _, err := s.StatusUpdate(context.Background(), "ep:hvac-1"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	raw, _ := s.StatusUpdate(context.Background(), "ep:hvac-1")
	seq.Lock()
	defer seq.Unlock()
	if got := updateSeq(t, raw); got != n {
		t.Errorf("cached seq %d, want the newest fetched, %d", got, n)
	}
}

// A request with a cnonce is for one token only: a TokenSource refuses to
// cache it.
func TestTokenSourceRefusesCNonce(t *testing.T) {
	s, f, _ := newSource(time.Hour, 0)
	s.Request.CNonce = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if c := f.calls.Load(); c != 0 {
		t.Errorf("%d fetches", c)
	}
}
