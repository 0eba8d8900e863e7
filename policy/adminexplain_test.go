package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

func TestHTTPExplain(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2,
		pol("roof", ops("read-data"), devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}})),
		pol("roof-ops", ops("read-data"), users("bob")),
		pol("no-reboot", denyEffect, ops("reboot")),
	)
	post := func(key, body string) (int, []byte) {
		t.Helper()
		w := env.do("POST", explainPath, key, body)
		return w.Code, w.Body.Bytes()
	}
	t.Run("denied, with the reasoning", func(t *testing.T) {
		code, body := post(env.adminKey, `{"subject":"alice","aud":["ep:hvac-1","id:`+dev2+`"],"operations":["read-data","configure"]}`)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		var x Explanation
		if err := strictUnmarshal(body, &x); err != nil {
			t.Fatal(err)
		}
		if x.Object != "explanation" || x.Allowed || x.Profile != "v2" || !x.Time.Equal(t0) || len(x.Pairs) != 4 {
			t.Fatalf("explanation %s", body)
		}
		if x.Denied == nil || x.Denied.Audience != "ep:hvac-1" || x.Denied.Operation != "configure" || !errors.Is(x.Denied.Reason, ErrNoAllowPolicy) {
			t.Errorf("denied %+v", x.Denied)
		}
		p := pairOf(t, &x, "ep:hvac-1", "configure")
		if p.Reason != "no_allow_policy" || p.Device != dev1 || p.EndpointName != "hvac-1" {
			t.Errorf("pair %+v", p)
		}
		if got := missIDs(p); !slices.Equal(got, []string{"roof", "roof-ops"}) {
			t.Errorf("near misses %v", got)
		}
		if p := pairOf(t, &x, "id:"+dev2, "read-data"); p.Reason != "no_allow_policy" || len(p.NearMisses) == 0 {
			t.Errorf("basement read-data %+v", p)
		}
		// The JSON names the fields of the contract.
		var raw map[string]any
		json.Unmarshal(body, &raw)
		pair := raw["pairs"].([]any)[1].(map[string]any)
		miss := pair["near_misses"].([]any)[0].(map[string]any)
		failed := miss["failed"].([]any)[0].(map[string]any)
		if raw["denied"].(map[string]any)["reason"] != "no_allow_policy" || pair["aud"] != "ep:hvac-1" || failed["condition"] != "operation" {
			t.Errorf("JSON %s", body)
		}
	})
	t.Run("allowed, at a time and in a profile", func(t *testing.T) {
		code, body := post(env.adminKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read-data"],"time":"2030-01-02T05:04:05Z","profile":"v1"}`)
		var x Explanation
		if code != 200 || strictUnmarshal(body, &x) != nil {
			t.Fatalf("%d %s", code, body)
		}
		if !x.Allowed || x.Profile != "v1" || !x.Time.Equal(t0.Add(2*time.Hour)) || !x.ExpiresAt.Equal(t0.Add(26*time.Hour)) ||
			!slices.Equal(x.Policies, []string{"roof"}) || len(x.Grants) != 1 || x.Grants[0].Operation != "read-data" {
			t.Fatalf("explanation %s", body)
		}
	})
	t.Run("deny policy", func(t *testing.T) {
		code, body := post(env.adminKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":["reboot"]}`)
		var x Explanation
		if code != 200 || strictUnmarshal(body, &x) != nil || x.Denied == nil || x.Denied.PolicyID != "no-reboot" ||
			!slices.Equal(x.Pairs[0].DenyPolicies, []string{"no-reboot"}) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("validation errors name the fields", func(t *testing.T) {
		w := env.do("POST", explainPath, env.adminKey, `{"subject":"","aud":["ep:hvac-1","nope"],"operations":["read","bad op"]}`)
		e := decodeError(t, w)
		var names []string
		for _, f := range e.Fields {
			names = append(names, f.Name)
		}
		if w.Code != 400 || e.Type != errTypeValidation || !slices.Equal(names, []string{"subject", "aud[1]", "operations[1]"}) {
			t.Fatalf("%d %+v", w.Code, e)
		}
		w = env.do("POST", explainPath, env.adminKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"profile":"v3"}`)
		if e := decodeError(t, w); w.Code != 400 || len(e.Fields) != 1 || e.Fields[0].Name != "profile" {
			t.Fatalf("profile: %d %+v", w.Code, e)
		}
		w = env.do("POST", explainPath, env.adminKey, `{"subject":"alice","aud":[],"operations":[]}`)
		if e := decodeError(t, w); w.Code != 400 || len(e.Fields) != 2 {
			t.Fatalf("empty lists: %d %+v", w.Code, e)
		}
		w = env.do("POST", explainPath, env.adminKey, `{"subject":"alice","audience":["ep:hvac-1"],"operations":["read"]}`)
		if e := decodeError(t, w); w.Code != 400 || e.Type != errTypeBadRequest {
			t.Fatalf("unknown field: %d %+v", w.Code, e)
		}
	})
	t.Run("administrators only", func(t *testing.T) {
		w := env.do("POST", explainPath, env.aliceKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"]}`)
		if e := decodeError(t, w); w.Code != 403 || e.Type != errTypeForbidden {
			t.Fatalf("non-admin: %d %+v", w.Code, e)
		}
		if w := env.do("POST", explainPath, "", `{}`); w.Code != 401 {
			t.Fatalf("no credential: %d", w.Code)
		}
		if w := env.do("GET", explainPath, env.adminKey, ""); w.Code != 405 {
			t.Fatalf("GET: %d", w.Code)
		}
	})
}

// FuzzDecodeExplainRequest: the explain body decoder and Explain never
// panic, and every error is a typed one.
func FuzzDecodeExplainRequest(f *testing.F) {
	f.Add([]byte(`{"subject":"alice","aud":["ep:hvac-1","id:` + dev2 + `"],"operations":["read","write"],"time":"2030-01-02T03:04:05Z","profile":"v2"}`))
	f.Add([]byte(`{"subject":"alice","aud":["ep:nope"],"operations":["read"],"profile":"v1"}`))
	f.Add([]byte(`{"subject":"","aud":[],"operations":["a b"],"profile":"v9"}`))
	f.Add([]byte(`{"subject":"x","aud":null,"time":"bad"}`))
	e := explainEngine(f, pol("p1"), pol("d", denyEffect, ops("write")))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeExplainRequest(body, t0, token.ProfileV1)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		x, err := e.Explain(r)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, err := json.Marshal(x); err != nil {
			t.Fatal(err)
		}
	})
}
