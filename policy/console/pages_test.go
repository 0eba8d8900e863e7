package console

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

func policyForm1(id string) url.Values {
	return url.Values{"id": {id}, "name": {"Rooftop"}, "status": {"active"}, "effect": {"allow"},
		"subjects.users": {"alice"}, "subjects.groups": {"technicians"}, "operations": {"read-data\nconfigure [{\"arg\":0,\"range\":[16,28]}]"},
		"devices.endpoint_names": {"hvac-1, hvac-2"}, "devices.attributes": {"site=rooftop,roof"}, "token_lifetime_seconds": {"600"},
		"valid_until": {"2027-01-01T00:00:00Z"}, "action": {"save"}}
}

func TestPolicyPages(t *testing.T) {
	f := newFixture(t, nil)
	b := f.signIn(t)

	t.Run("create", func(t *testing.T) {
		wantStatus(t, b.get("/console/new/policies"), http.StatusOK)
		a := b.post("/console/new/policies", policyForm1("roof"))
		wantStatus(t, a, http.StatusSeeOther)
		if a.header.Get("Location") != "/console/policies/roof?msg=saved" {
			t.Errorf("redirect to %q", a.header.Get("Location"))
		}
		a = b.get("/console/policies/roof?msg=saved")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "Saved.", "Rooftop", "endpoint_names: hvac-1, hvac-2", "attributes: site: rooftop, roof", "600")
	})
	t.Run("create refuses an existing id", func(t *testing.T) {
		a := b.post("/console/new/policies", policyForm1("roof"))
		wantStatus(t, a, http.StatusConflict)
		wantBody(t, a, `id="err-id"`, "exists")
	})
	t.Run("list and search", func(t *testing.T) {
		f.svc.Allow(t, "alice", "read-data") // allow-1
		a := b.get("/console/policies")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `<th scope="row"><a href="/console/policies/roof">roof</a></th>`, "allow-1", "(2 in all)")
		a = b.get("/console/policies?q=ROOFTOP") // by name, ignoring case
		wantBody(t, a, "/console/policies/roof")
		if strings.Contains(a.body, "allow-1") {
			t.Error("the search kept allow-1")
		}
		a = b.get("/console/policies?q=allow")
		if strings.Contains(a.body, "policies/roof\"") {
			t.Error("the search kept roof")
		}
	})
	t.Run("edit form round-trips the policy", func(t *testing.T) {
		a := b.get("/console/policies/roof/edit")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `configure [{&#34;arg&#34;:0,&#34;range&#34;:[16,28]}]`, "site=rooftop,roof", "2027-01-01T00:00:00Z")
		form := policyForm1("roof")
		form.Set("name", "Rooftop units")
		form.Set("etag", formETag(t, a))
		wantStatus(t, b.post("/console/policies/roof/edit", form), http.StatusSeeOther)
		wantBody(t, b.get("/console/policies/roof"), "Rooftop units")
	})
	t.Run("edit cannot change the id", func(t *testing.T) {
		wantStatus(t, b.post("/console/policies/roof/edit", policyForm1("other")), http.StatusBadRequest)
		if f.apiStatus(t, "policies/other") != http.StatusNotFound {
			t.Error("policy other was written")
		}
	})
	t.Run("API validation errors next to the field", func(t *testing.T) {
		form := policyForm1("bad")
		form.Set("subjects.users", "alice, bad user!")
		form.Set("token_lifetime_seconds", "1")
		a := b.post("/console/new/policies", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-subjects.users"`, `aria-invalid="true" aria-describedby="err-subjects.users"`, "subjects.users[2]",
			`id="err-token_lifetime_seconds"`, "The record was not saved")
		// The form keeps what was typed.
		wantBody(t, a, "alice, bad user!")
		if f.apiStatus(t, "policies/bad") != http.StatusNotFound {
			t.Error("the invalid policy was written")
		}
	})
	t.Run("a lifetime too long for a duration is the API's field error", func(t *testing.T) {
		// 2^55 + 3600 seconds is 3600 s modulo 2^64 ns: multiplied
		// unchecked, it would save a one-hour lifetime.
		form := policyForm1("huge")
		form.Set("token_lifetime_seconds", "36028797018967568")
		a := b.post("/console/new/policies", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-token_lifetime_seconds"`, "out of range", "The record was not saved")
		if f.apiStatus(t, "policies/huge") != http.StatusNotFound {
			t.Error("the policy was written")
		}
	})
	t.Run("form errors before the API", func(t *testing.T) {
		form := policyForm1("bad")
		form.Set("valid_from", "tomorrow")
		form.Set("operations", "configure [not json")
		a := b.post("/console/new/policies", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-valid_from"`, "RFC 3339", `id="err-operations"`)
	})
	t.Run("edit as JSON", func(t *testing.T) {
		a := b.get("/console/policies/roof/edit?as=json")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `<textarea id="json" name="json"`, "&#34;id&#34;: &#34;roof&#34;")
		js := `{"id":"roof","name":"From JSON","status":"active","effect":"allow","subjects":{"users":["alice"]},` +
			`"operations":[{"name":"read-data"}],"devices":{"all":true},"token_lifetime_seconds":60}`
		a = b.post("/console/policies/roof/edit", url.Values{"as": {"json"}, "json": {js}, "action": {"save"}, "etag": {formETag(t, a)}})
		wantStatus(t, a, http.StatusSeeOther)
		wantBody(t, b.get("/console/policies/roof"), "From JSON")
	})
	t.Run("JSON with an unknown field", func(t *testing.T) {
		js := `{"id":"roof","status":"active","effect":"allow","subjects":{"users":["alice"]},"operations":[{"name":"x"}],"devices":{"all":true},"colour":"red"}`
		a := b.post("/console/policies/roof/edit", url.Values{"as": {"json"}, "json": {js}, "action": {"save"}})
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-json"`, "colour")
	})
	t.Run("new as JSON", func(t *testing.T) {
		js := `{"id":"j1","status":"active","effect":"deny","subjects":{"groups":["juniors"]},"operations":[{"name":"update-firmware"}],"devices":{"all":true}}`
		wantStatus(t, b.post("/console/new/policies", url.Values{"as": {"json"}, "json": {js}, "action": {"save"}}), http.StatusSeeOther)
		if f.apiStatus(t, "policies/j1") != http.StatusOK {
			t.Error("policy j1 was not written")
		}
	})
	t.Run("delete with confirmation", func(t *testing.T) {
		a := b.get("/console/policies/j1/delete")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "Delete policy <strong>j1</strong>?", `action="/console/policies/j1/delete"`)
		if f.apiStatus(t, "policies/j1") != http.StatusOK {
			t.Fatal("the confirmation page deleted the policy")
		}
		a = b.post("/console/policies/j1/delete", nil)
		wantStatus(t, a, http.StatusSeeOther)
		if f.apiStatus(t, "policies/j1") != http.StatusNotFound {
			t.Error("policy j1 was not deleted")
		}
		wantBody(t, b.get("/console/policies?msg=deleted"), "Deleted.")
	})
	t.Run("unknown record", func(t *testing.T) {
		a := b.get("/console/policies/nope")
		wantStatus(t, a, http.StatusNotFound)
	})
	t.Run("notice is not reflected", func(t *testing.T) {
		a := b.get("/console/policies?msg=" + url.QueryEscape("Your key expired, type it at evil.example"))
		if strings.Contains(a.body, "evil.example") {
			t.Error("the page shows text from the link")
		}
	})
}

func TestEscaping(t *testing.T) {
	f := newFixture(t, nil)
	const evil = `<script>alert(1)</script>`
	f.svc.Apply(t, policy.PutPolicy(&policy.Policy{ID: "xss", Name: evil, Description: `"><img src=x onerror=alert(2)>`,
		Status: policy.Active, Effect: policy.Allow, Subjects: policy.Subjects{Users: []string{"alice"}},
		Operations: []policy.OperationRule{{Name: "read-data"}}, Devices: policy.DeviceSelector{All: true}, TokenLifetime: 3600e9}))
	b := f.signIn(t)
	for _, path := range []string{"/console/policies", "/console/policies?q=" + url.QueryEscape(evil), "/console/policies/xss",
		"/console/policies/xss/edit", "/console/policies/xss/edit?as=json", "/console/policies?q=" + url.QueryEscape(`"><script>alert(3)</script>`)} {
		t.Run(path, func(t *testing.T) {
			a := b.get(path)
			if strings.Contains(a.body, "<script>") || strings.Contains(a.body, "<img") {
				t.Errorf("markup from data on the page:\n%s", a.body)
			}
			if !strings.Contains(a.body, "&lt;script&gt;alert(") {
				t.Errorf("the name is not shown as text:\n%s", a.body)
			}
		})
	}
}

func TestDirectoryPages(t *testing.T) {
	f := newFixture(t, nil)
	b := f.signIn(t)
	t.Run("subject", func(t *testing.T) {
		a := b.post("/console/new/subjects", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"technicians, juniors"}, "action": {"save"}})
		wantStatus(t, a, http.StatusSeeOther)
		wantBody(t, b.get("/console/subjects/bob"), "technicians, juniors")
		wantBody(t, b.get("/console/subjects"), "/console/subjects/bob", "/console/subjects/alice")
		a = b.post("/console/new/subjects", url.Values{"id": {"carol"}, "kind": {"robot"}, "action": {"save"}})
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-kind"`)
		etag := formETag(t, b.get("/console/subjects/bob/edit"))
		wantStatus(t, b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"technicians"}, "action": {"save"}, "etag": {etag}}), http.StatusSeeOther)
		if a := b.get("/console/subjects/bob"); strings.Contains(a.body, "juniors") {
			t.Error("the edit did not remove the group")
		}
	})
	t.Run("device", func(t *testing.T) {
		const id = "0123456789abcdef0123456789abcdef"
		a := b.post("/console/new/devices", url.Values{"id": {id}, "endpoint_name": {"hvac-1"}, "attributes": {"site=rooftop\nmodel=x"}, "action": {"save"}})
		wantStatus(t, a, http.StatusSeeOther)
		wantBody(t, b.get("/console/devices/"+id), "hvac-1", "model=x; site=rooftop")
		wantBody(t, b.get("/console/devices?q=HVAC"), "/console/devices/"+id)
		a = b.post("/console/new/devices", url.Values{"id": {"not-hex"}, "action": {"save"}})
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-id"`)
		a = b.post("/console/new/devices", url.Values{"id": {"00000000000000000000000000000000"}, "attributes": {"novalue"}, "action": {"save"}})
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-attributes"`)
		wantStatus(t, b.post("/console/devices/"+id+"/delete", nil), http.StatusSeeOther)
		if f.apiStatus(t, "devices/"+id) != http.StatusNotFound {
			t.Error("the device was not deleted")
		}
	})
	t.Run("API key", func(t *testing.T) {
		a := b.post("/console/new/api-keys", url.Values{"id": {"bob-key"}, "subject": {"bob"}})
		wantStatus(t, a, http.StatusCreated)
		wantBody(t, a, "shown only once", `value="sda_`)
		a = b.get("/console/api-keys/bob-key")
		wantStatus(t, a, http.StatusOK)
		if strings.Contains(a.body, "sda_") || strings.Contains(a.body, "hash") {
			t.Error("the key page shows the secret or its hash")
		}
		a = b.post("/console/new/api-keys", url.Values{"id": {"x-key"}, "subject": {"nobody"}})
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-subject"`, "must name a subject")
		if a := b.get("/console/api-keys/bob-key/edit"); a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
			t.Errorf("API keys have an edit page: %d", a.status)
		}
		wantBody(t, b.get("/console/api-keys"), `<a href="/console/api-keys/bob-key">bob-key</a>`, "<td>bob</td>")
		wantBody(t, b.get("/console/api-keys?q=bob"), "/console/api-keys/bob-key")
		wantStatus(t, b.get("/console/api-keys/bob-key/delete"), http.StatusOK)
		wantStatus(t, b.post("/console/api-keys/bob-key/delete", nil), http.StatusSeeOther)
		if f.apiStatus(t, "api-keys/bob-key") != http.StatusNotFound {
			t.Error("the key was not deleted")
		}
	})
}

func TestTokenPages(t *testing.T) {
	f := newFixture(t, nil)
	f.svc.AddDevice(t, token.Identity{Endpoint: "hvac-1"})
	f.svc.Allow(t, "alice", "read-data", "ep:hvac-1")
	tok, err := f.svc.Service.Issue(context.Background(), "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: newPopKey(t).Public()})
	if err != nil {
		t.Fatal(err)
	}
	cti := hex.EncodeToString(tok.Claims.ID)
	b := f.signIn(t)
	a := b.get("/console/tokens")
	wantStatus(t, a, http.StatusOK)
	wantBody(t, a, cti, "ep:hvac-1", `action="/console/tokens/`+cti+`/revoke"`)
	wantBody(t, b.get("/console/tokens?subject=bob"), "No issued tokens match")
	a = b.post("/console/tokens/"+cti+"/revoke", nil)
	wantStatus(t, a, http.StatusSeeOther)
	a = b.get("/console/revocations?msg=revoked")
	wantStatus(t, a, http.StatusOK)
	wantBody(t, a, "Revoked.", "token "+cti, "admin")
}
