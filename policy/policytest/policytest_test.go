package policytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policytest"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

var hvac1 = token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"}

// fetch asks srv for a token as a technician app does, verifying it with the
// server's anchor.
func fetch(t *testing.T, srv *policytest.Server, credential, aud, scope string) (*client.AccessToken, error) {
	t.Helper()
	key := trusttest.NewPoPKey(t)
	tc := &client.TokenClient{Endpoint: srv.TokenURL(), Credential: credential, Anchors: srv.Issuer.Store(t), HTTPClient: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return tc.Fetch(ctx, &token.AccessRequest{Audience: []string{aud}, Scope: strings.Fields(scope), Key: key.Public()})
}

func wantDenied(t *testing.T, err error) {
	t.Helper()
	var se *client.ServiceError
	if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || se.Type != "access_denied" {
		t.Errorf("got %v, want a 403 access_denied", err)
	}
}

func TestAllowDenyRemove(t *testing.T) {
	srv := policytest.NewServer(t, nil)
	alice := srv.AddUser(t, "alice", "technicians")
	bob := srv.AddUser(t, "bob")
	srv.AddDevice(t, hvac1)
	srv.AddDevice(t, token.Identity{Endpoint: "hvac-2"}) // derived device id

	allow := srv.Allow(t, "group:technicians", "read-data configure", "ep:hvac-1", "id:"+hvac1.DeviceID)
	tok, err := fetch(t, srv, alice, "ep:hvac-1", "read-data configure")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if !tok.Verified || tok.Issuer != srv.Anchor().Issuer {
		t.Errorf("token verified %v issuer %q, want verified by %q", tok.Verified, tok.Issuer, srv.Anchor().Issuer)
	}
	if life := time.Until(tok.Expiry); life > policytest.Lifetime || life < policytest.Lifetime-time.Minute {
		t.Errorf("token lives %v, want about %v", life, policytest.Lifetime)
	}
	if _, err := fetch(t, srv, alice, "id:"+hvac1.DeviceID, "read-data"); err != nil {
		t.Errorf("alice by device id: %v", err)
	}
	// Not on another device, not for another operation, not for bob.
	_, err = fetch(t, srv, alice, "ep:hvac-2", "read-data")
	wantDenied(t, err)
	_, err = fetch(t, srv, alice, "ep:hvac-1", "update-firmware")
	wantDenied(t, err)
	_, err = fetch(t, srv, bob, "ep:hvac-1", "read-data")
	wantDenied(t, err)

	// A user policy on every device; a deny wins over allows.
	srv.Allow(t, "bob", "read-data")
	if _, err := fetch(t, srv, bob, "ep:hvac-2", "read-data"); err != nil {
		t.Errorf("bob on every device: %v", err)
	}
	deny := srv.Deny(t, "alice", "configure", "ep:hvac-1")
	_, err = fetch(t, srv, alice, "ep:hvac-1", "configure")
	wantDenied(t, err)
	if _, err := fetch(t, srv, alice, "ep:hvac-1", "read-data"); err != nil {
		t.Errorf("alice read-data beside a configure deny: %v", err)
	}
	srv.Remove(t, deny)
	if _, err := fetch(t, srv, alice, "ep:hvac-1", "configure"); err != nil {
		t.Errorf("after removing the deny: %v", err)
	}
	srv.Remove(t, allow)
	_, err = fetch(t, srv, alice, "ep:hvac-1", "read-data")
	wantDenied(t, err)

	// An unknown credential.
	_, err = fetch(t, srv, "sda_not-a-key", "ep:hvac-1", "read-data")
	var se *client.ServiceError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown credential: %v, want 401", err)
	}
}

func TestV2StructuredScope(t *testing.T) {
	srv := policytest.NewServer(t, &policytest.Options{Profile: token.ProfileV2})
	alice := srv.AddUser(t, "alice")
	srv.AddDevice(t, hvac1)
	srv.Apply(t, policy.PutPolicy(&policy.Policy{
		ID: "temps", Status: policy.Active, Effect: policy.Allow,
		Subjects:      policy.Subjects{Users: []string{"alice"}},
		Operations:    []policy.OperationRule{{Name: "set-temperature", Constraints: []policy.ArgConstraint{{Arg: 0, Range: &[2]int64{16, 28}}}}},
		Devices:       policy.DeviceSelector{All: true},
		TokenLifetime: time.Hour,
	}))
	tok, err := fetch(t, srv, alice, "ep:hvac-1", "set-temperature")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := token.Parse(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := token.Thumbprint(srv.Anchor().Key)
	if !bytes.Equal(parsed.UnverifiedKeyID(), kid) {
		t.Errorf("kid %x, want the anchor's thumbprint %x", parsed.UnverifiedKeyID(), kid)
	}
	set := func(v int64) token.Operation {
		return token.Operation{Name: "set-temperature", Args: []token.Arg{token.Int(v)}}
	}
	if tok.Scope.Check(set(20)) != nil || tok.Scope.Check(set(29)) == nil {
		t.Errorf("scope %v does not carry the 16..28 range", tok.Scope)
	}
}

func TestAdminKeyAndAnchors(t *testing.T) {
	srv := policytest.NewServer(t, nil)
	alice := srv.AddUser(t, "alice")
	get := func(path, credential string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if credential != "" {
			req.Header.Set("Authorization", "Bearer "+credential)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, _ := get(policy.AdminPathPrefix+"subjects", srv.AdminKey); code != http.StatusOK {
		t.Errorf("admin API with AdminKey: %d", code)
	}
	if code, _ := get(policy.AdminPathPrefix+"subjects", alice); code != http.StatusForbidden {
		t.Errorf("admin API with a user's key: %d, want 403", code)
	}
	code, body := get(policy.TrustAnchorsPath, alice)
	var list struct {
		Data []struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"data"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Data) != 1 {
		t.Fatalf("trust anchors: %d %s", code, body)
	}
	a := srv.Anchor()
	if list.Data[0].Fingerprint != a.Fingerprint() {
		t.Errorf("published fingerprint %s, want %s", list.Data[0].Fingerprint, a.Fingerprint())
	}
}

func TestClose(t *testing.T) {
	srv := policytest.NewServer(t, nil)
	alice := srv.AddUser(t, "alice")
	srv.Close()
	srv.Close()
	if _, err := fetch(t, srv, alice, "ep:hvac-1", "read-data"); err == nil {
		t.Error("token endpoint answers after Close")
	}
}

func TestHelpersFailTheTest(t *testing.T) {
	faketb.ExpectFatal(t, "want an audience entry", func(tb testing.TB) {
		policytest.NewServer(tb, nil).Allow(tb, "alice", "read-data", "hvac-1")
	})
	faketb.ExpectFatal(t, "policytest", func(tb testing.TB) {
		policytest.NewServer(tb, nil).Allow(tb, "alice", "read data!")
	})
	faketb.ExpectFatal(t, "policytest", func(tb testing.TB) {
		policytest.NewServer(tb, nil).AddDevice(tb, token.Identity{DeviceID: "NOT-HEX"})
	})
	faketb.ExpectFatal(t, "policytest", func(tb testing.TB) {
		policytest.NewServer(tb, nil).AddUser(tb, "")
	})
}
