package policy

import (
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
	// The device keys, the operations and the audiences: one slice each,
	// growing at most twice for three entries, and one device key string.
	if allocs > 6 {
		t.Errorf("validating a request of 1 audience and 3 operations allocates %.0f times, want at most 6", allocs)
	}
}
