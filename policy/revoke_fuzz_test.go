package policy

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// FuzzRevokeBody: any body of POST /admin/v1/revocations is answered with
// 201 (and then every revocation answered is listed), or a JSON error of
// 400, 404 or 409; never a 5xx or a panic.
func FuzzRevokeBody(f *testing.F) {
	for _, s := range []string{
		`{"kind":"subject","subject":"alice","reason":"phone stolen"}`,
		`{"kind":"token","cti":"00ff"}`,
		`{"kind":"token","hash":"` + hexOf(make([]byte, 32)) + `"}`,
		`{"kind":"device","device":"ep:hvac-1"}`,
		`{"kind":"anchor","anchor":"0102","before":"2020-01-01T00:00:00Z"}`,
		`{"kind":"subject"}`, `{}`, `[]`, `{"kind":"token","cti":"zz"}`,
	} {
		f.Add(s)
	}
	env := newTestEnv(f, token.ProfileV2, pol("p1", ops("read")))
	f.Fuzz(func(t *testing.T, body string) {
		w := env.do("POST", revocationsPath, env.adminKey, body)
		switch w.Code {
		case http.StatusCreated:
			var got listJSON[*Revocation]
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("201 answer: %v", err)
			}
			list := env.do("GET", revocationsPath+"?limit=1000", env.adminKey, "")
			for _, r := range got.Data {
				var all listJSON[*Revocation]
				if err := json.Unmarshal(list.Body.Bytes(), &all); err != nil {
					t.Fatal(err)
				}
				found := false
				for _, x := range all.Data {
					found = found || x.ID == r.ID
				}
				if !found && r.Until.After(t0) {
					t.Fatalf("revocation %s answered but not listed", r.ID)
				}
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != w.Code {
				t.Fatalf("error answer %d: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("body %q: HTTP %d %s", body, w.Code, w.Body)
		}
	})
}
