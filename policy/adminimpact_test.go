package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// fieldNamesOf returns the names of an error body's fields.
func fieldNamesOf(eb errorBody) []string {
	var out []string
	for _, f := range eb.Fields {
		out = append(out, f.Name)
	}
	return out
}

func TestHTTPWhatIf(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("alice-read"))
	post := func(t *testing.T, key, body string) (*Impact, errorBody, int) {
		t.Helper()
		w := env.do("POST", "/admin/v1/what-if", key, body)
		if w.Code != http.StatusOK {
			return nil, decodeError(t, w), w.Code
		}
		var im Impact
		if err := json.Unmarshal(w.Body.Bytes(), &im); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		return &im, errorBody{}, w.Code
	}

	t.Run("a policy for the techs on the roof", func(t *testing.T) {
		body := `{"changes":[{"kind":"policy","id":"roof","policy":{"id":"roof","status":"active","effect":"allow",
			"subjects":{"groups":["techs","contractors"]},"operations":[{"name":"configure"}],
			"devices":{"attributes":{"site":["roof"]}},"token_lifetime_seconds":3600}}]}`
		im, eb, code := post(t, env.adminKey, body)
		if code != http.StatusOK {
			t.Fatalf("status %d: %+v", code, eb)
		}
		if im.Object != "impact" || !im.Time.Equal(t0) || im.Gained != 4 || im.Lost != 0 || len(im.Details) != 4 || im.DetailsTruncated {
			t.Errorf("impact %+v", im)
		}
		if len(im.Summary) != 2 || im.Summary[0].Subjects.Description != "group contractors" || im.Summary[1].Subjects.Description != "group techs" ||
			im.Summary[0].Devices.Description != "attributes site=roof" || !slices.Equal(im.Summary[0].Devices.Sample, []string{"hvac-1", "pump-1"}) {
			t.Errorf("summary %+v", im.Summary)
		}
		// Nothing was written.
		if w := env.do("GET", "/admin/v1/policies/roof", env.adminKey, ""); w.Code != http.StatusNotFound {
			t.Errorf("GET the previewed policy: %d", w.Code)
		}
	})
	t.Run("deleting a subject, in v1, with a time and a limit", func(t *testing.T) {
		im, eb, code := post(t, env.adminKey, `{"changes":[{"kind":"subject","id":"alice","delete":true}],"time":"2030-01-02T03:04:05Z","profile":"v1","limit":1}`)
		if code != http.StatusOK {
			t.Fatalf("status %d: %+v", code, eb)
		}
		if im.Lost != 3 || len(im.Details) != 1 || !im.DetailsTruncated || im.Details[0].Subject != "alice" || im.Details[0].Operation != "read" {
			t.Errorf("impact %+v", im)
		}
	})
	t.Run("errors name the field", func(t *testing.T) {
		for _, tc := range []struct{ body, field string }{
			{`{"changes":[{"kind":"policy","id":"p","policy":{"id":"p","status":"active","effect":"allow","subjects":{"users":["bad id"]},"operations":[{"name":"read"}],"devices":{"all":true},"token_lifetime_seconds":3600}}]}`, "changes[0].policy.subjects.users[0]"},
			{`{"changes":[{"kind":"subject","id":"x","subject":{"id":"y","kind":"user"}}]}`, "changes[0].id"},
			{`{"changes":[{"kind":"api_key","id":"k","delete":true}]}`, "changes[0].kind"},
			{`{"changes":[{"seq":3,"kind":"subject","id":"alice","delete":true}]}`, "changes[0].seq"},
			{`{}`, "changes"},
			{`{"changes":[],"profile":"v3"}`, "profile"},
			{`{"changes":[],"limit":0}`, "limit"},
			{fmt.Sprintf(`{"changes":[],"limit":%d}`, MaxImpactDetails+1), "limit"},
			{`{"changes":[` + strings.Repeat(`{"kind":"subject","id":"alice","delete":true},`, MaxImpactChanges) + `{"kind":"subject","id":"bob","delete":true}]}`, "changes"},
		} {
			_, eb, code := post(t, env.adminKey, tc.body)
			if code != http.StatusBadRequest || eb.Type != errTypeValidation || !slices.Contains(fieldNamesOf(eb), tc.field) {
				t.Errorf("%.60s: %d %s %v, want 400 validation_error naming %s", tc.body, code, eb.Type, fieldNamesOf(eb), tc.field)
			}
		}
	})
	t.Run("strict JSON", func(t *testing.T) {
		_, eb, code := post(t, env.adminKey, `{"changes":[],"extra":1}`)
		if code != http.StatusBadRequest || eb.Type != errTypeBadRequest {
			t.Errorf("unknown field: %d %s", code, eb.Type)
		}
	})
	t.Run("a uniqueness conflict", func(t *testing.T) {
		_, eb, code := post(t, env.adminKey, `{"changes":[{"kind":"device","id":"44444444444444444444444444444444","device":{"id":"44444444444444444444444444444444","endpoint_name":"hvac-1"}}]}`)
		if code != http.StatusConflict {
			t.Errorf("status %d %+v, want 409", code, eb)
		}
	})
	t.Run("administrators only", func(t *testing.T) {
		if _, eb, code := post(t, env.aliceKey, `{"changes":[]}`); code != http.StatusForbidden || eb.Type != errTypeForbidden {
			t.Errorf("non-admin: %d %s", code, eb.Type)
		}
		if _, _, code := post(t, "", `{"changes":[]}`); code != http.StatusUnauthorized {
			t.Errorf("no credential: %d", code)
		}
	})
}

// FuzzWhatIfBody feeds the what-if body decoder and the engine arbitrary
// bodies: they answer a value or a typed error, never a panic.
func FuzzWhatIfBody(f *testing.F) {
	for _, seed := range []string{
		`{"changes":[{"kind":"subject","id":"alice","delete":true}],"time":"2030-01-02T03:04:05Z","profile":"v1","limit":1}`,
		`{"changes":[{"kind":"policy","id":"p","policy":{"id":"p","status":"active","effect":"allow","subjects":{"groups":["techs"]},"operations":[{"name":"read"},{"name":"configure","constraints":[{"arg":0,"range":[1,2]}]}],"devices":{"attributes":{"site":["roof"]}},"token_lifetime_seconds":3600}}]}`,
		`{"changes":[{"kind":"device","id":"44444444444444444444444444444444","device":{"id":"44444444444444444444444444444444","endpoint_name":"hvac-1","attributes":{"site":"roof"}}}]}`,
		`{"changes":[{"kind":"subject","id":"zed","subject":{"id":"zed","kind":"user","groups":["techs"]}}],"limit":10000}`,
		`{"changes":null}`, `[]`, `{"changes":[{}]}`,
	} {
		f.Add([]byte(seed))
	}
	var e Engine
	if err := e.Apply(append(testDirectory(), PutPolicy(pol("alice-read")))...); err != nil {
		f.Fatal(err)
	}
	svc := &Service{}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, fe, err := decodeWhatIf(body)
		if err != nil {
			var je *JSONError
			var ve *ValidationError
			if !errors.Is(err, errBadJSON) && !errors.As(err, &je) && !errors.As(err, &ve) || toHTTPError(err).status != http.StatusBadRequest {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		at, opts := svc.impactParams(fe, in.Time, in.Profile, in.Limit)
		if fe.err() != nil {
			return
		}
		im, err := e.WhatIf(in.Changes, at, opts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrConflict) {
				t.Fatalf("WhatIf: untyped error %v", err)
			}
			return
		}
		if im.Gained < 0 || im.Lost < 0 || len(im.Details) > max(opts.Limit, DefaultImpactDetails) {
			t.Fatalf("impact %+v", im)
		}
	})
}
