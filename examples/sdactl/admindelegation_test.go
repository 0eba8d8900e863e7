package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/policy"
)

// TestAdminPolicyDelegation: -delegate-depth and -delegate-ops set,
// change and remove a policy's delegation; show prints it; an update
// that names neither keeps it; the refusals and their exit codes.
func TestAdminPolicyDelegation(t *testing.T) {
	s := startAdminService(t)
	delegation := func() *policy.DelegationRule {
		t.Helper()
		var p policy.Policy
		s.record("/admin/v1/policies/sub", &p)
		return p.Delegation
	}
	want := func(what string, d *policy.DelegationRule) {
		t.Helper()
		if got := delegation(); !reflect.DeepEqual(got, d) {
			t.Fatalf("%s: the service holds %+v, want %+v", what, got, d)
		}
	}

	r := s.run(0, "", "policies", "create", "-id", "sub", "-users", "alice", "-all-devices", "-ops", "read-data configure",
		"-delegate-depth", "2", "-delegate-ops", "read-data")
	wantContains(t, "create stdout", r.stdout, "delegation:  depth 2, operations read-data\n")
	want("create", &policy.DelegationRule{MaxDepth: 2, Operations: []string{"read-data"}})

	s.run(0, "", "policies", "update", "sub", "-name", "Subcontracting")
	want("an update of another field", &policy.DelegationRule{MaxDepth: 2, Operations: []string{"read-data"}})

	// explain shows what a v2 token would let alice pass on, and which
	// matched policy lets it; a v1 token is never delegable.
	r = s.run(0, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data configure", "-profile", "v2")
	wantContains(t, "explain v2", r.stdout, "delegable: depth 2, operations read-data\n",
		"matched:   sub (allow, until ", ", delegable depth 2)\n")
	r = s.run(0, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data", "-profile", "v1")
	if strings.Contains(r.stdout, "delegable: ") {
		t.Errorf("explain v1 names a delegation:\n%s", r.stdout)
	}

	r = s.run(0, "", "policies", "update", "sub", "-delegate-ops", "")
	wantContains(t, "update stdout", r.stdout, "delegation:  depth 2, every operation\n")
	want("-delegate-ops \"\"", &policy.DelegationRule{MaxDepth: 2})

	s.run(0, "", "policies", "update", "sub", "-delegate-depth", "1")
	want("-delegate-depth 1", &policy.DelegationRule{MaxDepth: 1})

	s.run(0, "", "policies", "update", "sub", "-delegate-ops", "configure, read-data")
	want("-delegate-ops configure,read-data", &policy.DelegationRule{MaxDepth: 1, Operations: []string{"configure", "read-data"}})

	r = s.run(0, "", "policies", "update", "sub", "-delegate-depth", "0")
	want("-delegate-depth 0", nil)
	if r.stdout == "" || strings.Contains(r.stdout, "delegation:") {
		t.Errorf("show of a policy without delegation:\n%s", r.stdout)
	}

	// Refusals.
	s.run(exitUsage, "", "policies", "update", "sub", "-delegate-ops", "read-data")                      // not delegable: no depth
	s.run(exitUsage, "", "policies", "update", "sub", "-delegate-depth", "-1")                           // negative
	s.run(exitInput, "", "policies", "update", "sub", "-delegate-depth", "9")                            // the service's bound
	s.run(exitInput, "", "policies", "update", "sub", "-delegate-depth", "1", "-delegate-ops", "reboot") // not an operation of the policy
	want("after the refusals", nil)
}
