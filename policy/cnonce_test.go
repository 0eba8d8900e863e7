package policy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// A token request may carry a device's nonce (v2, docs/PROTOCOL.md section
// 12); the token then carries it as its cnonce claim.
func TestIssueCarriesCNonce(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1", ops("read")))
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	got, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey, CNonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Claims.CNonce, nonce) {
		t.Fatalf("claims cnonce %x", got.Claims.CNonce)
	}
	tok, _ := token.Parse(got.Token)
	c, err := tok.Verify(&env.anchor.PublicKey)
	if err != nil || !bytes.Equal(c.CNonce, nonce) {
		t.Fatalf("token cnonce %x, %v", c.CNonce, err)
	}

	// Through HTTP, as 16 hex digits.
	var body map[string]any
	_ = json.Unmarshal([]byte(env.tokenBody([]string{"ep:hvac-1"}, "read")), &body)
	body["cnonce"] = "0102030405060708"
	b, _ := json.Marshal(body)
	w := env.do("POST", "/ace-auth/token", env.aliceKey, string(b))
	if w.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	raw, _ := base64.StdEncoding.DecodeString(resp.AccessToken)
	tok, err = token.Parse(raw)
	if err != nil || !bytes.Equal(tok.UnverifiedClaims().CNonce, nonce) {
		t.Fatalf("HTTP token cnonce: %v", err)
	}

	for _, bad := range []string{"", "zz", "010", "00000000000000000000000000000000000000000000000000000000000000000000"} {
		body["cnonce"] = bad
		b, _ := json.Marshal(body)
		w := env.do("POST", "/ace-auth/token", env.aliceKey, string(b))
		if e := decodeError(t, w); w.Code != http.StatusBadRequest || len(e.Fields) != 1 || e.Fields[0].Name != "cnonce" {
			t.Errorf("cnonce %q: HTTP %d %+v", bad, w.Code, e)
		}
	}
}

// A v1 token cannot carry a cnonce: the request is refused, naming the
// field.
func TestIssueV1RefusesCNonce(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1", ops("read")))
	_, err := env.svc.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read"}, Key: &env.pop.PublicKey, CNonce: []byte{1}})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Name != "cnonce" {
		t.Fatalf("v1 with cnonce: %v", err)
	}
}
