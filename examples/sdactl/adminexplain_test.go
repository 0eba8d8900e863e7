package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAdminExplain: an allowed and a denied request, explained.
func TestAdminExplain(t *testing.T) {
	s := startAdminService(t)
	s.run(0, "", "policies", "create", "-id", "ops", "-users", "alice", "-ops", "update-firmware", "-endpoint-names", "hvac-9")

	r := s.run(0, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data")
	wantContains(t, "explain allowed", r.stdout, "decision: ALLOWED until ", "policies: roof\n", "scope:    read-data\n",
		"ep:hvac-1 (hvac-1, 0123456789abcdef0123456789abcdef) read-data: allowed until ", "matched:   roof (allow", "lifetime:  roof\n")

	r = s.run(1, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data update-firmware")
	wantContains(t, "explain denied", r.stdout, "decision: DENIED\n",
		"because:  update-firmware on ep:hvac-1: no allow policy applies (no_allow_policy)",
		"read-data: allowed", "update-firmware: DENIED: no allow policy applies (no_allow_policy)\n",
		"near miss: ops (allow): device: ")
	wantContains(t, "explain denied stderr", r.stderr, "denied")

	r = s.run(1, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "configure", "-json")
	var ex struct {
		Object  string `json:"object"`
		Allowed bool   `json:"allowed"`
		Pairs   []struct {
			Reason string `json:"reason"`
		} `json:"pairs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.Object != "explanation" || ex.Allowed || ex.Pairs[0].Reason != "no_allow_policy" {
		t.Fatalf("explain -json: %v\n%s", err, r.stdout)
	}
	r = s.run(1, "", "explain", "-subject", "mallory", "-aud", "ep:hvac-1", "-ops", "read-data")
	wantContains(t, "explain unknown subject", r.stdout, "unknown_subject")
	// Past the policy's validity: a -time in the future.
	s.run(0, "", "policies", "update", "roof", "-valid-until", "2030-01-01T00:00:00Z")
	r = s.run(1, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data", "-time", "2031-01-01T00:00:00Z")
	wantContains(t, "explain later", r.stdout, "near miss: roof (allow): valid_until: ")

	s.run(2, "", "explain", "-aud", "ep:hvac-1", "-ops", "read-data")
	s.run(2, "", "explain", "-subject", "alice", "-ops", "read-data")
	s.run(2, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1")
	s.run(2, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data", "-time", "now")
	s.run(2, "", "explain", "-subject", "alice", "-aud", "ep:hvac-1", "-ops", "read-data", "-profile", "v3")
	r = s.run(3, "", "explain", "-subject", "alice", "-aud", "hvac-1", "-ops", "read-data")
	wantContains(t, "explain bad aud", r.stderr, `"aud[0]"`)
}

// TestAdminTest: policy tests against the service and offline, a passing
// and a failing suite, with the failures explained.
func TestAdminTest(t *testing.T) {
	s := startAdminService(t)
	s.api.do("PUT", "/admin/v1/subjects/bob", map[string]any{"id": "bob", "kind": "user", "groups": []string{"juniors"}}, 200)
	// One time for every run, so that the service's report and the
	// offline one agree even when they are made in different seconds.
	writeFile(t, filepath.Join(s.dir, "pass.yaml"), "time: "+time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)+"\n"+`tests:
  - name: alice may read hvac-1
    subject: alice
    aud: [ep:hvac-1]
    operations: [read-data]
    expect: allow
  - name: no junior may update-firmware anywhere
    group: juniors
    devices: {all: true}
    operations: [update-firmware]
    expect: deny
`)
	r := s.run(0, "", "test", "pass.yaml")
	wantContains(t, "test pass", r.stdout, "PASS  alice may read hvac-1 (1 checked)\n", "PASS  no junior may update-firmware anywhere (1 checked)\n", "all 2 tests passed\n")

	s.run(0, "", "policies", "create", "-id", "juniors-fw", "-groups", "juniors", "-ops", "update-firmware", "-all-devices")
	r = s.run(1, "", "test", "pass.yaml")
	wantContains(t, "test fail", r.stdout, "PASS  alice may read hvac-1",
		"FAIL  no junior may update-firmware anywhere (1 checked)\n",
		"bob on hvac-1 (0123456789abcdef0123456789abcdef) update-firmware: allow, expected deny\n",
		"matched:   juniors-fw (allow", "1 of 2 tests failed\n")
	wantContains(t, "test fail stderr", r.stderr, "1 of 2 tests failed")

	// Offline, on a copy of the store file: the same report.
	s.copyStore("copy.json")
	r2 := expect(t, 1, s.dir, "", "admin", "test", "-store", "copy.json", "pass.yaml")
	if r2.stdout != r.stdout {
		t.Errorf("offline report differs:\n%s\nservice's:\n%s", r2.stdout, r.stdout)
	}
	r = expect(t, 1, s.dir, "", "admin", "test", "-store", "copy.json", "-json", "pass.yaml")
	var rep struct {
		Passed, Failed int
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Passed != 1 || rep.Failed != 1 {
		t.Fatalf("test -json: %v\n%s", err, r.stdout)
	}

	writeFile(t, filepath.Join(s.dir, "typo.yaml"), "tests:\n  - name: x\n    subject: alice\n    aud: [ep:hvac-1]\n    operations: [read-data]\n    expected: allow\n")
	r = s.run(3, "", "test", "typo.yaml")
	wantContains(t, "test typo", r.stderr, "expected")
	expect(t, 3, s.dir, "", "admin", "test", "-store", "copy.json", "typo.yaml")
	s.run(2, "", "test")
	s.run(4, "", "test", "missing.yaml")
	if err := os.Remove(filepath.Join(s.dir, "copy.json")); err != nil {
		t.Fatal(err)
	}
	expect(t, 4, s.dir, "", "admin", "test", "-store", "copy.json", "pass.yaml")
}
