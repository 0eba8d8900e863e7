package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/securedeviceaccess/sda/token"
)

func TestExplainPage(t *testing.T) {
	f, b := analysisFixture(t)
	_ = f
	t.Run("form", func(t *testing.T) {
		a := b.get("/console/explain")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `<label for="subject">`, `<label for="aud">`, `<label for="operations">`)
	})
	t.Run("allowed", func(t *testing.T) {
		a := b.get("/console/explain?" + url.Values{"subject": {"alice"}, "aud": {"ep:hvac-1, ep:hvac-2"}, "operations": {"read-data"}}.Encode())
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "<h2 id=\"result-h\">Allowed</h2>", `<th scope="row">ep:hvac-1 (hvac-1)</th>`, `<th scope="row">ep:hvac-2 (hvac-2)</th>`,
			"roof (allow", "a token would expire at")
	})
	t.Run("refused, with the near miss", func(t *testing.T) {
		a := b.get("/console/explain?" + url.Values{"subject": {"alice"}, "aud": {"ep:hvac-1"}, "operations": {"read-data\nconfigure"}}.Encode())
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, "<h2 id=\"result-h\">Refused</h2>", "configure on ep:hvac-1: no allow policy grants it",
			"the policies that nearly matched", `<a href="/console/policies/roof-ops">roof-ops</a>`, "<td>subject</td>")
	})
	t.Run("invalid audience named by the API", func(t *testing.T) {
		a := b.get("/console/explain?" + url.Values{"subject": {"alice"}, "aud": {"ep:hvac-1\nnot-an-audience"}, "operations": {"read-data"}}.Encode())
		wantStatus(t, a, http.StatusBadRequest)
		wantBody(t, a, `id="err-aud"`, "aud[1]")
	})
}

func TestGroupPages(t *testing.T) {
	f, b := analysisFixture(t)
	f.svc.AddDevice(t, token.Identity{Endpoint: "hvac-9"})
	t.Run("list", func(t *testing.T) {
		a := b.get("/console/groups")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `<a href="/console/groups/technicians">technicians</a>`, `<a href="/console/groups/juniors">juniors</a>`)
		a = b.get("/console/groups?q=TECH")
		wantBody(t, a, "/console/groups/technicians")
		if strings.Contains(a.body, "/console/groups/juniors") {
			t.Error("the search kept juniors")
		}
	})
	t.Run("show", func(t *testing.T) {
		a := b.get("/console/groups/technicians")
		wantStatus(t, a, http.StatusOK)
		wantBody(t, a, `<a href="/console/subjects/alice">alice</a>`, `<a href="/console/policies/roof">roof</a>`)
	})
	t.Run("add and remove a member", func(t *testing.T) {
		a := b.post("/console/groups/technicians/members", url.Values{"subject": {"bob"}})
		wantStatus(t, a, http.StatusSeeOther)
		wantBody(t, b.get("/console/groups/technicians?msg=added"), "Member added.", `<a href="/console/subjects/bob">bob</a>`)
		a = b.post("/console/groups/technicians/members/bob/remove", nil)
		wantStatus(t, a, http.StatusSeeOther)
		if a := b.get("/console/groups/technicians"); strings.Contains(a.body, "/console/subjects/bob") {
			t.Error("bob is still a member")
		}
	})
	t.Run("unknown subject", func(t *testing.T) {
		a := b.post("/console/groups/technicians/members", url.Values{"subject": {"nobody"}})
		if a.status < 400 {
			t.Fatalf("status %d", a.status)
		}
		wantBody(t, a, `id="err-subject"`)
	})
	t.Run("create a group with its first member", func(t *testing.T) {
		a := b.post("/console/groups", url.Values{"group": {"night-shift"}, "subject": {"bob"}})
		wantStatus(t, a, http.StatusSeeOther)
		if a.header.Get("Location") != "/console/groups/night-shift?msg=added" {
			t.Errorf("redirect to %q", a.header.Get("Location"))
		}
		wantBody(t, b.get("/console/groups/night-shift"), `<a href="/console/subjects/bob">bob</a>`)
		a = b.post("/console/groups", url.Values{"group": {"day-shift"}, "subject": {"nobody"}})
		if a.status < 400 {
			t.Fatalf("unknown subject: status %d", a.status)
		}
		wantBody(t, a, `id="err-subject"`)
		a = b.post("/console/groups", url.Values{"group": {"bad group!"}, "subject": {"bob"}})
		if a.status < 400 {
			t.Fatalf("invalid name: status %d", a.status)
		}
		wantBody(t, a, `id="err-`)
		wantStatus(t, b.post("/console/groups", url.Values{"group": {""}, "subject": {"bob"}}), http.StatusBadRequest)
	})
	t.Run("unknown group", func(t *testing.T) {
		wantStatus(t, b.get("/console/groups/nobody-here"), http.StatusNotFound)
	})
}

// TestBrowserAnalysis drives Chromium through an explanation and a what-if
// preview before saving.
func TestBrowserAnalysis(t *testing.T) {
	f, _ := analysisFixture(t)
	f.clock.t = time.Now()
	c := newChrome(t, f.srv.URL)
	c.signIn(f.svc.AdminKey)

	t.Run("explain", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/explain"]`)))
		c.waitTitle("Explain")
		c.do(
			chromedp.SendKeys(byID("subject"), "alice"),
			chromedp.SendKeys(byID("aud"), "ep:hvac-1"),
			chromedp.SendKeys(byID("operations"), "read-data\nconfigure"),
			chromedp.Click(chromedp.CSS(`main button[type=submit]`)),
		)
		c.do(chromedp.WaitVisible(byID("result-h")))
		if got := c.text(`[id="result-h"]`); got != "Refused" {
			t.Errorf("the verdict is %q", got)
		}
		if got := c.text("main section"); !strings.Contains(got, "no allow policy grants it") || !strings.Contains(got, "roof-ops") {
			t.Errorf("the explanation shows %q", got)
		}
		c.shot("explain")
	})
	t.Run("groups", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Navigate(c.base + "/console/groups/technicians"))
		c.waitTitle("Group technicians")
		c.do(chromedp.SendKeys(byID("subject"), "bob"), chromedp.Click(chromedp.CSS(`form.record button[type=submit]`)))
		c.do(chromedp.WaitVisible(chromedp.CSS(`a[href="/console/subjects/bob"]`)))
		c.shot("group")
	})
	c.t = t
	c.checkQuiet()
}
