package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"
)

func TestSessionStore(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	t.Run("ending forgets the key", func(t *testing.T) {
		for name, end := range map[string]func(st *sessionStore, id string){
			"sign-out": func(st *sessionStore, id string) { st.end(id) },
			"expiry":   func(st *sessionStore, id string) { st.get(id, t0.Add(time.Hour)) },
			"sweep":    func(st *sessionStore, _ string) { st.get("other", t0.Add(time.Hour)) },
		} {
			t.Run(name, func(t *testing.T) {
				st := newSessionStore(10, time.Minute, time.Hour, rand.Reader)
				id, _, err := st.create("sda_secret", t0)
				if err != nil {
					t.Fatal(err)
				}
				held := st.byID[sha256.Sum256([]byte(id))]
				end(st, id)
				if held.apiKey != "" || held.csrf != "" || st.len() != 0 {
					t.Fatalf("after the end: key %q, csrf %q, %d sessions", held.apiKey, held.csrf, st.len())
				}
				if s, _ := st.get(id, t0); s != nil {
					t.Fatal("the session still answers")
				}
			})
		}
	})
	t.Run("ids and tokens are 256-bit random", func(t *testing.T) {
		st := newSessionStore(10, time.Minute, time.Hour, rand.Reader)
		id1, s1, _ := st.create("k", t0)
		id2, s2, _ := st.create("k", t0)
		if len(id1) != 43 || len(s1.csrf) != 43 || id1 == id2 || s1.csrf == s2.csrf || id1 == s1.csrf {
			t.Fatalf("ids %q %q, tokens %q %q", id1, id2, s1.csrf, s2.csrf)
		}
	})
	t.Run("random source failure", func(t *testing.T) {
		st := newSessionStore(10, time.Minute, time.Hour, bytes.NewReader(make([]byte, 40)))
		if _, _, err := st.create("k", t0); err == nil || st.len() != 0 {
			t.Fatalf("err %v with %d sessions, want an error and none", err, st.len())
		}
	})
	t.Run("CSRF comparison", func(t *testing.T) {
		s := &session{csrf: "abc"}
		if !s.validCSRF("abc") || s.validCSRF("abd") || s.validCSRF("") || s.validCSRF("abcd") {
			t.Fatal("validCSRF")
		}
		if (&session{}).validCSRF("") {
			t.Fatal("an ended session's empty token matched")
		}
	})
}
