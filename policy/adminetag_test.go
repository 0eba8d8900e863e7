package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// etagOf returns the ETag of a response, failing the test without one.
func etagOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	et := w.Header().Get("ETag")
	if len(et) < 3 || et[0] != '"' || et[len(et)-1] != '"' {
		t.Fatalf("%d answer has ETag %q, want a strong entity tag", w.Code, et)
	}
	return et
}

// interposingStore applies one change of another writer to the store
// just before the first write it is asked to apply, as another instance
// sharing the store would between the service's read and its commit.
type interposingStore struct {
	*MemoryStore
	once  sync.Once
	other Change
}

func (s *interposingStore) Apply(ctx context.Context, changes ...Change) (int64, error) {
	var err error
	s.once.Do(func() { _, err = s.MemoryStore.Apply(ctx, s.other) })
	if err != nil {
		return 0, err
	}
	return s.MemoryStore.Apply(ctx, changes...)
}

func TestHTTPAdminPreconditions(t *testing.T) {
	p1 := mustJSON(t, pol("p1"))
	p1b := mustJSON(t, pol("p1", func(p *Policy) { p.Operations = []OperationRule{{Name: "write"}} }))
	p1c := mustJSON(t, pol("p1", func(p *Policy) { p.Operations = []OperationRule{{Name: "reboot"}} }))
	precondFailed := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusPreconditionFailed {
			t.Fatalf("got %d %s, want 412", w.Code, w.Body)
		}
		if eb := decodeError(t, w); eb.Type != errTypePreconditionFailed {
			t.Fatalf("type %q, want %q", eb.Type, errTypePreconditionFailed)
		}
	}
	t.Run("GET and PUT send the same strong ETag", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		put := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1)
		if put.Code != http.StatusOK {
			t.Fatalf("PUT: %d %s", put.Code, put.Body)
		}
		get := env.do("GET", "/admin/v1/policies/p1", env.adminKey, "")
		if etagOf(t, put) != etagOf(t, get) {
			t.Errorf("PUT's ETag %s differs from GET's %s", etagOf(t, put), etagOf(t, get))
		}
		other := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1b)
		if etagOf(t, other) == etagOf(t, get) {
			t.Errorf("a changed record keeps ETag %s", etagOf(t, get))
		}
		// Another service on the same store agrees.
		svc2 := &Service{Store: env.store, Now: env.svc.Now}
		if w := env.doWith(svc2, "GET", "/admin/v1/policies/p1", env.adminKey, ""); etagOf(t, w) != etagOf(t, other) {
			t.Errorf("second instance's ETag %s, want %s", etagOf(t, w), etagOf(t, other))
		}
		for _, path := range []string{"/admin/v1/subjects/alice", "/admin/v1/devices/" + dev1, "/admin/v1/api-keys/alice-key"} {
			etagOf(t, env.do("GET", path, env.adminKey, ""))
		}
	})
	t.Run("If-Match", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		et := etagOf(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1))
		w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1b, "If-Match", et)
		if w.Code != http.StatusOK {
			t.Fatalf("PUT with the current ETag: %d %s", w.Code, w.Body)
		}
		// The old ETag no longer matches: nothing is written.
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1c, "If-Match", et))
		precondFailed(t, env.do("DELETE", "/admin/v1/policies/p1", env.adminKey, "", "If-Match", et))
		if got := env.do("GET", "/admin/v1/policies/p1", env.adminKey, ""); got.Body.String() != w.Body.String() {
			t.Fatalf("after failed preconditions: %s, want %s", got.Body, w.Body)
		}
		// A list holding the current ETag matches, and so does *.
		if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1c, "If-Match", `"x", `+etagOf(t, w)); w.Code != http.StatusOK {
			t.Fatalf("If-Match with a list: %d %s", w.Code, w.Body)
		}
		if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1, "If-Match", "*"); w.Code != http.StatusOK {
			t.Fatalf("If-Match *: %d %s", w.Code, w.Body)
		}
		// A weak tag never matches (strong comparison, RFC 9110 section 13.1.1).
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1, "If-Match", "W/"+et))
		// No record: If-Match fails, even *.
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p9", env.adminKey, mustJSON(t, pol("p9")), "If-Match", "*"))
		precondFailed(t, env.do("DELETE", "/admin/v1/policies/p9", env.adminKey, "", "If-Match", "*"))
		et = etagOf(t, env.do("GET", "/admin/v1/policies/p1", env.adminKey, ""))
		if w := env.do("DELETE", "/admin/v1/policies/p1", env.adminKey, "", "If-Match", et); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE with the current ETag: %d %s", w.Code, w.Body)
		}
		// API keys have ETags over their shown fields.
		et = etagOf(t, env.do("GET", "/admin/v1/api-keys/alice-key", env.adminKey, ""))
		precondFailed(t, env.do("DELETE", "/admin/v1/api-keys/alice-key", env.adminKey, "", "If-Match", `"0"`))
		if w := env.do("DELETE", "/admin/v1/api-keys/alice-key", env.adminKey, "", "If-Match", et); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE of an API key with its ETag: %d %s", w.Code, w.Body)
		}
	})
	t.Run("If-None-Match", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1, "If-None-Match", "*"); w.Code != http.StatusOK {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1b, "If-None-Match", "*"))
		if got := env.do("GET", "/admin/v1/policies/p1", env.adminKey, ""); got.Body.String() != p1 {
			t.Fatalf("after a refused creation: %s, want %s", got.Body, p1)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		for _, h := range [][2]string{{"If-Match", "abc"}, {"If-Match", `"a" "b"`}, {"If-None-Match", `"unterminated`}, {"If-Match", ""}} {
			w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1, h[0], h[1])
			if h[1] == "" {
				// An empty header is no header.
				if w.Code != http.StatusOK {
					t.Errorf("%s: %q: %d", h[0], h[1], w.Code)
				}
				continue
			}
			if eb := decodeError(t, w); w.Code != http.StatusBadRequest || eb.Type != errTypeValidation || len(eb.Fields) != 1 || eb.Fields[0].Name != h[0] {
				t.Errorf("%s: %q: %d %+v, want 400 naming the header", h[0], h[1], w.Code, eb)
			}
		}
	})
	t.Run("a change between the check and the commit", func(t *testing.T) {
		// The ETag matches when the service reads the record, but another
		// instance writes it before the commit: the store's condition
		// refuses the write and the answer is 412, not a lost update.
		env := newTestEnv(t, token.ProfileV2)
		et := etagOf(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1))
		is := &interposingStore{MemoryStore: env.store, other: PutPolicy(pol("p1", func(p *Policy) { p.Operations = []OperationRule{{Name: "other"}} }))}
		env.svc.Store = is
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1b, "If-Match", et))
		if got := env.do("GET", "/admin/v1/policies/p1", env.adminKey, ""); got.Code != http.StatusOK || !json.Valid(got.Body.Bytes()) ||
			got.Body.String() != mustJSON(t, pol("p1", func(p *Policy) { p.Operations = []OperationRule{{Name: "other"}} })) {
			t.Fatalf("the other writer's record is lost: %s", got.Body)
		}
		// Creation likewise: the id is taken meanwhile.
		is2 := &interposingStore{MemoryStore: env.store, other: PutPolicy(pol("p2"))}
		env.svc.Store = is2
		precondFailed(t, env.do("PUT", "/admin/v1/policies/p2", env.adminKey, mustJSON(t, pol("p2", func(p *Policy) { p.Operations = []OperationRule{{Name: "three"}} })), "If-None-Match", "*"))
		// A plain uniqueness conflict under a precondition stays 409.
		env.svc.Store = env.store
		dev := env.do("GET", "/admin/v1/devices/"+dev2, env.adminKey, "")
		var d Device
		if err := json.Unmarshal(dev.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		d.EndpointName = "hvac-1"
		if w := env.do("PUT", "/admin/v1/devices/"+dev2, env.adminKey, mustJSON(t, &d), "If-Match", etagOf(t, dev)); w.Code != http.StatusConflict {
			t.Fatalf("endpoint name taken under If-Match: %d %s, want 409", w.Code, w.Body)
		}
	})
	t.Run("concurrent updates with one ETag", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		for i := range 20 {
			put := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1)
			et := etagOf(t, put)
			bodies := []string{p1b, p1c}
			codes := make([]int, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[j] = env.do("PUT", "/admin/v1/policies/p1", env.adminKey, bodies[j], "If-Match", et).Code
				}()
			}
			close(start)
			wg.Wait()
			var winner = -1
			for j, c := range codes {
				switch c {
				case http.StatusOK:
					if winner >= 0 {
						t.Fatalf("round %d: both updates succeeded with one ETag: one is lost", i)
					}
					winner = j
				case http.StatusPreconditionFailed:
				default:
					t.Fatalf("round %d: codes %v", i, codes)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: codes %v, want one 200 and one 412", i, codes)
			}
			if got := env.do("GET", "/admin/v1/policies/p1", env.adminKey, ""); got.Body.String() != bodies[winner] {
				t.Fatalf("round %d: record %s, want the winner's %s", i, got.Body, bodies[winner])
			}
		}
	})
	t.Run("concurrent creations", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		svc2 := &Service{Store: env.store, Now: func() time.Time { return t0 }}
		for i := range 20 {
			id := "c" + string(rune('a'+i))
			bodies := []string{mustJSON(t, pol(id)), mustJSON(t, pol(id, func(p *Policy) { p.Operations = []OperationRule{{Name: "seven"}} }))}
			codes := make([]int, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j, h := range []http.Handler{env.svc, svc2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[j] = env.doWith(h, "PUT", "/admin/v1/policies/"+id, env.adminKey, bodies[j], "If-None-Match", "*").Code
				}()
			}
			close(start)
			wg.Wait()
			ok := 0
			for _, c := range codes {
				if c == http.StatusOK {
					ok++
				} else if c != http.StatusPreconditionFailed {
					t.Fatalf("creation %d: codes %v", i, codes)
				}
			}
			if ok != 1 {
				t.Fatalf("creation %d: codes %v, want one 200 and one 412", i, codes)
			}
		}
	})
	t.Run("an instance whose view is stale", func(t *testing.T) {
		// svc reads its store at most once an hour; svc2 writes p1 and
		// answers its ETag. A write to svc with that current tag
		// succeeds: svc reads the store before refusing it.
		env := newTestEnv(t, token.ProfileV2)
		env.svc.MaxStaleness = time.Hour
		if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1); w.Code != http.StatusOK {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
		svc2 := &Service{Store: env.store, Now: env.svc.Now}
		et := etagOf(t, env.doWith(svc2, "PUT", "/admin/v1/policies/p1", env.adminKey, p1b))
		if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, p1c, "If-Match", et); w.Code != http.StatusOK {
			t.Fatalf("PUT with the current ETag to a stale instance: %d %s", w.Code, w.Body)
		}
		et = etagOf(t, env.doWith(svc2, "GET", "/admin/v1/policies/p1", env.adminKey, ""))
		if w := env.do("DELETE", "/admin/v1/policies/p1", env.adminKey, "", "If-Match", et); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE with the current ETag: %d %s", w.Code, w.Body)
		}
	})
	t.Run("without headers nothing changes", func(t *testing.T) {
		env := newTestEnv(t, token.ProfileV2)
		for _, b := range []string{p1, p1b, p1} {
			if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, b); w.Code != http.StatusOK {
				t.Fatalf("PUT: %d %s", w.Code, w.Body)
			}
		}
		if w := env.do("DELETE", "/admin/v1/policies/p1", env.adminKey, ""); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE: %d", w.Code)
		}
	})
}

// FuzzPreconditionHeaders: any If-Match value parses or is refused, never
// panics, and every tag parsed is a quoted, possibly weak, entity tag.
func FuzzPreconditionHeaders(f *testing.F) {
	for _, s := range []string{"*", `"a"`, `W/"a", "b"`, `"a" "b"`, `"`, `W/`, ` , "x",`, "\"\x00\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tags, ok := parseETagList(v)
		if !ok {
			return
		}
		for _, tag := range tags {
			q := strings.TrimPrefix(tag, "W/")
			if tag != "*" && (len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' || strings.Contains(q[1:len(q)-1], `"`)) {
				t.Fatalf("%q parsed to tag %q", v, tag)
			}
		}
	})
}
