package policy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// statusOf fetches and verifies the status update of aud.
func (env *testEnv) statusOf(t *testing.T, aud string) *token.StatusUpdate {
	t.Helper()
	signed, u, err := env.svc.StatusUpdate(context.Background(), aud)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.ParseStatus(signed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(&env.anchor.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sequence != u.Sequence || got.Audience != aud {
		t.Fatalf("returned update %+v, signed %+v", u, got)
	}
	return got
}

// The service signs, per device, the revocations that concern it
// (docs/PROTOCOL.md section 12).
func TestStatusUpdate(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops("read")))
	ctx := context.Background()
	first := env.statusOf(t, "ep:hvac-1")
	if iss, _ := env.svc.issuer(); first.Issuer != iss || !first.Time.Equal(t0.Truncate(time.Second)) ||
		first.Hashes != nil || first.TokenIDs != nil || first.Subjects != nil || first.Anchors != nil {
		t.Fatalf("update without revocations: %+v", first)
	}

	// A token for hvac-1 revoked: in hvac-1's update, not in hvac-2's.
	issued, err := env.svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: hexOf(issued.Claims.ID), By: "root"}); err != nil {
		t.Fatal(err)
	}
	u1 := env.statusOf(t, "ep:hvac-1")
	tok, _ := token.Parse(issued.Token)
	if len(u1.Hashes) != 1 || u1.Hashes[0] != tok.RevocationHash() || !u1.NewerThan(first.Sequence, first.Time) {
		t.Fatalf("hvac-1 update %+v", u1)
	}
	if reason, ok := u1.Revokes(issued.Claims, new(tok.RevocationHash()), nil); !ok {
		t.Fatalf("the update does not revoke the token (%q)", reason)
	}
	if u2 := env.statusOf(t, "id:"+dev2); len(u2.Hashes) != 0 {
		t.Fatalf("hvac-2's update lists hvac-1's token: %+v", u2)
	}

	// A subject cut-off concerns every device.
	if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "alice", By: "root"}); err != nil {
		t.Fatal(err)
	}
	for _, aud := range []string{"ep:hvac-1", "ep:pump-1"} {
		u := env.statusOf(t, aud)
		if len(u.Subjects) != 1 || u.Subjects[0].Subject != "alice" || !u.Subjects[0].Before.Equal(t0.Truncate(time.Second)) {
			t.Fatalf("%s: %+v", aud, u.Subjects)
		}
	}

	for _, aud := range []string{"ep:nowhere", "id:00000000000000000000000000000000"} {
		if _, _, err := env.svc.StatusUpdate(ctx, aud); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", aud, err)
		}
	}
	if _, _, err := env.svc.StatusUpdate(ctx, "hvac-1"); !errors.Is(err, ErrInvalid) {
		t.Errorf("audience without prefix: %v, want ErrInvalid", err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// GET /v1/status-update?aud=... with any valid API key.
func TestHTTPStatusUpdate(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops("read")))
	path := StatusUpdatePath + "?aud=" + url.QueryEscape("ep:hvac-1")
	w := env.do("GET", path, env.aliceKey, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var body struct {
		StatusUpdate string `json:"status_update"`
		Aud          string `json:"aud"`
		Seq          uint64 `json:"seq"`
		Time         string `json:"time"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(body.StatusUpdate)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.ParseStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Verify(&env.anchor.PublicKey)
	if err != nil || u.Audience != "ep:hvac-1" || body.Aud != u.Audience || body.Seq != u.Sequence || body.Time != u.Time.UTC().Format(time.RFC3339) {
		t.Fatalf("%+v vs %+v: %v", body, u, err)
	}
	for _, tc := range []struct {
		path, cred string
		code       int
	}{
		{path, "", http.StatusUnauthorized},
		{StatusUpdatePath + "?aud=ep:nowhere", env.aliceKey, http.StatusNotFound},
		{StatusUpdatePath, env.aliceKey, http.StatusBadRequest},
		{StatusUpdatePath + "?aud=hvac-1", env.aliceKey, http.StatusBadRequest},
		{path + "&aud=ep:hvac-2", env.aliceKey, http.StatusBadRequest},
	} {
		w := env.do("GET", tc.path, tc.cred, "")
		e := decodeError(t, w)
		if w.Code != tc.code {
			t.Errorf("GET %s: %d %+v, want %d", tc.path, w.Code, e, tc.code)
		}
		if w.Code == http.StatusNotFound && !strings.Contains(e.Message, "no device") {
			t.Errorf("GET %s: 404 says %q", tc.path, e.Message)
		}
	}
	if w := env.do("POST", path, env.aliceKey, ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	// Served by the public handler, not the admin handler.
	if w := env.doWith(env.svc.AdminHandler(), "GET", path, env.aliceKey, ""); w.Code != http.StatusNotFound {
		t.Errorf("admin handler: %d", w.Code)
	}
}
