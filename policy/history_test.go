package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// impactKeys returns an Impact's triples as comparable strings.
func impactKeys(im *Impact) []string {
	var out []string
	for _, d := range im.Details {
		out = append(out, string(d.Change)+" "+detailKey(d))
	}
	return out
}

// TestServiceDiffRebuildsStates: the diff between two sequence numbers
// equals the comparison of the store's snapshots taken at them, for
// changes the service wrote itself and changes it followed from the
// store, on random stores and changes.
func TestServiceDiffRebuildsStates(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(15, 3))
	opts := &ImpactOptions{Limit: MaxImpactDetails, Structured: true}
	for iter := range 40 {
		w := randomWorld{r}
		store := NewMemoryStore()
		if _, err := store.Apply(ctx, w.store()...); err != nil {
			continue
		}
		svc := &Service{Store: store, Now: func() time.Time { return t0 }}
		if err := svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		snaps := map[int64]*Snapshot{}
		first, _ := store.Snapshot(ctx)
		snaps[first.Seq] = first
		for step := range 6 {
			var err error
			if step%2 == 0 {
				err = svc.Apply(ctx, w.changes()...) // its own write
			} else {
				_, err = store.Apply(ctx, w.changes()...) // another instance's
			}
			if err != nil {
				continue
			}
			snap, _ := store.Snapshot(ctx)
			snaps[snap.Seq] = snap
		}
		seqs := slices.Sorted(mapsKeysInt(snaps))
		for _, from := range seqs {
			for _, to := range seqs {
				got, gotTo, err := svc.Diff(ctx, from, to, t0, opts)
				if err != nil {
					t.Fatalf("iteration %d: Diff(%d, %d): %v", iter, from, to, err)
				}
				want, err := Compare(snaps[from], snaps[to], t0, opts)
				if err != nil {
					t.Fatal(err)
				}
				if gotTo != to || !slices.Equal(impactKeys(got), impactKeys(want)) || got.Gained != want.Gained || got.Lost != want.Lost {
					t.Fatalf("iteration %d: Diff(%d, %d) = %v, want %v", iter, from, to, impactKeys(got), impactKeys(want))
				}
			}
		}
		// to < 0 is the current state.
		if _, to, err := svc.Diff(ctx, seqs[0], -1, t0, nil); err != nil || to != seqs[len(seqs)-1] {
			t.Fatalf("Diff to the current seq: %d, %v", to, err)
		}
	}
}

func mapsKeysInt[V any](m map[int64]V) func(func(int64) bool) {
	return func(yield func(int64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestServiceHistoryBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("before the process started", func(t *testing.T) {
		store := NewMemoryStore()
		if _, err := store.Apply(ctx, testDirectory()...); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Apply(ctx, PutPolicy(pol("p1"))); err != nil {
			t.Fatal(err)
		}
		svc := &Service{Store: store, Now: func() time.Time { return t0 }}
		_, _, err := svc.Diff(ctx, 1, -1, t0, nil)
		var hg *HistoryGoneError
		if !errors.As(err, &hg) || !errors.Is(err, ErrHistoryGone) || hg.Oldest != 2 || hg.Seq != 1 {
			t.Fatalf("Diff from before the start: %v, want a HistoryGoneError from 2", err)
		}
		if _, _, err := svc.Diff(ctx, 2, -1, t0, nil); err != nil {
			t.Fatalf("Diff from the start: %v", err)
		}
		if _, _, _, err := svc.ChangeLog(ctx, 1, 10); !errors.As(err, &hg) {
			t.Fatalf("ChangeLog from before the start: %v", err)
		}
	})
	t.Run("the oldest changes are forgotten", func(t *testing.T) {
		store := NewMemoryStore()
		if _, err := store.Apply(ctx, testDirectory()...); err != nil {
			t.Fatal(err)
		}
		svc := &Service{Store: store, Now: func() time.Time { return t0 }}
		if err := svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		// Batches of 1000 changes, one more than MaxHistory in all: the
		// first batch's first change is forgotten, so its seq is the
		// oldest the service can diff from.
		var seqs []int64
		for b := 0; b*1000 <= MaxHistory; b++ {
			var batch []Change
			for i := range 1000 {
				batch = append(batch, PutPolicy(pol(fmt.Sprintf("p%d-%d", b, i), func(p *Policy) {
					p.Operations = []OperationRule{{Name: fmt.Sprintf("op%d-%d", b, i)}}
				})))
			}
			if err := svc.Apply(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			snap, _ := store.Snapshot(ctx)
			seqs = append(seqs, snap.Seq)
		}
		var hg *HistoryGoneError
		if _, _, err := svc.Diff(ctx, 1, -1, t0, nil); !errors.As(err, &hg) || hg.Oldest != seqs[0] {
			t.Fatalf("Diff from the first state: %v, want oldest %d", err, seqs[0])
		}
		im, _, err := svc.Diff(ctx, seqs[0], seqs[1], t0, nil)
		if err != nil || im.Gained != 1000*3 {
			t.Fatalf("Diff over the second batch: %v, gained %v", err, im)
		}
		if got := len(svc.hist.entries); got != MaxHistory {
			t.Errorf("history holds %d entries, want %d", got, MaxHistory)
		}
	})
	t.Run("a snapshot reload starts a new history", func(t *testing.T) {
		cs := &countingStore{MemoryStore: NewMemoryStore()}
		if _, err := cs.Apply(ctx, testDirectory()...); err != nil {
			t.Fatal(err)
		}
		svc := &Service{Store: cs, Now: func() time.Time { return t0 }}
		if err := svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := svc.Apply(ctx, PutPolicy(pol("p1"))); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Diff(ctx, 1, -1, t0, nil); err != nil {
			t.Fatalf("Diff before the reload: %v", err)
		}
		svc.Store = truncatedStore{cs}
		if _, err := cs.Apply(ctx, PutPolicy(pol("p2"))); err != nil {
			t.Fatal(err)
		}
		if err := svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		var hg *HistoryGoneError
		if _, _, err := svc.Diff(ctx, 2, -1, t0, nil); !errors.As(err, &hg) || hg.Oldest != 3 {
			t.Fatalf("Diff from before the reload: %v, want oldest 3", err)
		}
	})
}

func TestHTTPChangesAndDiff(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2)
	get := func(t *testing.T, key, path string) (map[string]json.RawMessage, errorBody, int) {
		t.Helper()
		w := env.do("GET", path, key, "")
		if w.Code != http.StatusOK {
			return nil, decodeError(t, w), w.Code
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m, errorBody{}, w.Code
	}
	// The first request loads the store at seq 1.
	if _, eb, code := get(t, env.adminKey, "/admin/v1/changes"); code != http.StatusOK {
		t.Fatalf("changes: %d %+v", code, eb)
	}
	if w := env.do("PUT", "/admin/v1/policies/p1", env.adminKey, mustJSON(t, pol("p1"))); w.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	if w := env.do("POST", "/admin/v1/api-keys", env.adminKey, `{"id":"k2","subject":"alice"}`); w.Code != http.StatusCreated {
		t.Fatalf("POST api-keys: %d %s", w.Code, w.Body)
	}
	if w := env.do("DELETE", "/admin/v1/subjects/bob", env.adminKey, ""); w.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", w.Code, w.Body)
	}

	t.Run("changes", func(t *testing.T) {
		m, eb, code := get(t, env.adminKey, "/admin/v1/changes?since=1&limit=2")
		if code != http.StatusOK {
			t.Fatalf("%d %+v", code, eb)
		}
		want := `[{"seq":2,"kind":"policy","id":"p1","delete":false},{"seq":3,"kind":"api_key","id":"k2","delete":false}]`
		if string(m["object"]) != `"list"` || string(m["data"]) != want || string(m["has_more"]) != "true" || string(m["seq"]) != "4" {
			t.Errorf("changes: %v", m)
		}
		m, _, _ = get(t, env.adminKey, "/admin/v1/changes?since=3")
		if string(m["data"]) != `[{"seq":4,"kind":"subject","id":"bob","delete":true}]` || string(m["has_more"]) != "false" {
			t.Errorf("changes since 3: %s %s", m["data"], m["has_more"])
		}
	})
	t.Run("diff", func(t *testing.T) {
		m, eb, code := get(t, env.adminKey, "/admin/v1/diff?from=1&limit=1&profile=v1&time=2030-01-02T03:04:05Z")
		if code != http.StatusOK {
			t.Fatalf("%d %+v", code, eb)
		}
		// p1 gives alice read on 3 devices.
		if string(m["object"]) != `"impact"` || string(m["from"]) != "1" || string(m["to"]) != "4" || string(m["gained"]) != "3" ||
			string(m["details_truncated"]) != "true" {
			t.Errorf("diff: %v", m)
		}
		m, _, _ = get(t, env.adminKey, "/admin/v1/diff?from=2&to=1")
		if string(m["lost"]) != "3" || string(m["gained"]) != "0" {
			t.Errorf("diff from 2 to 1: %v", m)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			path, typ, field string
			code             int
		}{
			{"/admin/v1/diff?from=0", errTypeGone, "from", http.StatusGone},
			{"/admin/v1/diff?from=1&to=0", errTypeGone, "to", http.StatusGone},
			{"/admin/v1/changes?since=0", errTypeGone, "since", http.StatusGone},
			{"/admin/v1/diff", errTypeValidation, "from", http.StatusBadRequest},
			{"/admin/v1/diff?from=x", errTypeValidation, "from", http.StatusBadRequest},
			{"/admin/v1/diff?from=1&to=5", errTypeValidation, "to", http.StatusBadRequest},
			{"/admin/v1/diff?from=1&limit=10001", errTypeValidation, "limit", http.StatusBadRequest},
			{"/admin/v1/diff?from=1&profile=v9", errTypeValidation, "profile", http.StatusBadRequest},
			{"/admin/v1/diff?from=1&time=yesterday", errTypeValidation, "time", http.StatusBadRequest},
			{"/admin/v1/changes?limit=1001", errTypeValidation, "limit", http.StatusBadRequest},
			{"/admin/v1/changes?since=-1", errTypeValidation, "since", http.StatusBadRequest},
		} {
			_, eb, code := get(t, env.adminKey, tc.path)
			if code != tc.code || eb.Type != tc.typ || !slices.Contains(fieldNamesOf(eb), tc.field) {
				t.Errorf("%s: %d %s %v, want %d %s naming %s", tc.path, code, eb.Type, fieldNamesOf(eb), tc.code, tc.typ, tc.field)
			}
		}
		for _, path := range []string{"/admin/v1/diff?from=1", "/admin/v1/changes"} {
			if _, eb, code := get(t, env.aliceKey, path); code != http.StatusForbidden || eb.Type != errTypeForbidden {
				t.Errorf("%s as a non-admin: %d %s", path, code, eb.Type)
			}
		}
	})
}

// TestServiceDiffConcurrentWrites runs diffs and change log reads while
// the service writes: each diff sees a state and a history that agree
// (the diff from the start to a seq it returns gains what the writes up
// to that seq gave), and the race detector finds no unsynchronised access.
func TestServiceDiffConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	if _, err := store.Apply(ctx, testDirectory()...); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Store: store, Now: func() time.Time { return t0 }}
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	const writes = 40
	done := make(chan error, 1)
	go func() {
		for i := range writes {
			// Each write gives alice one new operation on the 3 devices.
			if err := svc.Apply(ctx, PutPolicy(pol(fmt.Sprintf("p%d", i), func(p *Policy) {
				p.Operations = []OperationRule{{Name: fmt.Sprintf("op%d", i)}}
			}))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		im, to, err := svc.Diff(ctx, 1, -1, t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if im.Gained != 3*(to-1) || im.Lost != 0 {
			t.Fatalf("Diff(1, %d) gained %d lost %d, want %d 0", to, im.Gained, im.Lost, 3*(to-1))
		}
		entries, _, seq, err := svc.ChangeLog(ctx, -1, 1000)
		if err != nil || int64(len(entries)) != seq-1 {
			t.Fatalf("ChangeLog: %d entries at seq %d, %v", len(entries), seq, err)
		}
	}
}

// TestChangeLogPagesKeepBatchesWhole walks the change log page by page,
// each page asked from the last seq of the previous one, as a client
// does: every change is seen once, whatever the limit, although the
// changes of one batch share a seq. A page ends before a batch that does
// not fit in it; a first batch larger than the limit comes whole.
func TestChangeLogPagesKeepBatchesWhole(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	if _, err := store.Apply(ctx, testDirectory()...); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Store: store, Now: func() time.Time { return t0 }}
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Batches of 1, 3, 2, 5 and 1 changes.
	n := 0
	for _, size := range []int{1, 3, 2, 5, 1} {
		var batch []Change
		for range size {
			batch = append(batch, PutPolicy(pol(fmt.Sprintf("p%d", n))))
			n++
		}
		if err := svc.Apply(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	all, more, _, err := svc.ChangeLog(ctx, -1, 1000)
	if err != nil || more || len(all) != n {
		t.Fatalf("whole log: %d entries, more %v, %v; want %d", len(all), more, err, n)
	}
	for limit := 1; limit <= n+1; limit++ {
		var got []ChangeLogEntry
		since := int64(-1)
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatalf("limit %d: no end after %d pages", limit, pages)
			}
			page, more, _, err := svc.ChangeLog(ctx, since, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				t.Fatalf("limit %d: empty page with more %v", limit, more)
			}
			first := page[0].Seq
			if len(page) > limit && slices.ContainsFunc(page, func(e ChangeLogEntry) bool { return e.Seq != first }) {
				t.Fatalf("limit %d: page of %d entries holds more than its first batch: %v", limit, len(page), page)
			}
			got = append(got, page...)
			since = page[len(page)-1].Seq
			if !more {
				break
			}
		}
		if !slices.Equal(got, all) {
			t.Errorf("limit %d: pages gave %v, want %v", limit, got, all)
		}
	}
}

// TestHistoryBytesBound checks that the history is bounded by the size of
// the records it holds as well as by their number: large policies
// rewritten again and again must not pin unbounded memory.
func TestHistoryBytesBound(t *testing.T) {
	big := strings.Repeat("x", maxDescriptionLen)
	var h changeHistory
	const n = 2 * MaxHistoryBytes / maxDescriptionLen // twice the byte bound, under MaxHistory
	for i := 1; i <= n; i++ {
		p := &Policy{ID: "p", Description: big, Status: Active, Effect: Allow,
			Subjects: Subjects{Users: []string{"alice"}}, Operations: []OperationRule{{Name: "read"}},
			Devices: DeviceSelector{All: true}, TokenLifetime: time.Hour}
		c := PutPolicy(p)
		c.Seq = int64(i)
		h.record([]Change{c}, []Change{PutPolicy(p)})
	}
	if h.bytes > MaxHistoryBytes {
		t.Errorf("history holds %d bytes of records, want at most %d", h.bytes, MaxHistoryBytes)
	}
	if len(h.entries) == 0 || len(h.entries) >= n {
		t.Fatalf("history holds %d of %d entries, want some dropped and some kept", len(h.entries), n)
	}
	if want := h.entries[0].seq - 1; h.base != want {
		t.Errorf("base %d, want %d (the last dropped seq)", h.base, want)
	}
	sum := 0
	for _, e := range h.entries {
		sum += e.size
	}
	if sum != h.bytes {
		t.Errorf("entries add up to %d bytes, history says %d", sum, h.bytes)
	}
}
