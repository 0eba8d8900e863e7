package console

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/securedeviceaccess/sda/policy"
)

// FuzzPolicyForm reads arbitrary posted policy forms: reading never
// panics, and a policy the form yields that validates reads back the same
// after filling the form from it (what the edit page does).
func FuzzPolicyForm(f *testing.F) {
	f.Add("p1", "n", "alice, bob", "tech", "read-data\nconfigure [{\"arg\":0,\"range\":[16,28]}]", "hvac-1", "site=a,b\nmodel=x", "3600", "2026-01-01T00:00:00Z", "", "2", "read-data")
	f.Add("p1", "", "", "", "x [", "", "=", "-1", "yesterday", `{"id":"p1"}`, "x", "a,")
	f.Add("p1", "", "u", "", "* []", "", "k=", "60", "", "", "", "read")
	f.Add("p1", "", "u", "", "*", "", "", "60", "", "", "1", "")
	f.Fuzz(func(t *testing.T, id, name, users, groups, ops, eps, attrs, lifetime, until, js, depth, delegOps string) {
		v := url.Values{"id": {id}, "name": {name}, "status": {"active"}, "effect": {"allow"}, "subjects.users": {users},
			"subjects.groups": {groups}, "operations": {ops}, "devices.endpoint_names": {eps}, "devices.attributes": {attrs},
			"token_lifetime_seconds": {lifetime}, "valid_until": {until}, "delegation.max_depth": {depth}, "delegation.operations": {delegOps}}
		if js != "" {
			v.Set("as", "json")
			v.Set("json", js)
		}
		var pf policyForm
		pf.parse(v)
		rec, errs := pf.record()
		if errs != nil {
			if rec != nil {
				t.Fatal("a record with errors")
			}
			return
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var p policy.Policy
		if json.Unmarshal(b, &p) != nil || p.Validate() != nil {
			return
		}
		var again policyForm
		if err := again.fill(b); err != nil {
			t.Fatalf("fill: %v", err)
		}
		rec2, errs := again.record()
		if errs != nil {
			t.Fatalf("the filled form does not read back: %v", errs)
		}
		b2, err := json.Marshal(rec2)
		if err != nil {
			t.Fatal(err)
		}
		var p2 policy.Policy
		if err := json.Unmarshal(b2, &p2); err != nil {
			t.Fatal(err)
		}
		c1, _ := json.Marshal(p)
		c2, _ := json.Marshal(p2)
		if string(c1) != string(c2) {
			t.Fatalf("round trip through the form:\n%s\n%s", c1, c2)
		}
	})
}
