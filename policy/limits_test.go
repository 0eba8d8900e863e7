package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// names returns n distinct ids: prefix0, prefix1, ...
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + fmt.Sprint(i)
	}
	return out
}

// deviceIDs returns n distinct device ids.
func deviceIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%032x", i)
	}
	return out
}

// repeatN returns n copies of s.
func repeatN(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestLimits checks each limit of limits.go, and the other bounds that
// records and requests document, at the limit (accepted) and one past it
// (refused with ErrInvalid, as a *ValidationError naming the field).
func TestLimits(t *testing.T) {
	var e Engine
	if err := e.Apply(testDirectory()...); err != nil {
		t.Fatal(err)
	}
	// policy returns a try function: a policy changed by mod for size n,
	// validated; a refusal must name field(n).
	policy := func(field func(n int) string, mod func(p *Policy, n int)) func(int) (string, error) {
		return func(n int) (string, error) {
			p := pol("p1")
			mod(p, n)
			return field(n), p.Validate()
		}
	}
	fixed := func(name string) func(int) string { return func(int) string { return name } }
	constraint := func(c func(n int) ArgConstraint) func(p *Policy, n int) {
		return func(p *Policy, n int) {
			p.Operations = []OperationRule{{Name: "set", Constraints: []ArgConstraint{c(n)}}}
		}
	}
	intValues := func(n int) []ArgValue {
		vs := make([]ArgValue, n)
		for i := range vs {
			v := int64(i)
			vs[i] = ArgValue{Int: &v}
		}
		return vs
	}
	request := func(field func(n int) string, mod func(r *Request, n int)) func(int) (string, error) {
		return func(n int) (string, error) {
			r := &Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"read"}, Time: t0}
			mod(r, n)
			_, err := e.Decide(r)
			return field(n), err
		}
	}
	attrs := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	tests := []struct {
		name    string
		ok, bad []int
		try     func(n int) (field string, err error)
	}{
		// Policies.
		{"policy id length", []int{1, maxIDLen}, []int{0, maxIDLen + 1},
			policy(fixed("id"), func(p *Policy, n int) { p.ID = strings.Repeat("p", n) })},
		{"policy name length", []int{0, maxNameLen}, []int{maxNameLen + 1},
			policy(fixed("name"), func(p *Policy, n int) { p.Name = strings.Repeat("n", n) })},
		{"policy description length", []int{0, maxDescriptionLen}, []int{maxDescriptionLen + 1},
			policy(fixed("description"), func(p *Policy, n int) { p.Description = strings.Repeat("d", n) })},
		{"users per policy", []int{1, maxListLen}, []int{maxListLen + 1},
			policy(fixed("subjects.users"), func(p *Policy, n int) { p.Subjects.Users = names("u", n) })},
		{"groups per policy", []int{1, maxListLen}, []int{maxListLen + 1},
			policy(fixed("subjects.groups"), func(p *Policy, n int) { p.Subjects.Groups = names("g", n) })},
		{"applications per policy", []int{1, maxListLen}, []int{maxListLen + 1},
			policy(fixed("subjects.applications"), func(p *Policy, n int) { p.Subjects.Applications = names("a", n) })},
		{"device ids per policy", []int{1, maxListLen}, []int{maxListLen + 1},
			policy(fixed("devices.ids"), func(p *Policy, n int) { p.Devices = DeviceSelector{IDs: deviceIDs(n)} })},
		{"endpoint names per policy", []int{1, maxListLen}, []int{maxListLen + 1},
			policy(fixed("devices.endpoint_names"), func(p *Policy, n int) { p.Devices = DeviceSelector{EndpointNames: names("ep-", n)} })},
		{"operation rules per policy", []int{1, maxRules}, []int{0, maxRules + 1},
			policy(fixed("operations"), func(p *Policy, n int) { ops(names("op", n)...)(p) })},
		{"delegation depth", []int{1, maxDelegationDepth}, []int{0, maxDelegationDepth + 1},
			policy(fixed("delegation.max_depth"), func(p *Policy, n int) { p.Delegation = &DelegationRule{MaxDepth: n} })},
		{"operations a delegation names", []int{1, maxRules}, []int{0, maxRules + 1},
			policy(fixed("delegation.operations"), func(p *Policy, n int) {
				ops("*")(p)
				p.Delegation = &DelegationRule{MaxDepth: 1, Operations: names("op", n)}
			})},
		{"operation name length in a rule", []int{1, token.MaxNameLength}, []int{token.MaxNameLength + 1},
			policy(fixed("operations[0].name"), func(p *Policy, n int) { ops("o" + strings.Repeat("p", n-1))(p) })},
		{"constraints per rule", []int{1, token.MaxConstraints}, []int{token.MaxConstraints + 1},
			policy(fixed("operations[0].constraints"), func(p *Policy, n int) {
				cons := make([]ArgConstraint, n)
				for i := range cons {
					cons[i] = rangeArg(i, 0, 1)
				}
				p.Operations = []OperationRule{{Name: "set", Constraints: cons}}
			})},
		{"argument index", []int{0, token.MaxArgs - 1}, []int{-1, token.MaxArgs},
			policy(fixed("operations[0].constraints[0].arg"), constraint(func(n int) ArgConstraint { return rangeArg(n, 0, 1) }))},
		{"one_of values", []int{1, token.MaxSetValues}, []int{0, token.MaxSetValues + 1},
			policy(fixed("operations[0].constraints[0].one_of"), constraint(func(n int) ArgConstraint {
				return ArgConstraint{OneOf: intValues(n)}
			}))},
		{"text argument value length", []int{0, maxArgValueLen}, []int{maxArgValueLen + 1},
			policy(fixed("operations[0].constraints[0].equals.text"), constraint(func(n int) ArgConstraint {
				s := strings.Repeat("t", n)
				return ArgConstraint{Equals: &ArgValue{Text: &s}}
			}))},
		{"byte-string argument value length", []int{0, maxArgValueLen}, []int{maxArgValueLen + 1},
			policy(fixed("operations[0].constraints[0].equals.bytes"), constraint(func(n int) ArgConstraint {
				return ArgConstraint{Equals: &ArgValue{Bytes: make([]byte, n)}}
			}))},
		{"attribute keys per selector", []int{1, maxAttributes}, []int{maxAttributes + 1},
			policy(fixed("devices.attributes"), func(p *Policy, n int) {
				p.Devices = DeviceSelector{Attributes: map[string][]string{}}
				for k := range attrs(n) {
					p.Devices.Attributes[k] = []string{"v"}
				}
			})},
		{"values per selector attribute", []int{1, maxAttrValues}, []int{0, maxAttrValues + 1},
			policy(fixed("devices.attributes.site"), func(p *Policy, n int) {
				p.Devices = DeviceSelector{Attributes: map[string][]string{"site": names("v", n)}}
			})},
		{"selector attribute key length", []int{1, maxAttrKeyLen}, []int{maxAttrKeyLen + 1},
			policy(func(n int) string { return "devices.attributes.k" + strings.Repeat("a", n-1) }, func(p *Policy, n int) {
				p.Devices = DeviceSelector{Attributes: map[string][]string{"k" + strings.Repeat("a", n-1): {"v"}}}
			})},
		{"selector attribute value length", []int{0, maxAttrValueLen}, []int{maxAttrValueLen + 1},
			policy(fixed("devices.attributes.site[0]"), func(p *Policy, n int) {
				p.Devices = DeviceSelector{Attributes: map[string][]string{"site": {strings.Repeat("v", n)}}}
			})},

		// Directory entries and API keys.
		{"groups per subject", []int{0, maxListLen}, []int{maxListLen + 1}, func(n int) (string, error) {
			s := &Subject{ID: "s", Kind: User, Groups: names("g", n)}
			return "groups", s.Validate()
		}},
		{"subject id length", []int{1, maxIDLen}, []int{0, maxIDLen + 1}, func(n int) (string, error) {
			s := &Subject{ID: strings.Repeat("s", n), Kind: User}
			return "id", s.Validate()
		}},
		{"device id length", []int{32}, []int{0, 31, 33}, func(n int) (string, error) {
			d := &Device{ID: strings.Repeat("a", n)}
			return "id", d.Validate()
		}},
		{"device endpoint name length", []int{1, token.MaxAudienceValueLength}, []int{token.MaxAudienceValueLength + 1}, func(n int) (string, error) {
			d := &Device{ID: dev1, EndpointName: strings.Repeat("e", n)}
			return "endpoint_name", d.Validate()
		}},
		{"attributes per device", []int{0, maxAttributes}, []int{maxAttributes + 1}, func(n int) (string, error) {
			d := &Device{ID: dev1, Attributes: attrs(n)}
			return "attributes", d.Validate()
		}},
		{"device attribute key length", []int{1, maxAttrKeyLen}, []int{maxAttrKeyLen + 1}, func(n int) (string, error) {
			k := "k" + strings.Repeat("a", n-1)
			d := &Device{ID: dev1, Attributes: map[string]string{k: "v"}}
			return "attributes." + k, d.Validate()
		}},
		{"device attribute value length", []int{0, maxAttrValueLen}, []int{maxAttrValueLen + 1}, func(n int) (string, error) {
			d := &Device{ID: dev1, Attributes: map[string]string{"site": strings.Repeat("v", n)}}
			return "attributes.site", d.Validate()
		}},
		{"API key hash length", []int{32}, []int{0, 31, 33}, func(n int) (string, error) {
			k := &APIKey{ID: "k", Subject: "alice", Hash: make([]byte, n)}
			return "hash", k.Validate()
		}},

		// Token requests.
		{"audiences per request", []int{1, token.MaxAudiences}, []int{0, token.MaxAudiences + 1},
			request(fixed("aud"), func(r *Request, n int) { r.Audience = repeatN(n, "ep:hvac-1") })},
		{"endpoint name length in an audience", []int{1, token.MaxAudienceValueLength}, []int{0, token.MaxAudienceValueLength + 1},
			request(fixed("aud[0]"), func(r *Request, n int) { r.Audience = []string{"ep:" + strings.Repeat("e", n)} })},
		{"device id length in an audience", []int{32}, []int{31, 33},
			request(fixed("aud[0]"), func(r *Request, n int) { r.Audience = []string{"id:" + strings.Repeat("a", n)} })},
		{"operations per request", []int{1, token.MaxScopeItems}, []int{0, token.MaxScopeItems + 1},
			request(fixed("scope"), func(r *Request, n int) { r.Operations = repeatN(n, "read") })},
		{"operation name length in a request", []int{1, token.MaxNameLength}, []int{0, token.MaxNameLength + 1},
			request(fixed("scope[0]"), func(r *Request, n int) { r.Operations = []string{strings.Repeat("r", n)} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range tt.ok {
				if _, err := tt.try(n); err != nil {
					t.Errorf("size %d: %v, want accepted", n, err)
				}
			}
			for _, n := range tt.bad {
				field, err := tt.try(n)
				var ve *ValidationError
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
					t.Errorf("size %d: %v, want a *ValidationError", n, err)
					continue
				}
				if !slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Name == field }) {
					t.Errorf("size %d: fields %+v, want %q", n, ve.Fields, field)
				}
			}
		})
	}

	t.Run("token lifetime", func(t *testing.T) {
		for _, d := range []time.Duration{MinTokenLifetime, MaxTokenLifetime} {
			if err := pol("p1", lifetime(d)).Validate(); err != nil {
				t.Errorf("lifetime %v: %v", d, err)
			}
		}
		for _, d := range []time.Duration{MinTokenLifetime - time.Second, MaxTokenLifetime + time.Second} {
			var ve *ValidationError
			if err := pol("p1", lifetime(d)).Validate(); !errors.As(err, &ve) || ve.Fields[0].Name != "token_lifetime_seconds" {
				t.Errorf("lifetime %v: %v, want a *ValidationError on token_lifetime_seconds", d, err)
			}
		}
	})

	t.Run("changes per batch", func(t *testing.T) {
		batch := func(n int) []Change {
			out := make([]Change, n)
			for i := range out {
				out[i] = PutSubject(&Subject{ID: fmt.Sprintf("s%d", i), Kind: User})
			}
			return out
		}
		if _, err := PrepareChanges(batch(maxChangesPerApply)); err != nil {
			t.Errorf("%d changes: %v", maxChangesPerApply, err)
		}
		var e Engine
		if err := e.Apply(batch(maxChangesPerApply + 1)...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%d changes: %v, want ErrInvalid", maxChangesPerApply+1, err)
		}
		if len(e.Snapshot().Subjects) != 0 {
			t.Error("a refused batch was applied")
		}
	})

	// The scope limit is the token package's.
	if token.MaxScopeItems != 20 {
		t.Errorf("token.MaxScopeItems = %d; the package documentation says 20", token.MaxScopeItems)
	}
}

// TestValidationErrorsBounded: one validation reports at most
// maxFieldErrors fields, however many are wrong.
func TestValidationErrorsBounded(t *testing.T) {
	for _, n := range []int{maxFieldErrors - 1, maxFieldErrors, maxFieldErrors + 1, maxListLen} {
		p := pol("p1", users(names("not an id ", n)...))
		var ve *ValidationError
		if err := p.Validate(); !errors.As(err, &ve) {
			t.Fatalf("%d bad users: %v", n, err)
		}
		want := min(n, maxFieldErrors)
		if len(ve.Fields) != want {
			t.Errorf("%d bad users: %d fields, want %d", n, len(ve.Fields), want)
		}
	}
}

// TestHTTPLimits checks the bounds of the HTTP API at the limit and one
// past it: request bodies, the cnf PEM, bearer credentials and list pages.
func TestHTTPLimits(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p1"))
	// pad pads a JSON body with trailing white space to n bytes.
	pad := func(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }
	check := func(t *testing.T, w *httptest.ResponseRecorder, status int, field string) {
		t.Helper()
		if w.Code != status {
			t.Fatalf("status %d, want %d: %.200s", w.Code, status, w.Body)
		}
		if field != "" {
			if e := decodeError(t, w); !slices.ContainsFunc(e.Fields, func(f FieldError) bool { return f.Name == field }) {
				t.Errorf("fields %+v, want %q", e.Fields, field)
			}
		}
	}
	t.Run("token request body", func(t *testing.T) {
		body := env.tokenBody([]string{"ep:hvac-1"}, "read")
		check(t, env.do("POST", TokenPath, env.aliceKey, pad(body, maxTokenBodyBytes)), http.StatusOK, "")
		w := env.do("POST", TokenPath, env.aliceKey, pad(body, maxTokenBodyBytes+1))
		check(t, w, http.StatusRequestEntityTooLarge, "")
		if decodeError(t, w).Type != errTypeTooLarge {
			t.Errorf("type %q", decodeError(t, w).Type)
		}
		// Decoding refuses a larger body by itself too.
		if _, err := decodeTokenRequest([]byte(pad(body, maxTokenBodyBytes+1))); err != errTooLarge {
			t.Errorf("decodeTokenRequest of %d bytes: %v", maxTokenBodyBytes+1, err)
		}
	})
	t.Run("administration body", func(t *testing.T) {
		body := `{"id":"erin","kind":"user"}`
		check(t, env.do("PUT", AdminPathPrefix+"subjects/erin", env.adminKey, pad(body, maxAdminBodyBytes)), http.StatusOK, "")
		check(t, env.do("PUT", AdminPathPrefix+"subjects/erin", env.adminKey, pad(body, maxAdminBodyBytes+1)), http.StatusRequestEntityTooLarge, "")
	})
	t.Run("cnf PEM", func(t *testing.T) {
		cnf := func(n int) string {
			b, _ := json.Marshal(map[string]any{"grant_type": "client_credentials", "aud": []string{"ep:hvac-1"}, "scope": "read",
				"cnf": strings.Repeat(" ", n-len(env.popPEM)) + env.popPEM})
			return string(b)
		}
		check(t, env.do("POST", TokenPath, env.aliceKey, cnf(maxCnfPEMBytes)), http.StatusOK, "")
		check(t, env.do("POST", TokenPath, env.aliceKey, cnf(maxCnfPEMBytes+1)), http.StatusBadRequest, "cnf")
	})
	t.Run("bearer credential", func(t *testing.T) {
		// Keys whose secrets are 512 and 513 bytes long: only the first
		// is read from the Authorization header.
		secret := func(n int) string { return strings.Repeat("s", n) }
		for i, n := range []int{maxBearerLen, maxBearerLen + 1} {
			k := &APIKey{ID: fmt.Sprintf("long%d", i), Subject: "alice", Hash: HashAPIKey(secret(n))}
			if err := env.svc.Apply(context.Background(), PutAPIKey(k)); err != nil {
				t.Fatal(err)
			}
		}
		check(t, env.do("GET", TrustAnchorsPath, secret(maxBearerLen), ""), http.StatusOK, "")
		check(t, env.do("GET", TrustAnchorsPath, secret(maxBearerLen+1), ""), http.StatusUnauthorized, "")
	})
	t.Run("audiences", func(t *testing.T) {
		check(t, env.do("POST", TokenPath, env.aliceKey, env.tokenBody(repeatN(token.MaxAudiences, "ep:hvac-1"), "read")), http.StatusOK, "")
		check(t, env.do("POST", TokenPath, env.aliceKey, env.tokenBody(repeatN(token.MaxAudiences+1, "ep:hvac-1"), "read")), http.StatusBadRequest, "aud")
	})
	t.Run("v1 scope length", func(t *testing.T) {
		// token.MinV1ScopeLength bytes are issued in v1, one fewer refused.
		env := newTestEnv(t, token.ProfileV1, pol("p1", ops("ab", "c")))
		check(t, env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "ab")), http.StatusOK, "")
		check(t, env.do("POST", TokenPath, env.aliceKey, env.tokenBody([]string{"ep:hvac-1"}, "c")), http.StatusBadRequest, "scope")
	})
	t.Run("list page", func(t *testing.T) {
		for _, q := range []string{"limit=1", fmt.Sprintf("limit=%d", maxListLimit), "after=" + strings.Repeat("a", maxIDLen)} {
			check(t, env.do("GET", AdminPathPrefix+"subjects?"+q, env.adminKey, ""), http.StatusOK, "")
		}
		check(t, env.do("GET", AdminPathPrefix+"subjects?limit=0", env.adminKey, ""), http.StatusBadRequest, "limit")
		check(t, env.do("GET", AdminPathPrefix+fmt.Sprintf("subjects?limit=%d", maxListLimit+1), env.adminKey, ""), http.StatusBadRequest, "limit")
		check(t, env.do("GET", AdminPathPrefix+"subjects?after="+strings.Repeat("a", maxIDLen+1), env.adminKey, ""), http.StatusBadRequest, "after")
	})
}
