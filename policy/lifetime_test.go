package policy

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

// TestOneMinuteLifetime: a policy may allow tokens of one minute (but not
// of 59 seconds), in both profiles, and the token endpoint issues such a
// token with exp and granted_until one minute after its issue. A device
// with the v1 default leeway accepts it within the minute plus the leeway
// and refuses it afterwards.
func TestOneMinuteLifetime(t *testing.T) {
	t.Run("validation", func(t *testing.T) {
		if err := pol("p1", lifetime(time.Minute)).Validate(); err != nil {
			t.Errorf("lifetime 1m: %v", err)
		}
		var ve *ValidationError
		if err := pol("p1", lifetime(time.Minute-time.Second)).Validate(); !errors.As(err, &ve) || ve.Fields[0].Name != "token_lifetime_seconds" {
			t.Errorf("lifetime 59s: %v, want a *ValidationError on token_lifetime_seconds", err)
		}
		var p Policy
		if err := json.Unmarshal([]byte(`{"id":"p1","status":"active","effect":"allow","subjects":{"users":["alice"]},
			"operations":[{"name":"read"}],"devices":{"all":true},"token_lifetime_seconds":60}`), &p); err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(); err != nil || p.TokenLifetime != time.Minute {
			t.Errorf("token_lifetime_seconds 60: lifetime %v, %v", p.TokenLifetime, err)
		}
	})
	for _, profile := range []token.Profile{token.ProfileV1, token.ProfileV2} {
		t.Run(profile.String(), func(t *testing.T) {
			env := newTestEnv(t, profile, pol("p1", ops("read"), lifetime(time.Minute)))
			w := env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "read"))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp struct {
				AccessToken  string `json:"access_token"`
				GrantedUntil string `json:"granted_until"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if want := t0.Add(time.Minute).Format(time.RFC3339); resp.GrantedUntil != want {
				t.Errorf("granted_until = %q, want %q", resp.GrantedUntil, want)
			}
			raw, err := base64.StdEncoding.DecodeString(resp.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := token.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tok.Verify(&env.anchor.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if c.Profile != profile || !c.Expiry.Equal(t0.Add(time.Minute)) || !c.NotBefore.Equal(t0) {
				t.Errorf("claims: profile %v, nbf %v, exp %v; want %v, %v, %v", c.Profile, c.NotBefore, c.Expiry, profile, t0, t0.Add(time.Minute))
			}
			v := token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Leeway: device.DefaultLeeway}
			for _, at := range []time.Duration{0, 30 * time.Second, time.Minute + device.DefaultLeeway} {
				v.Now = t0.Add(at)
				if err := c.Validate(v); err != nil {
					t.Errorf("at issue + %v: %v", at, err)
				}
			}
			v.Now = t0.Add(time.Minute + device.DefaultLeeway + time.Second)
			if err := c.Validate(v); !errors.Is(err, token.ErrExpired) {
				t.Errorf("after exp + leeway: %v, want ErrExpired", err)
			}
		})
	}
}
