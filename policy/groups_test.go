package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// TestIfMatch: a change with IfMatch applies only over the record it
// names, in the engine and in the MemoryStore, counting the batch's
// earlier changes.
func TestIfMatch(t *testing.T) {
	alice := &Subject{ID: "alice", Kind: User, Groups: []string{"techs"}}
	changed := &Subject{ID: "alice", Kind: User, Groups: []string{"techs", "juniors"}}
	next := &Subject{ID: "alice", Kind: User, Groups: []string{"techs", "seniors"}}
	cond := func(old, neu *Subject) Change {
		c := PutSubject(neu)
		m := PutSubject(old)
		c.IfMatch = &m
		return c
	}
	tests := []struct {
		name    string
		batch   []Change
		wantErr error
	}{
		{"matches", []Change{cond(alice, next)}, nil},
		{"changed meanwhile", []Change{cond(changed, next)}, ErrConflict},
		{"deleted meanwhile", []Change{DeleteRecord(KindSubject, "alice"), cond(alice, next)}, ErrConflict},
		{"earlier change of the batch", []Change{PutSubject(changed), cond(changed, next)}, nil},
		{"earlier change of the batch, stale", []Change{PutSubject(changed), cond(alice, next)}, ErrConflict},
		{"missing record", []Change{cond(&Subject{ID: "zed", Kind: User}, &Subject{ID: "zed", Kind: User, Groups: []string{"g"}})}, ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := NewMemoryStore()
			var e Engine
			for _, apply := range []func(...Change) error{
				func(c ...Change) error { _, err := ms.Apply(context.Background(), c...); return err },
				e.Apply,
			} {
				if err := apply(PutSubject(alice)); err != nil {
					t.Fatal(err)
				}
				err := apply(tt.batch...)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
			}
			// Nothing of a failed batch is applied; the store logs no condition.
			snap, _ := ms.Snapshot(context.Background())
			got := snap.Subjects[0]
			if tt.wantErr != nil && len(got.Groups) != 1 {
				t.Errorf("failed batch applied: %+v", got)
			}
			log, _ := ms.Changes(context.Background(), 0)
			for _, c := range log {
				if c.IfMatch != nil {
					t.Errorf("logged change with a condition: %+v", c)
				}
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		bad := []Change{
			func() Change { c := cond(alice, next); c.IfMatch.ID = "bob"; return c }(),
			func() Change { c := cond(alice, next); c.Create = true; return c }(),
			func() Change { c := cond(alice, next); c.IfMatch.Delete, c.IfMatch.Subject = true, nil; return c }(),
			func() Change { c := cond(alice, next); m := PutSubject(alice); c.IfMatch.IfMatch = &m; return c }(),
		}
		for i, c := range bad {
			if _, err := PrepareChanges([]Change{c}); !errors.Is(err, ErrInvalid) {
				t.Errorf("%d: %v", i, err)
			}
		}
	})
}

func TestHTTPGroups(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1, pol("p-techs", groups("techs")), pol("p-juniors", groups("juniors", "techs")))
	get := func(path string) (int, []byte) {
		t.Helper()
		w := env.do("GET", groupsPath+path, env.adminKey, "")
		return w.Code, w.Body.Bytes()
	}
	t.Run("list", func(t *testing.T) {
		code, body := get("")
		list := decodeList[listJSON[groupJSON]](t, body)
		if code != 200 || list.TotalCount != 5 || list.HasMore || len(list.Data) != 5 {
			t.Fatalf("%d %s", code, body)
		}
		var names []string
		for _, g := range list.Data {
			names = append(names, g.Name)
		}
		if !slices.Equal(names, []string{"automation", "contractors", "juniors", "techs", "techs-east"}) {
			t.Errorf("names %v", names)
		}
		if g := list.Data[3]; g.Object != "group" || g.Members != float64(1) || !slices.Equal(g.Policies, []string{"p-juniors", "p-techs"}) {
			t.Errorf("techs %+v", g)
		}
		if g := list.Data[2]; g.Members != float64(0) || !slices.Equal(g.Policies, []string{"p-juniors"}) {
			t.Errorf("juniors %+v", g)
		}
		code, body = get("?limit=2&after=contractors")
		list = decodeList[listJSON[groupJSON]](t, body)
		if code != 200 || len(list.Data) != 2 || !list.HasMore || list.Data[0].Name != "juniors" {
			t.Fatalf("page: %d %s", code, body)
		}
		if w := env.do("GET", groupsPath+"?limit=0", env.adminKey, ""); w.Code != 400 || decodeError(t, w).Fields[0].Name != "limit" {
			t.Fatalf("limit 0: %d %s", w.Code, w.Body)
		}
	})
	t.Run("show", func(t *testing.T) {
		code, body := get("/techs")
		var g struct {
			Object   string   `json:"object"`
			Name     string   `json:"name"`
			Members  []string `json:"members"`
			Policies []string `json:"policies"`
		}
		if code != 200 || strictUnmarshal(body, &g) != nil || g.Object != "group" || g.Name != "techs" ||
			!slices.Equal(g.Members, []string{"alice"}) || !slices.Equal(g.Policies, []string{"p-juniors", "p-techs"}) {
			t.Fatalf("%d %s", code, body)
		}
		if code, body := get("/juniors"); code != 200 || string(body) != `{"object":"group","name":"juniors","members":[],"policies":["p-juniors"]}` {
			t.Fatalf("juniors: %d %s", code, body)
		}
		if w := env.do("GET", groupsPath+"/nobody", env.adminKey, ""); w.Code != 404 || decodeError(t, w).Type != errTypeNotFound {
			t.Fatalf("nobody: %d %s", w.Code, w.Body)
		}
	})
	t.Run("add and remove", func(t *testing.T) {
		env.audit.Reset()
		path := groupsPath + "/juniors/members/carol"
		for range 2 { // idempotent
			w := env.do("PUT", path, env.adminKey, "")
			var sub Subject
			if w.Code != 200 || strictUnmarshal(w.Body.Bytes(), &sub) != nil || sub.ID != "carol" || !slices.Equal(sub.Groups, []string{"juniors"}) {
				t.Fatalf("PUT: %d %s", w.Code, w.Body)
			}
		}
		events := auditEvents(t, env.audit)
		if len(events) != 1 || events[0]["msg"] != "sda.admin.put" || events[0]["kind"] != "subject" || events[0]["id"] != "carol" || events[0]["subject"] != "root" {
			t.Errorf("audit %v", events)
		}
		if code, body := get("/juniors"); code != 200 || !json.Valid(body) || !slices.Contains(decodeList[struct{ Members []string }](t, body).Members, "carol") {
			t.Fatalf("after PUT: %d %s", code, body)
		}
		// The membership takes effect for decisions at once.
		d, err := env.svc.engine.Decide(&Request{Subject: "carol", Audience: []string{"ep:hvac-1"}, Operations: []string{"read"}, Time: t0})
		if err != nil || !d.Allowed {
			t.Fatalf("carol in juniors: %+v %v", d, err)
		}
		env.audit.Reset()
		if w := env.do("DELETE", path, env.adminKey, ""); w.Code != 204 {
			t.Fatalf("DELETE: %d %s", w.Code, w.Body)
		}
		if events := auditEvents(t, env.audit); len(events) != 1 || events[0]["msg"] != "sda.admin.put" || events[0]["id"] != "carol" {
			t.Errorf("audit %v", events)
		}
		if w := env.do("DELETE", path, env.adminKey, ""); w.Code != 404 || decodeError(t, w).Type != errTypeNotFound {
			t.Fatalf("DELETE again: %d %s", w.Code, w.Body)
		}
		if sub, _ := env.svc.engine.get(KindSubject, "carol"); sub.(*Subject).Groups != nil {
			t.Errorf("carol after DELETE: %+v", sub)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, m := range []string{"PUT", "DELETE"} {
			if w := env.do(m, groupsPath+"/juniors/members/mallory", env.adminKey, ""); w.Code != 404 {
				t.Errorf("%s unknown subject: %d %s", m, w.Code, w.Body)
			}
			w := env.do(m, groupsPath+"/bad%20name/members/alice", env.adminKey, "")
			if e := decodeError(t, w); w.Code != 400 || len(e.Fields) != 1 || e.Fields[0].Name != "name" {
				t.Errorf("%s bad group name: %d %s", m, w.Code, w.Body)
			}
		}
		for _, rt := range []struct{ method, path string }{
			{"GET", groupsPath}, {"GET", groupsPath + "/techs"}, {"PUT", groupsPath + "/techs/members/carol"}, {"DELETE", groupsPath + "/techs/members/alice"},
		} {
			w := env.do(rt.method, rt.path, env.aliceKey, "")
			if e := decodeError(t, w); w.Code != 403 || e.Type != errTypeForbidden {
				t.Errorf("%s %s as alice: %d %s", rt.method, rt.path, w.Code, w.Body)
			}
		}
		if w := env.do("POST", groupsPath+"/techs/members/carol", env.adminKey, ""); w.Code != 405 {
			t.Errorf("POST: %d", w.Code)
		}
	})
}

// racingStore is a MemoryStore that, just before the first conditional
// write of a subject, lets another writer add a group to it.
type racingStore struct {
	*MemoryStore
	raced atomic.Bool
}

func (s *racingStore) Apply(ctx context.Context, changes ...Change) (int64, error) {
	if len(changes) == 1 && changes[0].Kind == KindSubject && !s.raced.Swap(true) {
		snap, _ := s.MemoryStore.Snapshot(ctx)
		for _, sub := range snap.Subjects {
			if sub.ID == changes[0].ID {
				sub.Groups = append(sub.Groups, "raced-in")
				if _, err := s.MemoryStore.Apply(ctx, PutSubject(sub)); err != nil {
					return 0, err
				}
			}
		}
	}
	return s.MemoryStore.Apply(ctx, changes...)
}

// TestGroupMembershipRace: a write of the subject between the membership
// change's read and its write is not lost, and neither is the change.
func TestGroupMembershipRace(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	env.svc.Store = &racingStore{MemoryStore: env.store}
	w := env.do("PUT", groupsPath+"/juniors/members/carol", env.adminKey, "")
	if w.Code != 200 {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	snap, _ := env.store.Snapshot(context.Background())
	i := slices.IndexFunc(snap.Subjects, func(s *Subject) bool { return s.ID == "carol" })
	if got := snap.Subjects[i].Groups; !slices.Equal(got, []string{"raced-in", "juniors"}) {
		t.Fatalf("carol's groups %v, want both writes kept", got)
	}
}

// TestGroupMembershipConcurrent: concurrent adds of different groups to
// one subject, through the HTTP API, all persist.
func TestGroupMembershipConcurrent(t *testing.T) {
	env := newTestEnv(t, token.ProfileV1)
	const n = 6 // below maxMembershipAttempts: each retry follows another's success
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i] = env.do("PUT", fmt.Sprintf("%s/g%d/members/carol", groupsPath, i), env.adminKey, "").Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("add %d: %d", i, c)
		}
	}
	sub, err := env.svc.engine.get(KindSubject, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.(*Subject).Groups; len(got) != n {
		t.Fatalf("carol's groups %v: %d of %d adds kept", got, len(got), n)
	}
}
