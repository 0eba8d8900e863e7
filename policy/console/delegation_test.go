package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/securedeviceaccess/sda/policy"
)

var (
	textareaRE = regexp.MustCompile(`(?s)<textarea[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>`)
	inputRE    = regexp.MustCompile(`<input\b([^>]*)>`)
	selectRE   = regexp.MustCompile(`(?s)<select[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>`)
	selectedRE = regexp.MustCompile(`<option value="([^"]*)" selected>`)
	attrRE     = regexp.MustCompile(`\b(name|value|type)="([^"]*)"|\b(checked)\b`)
)

// formValues returns what a browser would post from the first form of
// a page as it was served: its text inputs, checked boxes, textareas and
// selected options.
func formValues(t *testing.T, a answer) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range textareaRE.FindAllStringSubmatch(a.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range selectRE.FindAllStringSubmatch(a.body, -1) {
		if s := selectedRE.FindStringSubmatch(m[2]); s != nil {
			v.Set(m[1], html.UnescapeString(s[1]))
		}
	}
	for _, m := range inputRE.FindAllStringSubmatch(a.body, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			if a[3] != "" {
				attrs["checked"] = "yes"
			} else {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
		}
		if attrs["name"] == "" || attrs["type"] == "checkbox" && attrs["checked"] == "" {
			continue
		}
		v.Set(attrs["name"], attrs["value"])
	}
	return v
}

// TestPolicyFormKeepsDelegation: the policy page shows a policy's
// delegation, and editing another field of a delegable policy through
// the structured form keeps it; the form's delegation fields set,
// change and remove it.
func TestPolicyFormKeepsDelegation(t *testing.T) {
	f := newFixture(t, nil)
	b := f.signIn(t)
	p := &policy.Policy{ID: "deleg", Name: "Delegable", Status: policy.Active, Effect: policy.Allow,
		Subjects:      policy.Subjects{Users: []string{"alice"}},
		Operations:    []policy.OperationRule{{Name: "read-data"}, {Name: "configure"}},
		Devices:       policy.DeviceSelector{All: true},
		TokenLifetime: time.Hour,
		Delegation:    &policy.DelegationRule{MaxDepth: 2, Operations: []string{"read-data"}},
	}
	if err := f.svc.Service.Apply(context.Background(), policy.PutPolicy(p)); err != nil {
		t.Fatal(err)
	}
	stored := func() *policy.DelegationRule {
		t.Helper()
		snap, err := f.svc.Service.Store.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range snap.Policies {
			if q.ID == "deleg" {
				return q.Delegation
			}
		}
		t.Fatal("policy deleg is gone")
		return nil
	}
	wantBody(t, b.get("/console/policies/deleg"), "delegation", "max_depth: 2", "operations: read-data")

	edit := func(t *testing.T, set map[string]string) {
		t.Helper()
		a := b.get("/console/policies/deleg/edit")
		wantStatus(t, a, http.StatusOK)
		form := formValues(t, a)
		for k, v := range set {
			form.Set(k, v)
		}
		form.Set("action", "save")
		wantStatus(t, b.post("/console/policies/deleg/edit", form), http.StatusSeeOther)
	}
	t.Run("another field edited", func(t *testing.T) {
		edit(t, map[string]string{"name": "Renamed"})
		if diff := cmp.Diff(p.Delegation, stored()); diff != "" {
			t.Errorf("delegation after the edit (-want +got):\n%s", diff)
		}
	})
	t.Run("changed", func(t *testing.T) {
		edit(t, map[string]string{"delegation.max_depth": "3", "delegation.operations": "read-data, configure"})
		want := &policy.DelegationRule{MaxDepth: 3, Operations: []string{"read-data", "configure"}}
		if diff := cmp.Diff(want, stored()); diff != "" {
			t.Errorf("delegation after the edit (-want +got):\n%s", diff)
		}
	})
	t.Run("every operation", func(t *testing.T) {
		edit(t, map[string]string{"delegation.operations": ""})
		if diff := cmp.Diff(&policy.DelegationRule{MaxDepth: 3}, stored()); diff != "" {
			t.Errorf("delegation after the edit (-want +got):\n%s", diff)
		}
	})
	t.Run("removed", func(t *testing.T) {
		edit(t, map[string]string{"delegation.max_depth": ""})
		if d := stored(); d != nil {
			t.Errorf("delegation after clearing the depth: %+v", d)
		}
	})
	t.Run("errors next to the field", func(t *testing.T) {
		a := b.get("/console/policies/deleg/edit")
		form := formValues(t, a)
		form.Set("delegation.max_depth", "9")
		form.Set("action", "save")
		a = b.post("/console/policies/deleg/edit", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-delegation.max_depth"`)
		form.Set("delegation.max_depth", "two")
		a = b.post("/console/policies/deleg/edit", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-delegation.max_depth"`)
		form.Set("delegation.max_depth", "1")
		form.Set("delegation.operations", "reboot")
		a = b.post("/console/policies/deleg/edit", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-delegation.operations"`)
	})
}

// TestExplainPageShowsDelegation: the explain page says what the token's
// holder could pass on, and which matched policy lets it.
func TestExplainPageShowsDelegation(t *testing.T) {
	f, b := analysisFixture(t)
	f.svc.Apply(t, policy.PutPolicy(&policy.Policy{ID: "roof-deleg", Status: policy.Active, Effect: policy.Allow,
		Subjects: policy.Subjects{Users: []string{"alice"}}, Operations: []policy.OperationRule{{Name: "read-data"}},
		Devices: policy.DeviceSelector{All: true}, TokenLifetime: 2 * time.Hour,
		Delegation: &policy.DelegationRule{MaxDepth: 1}}))
	a := b.get("/console/explain?" + url.Values{"subject": {"alice"}, "aud": {"ep:hvac-1"}, "operations": {"read-data"}, "profile": {"v2"}}.Encode())
	wantStatus(t, a, http.StatusOK)
	wantBody(t, a, "The token's holder could pass on read-data, 1 link deep.", "roof-deleg (allow", ", delegable depth 1)")
}
