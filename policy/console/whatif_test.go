package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/securedeviceaccess/sda/policy"
)

// analysisFixture: alice (technicians) may read-data on the rooftop
// devices; policy roof-ops lets bob configure them.
func analysisFixture(t *testing.T) (*fixture, *browser) {
	f := newFixture(t, nil)
	f.svc.Apply(t,
		policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User, Groups: []string{"juniors"}}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1", Attributes: map[string]string{"site": "rooftop"}}),
		policy.PutDevice(&policy.Device{ID: "00112233445566778899aabbccddeeff", EndpointName: "hvac-2", Attributes: map[string]string{"site": "rooftop"}}),
		policy.PutPolicy(&policy.Policy{ID: "roof", Status: policy.Active, Effect: policy.Allow,
			Subjects: policy.Subjects{Groups: []string{"technicians"}}, Operations: []policy.OperationRule{{Name: "read-data"}},
			Devices: policy.DeviceSelector{Attributes: map[string][]string{"site": {"rooftop"}}}, TokenLifetime: time.Hour}),
		policy.PutPolicy(&policy.Policy{ID: "roof-ops", Status: policy.Active, Effect: policy.Allow,
			Subjects: policy.Subjects{Users: []string{"bob"}}, Operations: []policy.OperationRule{{Name: "configure"}},
			Devices: policy.DeviceSelector{Attributes: map[string][]string{"site": {"rooftop"}}}, TokenLifetime: time.Hour}),
	)
	return f, f.signIn(t)
}

func TestWhatIfPreview(t *testing.T) {
	f, b := analysisFixture(t)
	t.Run("new policy", func(t *testing.T) {
		form := url.Values{"id": {"juniors-read"}, "status": {"active"}, "effect": {"allow"}, "subjects.groups": {"juniors"},
			"operations": {"read-data"}, "devices.attributes": {"site=rooftop"}, "token_lifetime_seconds": {"600"}, "action": {"preview"}}
		a := b.post("/console/new/policies", form)
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "What this change would do", "<strong>2</strong> grants gained", "<strong>0</strong> grants lost",
			"group juniors", "bob", "Nothing has been written yet.")
		if i, j := strings.Index(a.body, "What this change would do"), strings.Index(a.body, `value="save"`); i < 0 || j < i {
			t.Error("the impact is not shown before the Save button")
		}
		wantBody(t, a, `value="juniors-read"`) // the form keeps its values
		if f.apiStatus(t, "policies/juniors-read") != http.StatusNotFound {
			t.Error("the preview wrote the policy")
		}
		form.Set("action", "save")
		wantStatus(t, b.post("/console/new/policies", form), http.StatusSeeOther)
	})
	t.Run("edit that loses grants", func(t *testing.T) {
		form := url.Values{"id": {"roof"}, "status": {"inactive"}, "effect": {"allow"}, "subjects.groups": {"technicians"},
			"operations": {"read-data"}, "devices.attributes": {"site=rooftop"}, "token_lifetime_seconds": {"3600"}, "action": {"preview"}}
		a := b.post("/console/policies/roof/edit", form)
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "<strong>0</strong> grants gained, <strong>2</strong> grants lost", "alice")
	})
	t.Run("invalid field named by what-if", func(t *testing.T) {
		form := url.Values{"id": {"x"}, "status": {"active"}, "effect": {"allow"}, "subjects.users": {"bad!"},
			"operations": {"read-data"}, "devices.all": {"1"}, "token_lifetime_seconds": {"600"}, "action": {"preview"}}
		a := b.post("/console/new/policies", form)
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-subjects.users"`, "subjects.users[0]")
	})
	t.Run("delete confirmation shows the loss", func(t *testing.T) {
		a := b.get("/console/policies/roof-ops/delete")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "<strong>2</strong> grants lost", "configure")
	})
	t.Run("subject preview", func(t *testing.T) {
		a := b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"juniors, technicians"}, "action": {"preview"}})
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "grants gained")
	})
}

// TestBrowserWhatIf drives Chromium through a what-if preview before saving.
func TestBrowserWhatIf(t *testing.T) {
	f, _ := analysisFixture(t)
	f.clock.t = time.Now()
	c := newChrome(t, f.srv.URL)
	c.signIn(f.svc.AdminKey)

	t.Run("what-if preview, then save", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Navigate(c.base + "/console/new/policies"))
		c.waitTitle("New policy")
		c.do(
			chromedp.SendKeys(byID("id"), "juniors-read"),
			chromedp.SendKeys(byID("name"), "Juniors read the rooftop units"),
			chromedp.SendKeys(byID("subjects.groups"), "juniors"),
			chromedp.SendKeys(byID("operations"), "read-data"),
			chromedp.SendKeys(byID("devices.attributes"), "site=rooftop"),
			chromedp.Click(chromedp.CSS(`button[value="preview"]`)),
		)
		c.do(chromedp.WaitVisible(byID("impact-h")))
		if got := c.text("section.impact"); !strings.Contains(got, "2 grants gained") || !strings.Contains(got, "group juniors") {
			t.Errorf("the impact shows %q", got)
		}
		if f.apiStatus(t, "policies/juniors-read") != http.StatusNotFound {
			t.Fatal("the preview wrote the policy")
		}
		c.shot("what-if")
		c.do(chromedp.Click(chromedp.CSS(`button[value="save"]`)))
		c.waitTitle("policy juniors-read")
		if f.apiStatus(t, "policies/juniors-read") != http.StatusOK {
			t.Error("Save did not write the policy")
		}
	})
	c.t = t
	c.checkQuiet()
}
