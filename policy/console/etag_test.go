package console

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/policy"
)

var etagField = regexp.MustCompile(`<input type="hidden" name="etag" value="([^"]*)">`)

// formETag returns the entity tag an edit form carries in its hidden
// field, as a browser would send it back.
func formETag(t *testing.T, a answer) string {
	t.Helper()
	m := etagField.FindStringSubmatch(a.body)
	if m == nil || m[1] == "" {
		t.Fatalf("the form carries no ETag:\n%s", a.body)
	}
	return html.UnescapeString(m[1])
}

// TestEditsAreConditional: an edit saved after someone else changed the
// record writes nothing and says so, with a link to reload; a creation
// of an id someone else created meanwhile does not replace it.
func TestEditsAreConditional(t *testing.T) {
	f := newFixture(t, nil)
	b := f.signIn(t)
	wantStatus(t, b.post("/console/new/subjects", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"technicians"}, "action": {"save"}}), http.StatusSeeOther)

	t.Run("edit after a change made meanwhile", func(t *testing.T) {
		etag := formETag(t, b.get("/console/subjects/bob/edit"))
		// Another administrator changes bob while the form is open.
		f.svc.Apply(t, policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User, Groups: []string{"added-meanwhile"}}))
		a := b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"mine"}, "action": {"save"}, "etag": {etag}})
		wantStatus(t, a, http.StatusPreconditionFailed)
		wantBody(t, a, `role="alert"`, "changed by someone else since you opened it", `href="/console/subjects/bob/edit"`, ">mine</textarea>")
		if got := b.get("/console/subjects/bob"); !strings.Contains(got.body, "added-meanwhile") || strings.Contains(got.body, "mine") {
			t.Fatalf("the change made meanwhile is lost:\n%s", got.body)
		}
		// Reloaded, the form carries the new tag and saves.
		etag = formETag(t, b.get("/console/subjects/bob/edit"))
		wantStatus(t, b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"mine"}, "action": {"save"}, "etag": {etag}}), http.StatusSeeOther)
		wantBody(t, b.get("/console/subjects/bob"), "mine")
	})
	t.Run("a preview keeps the tag", func(t *testing.T) {
		etag := formETag(t, b.get("/console/subjects/bob/edit"))
		a := b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"x"}, "action": {"preview"}, "etag": {etag}})
		wantStatus(t, a, http.StatusOK)
		if got := formETag(t, a); got != etag {
			t.Fatalf("the preview carries tag %q, want %q", got, etag)
		}
	})
	t.Run("an edit without the tag writes nothing", func(t *testing.T) {
		a := b.post("/console/subjects/bob/edit", url.Values{"id": {"bob"}, "kind": {"user"}, "groups": {"untagged"}, "action": {"save"}})
		wantStatus(t, a, http.StatusPreconditionFailed)
		if strings.Contains(b.get("/console/subjects/bob").body, "untagged") {
			t.Fatal("an edit without a tag was written")
		}
	})
	t.Run("a creation racing another", func(t *testing.T) {
		// Another administrator creates the id just before the console's
		// write reaches the API, after anything the console read: only
		// the write's condition (If-None-Match: *) can refuse it.
		api := f.con.admin
		interposed := false
		f.con.admin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && !interposed {
				interposed = true
				f.svc.Apply(t, policy.PutSubject(&policy.Subject{ID: "zoe", Kind: policy.User, Groups: []string{"theirs"}}))
			}
			api.ServeHTTP(w, r)
		})
		defer func() { f.con.admin = api }()
		a := b.post("/console/new/subjects", url.Values{"id": {"zoe"}, "kind": {"user"}, "groups": {"mine"}, "action": {"save"}})
		wantStatus(t, a, http.StatusConflict)
		wantBody(t, a, `id="err-id"`, "exists")
		if got := b.get("/console/subjects/zoe").body; strings.Contains(got, "mine") || !strings.Contains(got, "theirs") {
			t.Fatalf("the creation replaced the subject created meanwhile:\n%s", got)
		}
	})
}
