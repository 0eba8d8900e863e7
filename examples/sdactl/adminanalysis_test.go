package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// copyStore copies the service's store file, which the service replaces
// atomically: the copy is the state of one moment.
func (s *adminService) copyStore(name string) {
	s.t.Helper()
	writeFile(s.t, filepath.Join(s.dir, name), string(readFile(s.t, filepath.Join(s.dir, "store.json"))))
}

// TestAdminWhatIf: -what-if on the writing commands and what-if -f: the
// impact is printed and nothing is written.
func TestAdminWhatIf(t *testing.T) {
	s := startAdminService(t)
	s.api.do("PUT", "/admin/v1/subjects/bob", map[string]any{"id": "bob", "kind": "user", "groups": []string{"technicians"}}, 200)
	s.api.do("PUT", "/admin/v1/subjects/carol", map[string]any{"id": "carol", "kind": "user", "groups": []string{"technicians"}}, 200)

	// The service's profile is v1: set-temperature, allowed only under
	// constraints, is no grant.
	r := s.run(0, "", "policies", "create", "-what-if", "-id", "tech", "-groups", "technicians",
		"-ops", "read-data set-temperature(arg0 in 16..28)", "-all-devices")
	wantContains(t, "create -what-if", r.stdout, "2 grants gained, 0 grants lost\n", "CHANGE", "gained  read-data",
		"group technicians (2: bob, carol)  all devices (1: hvac-1)  2\n")
	wantContains(t, "create -what-if stderr", r.stderr, "nothing was written")
	s.api.do("GET", "/admin/v1/policies/tech", nil, 404)

	r = s.run(0, "", "policies", "delete", "roof", "-what-if", "-details", "10")
	wantContains(t, "delete -what-if", r.stdout, "0 grants gained, 1 grant lost\n", "lost    alice    hvac-1 (0123456789abcdef0123456789abcdef)  read-data")
	s.api.do("GET", "/admin/v1/policies/roof", nil, 200)

	r = s.run(0, "", "policies", "update", "roof", "-ops", "read-data configure", "-what-if")
	wantContains(t, "update -what-if", r.stdout, "1 grant gained, 0 grants lost\n", "gained  configure  user alice (1: alice)  ep:hvac-1 (1: hvac-1)  1\n")
	r = s.run(0, "", "subjects", "update", "alice", "-groups", "technicians", "-what-if")
	wantContains(t, "subject -what-if", r.stdout, "0 grants gained, 0 grants lost\n", "no subject gains or loses")
	r = s.run(0, "", "groups", "add-member", "juniors", "bob", "-what-if")
	wantContains(t, "add-member -what-if", r.stdout, "0 grants gained, 0 grants lost\n")
	r = s.run(0, "", "devices", "delete", "0123456789abcdef0123456789abcdef", "-what-if")
	wantContains(t, "device -what-if", r.stdout, "1 grant lost")

	writeFile(t, filepath.Join(s.dir, "changes.yaml"), `- kind: subject
  id: bob
  subject: {id: bob, kind: user}
- kind: policy
  id: roof
  policy:
    id: roof
    status: active
    effect: allow
    subjects: {groups: [technicians]}
    operations: [{name: read-data}]
    devices: {all: true}
    token_lifetime_seconds: 3600
`)
	r = s.run(0, "", "what-if", "-f", "changes.yaml", "-details", "5")
	wantContains(t, "what-if -f", r.stdout, "1 grant gained, 1 grant lost", "gained  carol", "lost    alice")
	// With the v2 profile, a constrained operation is a grant.
	writeFile(t, filepath.Join(s.dir, "v2.yaml"), `changes:
  - kind: policy
    id: roof
    policy: {id: roof, status: active, effect: allow, subjects: {users: [alice]}, devices: {all: true},
      operations: [{name: read-data}, {name: set-temperature, constraints: [{arg: 0, range: [16, 28]}]}],
      token_lifetime_seconds: 3600}
`)
	r = s.run(0, "", "what-if", "-f", "v2.yaml", "-profile", "v2")
	wantContains(t, "what-if v2", r.stdout, "1 grant gained, 0 grants lost\n", "gained  set-temperature(arg0 in 16..28)  user alice")
	r = s.run(0, "", "what-if", "-f", "v2.yaml")
	wantContains(t, "what-if v1", r.stdout, "0 grants gained, 0 grants lost\n")
	writeFile(t, filepath.Join(s.dir, "changes.json"), `{"changes":[{"kind":"policy","id":"roof","delete":true}],"time":"2026-06-01T00:00:00Z"}`)
	r = s.run(0, "", "what-if", "-f", "changes.json", "-json")
	var imp struct {
		Object string `json:"object"`
		Time   string `json:"time"`
		Lost   int    `json:"lost"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &imp); err != nil || imp.Object != "impact" || imp.Lost != 1 || imp.Time != "2026-06-01T00:00:00Z" {
		t.Fatalf("what-if -json: %v\n%s", err, r.stdout)
	}
	writeFile(t, filepath.Join(s.dir, "bad.yaml"), "- kind: policy\n  id: x\n  policy: {id: x, status: active, effect: allow}\n")
	r = s.run(3, "", "what-if", "-f", "bad.yaml")
	wantContains(t, "what-if invalid", r.stderr, `"changes[0].policy.`)
	writeFile(t, filepath.Join(s.dir, "typo.yaml"), "- kind: subject\n  id: bob\n  delete: true\n  deleted: true\n")
	r = s.run(3, "", "what-if", "-f", "typo.yaml")
	wantContains(t, "what-if typo", r.stderr, `"changes[0].deleted": "unknown field"`)
	s.run(2, "", "what-if")
	s.run(2, "", "what-if", "-f", "changes.yaml", "-details", "-1")
}

// TestAdminChangesDiff: the change log, the live diff between two of its
// points and the offline diff of two store files.
func TestAdminChangesDiff(t *testing.T) {
	s := startAdminService(t)
	r := s.run(0, "", "changes")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("changes:\n%s", r.stdout)
	}
	m := regexp.MustCompile(`the service is at seq (\d+)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("changes stderr: %s", r.stderr)
	}
	before, _ := strconv.ParseInt(m[1], 10, 64)
	wantContains(t, "changes", r.stdout, "put     policy   roof\n")
	s.copyStore("before.json")

	s.run(0, "", "policies", "update", "roof", "-ops", "read-data configure")
	s.run(0, "", "subjects", "delete", "alice")
	r = s.run(0, "", "changes", "-since", m[1])
	wantContains(t, "changes -since", r.stdout, "put     policy   roof\n", "delete  subject  alice\n")
	if strings.Count(r.stdout, "\n") != 4 { // header, roof, alice, alice's key
		t.Errorf("changes -since %s:\n%s", m[1], r.stdout)
	}
	r = s.run(0, "", "changes", "-since", m[1], "-limit", "1", "-json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("changes -json: %v\n%s", err, r.stdout)
	}
	if strings.Contains(r.stdout, "hash") {
		t.Fatalf("changes -json shows a hash: %s", r.stdout)
	}

	r = s.run(0, "", "diff", "-from", m[1], "-details", "10")
	wantContains(t, "diff", r.stdout, "from seq "+m[1]+" to seq ", "0 grants gained, 1 grant lost", "lost    alice")
	r = s.run(0, "", "diff", "-from", m[1], "-to", strconv.FormatInt(before+1, 10), "-json")
	var imp struct {
		Gained int   `json:"gained"`
		From   int64 `json:"from"`
		To     int64 `json:"to"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &imp); err != nil || imp.Gained != 1 || imp.From != before || imp.To != before+1 {
		t.Fatalf("diff -json: %v\n%s", err, r.stdout)
	}
	r = s.run(3, "", "diff", "-from", "0") // before the service started: gone
	wantContains(t, "diff gone", r.stderr, "410")

	// Offline: two copies of the store file, and an export document.
	s.copyStore("after.json")
	r = ok(t, s.dir, "admin", "diff", "before.json", "after.json", "-details", "10")
	wantContains(t, "offline diff", r.stdout, "0 grants gained, 1 grant lost", "lost    alice")
	r = ok(t, s.dir, "store", "export", "-store", "before.json", "before-export.json")
	r = ok(t, s.dir, "admin", "diff", "before-export.json", "after.json")
	wantContains(t, "offline diff of an export", r.stdout, "1 grant lost")
	writeFile(t, filepath.Join(s.dir, "junk.json"), `{"format":"sda-policy-store/1","policies":[],"extra":1}`)
	expect(t, 3, s.dir, "", "admin", "diff", "before.json", "junk.json")
	writeFile(t, filepath.Join(s.dir, "newer.json"), `{"format":"sda-policy-store/9"}`)
	r = expect(t, 3, s.dir, "", "admin", "diff", "before.json", "newer.json")
	wantContains(t, "newer format", r.stderr, "newer")
	expect(t, 4, s.dir, "", "admin", "diff", "before.json", "missing.json")
	s.run(2, "", "diff")
	s.run(2, "", "diff", "-from", "yesterday")
	s.run(2, "", "changes", "-since", "-3")
	s.run(2, "", "diff", "before.json")
	s.run(2, "", "diff", "before.json", "after.json", "-from", "1")
}
