package client

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// lastCNonce returns the cnonce of the last token request the server
// received ("" when absent).
func (a *authServer) lastCNonce(t *testing.T) (string, bool) {
	t.Helper()
	b := a.lastBody.Load()
	if b == nil {
		t.Fatal("no token request")
	}
	var m map[string]any
	if err := json.Unmarshal(*b, &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m["cnonce"].(string)
	return v, ok
}

// Fetch sends a request's cnonce as 16 hex digits and checks that the
// token carries it.
func TestFetchTokenCNonce(t *testing.T) {
	a, srv := newAuthServer(t)
	pop := mustKey(t, KeyP256)
	cnonce := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	req := &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public(), CNonce: cnonce}
	tok, err := newTokenClient(a, srv).Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.lastCNonce(t); got != "0123456789abcdef" {
		t.Errorf("token request cnonce %q, want 0123456789abcdef", got)
	}
	p, err := token.Parse(tok.Raw)
	if err != nil || hex.EncodeToString(p.UnverifiedClaims().CNonce) != "0123456789abcdef" {
		t.Errorf("token cnonce %x, %v", p.UnverifiedClaims().CNonce, err)
	}
	// Without a cnonce, the request has no such field (v1 byte-identical).
	req.CNonce = nil
	if _, err := newTokenClient(a, srv).Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.lastCNonce(t); ok {
		t.Error("a cnonce field sent without a cnonce")
	}
}

// A service that ignores the cnonce (or puts another) gives a token the
// device would refuse: the client refuses it first.
func TestFetchTokenCNonceMismatch(t *testing.T) {
	a, _ := newAuthServer(t)
	pop := mustKey(t, KeyP256)
	raw := issueV2(t, a.anchor, pop.Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour).Truncate(time.Second), []byte{9, 9, 9, 9, 9, 9, 9, 9})
	for name, tok := range map[string][]byte{
		"other cnonce": raw,
		"no cnonce":    issue(t, a.anchor, pop.Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour).Truncate(time.Second)),
	} {
		t.Run(name, func(t *testing.T) {
			c := &TokenCheck{Key: pop.Public(), CNonce: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
			var ce *TokenCheckError
			if _, err := CheckToken(tok, c); !errors.As(err, &ce) || ce.Check != "cnonce" || !errors.Is(err, ErrTokenMismatch) {
				t.Fatalf("got %v, want a cnonce TokenCheckError", err)
			}
		})
	}
}

// freshFixture is a fixture whose device requires a cnonce and whose
// session fetches fresh tokens from an authorization service trusted by
// the device.
func freshFixture(t *testing.T, setup func(*testDevice)) (*fixture, *authServer) {
	t.Helper()
	f := newFixture(t, func(d *testDevice) {
		d.requireCNonce = true
		if setup != nil {
			setup(d)
		}
	})
	a, srv := newAuthServer(t)
	a.anchor = f.anchor
	f.session.Tokens = nil
	f.session.Fresh = &FreshTokens{
		Fetcher: newTokenClient(a, srv),
		Request: token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}},
	}
	return f, a
}

// The cnonce flow: the token request carries the device's nonce and the
// request is signed with that same nonce, which the device checks.
func TestSessionDoFresh(t *testing.T) {
	for _, next := range []bool{false, true} {
		name := map[bool]string{false: "nonce requests", true: "next nonces"}[next]
		t.Run(name, func(t *testing.T) {
			f, a := freshFixture(t, func(d *testDevice) { d.nextNonce = next })
			for i := range 2 {
				res, err := f.session.DoFresh(context.Background(), readData)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := a.lastCNonce(t)
				if want := hex.EncodeToString(binary.BigEndian.AppendUint64(nil, res.Nonce)); got != want {
					t.Errorf("operation %d: token request cnonce %q, request signed with nonce %s", i, got, want)
				}
			}
			wantNonces := map[bool]int{false: 2, true: 1}[next]
			if nonces, ops, runs := f.dev.counts(); nonces != wantNonces || ops != 2 || runs != 2 {
				t.Errorf("nonce requests %d, operation requests %d, runs %d; want %d, 2, 2", nonces, ops, runs, wantNonces)
			}
			if n := a.requests.Load(); n != 2 {
				t.Errorf("%d token requests: fresh tokens must not be reused", n)
			}
		})
	}
	t.Run("a cached token is refused by the device", func(t *testing.T) {
		// The test device really checks the cnonce: Do with a token
		// without one fails.
		f, _ := freshFixture(t, nil)
		f.session.Tokens = StaticToken(f.tok)
		if _, err := f.session.Do(context.Background(), readData); !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
	})
}

func TestSessionDoFreshMisuse(t *testing.T) {
	ctx := context.Background()
	t.Run("no fresh tokens", func(t *testing.T) {
		f := newFixture(t, nil)
		if _, err := f.session.DoFresh(ctx, readData); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("template with a cnonce", func(t *testing.T) {
		f, _ := freshFixture(t, nil)
		f.session.Fresh.Request.CNonce = []byte{1}
		if _, err := f.session.DoFresh(ctx, readData); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("template for another key", func(t *testing.T) {
		f, _ := freshFixture(t, nil)
		f.session.Fresh.Request.Key = mustKey(t, KeyP256).Public()
		if _, err := f.session.DoFresh(ctx, readData); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		if nonces, _, _ := f.dev.counts(); nonces != 0 {
			t.Errorf("%d nonce requests", nonces)
		}
	})
	t.Run("fetch fails: the nonce is kept", func(t *testing.T) {
		f, _ := freshFixture(t, nil)
		c := f.session.Fresh.Fetcher.(*TokenClient)
		c.Credential = "wrong"
		var se *ServiceError
		if _, err := f.session.DoFresh(ctx, readData); !errors.As(err, &se) {
			t.Fatalf("got %v, want a ServiceError", err)
		}
		c.Credential = "s3cret"
		if _, err := f.session.DoFresh(ctx, readData); err != nil {
			t.Fatal(err)
		}
		if nonces, ops, _ := f.dev.counts(); nonces != 1 || ops != 1 {
			t.Errorf("nonce requests %d, operation requests %d; want 1, 1 (the unsent nonce reused)", nonces, ops)
		}
	})
	t.Run("service ignores the cnonce", func(t *testing.T) {
		f, _ := freshFixture(t, nil)
		f.session.Fresh.Fetcher = fetcherFunc(func(context.Context, *token.AccessRequest) (*AccessToken, error) {
			return &AccessToken{Raw: f.tok}, nil
		})
		var ce *TokenCheckError
		if _, err := f.session.DoFresh(ctx, readData); !errors.As(err, &ce) || ce.Check != "cnonce" {
			t.Fatalf("got %v, want a cnonce TokenCheckError", err)
		}
		if _, ops, _ := f.dev.counts(); ops != 0 {
			t.Errorf("%d operation requests sent", ops)
		}
	})
}
