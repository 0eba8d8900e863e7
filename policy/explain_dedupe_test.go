package policy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestExplainOverlappingKeys checks that a policy found by several of the
// pair's (subject key, device key) pairs is explained once.
func TestExplainOverlappingKeys(t *testing.T) {
	both := func(p *Policy) {
		p.Subjects = Subjects{Users: []string{"alice"}, Groups: []string{"techs"}}
		p.Devices = DeviceSelector{IDs: []string{dev1}, EndpointNames: []string{"hvac-1"}}
	}
	t.Run("matched once", func(t *testing.T) {
		e := explainEngine(t, pol("p", both))
		x := mustExplain(t, e, req("alice", []string{"ep:hvac-1"}, "read"))
		pe := pairOf(t, x, "ep:hvac-1", "read")
		if len(pe.Matched) != 1 || pe.Matched[0].Policy != "p" {
			t.Errorf("matched %+v, want p once", pe.Matched)
		}
		ref, err := refExplain(e, req("alice", []string{"ep:hvac-1"}, "read"), &refStats{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ref, x); diff != "" {
			t.Errorf("explanation differs from the reference (-ref +got):\n%s", diff)
		}
	})
	t.Run("deny listed once", func(t *testing.T) {
		e := explainEngine(t, pol("d", both, denyEffect))
		x := mustExplain(t, e, req("alice", []string{"ep:hvac-1"}, "read"))
		pe := pairOf(t, x, "ep:hvac-1", "read")
		if len(pe.Matched) != 1 || len(pe.DenyPolicies) != 1 {
			t.Errorf("matched %+v, deny policies %v", pe.Matched, pe.DenyPolicies)
		}
	})
	t.Run("near-miss budget counts each policy once", func(t *testing.T) {
		// Inactive policies matching the pair through four key pairs
		// each, and "a" for another device: counted once each, the
		// inactive ones leave room in the candidates examined for "a",
		// which comes first.
		ps := []*Policy{pol("a", devices(DeviceSelector{IDs: []string{dev2}}))}
		for i := range maxNearMissCandidates / 3 {
			ps = append(ps, pol(fmt.Sprintf("z%04d", i), both, inactive))
		}
		e := explainEngine(t, ps...)
		x := mustExplain(t, e, req("alice", []string{"ep:hvac-1"}, "read"))
		got := missIDs(pairOf(t, x, "ep:hvac-1", "read"))
		if want := []string{"a", "z0000", "z0001"}; !slices.Equal(got, want) {
			t.Errorf("near misses %v, want %v", got, want)
		}
	})
}
