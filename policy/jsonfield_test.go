package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// TestBodyErrorsNameTheField checks that every decoder of a request body
// (the token request, an administrative put, an API key creation, a
// revocation) answers an unknown field and a value of the wrong type with
// 400 bad_request whose fields name the JSON path of the failing value.
func TestBodyErrorsNameTheField(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	tokenBody := func(extra string) string {
		b, _ := json.Marshal(env.popPEM)
		return `{"grant_type":"client_credentials","aud":["ep:hvac-1"],"scope":"read","cnf":` + string(b) + extra + `}`
	}
	const policy = `{"id":"p2","status":"active","effect":"allow","subjects":{"users":["alice"]%s},"operations":[{"name":"read"%s}],"devices":{"all":true},"token_lifetime_seconds":3600%s}`
	sprintf := func(a, b, c string) string {
		return sprintfPolicy(policy, a, b, c)
	}
	tests := []struct {
		name, method, path, cred, body string
		field, message                 string
	}{
		{"token unknown field", "POST", TokenPath, env.aliceKey, tokenBody(`,"scopes":"x"`), "scopes", "unknown field"},
		{"token wrong type", "POST", TokenPath, env.aliceKey, `{"grant_type":"client_credentials","aud":"ep:hvac-1","scope":"read","cnf":"x"}`, "aud", "must be an array"},
		{"token wrong element type", "POST", TokenPath, env.aliceKey, `{"grant_type":"client_credentials","aud":["ep:hvac-1",7],"scope":"read","cnf":"x"}`, "aud[1]", "must be a string"},
		{"policy unknown top-level field", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf("", "", `,"lifetime":1`), "lifetime", "unknown field"},
		{"policy unknown nested field", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf(`,"userz":["bob"]`, "", ""), "subjects.userz", "unknown field"},
		{"policy unknown field in a list", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf("", `,"constraint":[]`, ""), "operations[0].constraint", "unknown field"},
		{"policy wrong type", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf(`,"groups":"technicians"`, "", ""), "subjects.groups", "must be an array"},
		{"policy lifetime wrong type", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf("", "", `,"token_lifetime_seconds":"1h"`), "token_lifetime_seconds", "must be an integer"},
		{"policy time wrong type", "PUT", AdminPathPrefix + "policies/p2", env.adminKey, sprintf("", "", `,"valid_from":1`), "valid_from", "must be an RFC 3339 time"},
		{"subject unknown field", "PUT", AdminPathPrefix + "subjects/erin", env.adminKey, `{"id":"erin","kind":"user","group":["a"]}`, "group", "unknown field"},
		{"device wrong type in a map", "PUT", AdminPathPrefix + "devices/" + dev1, env.adminKey, `{"id":"` + dev1 + `","attributes":{"site":5}}`, "attributes.site", "must be a string"},
		{"api key unknown field", "POST", AdminPathPrefix + "api-keys", env.adminKey, `{"id":"k9","subject":"alice","admn":true}`, "admn", "unknown field"},
		{"api key wrong type", "POST", AdminPathPrefix + "api-keys", env.adminKey, `{"id":"k9","subject":"alice","admin":"yes"}`, "admin", "must be a boolean"},
		{"what-if unknown field", "POST", AdminPathPrefix + "what-if", env.adminKey, `{"changes":[],"limits":5}`, "limits", "unknown field"},
		{"what-if unknown field in a change's record", "POST", AdminPathPrefix + "what-if", env.adminKey, `{"changes":[{"kind":"policy","id":"p2","policy":` + sprintf(`,"userz":["bob"]`, "", "") + `}]}`, "changes[0].policy.subjects.userz", "unknown field"},
		{"what-if wrong type", "POST", AdminPathPrefix + "what-if", env.adminKey, `{"changes":[{"kind":"subject","id":"x","delete":"yes"}]}`, "changes[0].delete", "must be a boolean"},
		{"explain unknown field", "POST", AdminPathPrefix + "explain", env.adminKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"operation":"x"}`, "operation", "unknown field"},
		{"explain wrong type", "POST", AdminPathPrefix + "explain", env.adminKey, `{"subject":"alice","aud":["ep:hvac-1"],"operations":"read"}`, "operations", "must be an array"},
		{"policy tests unknown field", "POST", AdminPathPrefix + "policy-tests", env.adminKey, `{"tests":[{"name":"a","subject":"alice","aud":["ep:hvac-1"],"operations":["read"],"expect":"allow","expected":"deny"}]}`, "tests[0].expected", "unknown field"},
		{"policy tests unknown field in a selector", "POST", AdminPathPrefix + "policy-tests", env.adminKey, `{"tests":[{"name":"a","subject":"alice","devices":{"al":true},"operations":["read"],"expect":"allow"}]}`, "tests[0].devices.al", "unknown field"},
		{"revocation unknown field", "POST", AdminPathPrefix + "revocations", env.adminKey, `{"kind":"subject","subject":"alice","why":"x"}`, "why", "unknown field"},
		{"revocation wrong type", "POST", AdminPathPrefix + "revocations", env.adminKey, `{"kind":"subject","subject":["alice"]}`, "subject", "must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := env.do(tc.method, tc.path, tc.cred, tc.body)
			e := decodeError(t, w)
			if w.Code != http.StatusBadRequest || e.Type != errTypeBadRequest {
				t.Fatalf("%d %s, want 400 %s", w.Code, w.Body, errTypeBadRequest)
			}
			want := FieldError{Name: tc.field, Message: tc.message}
			if !slices.Contains(e.Fields, want) {
				t.Fatalf("fields %+v lack %+v", e.Fields, want)
			}
		})
	}
}

func sprintfPolicy(format, a, b, c string) string {
	out := []byte{}
	args := []string{a, b, c}
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) && format[i+1] == 's' {
			out = append(out, args[0]...)
			args = args[1:]
			i++
			continue
		}
		out = append(out, format[i])
	}
	return string(out)
}

// TestStrictUnmarshalErrors checks the typed errors of strictUnmarshal.
func TestStrictUnmarshalErrors(t *testing.T) {
	type inner struct {
		N int64 `json:"n"`
	}
	type doc struct {
		A  []string          `json:"a"`
		M  map[string]inner  `json:"m"`
		P  *inner            `json:"p"`
		L  []inner           `json:"l"`
		B  []byte            `json:"b"`
		Ms map[string]string `json:"ms"`
	}
	tests := []struct {
		name, in string
		problem  JSONProblem
		path     string
		expected string
	}{
		{"unknown top", `{"x":1}`, JSONUnknownField, "x", ""},
		{"unknown in pointer", `{"p":{"n":1,"y":2}}`, JSONUnknownField, "p.y", ""},
		{"unknown in list", `{"l":[{"n":1},{"z":2}]}`, JSONUnknownField, "l[1].z", ""},
		{"unknown in map value", `{"m":{"k":{"q":1}}}`, JSONUnknownField, "m.k.q", ""},
		{"string for integer", `{"p":{"n":"1"}}`, JSONWrongType, "p.n", "integer"},
		{"fraction for integer", `{"p":{"n":1.5}}`, JSONWrongType, "p.n", "integer"},
		{"object for array", `{"a":{}}`, JSONWrongType, "a", "array"},
		{"number in string list", `{"a":["x",2]}`, JSONWrongType, "a[1]", "string"},
		{"bad base64", `{"b":"!!"}`, JSONWrongType, "b", "base64"},
		{"document not an object", `[1]`, JSONWrongType, "", "object"},
		{"syntax", `{"a":[}`, JSONSyntax, "", ""},
		{"trailing data", `{} {}`, JSONTrailingData, "", ""},
		{"empty", ``, JSONSyntax, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v doc
			err := strictUnmarshal([]byte(tc.in), &v)
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %v (%T), want a *JSONError", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if je.Problem != tc.problem || je.Path != tc.path || je.Expected != tc.expected {
				t.Fatalf("got problem %v path %q expected %q, want %v %q %q", je.Problem, je.Path, je.Expected, tc.problem, tc.path, tc.expected)
			}
		})
	}
	t.Run("nested policy in a change", func(t *testing.T) {
		var c Change
		err := strictUnmarshal([]byte(`{"kind":"policy","id":"p","policy":{"id":"p","subjects":{"userz":[]}}}`), &c)
		var je *JSONError
		if !errors.As(err, &je) || je.Path != "policy.subjects.userz" || je.Problem != JSONUnknownField {
			t.Fatalf("error %v, want unknown field policy.subjects.userz", err)
		}
	})
	t.Run("test suite keeps the type", func(t *testing.T) {
		_, err := ParseTestSuite([]byte(`{"tests":[{"name":"a","subject":"alice","aud":["ep:x"],"operations":["read"],"expect":"allow","exepct":"deny"}]}`))
		var je *JSONError
		if !errors.As(err, &je) || je.Path != "tests[0].exepct" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseTestSuite error %v, want a *JSONError naming tests[0].exepct matching ErrInvalid", err)
		}
	})
	t.Run("decode change keeps the type", func(t *testing.T) {
		_, err := DecodeChange(KindSubject, []byte(`{"id":"x","kind":"user","extra":1}`))
		var je *JSONError
		if !errors.As(err, &je) || je.Path != "extra" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("DecodeChange error %v, want a *JSONError naming extra matching ErrInvalid", err)
		}
	})
}

// FuzzStrictUnmarshal checks that strictUnmarshal never panics, refuses
// exactly what encoding/json's strict decoding refuses, and names the
// failing value with a *JSONError whenever the refusal is about the
// document's shape (not a record's own validation).
func FuzzStrictUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"grant_type":"client_credentials","aud":["ep:x",1],"scope":"a","cnf":"x"}`,
		`{"id":"p","status":"active","effect":"allow","subjects":{"users":["a"],"userz":1},"operations":[{"name":"r","constraints":[{"arg":0,"range":[1,2]}]}],"devices":{"attributes":{"k":["v"]}},"token_lifetime_seconds":60}`,
		`{"kind":"policy","id":"p","policy":{"id":"p","valid_from":"2026-01-01T00:00:00Z","token_lifetime_seconds":"x"}}`,
		`{"kind":"subject","subject":"a","cti":"x","before":"x"}`,
		`{"id":"k","subject":"s","admin":1}`,
		`{"ID":"p","Status":"active"}`,
		`{"operations":[{"name":"a","constraints":[{"arg":1.5,"one_of":[{"bytes":"!"}]}]}]}`,
		`{"id":"p","status":"active","effect":"allow","subjects":{"users":["a"]},"operations":[{"name":"r"}],"devices":{"all":true},"token_lifetime_seconds":60,"delegation":{"max_depth":1,"operations":["r",2],"x":1}}`,
		`[] `, `{} {}`, `{"a":`,
	} {
		for i := range 5 {
			f.Add(byte(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		targets := []func() any{
			func() any { return new(wire.TokenRequest) },
			func() any { return new(Policy) },
			func() any { return new(Change) },
			func() any { return new(revokeJSON) },
			func() any { return new(apiKeyCreateJSON) },
		}
		newV := targets[int(which)%len(targets)]
		err := strictUnmarshal(body, newV())
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		stdErr := dec.Decode(newV())
		if stdErr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				stdErr = errors.New("trailing data")
			}
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("strictUnmarshal: %v; encoding/json: %v", err, stdErr)
		}
		if err == nil {
			return
		}
		var je *JSONError
		var ve *ValidationError
		if !errors.As(err, &je) && !errors.As(err, &ve) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not match ErrInvalid", err)
		}
		if je != nil && (je.Problem < JSONSyntax || je.Problem > JSONTrailingData || je.Problem == JSONWrongType && je.Expected == "") {
			t.Fatalf("JSONError %+v says nothing", je)
		}
	})
}

// TestDocumentErrorsNameTheField checks that a store file and an export
// document refused for their shape give a *JSONError naming the field.
func TestDocumentErrorsNameTheField(t *testing.T) {
	const bad = `{"format":"sda-policy-export/1","seq":1,"policies":[{"id":"p","status":"active","effect":"allow","subjects":{"userz":["a"]},"operations":[],"devices":{}}],"subjects":[],"devices":[],"api_keys":[]}`
	t.Run("import", func(t *testing.T) {
		_, err := Import(context.Background(), NewMemoryStore(), strings.NewReader(bad))
		var je *JSONError
		if !errors.As(err, &je) || je.Path != "policies[0].subjects.userz" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Import: %v, want a *JSONError naming policies[0].subjects.userz", err)
		}
	})
	t.Run("store file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.json")
		file := strings.Replace(bad, "sda-policy-export/1", "sda-policy-store/1", 1)
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFileStore(path)
		var je *JSONError
		if !errors.As(err, &je) || je.Path != "policies[0].subjects.userz" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("OpenFileStore: %v, want a *JSONError naming policies[0].subjects.userz", err)
		}
	})
}
