package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestValidateRequestAllocations checks that validating a well-formed
// request does not format field names it will not report: validation runs
// before every decision, and formatting one name per operation cost about a
// third of a decision.
func TestValidateRequestAllocations(t *testing.T) {
	r := &Request{Subject: "alice", Audience: []string{"ep:hvac-1"},
		Operations: []string{"read-data", "configure", "update-firmware"}, Time: time.Unix(1e9, 0)}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, _, err := validateRequest(r); err != nil {
			t.Fatal(err)
		}
	})
	// The devices, the operations and the audiences: one slice each, sized
	// for the request, and the device keys: a slice and one string.
	if allocs > 6 {
		t.Errorf("validating a request of 1 audience and 3 operations allocates %.0f times, want at most 6", allocs)
	}
}

// TestDecideAllocations checks that a decision allocates only what it
// returns (the Decision, its grants and its list of policies): with a
// large engine the collector runs seldom, so that every other allocation
// is memory out of cache, which made a decision at 1,000,000 policies
// several times slower than the same decision on a small heap.
func TestDecideAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	var e Engine
	if err := e.Load(benchSnapshot(100)); err != nil {
		t.Fatal(err)
	}
	req := benchRequest()
	allocs := testing.AllocsPerRun(100, func() {
		if d, err := e.Decide(req); err != nil || !d.Allowed {
			t.Fatalf("benchmark request not allowed: %+v %v", d, err)
		}
	})
	if allocs > 3 {
		t.Errorf("an allowed decision allocates %.0f times, want at most 3 (the Decision, its grants, its policies)", allocs)
	}
}

// TestDecideBuffersNotShared checks that a Decision shares nothing with
// the working memory that later decisions reuse: a decision read after
// others (allowed and denied, on other devices and operations) is what it
// was when returned.
func TestDecideBuffersNotShared(t *testing.T) {
	sameDecideBuf(t)
	var e Engine
	if err := e.Load(benchSnapshot(100)); err != nil {
		t.Fatal(err)
	}
	first, err := e.Decide(benchRequest())
	if err != nil || !first.Allowed {
		t.Fatalf("benchmark request not allowed: %+v %v", first, err)
	}
	want, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	others := []*Request{
		{Subject: "u1", Audience: []string{"ep:ep-1", "ep:ep-2", "ep:ep-3"}, Operations: []string{"op1", "op8", "read", "op-deny"}, Time: t0},
		{Subject: "u0", Audience: []string{"id:" + fmt.Sprintf("%032x", 2)}, Operations: []string{"read"}, Time: t0},
		{Subject: "u0", Audience: []string{"ep:nowhere"}, Operations: []string{"read"}, Time: t0},
	}
	for range 3 {
		for _, r := range others {
			if _, err := e.Decide(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decision changed by later decisions:\n got %s\nwant %s", got, want)
	}
}

// TestLoadAllocations checks that loading a snapshot allocates a bounded
// number of times per policy (its directory included): at 1,000,000
// policies the allocations, and the collections they cause while the
// heap grows, were most of the time Load took. Validation and copying
// build no field names, sorted key lists or index keys they do not keep.
func TestLoadAllocations(t *testing.T) {
	const n = 10000
	snap := benchSnapshot(n)
	allocs := testing.AllocsPerRun(2, func() {
		var e Engine
		if err := e.Load(snap); err != nil {
			t.Fatal(err)
		}
	})
	if per := allocs / n; per > 16 {
		t.Errorf("loading %d policies allocates %.1f times per policy, want at most 16", n, per)
	}
}

// TestExplainBuffersNotShared checks that an Explanation shares nothing
// with the working memory that later explanations and decisions reuse.
func TestExplainBuffersNotShared(t *testing.T) {
	sameDecideBuf(t)
	var e Engine
	if err := e.Load(benchSnapshot(100)); err != nil {
		t.Fatal(err)
	}
	denied := benchRequest()
	denied.Operations = []string{"read", "op-none"}
	for _, r := range []*Request{benchRequest(), denied} {
		first, err := e.Explain(r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []*Request{
			{Subject: "u1", Audience: []string{"ep:ep-1", "ep:ep-2", "ep:ep-3"}, Operations: []string{"op1", "op8", "read", "op-deny"}, Time: t0},
			{Subject: "u0", Audience: []string{"ep:nowhere", "ep:ep-4"}, Operations: []string{"read"}, Time: t0},
		} {
			if _, err := e.Explain(o); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Decide(o); err != nil {
				t.Fatal(err)
			}
		}
		got, err := json.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("explanation changed by later requests:\n got %s\nwant %s", got, want)
		}
	}
}

// TestDecideBufReleaseBounded checks that the working memory put back in
// the pool after a large request (many candidates, 50 devices x 20
// operations) does not keep large buffers, which every later decision
// would clear.
func TestDecideBufReleaseBounded(t *testing.T) {
	b := &decideBuf{
		cands:   make([]*compiled, 0, 1000),
		byID:    make([]*compiled, 0, 1000),
		results: make([]pairResult, 0, 50*20),
		used:    make([]*compiled, 0, 1000),
	}
	b.release()
	if cap(b.cands) > maxPooledCands || cap(b.byID) > maxPooledCands || cap(b.results) > maxPooledResults || cap(b.used) > maxPooledCands {
		t.Errorf("released buffer keeps %d candidates, %d by id, %d results, %d policies used", cap(b.cands), cap(b.byID), cap(b.results), cap(b.used))
	}
}

// sameDecideBuf makes every decision and explanation until the test ends
// take the same working memory, so that a test of what they share with
// later ones sees the reuse it checks: sync.Pool alone may hand out a new
// buffer at any time (after a collection, and at random under the race
// detector). It empties the pool of other buffers first.
func sameDecideBuf(t *testing.T) {
	shared := new(decideBuf)
	orig := decideBufs.New
	decideBufs.New = func() any { return shared }
	t.Cleanup(func() { decideBufs.New = orig })
	for range 10000 {
		if decideBufs.Get() == shared {
			return
		}
	}
	t.Fatal("the pool keeps handing out other buffers")
}
