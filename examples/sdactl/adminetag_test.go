package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/securedeviceaccess/sda/policy"
)

// interposer is a proxy in front of the service that makes another
// administrator's write just before it forwards the first PUT: the
// change someone else makes between sdactl's read and its write.
func (s *adminService) interposer(other func()) string {
	s.t.Helper()
	target, err := url.Parse(s.srv.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			once.Do(other)
		}
		proxy.ServeHTTP(w, r)
	}))
	s.t.Cleanup(srv.Close)
	return srv.URL
}

// runVia runs "sdactl admin ARGS" against the service at u and fails
// unless it exits with code.
func (s *adminService) runVia(u string, code int, args ...string) result {
	s.t.Helper()
	r := sdactlEnv(s.t, s.dir, []string{"SDA_URL=" + u, "SDA_API_KEY_FILE=admin.apikey"}, "", append([]string{"admin"}, args...)...)
	if r.code != code {
		s.t.Fatalf("sdactl admin %v: want exit %d, got %v", args, code, r)
	}
	return r
}

// TestAdminWritesAreConditional: an update whose record someone else
// changes between sdactl's read and its write exits with 1 and loses
// neither change; a creation of an id someone else creates meanwhile
// exits with 1 and does not replace it.
func TestAdminWritesAreConditional(t *testing.T) {
	s := startAdminService(t)
	{ // update
		other := &policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"added-meanwhile"}}
		u := s.interposer(func() { s.api.do("PUT", "/admin/v1/subjects/alice", other, 200) })
		r := s.runVia(u, 1, "subjects", "update", "alice", "-groups", "mine")
		wantContains(t, "update stderr", r.stderr, `subject "alice" changed meanwhile; run again`)
		var got policy.Subject
		s.record("/admin/v1/subjects/alice", &got)
		if len(got.Groups) != 1 || got.Groups[0] != "added-meanwhile" {
			t.Fatalf("the other administrator's change is lost: %+v", got)
		}
		// Run again, it applies to the record as it is now.
		s.run(0, "", "subjects", "update", "alice", "-groups", "mine")
		s.record("/admin/v1/subjects/alice", &got)
		if len(got.Groups) != 1 || got.Groups[0] != "mine" {
			t.Fatalf("after running again: %+v", got)
		}
	}
	{ // create
		theirs := &policy.Subject{ID: "zoe", Kind: policy.User, Groups: []string{"theirs"}}
		u := s.interposer(func() { s.api.do("PUT", "/admin/v1/subjects/zoe", theirs, 200) })
		r := s.runVia(u, 1, "subjects", "create", "-id", "zoe", "-groups", "mine")
		wantContains(t, "create stderr", r.stderr, `subject "zoe" exists`)
		var got policy.Subject
		s.record("/admin/v1/subjects/zoe", &got)
		if len(got.Groups) != 1 || got.Groups[0] != "theirs" {
			t.Fatalf("the record created meanwhile is replaced: %+v", got)
		}
	}
}
