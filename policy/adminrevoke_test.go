package policy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

type revocationList struct {
	Object     string        `json:"object"`
	Data       []*Revocation `json:"data"`
	HasMore    bool          `json:"has_more"`
	TotalCount int           `json:"total_count"`
}

func decodeList[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

func TestHTTPRevocations(t *testing.T) {
	env, toks := revokeEnv(t)
	tp, _ := token.Thumbprint(env.anchor.Public())
	post := func(body string) (int, revocationList, errorBody) {
		w := env.do("POST", "/admin/v1/revocations", env.adminKey, body)
		if w.Code != http.StatusCreated {
			return w.Code, revocationList{}, decodeError(t, w)
		}
		return w.Code, decodeList[revocationList](t, w.Body.Bytes()), errorBody{}
	}
	for _, tc := range []struct {
		name, body string
		check      func(*Revocation) bool
	}{
		{"token by cti", fmt.Sprintf(`{"kind":"token","cti":%q,"reason":"lost"}`, hex.EncodeToString(toks[0].Claims.ID)),
			func(r *Revocation) bool {
				return r.Hash == revHash(t, toks[0]) && r.Reason == "lost" && r.CreatedBy == "root"
			}},
		{"token by hash", fmt.Sprintf(`{"kind":"token","hash":%q}`, revHash(t, toks[2])),
			func(r *Revocation) bool { return r.TokenID == hex.EncodeToString(toks[2].Claims.ID) }},
		{"subject", `{"kind":"subject","subject":"bob","before":"2030-01-01T00:00:00Z"}`,
			func(r *Revocation) bool { return r.Before.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"device", `{"kind":"device","device":"ep:hvac-1"}`, func(r *Revocation) bool { return r.Kind == RevokeToken }},
		{"anchor", fmt.Sprintf(`{"kind":"anchor","anchor":%q}`, hex.EncodeToString(tp)),
			func(r *Revocation) bool { return r.Before.Equal(t0.Truncate(time.Second)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, list, eb := post(tc.body)
			if code != http.StatusCreated || len(list.Data) == 0 || !tc.check(list.Data[0]) {
				t.Fatalf("%d %+v %+v", code, list, eb)
			}
		})
	}
	if n := countEvents(env, "sda.token.revoked"); n != 6 { // the device's two tokens: one was revoked already
		t.Errorf("%d audit events, want 6", n)
	}
	t.Run("list", func(t *testing.T) {
		w := env.do("GET", "/admin/v1/revocations?limit=2", env.adminKey, "")
		list := decodeList[revocationList](t, w.Body.Bytes())
		if w.Code != 200 || list.Object != "list" || len(list.Data) != 2 || !list.HasMore || list.TotalCount != 5 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		w = env.do("GET", "/admin/v1/revocations?after="+list.Data[1].ID, env.adminKey, "")
		if rest := decodeList[revocationList](t, w.Body.Bytes()); len(rest.Data) != 3 || rest.HasMore {
			t.Fatalf("the rest: %s", w.Body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			body  string
			code  int
			field string
		}{
			{`{"kind":"token","cti":"zz"}`, 400, "cti"},
			{`{"kind":"device","device":"nope"}`, 400, "device"},
			{`{"kind":"subject","subject":"alice","before":"2999-01-01T00:00:00Z"}`, 400, "before"},
			{`{"kind":"token","cti":"00","extra":1}`, 400, ""},
			{`{"kind":"token","cti":"00"} x`, 400, ""},
		} {
			code, _, eb := post(tc.body)
			if code != tc.code || (tc.field != "" && !slices.ContainsFunc(eb.Fields, func(f FieldError) bool { return f.Name == tc.field })) {
				t.Errorf("%s: %d %+v", tc.body, code, eb)
			}
		}
		if w := env.do("POST", "/admin/v1/revocations", env.aliceKey, `{"kind":"token","cti":"00"}`); w.Code != http.StatusForbidden {
			t.Errorf("a non-administrator: %d", w.Code)
		}
		if w := env.do("DELETE", "/admin/v1/revocations", env.adminKey, ""); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, POST" {
			t.Errorf("DELETE: %d %q", w.Code, w.Header().Get("Allow"))
		}
	})
	t.Run("the bound", func(t *testing.T) {
		for i := range maxStatusTokenIDs {
			if code, _, eb := post(fmt.Sprintf(`{"kind":"token","cti":"%04x"}`, i)); code != 201 {
				t.Fatalf("%d %+v", code, eb)
			}
		}
		code, _, eb := post(`{"kind":"token","cti":"ffff"}`)
		if code != http.StatusConflict || eb.Type != "conflict" || !strings.Contains(eb.Message, "cut-off") {
			t.Fatalf("%d %+v", code, eb)
		}
	})
}

func TestHTTPIssuedTokens(t *testing.T) {
	env, toks := revokeEnv(t)
	type issuedList struct {
		Data       []*IssuedRecord `json:"data"`
		HasMore    bool            `json:"has_more"`
		TotalCount int             `json:"total_count"`
	}
	for _, tc := range []struct {
		query string
		want  []*IssuedToken
	}{
		{"", toks},
		{"?aud=ep:hvac-1", toks[:2]},
		{"?aud=" + dev1, toks[:2]},
		{"?aud=id:" + dev2, toks[2:]},
		{"?subject=bob", nil},
		{"?subject=alice&aud=ep:pump-1", nil},
	} {
		w := env.do("GET", "/admin/v1/issued-tokens"+tc.query, env.adminKey, "")
		list := decodeList[issuedList](t, w.Body.Bytes())
		var got, want []string
		for _, r := range list.Data {
			got = append(got, r.TokenID)
		}
		for _, tok := range tc.want {
			want = append(want, hex.EncodeToString(tok.Claims.ID))
		}
		slices.Sort(want)
		if w.Code != 200 || !slices.Equal(got, want) || list.TotalCount != len(want) {
			t.Errorf("%s: %d %v, want %v", tc.query, w.Code, got, want)
		}
	}
	w := env.do("GET", "/admin/v1/issued-tokens?limit=1", env.adminKey, "")
	if list := decodeList[issuedList](t, w.Body.Bytes()); len(list.Data) != 1 || !list.HasMore || list.TotalCount != 3 {
		t.Errorf("a page: %s", w.Body)
	}
	for _, q := range []string{"?aud=hvac-1", "?limit=0", "?subject=a%20b"} {
		if w := env.do("GET", "/admin/v1/issued-tokens"+q, env.adminKey, ""); w.Code != 400 {
			t.Errorf("%s: %d", q, w.Code)
		}
	}
}
