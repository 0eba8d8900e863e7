package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/testca"
	"github.com/securedeviceaccess/sda/policy"
)

// adminService is an authorization service for the admin commands' tests:
// bootstrapped with -init (the key in admin.apikey) and seeded by
// admin.seed (alice, hvac-1, the policy roof, alice's key in alice.apikey).
type adminService struct {
	t    *testing.T
	dir  string
	srv  *server
	api  *admin
	env  []string // SDA_URL and SDA_API_KEY_FILE
	flag []string // -url and -api-key-file
}

func startAdminService(t *testing.T, extra ...string) *adminService {
	t.Helper()
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	secret := strings.TrimSpace(ok(t, dir, "authserver", "-store", "store.json", "-init").stdout)
	writeFile(t, filepath.Join(dir, "admin.apikey"), secret+"\n")
	args := append([]string{"authserver", "-store", "store.json", "-key", "anchor.key", "-listen", "127.0.0.1:0"}, extra...)
	if len(extra) == 0 {
		args = append(args, "-insecure-http")
	}
	srv := start(t, dir, args...)
	api := &admin{t: t, url: srv.addr, secret: secret}
	if len(extra) == 0 {
		api.seed(dir)
	}
	return &adminService{t: t, dir: dir, srv: srv, api: api,
		env:  []string{"SDA_URL=" + srv.addr, "SDA_API_KEY_FILE=admin.apikey"},
		flag: []string{"-url", srv.addr, "-api-key-file", "admin.apikey"}}
}

// run runs "sdactl admin ARGS" with the service in the environment and
// fails unless it exits with code.
func (s *adminService) run(code int, stdin string, args ...string) result {
	s.t.Helper()
	r := sdactlEnv(s.t, s.dir, s.env, stdin, append([]string{"admin"}, args...)...)
	if r.code != code {
		s.t.Fatalf("sdactl admin %s: want exit %d, got %v", strings.Join(args, " "), code, r)
	}
	return r
}

// record reads a record through the administration API.
func (s *adminService) record(path string, v any) {
	s.t.Helper()
	if err := json.Unmarshal(s.api.do("GET", path, nil, 200), v); err != nil {
		s.t.Fatal(err)
	}
}

// TestAdminPolicies: create from flags, from YAML and from JSON, show,
// list, update of the named fields only, delete, and the refusals with
// their exit codes.
func TestAdminPolicies(t *testing.T) {
	s := startAdminService(t)

	r := s.run(0, "", "policies", "create", "-id", "rooftop", "-name", "Rooftop technicians",
		"-groups", "technicians, juniors", "-users", "alice", "-ops", "read-data set-temperature(arg0 in 16..28, arg1 = \"eco\")",
		"-attr", "site=rooftop,annex", "-attr", "model=x2", "-lifetime", "2h", "-valid-from", "2026-01-01T00:00:00Z")
	wantContains(t, "create stderr", r.stderr, "created policy rooftop")
	wantContains(t, "create stdout", r.stdout, "id:          rooftop\n", "operations:  read-data set-temperature(arg0 in 16..28, arg1 = \"eco\")\n",
		"devices:     attributes model=x2 site=rooftop,annex\n", "lifetime:    2h0m0s\n", "valid:       from 2026-01-01T00:00:00Z\n")
	var p policy.Policy
	s.record("/admin/v1/policies/rooftop", &p)
	eco := "eco"
	want := policy.Policy{ID: "rooftop", Name: "Rooftop technicians", Status: policy.Active, Effect: policy.Allow,
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Subjects:  policy.Subjects{Users: []string{"alice"}, Groups: []string{"technicians", "juniors"}},
		Operations: []policy.OperationRule{{Name: "read-data"}, {Name: "set-temperature", Constraints: []policy.ArgConstraint{
			{Arg: 0, Range: &[2]int64{16, 28}}, {Arg: 1, Equals: &policy.ArgValue{Text: &eco}}}}},
		Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": {"rooftop", "annex"}, "model": {"x2"}}},
		TokenLifetime: 2 * time.Hour}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("the service holds\n%+v\nwant\n%+v", p, want)
	}

	// An update changes the named fields and keeps the others.
	s.run(0, "", "policies", "update", "rooftop", "-inactive", "-ops", "read-data", "-valid-from", "", "-valid-until", "2030-01-01T00:00:00Z")
	var q policy.Policy
	s.record("/admin/v1/policies/rooftop", &q)
	want.Status, want.Operations = policy.Inactive, []policy.OperationRule{{Name: "read-data"}}
	want.ValidFrom, want.ValidUntil = time.Time{}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("after update the service holds\n%+v\nwant\n%+v", q, want)
	}
	s.run(0, "", "policies", "update", "rooftop", "-inactive=false", "-all-devices")
	s.record("/admin/v1/policies/rooftop", &q)
	if q.Status != policy.Active || !q.Devices.All || q.Devices.Attributes != nil || q.Name != want.Name {
		t.Fatalf("after update: %+v", q)
	}

	// The table and the JSON array.
	r = s.run(0, "", "policies", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "roof ") || !strings.HasPrefix(lines[2], "rooftop ") {
		t.Fatalf("policies list:\n%s", r.stdout)
	}
	wantContains(t, "policies list", lines[2], "allow", "active", "users alice; groups technicians,juniors", "all devices", "until 2030-01-01T00:00:00Z")
	r = s.run(0, "", "policies", "list", "-json")
	var list []policy.Policy
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || list[1].ID != "rooftop" {
		t.Fatalf("policies list -json: %v\n%s", err, r.stdout)
	}
	r = s.run(0, "", "policies", "show", "-json", "roof")
	var roof policy.Policy
	if err := json.Unmarshal([]byte(r.stdout), &roof); err != nil || roof.ID != "roof" || roof.TokenLifetime != time.Hour {
		t.Fatalf("policies show -json: %v\n%s", err, r.stdout)
	}

	// From files: YAML and JSON, strictly; flags override the file.
	writeFile(t, filepath.Join(s.dir, "p.yaml"), `id: from-yaml
status: active
effect: deny
subjects:
  groups: [juniors]
operations:
  - name: update-firmware
devices:
  all: true
`)
	s.run(0, "", "policies", "create", "-f", "p.yaml")
	s.record("/admin/v1/policies/from-yaml", &q)
	if q.Effect != policy.Deny || q.Subjects.Groups[0] != "juniors" || !q.Devices.All || q.TokenLifetime != 0 {
		t.Fatalf("created from YAML: %+v", q)
	}
	writeFile(t, filepath.Join(s.dir, "p.json"), `{"id":"from-json","status":"active","effect":"allow",
		"subjects":{"users":["alice"]},"operations":[{"name":"read-data"}],"devices":{"ids":["0123456789abcdef0123456789abcdef"]},
		"token_lifetime_seconds":600}`)
	s.run(0, "", "policies", "create", "-f", "p.json", "-id", "from-json-2", "-lifetime", "20m")
	// YAML in flow style, which starts as JSON does.
	writeFile(t, filepath.Join(s.dir, "flow.yaml"), `{id: flow, status: active, effect: allow, subjects: {users: [alice]},
  operations: [{name: read-data}], devices: {all: true}, token_lifetime_seconds: 60}`)
	s.run(0, "", "policies", "create", "-f", "flow.yaml")
	s.record("/admin/v1/policies/from-json-2", &q)
	if q.TokenLifetime != 20*time.Minute || q.Devices.IDs[0] != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("created from JSON with flags: %+v", q)
	}
	writeFile(t, filepath.Join(s.dir, "typo.yaml"), "id: typo\nstatus: active\neffect: allow\nsubjects: {users: [alice]}\n"+
		"operations: [{name: read-data}]\ndevices: {all: true}\ntoken_lifetime_seconds: 600\ndevice: {all: false}\n")
	r = s.run(3, "", "policies", "create", "-f", "typo.yaml")
	wantContains(t, "unknown field", r.stderr, `unknown field "device"`)
	s.api.do("GET", "/admin/v1/policies/typo", nil, 404)

	// Refusals.
	r = s.run(1, "", "policies", "create", "-id", "roof", "-users", "alice", "-ops", "read-data", "-all-devices")
	wantContains(t, "create existing", r.stderr, "exists")
	r = s.run(3, "", "policies", "create", "-id", "bad", "-users", "alice", "-ops", "read-data") // no devices
	wantContains(t, "invalid policy", r.stderr, `"policy.devices"`)
	s.run(2, "", "policies", "create", "-users", "alice") // no id
	s.run(2, "", "policies", "create", "-id", "x", "-ops", "read data!")
	s.run(2, "", "policies", "create", "-id", "x", "-effect", "maybe")
	s.run(2, "", "policies", "create", "-id", "x", "-valid-until", "tomorrow")
	s.run(2, "", "policies", "create", "-id", "x", "-attr", "site")
	s.run(2, "", "policies", "update", "roof")                                       // nothing to change
	s.run(2, "", "policies", "update", "roof", "-what-if", "-details", "3", "-json") // nor here
	s.run(2, "", "policies", "update", "roof", "-id", "roof2")
	s.run(3, "", "policies", "update", "nope", "-inactive")
	s.run(3, "", "policies", "show", "nope")
	s.run(2, "", "policies", "show")
	s.run(4, "", "policies", "create", "-f", "missing.yaml")

	s.run(0, "", "policies", "delete", "rooftop")
	s.api.do("GET", "/admin/v1/policies/rooftop", nil, 404)
	s.run(3, "", "policies", "delete", "rooftop")
}

func TestAdminPoliciesFromStdin(t *testing.T) {
	s := startAdminService(t)
	s.run(0, `{"id":"in","status":"active","effect":"allow","subjects":{"users":["alice"]},
		"operations":[{"name":"read-data"}],"devices":{"all":true},"token_lifetime_seconds":600}`,
		"policies", "create", "-f", "-")
	s.api.do("GET", "/admin/v1/policies/in", nil, 200)
	s.run(0, "operations: [{name: configure}]\nid: in\nstatus: inactive\neffect: allow\nsubjects: {users: [alice]}\ndevices: {all: true}\ntoken_lifetime_seconds: 60\n",
		"policies", "update", "in", "-f", "-")
	var p policy.Policy
	s.record("/admin/v1/policies/in", &p)
	if p.Status != policy.Inactive || p.Operations[0].Name != "configure" || p.TokenLifetime != time.Minute {
		t.Fatalf("after update -f -: %+v", p)
	}
}

// TestAdminSubjectsDevicesKeys: the other collections, and the API key's
// secret printed once on stdout.
func TestAdminSubjectsDevicesKeys(t *testing.T) {
	s := startAdminService(t)

	s.run(0, "", "subjects", "create", "-id", "bob", "-groups", "technicians")
	s.run(0, "", "subjects", "create", "-id", "robot", "-kind", "application")
	s.run(0, "", "subjects", "update", "bob", "-groups", "technicians,juniors")
	var sub policy.Subject
	s.record("/admin/v1/subjects/bob", &sub)
	if sub.Kind != policy.User || !reflect.DeepEqual(sub.Groups, []string{"technicians", "juniors"}) {
		t.Fatalf("subject bob: %+v", sub)
	}
	r := s.run(0, "", "subjects", "list")
	wantContains(t, "subjects list", r.stdout, "bob    user         technicians,juniors\n", "robot  application  -\n")
	r = s.run(0, "", "subjects", "show", "bob")
	wantContains(t, "subjects show", r.stdout, "groups: technicians, juniors\n")
	s.run(2, "", "subjects", "create", "-id", "x", "-kind", "robot")

	s.run(0, "", "devices", "create", "-id", "00112233445566778899aabbccddeeff", "-endpoint-name", "hvac-2", "-attr", "site=roof")
	s.run(0, "", "devices", "update", "00112233445566778899aabbccddeeff", "-attr", "site=annex", "-attr", "model=x2")
	var dev policy.Device
	s.record("/admin/v1/devices/00112233445566778899aabbccddeeff", &dev)
	if dev.EndpointName != "hvac-2" || !reflect.DeepEqual(dev.Attributes, map[string]string{"site": "annex", "model": "x2"}) {
		t.Fatalf("device: %+v", dev)
	}
	r = s.run(0, "", "devices", "list")
	wantContains(t, "devices list", r.stdout, "00112233445566778899aabbccddeeff  hvac-2    model=x2 site=annex\n")
	// Another device with the same endpoint name: the service's conflict.
	s.run(1, "", "devices", "create", "-id", "ffeeddccbbaa99887766554433221100", "-endpoint-name", "hvac-2")
	s.run(3, "", "devices", "create", "-id", "not-hex")

	// An API key: the secret on stdout only, once; it works.
	r = s.run(0, "", "api-keys", "create", "-id", "bob-key", "-subject", "bob")
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "sda_") || strings.Contains(r.stderr, secret) {
		t.Fatalf("api-keys create: stdout %q stderr %q", r.stdout, r.stderr)
	}
	writeFile(t, filepath.Join(s.dir, "bob.apikey"), secret+"\n")
	// bob is no administrator: 403, exit 1.
	r = expect(t, 1, s.dir, "", "admin", "policies", "list", "-url", s.srv.addr, "-api-key-file", "bob.apikey")
	wantContains(t, "not an administrator", r.stderr, "403")
	r = s.run(0, "", "api-keys", "show", "bob-key")
	wantContains(t, "api-keys show", r.stdout, "subject: bob\n", "admin:   false\n")
	r = s.run(0, "", "api-keys", "list", "-json")
	if strings.Contains(r.stdout, "hash") || strings.Contains(r.stdout, secret) {
		t.Fatalf("api-keys list -json shows a hash or secret:\n%s", r.stdout)
	}
	s.run(1, "", "api-keys", "create", "-id", "bob-key", "-subject", "bob") // exists: 409
	s.run(3, "", "api-keys", "create", "-id", "ghost-key", "-subject", "ghost")
	s.run(2, "", "api-keys", "create", "-id", "x")
	r = s.run(0, "", "api-keys", "create", "-id", "admin2", "-subject", "bob", "-admin", "-json")
	var k struct {
		Admin  bool   `json:"admin"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || !k.Admin || k.Secret == "" {
		t.Fatalf("api-keys create -json: %v\n%s", err, r.stdout)
	}

	// Deleting bob deletes his keys.
	s.run(0, "", "subjects", "delete", "bob")
	s.api.do("GET", "/admin/v1/api-keys/bob-key", nil, 404)
	s.run(0, "", "devices", "delete", "00112233445566778899aabbccddeeff")
	s.run(3, "", "devices", "delete", "00112233445566778899aabbccddeeff")
	s.run(0, "", "api-keys", "delete", "alice-key")
	s.run(3, "", "api-keys", "show", "alice-key")
}

// TestAdminService: the service and key from flags or the environment,
// and the failures to reach or use it.
func TestAdminService(t *testing.T) {
	s := startAdminService(t)
	noEnv := []string{"SDA_URL=", "SDA_API_KEY_FILE="}
	run := func(code int, environ []string, args ...string) result {
		t.Helper()
		r := sdactlEnv(t, s.dir, environ, "", append([]string{"admin", "subjects", "list"}, args...)...)
		if r.code != code {
			t.Fatalf("sdactl admin subjects list %s (env %q): want exit %d, got %v", strings.Join(args, " "), environ, code, r)
		}
		return r
	}
	run(0, noEnv, s.flag...)
	run(0, s.env)
	run(0, []string{"SDA_URL=" + s.srv.addr}, "-api-key-file", "admin.apikey")
	// Flags win over the environment.
	run(0, []string{"SDA_URL=http://127.0.0.1:1", "SDA_API_KEY_FILE=missing"}, s.flag...)
	r := run(2, noEnv)
	wantContains(t, "no url", r.stderr, "SDA_URL")
	r = run(2, []string{"SDA_URL=" + s.srv.addr, "SDA_API_KEY_FILE="})
	wantContains(t, "no key", r.stderr, "-api-key-file", "SDA_API_KEY_FILE")
	run(2, noEnv, "-url", "http://example.com", "-api-key-file", "admin.apikey") // the key only over https or loopback
	run(4, noEnv, "-url", s.srv.addr, "-api-key-file", "missing.apikey")
	writeFile(t, filepath.Join(s.dir, "wrong.apikey"), "sda_wrong\n")
	run(3, noEnv, "-url", s.srv.addr, "-api-key-file", "wrong.apikey") // 401
	run(4, noEnv, "-url", "http://"+freeAddr(t), "-api-key-file", "admin.apikey", "-timeout", "5s")
	run(2, noEnv, "-url", s.srv.addr, "-api-key-file", "admin.apikey", "extra")
	run(3, noEnv, "-url", s.srv.addr, "-api-key-file", "admin.apikey", "-ca", "admin.apikey") // no certificate

	// "sdactl admin" alone lists the commands; "sdactl help admin" explains.
	r = expect(t, 2, s.dir, "", "admin")
	wantContains(t, "sdactl admin", r.stderr, "admin policies create", "admin groups add-member")
	r = expect(t, 2, s.dir, "", "admin", "policies")
	wantContains(t, "sdactl admin policies", r.stderr, "admin policies update")
	if strings.Contains(r.stderr, "admin subjects") {
		t.Errorf("sdactl admin policies lists other collections:\n%s", r.stderr)
	}
	r = ok(t, s.dir, "help", "admin")
	wantContains(t, "sdactl help admin", r.stdout, "SDA_API_KEY_FILE", "admin policies list", "Exit codes:")
	r = ok(t, s.dir, "help")
	wantContains(t, "sdactl help", r.stdout, "admin ...")
	if strings.Contains(r.stdout, "admin policies") {
		t.Errorf("sdactl help lists every admin command:\n%s", r.stdout)
	}
}

// TestAdminTLS: an https service whose certificate a test CA signed, trusted
// with -ca.
func TestAdminTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "sdactl admin test CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "srv")
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(ca.PEM))
	s := startAdminService(t, "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(s.srv.addr, "https://") {
		t.Fatalf("the service is at %s", s.srv.addr)
	}
	r := s.run(0, "", "subjects", "list", "-ca", caFile)
	wantContains(t, "subjects list over TLS", r.stdout, "admin  user")
	s.run(4, "", "subjects", "list") // the system does not trust the test CA
}

// TestAdminGroups: the members endpoints.
func TestAdminGroups(t *testing.T) {
	s := startAdminService(t)
	s.run(0, "", "subjects", "create", "-id", "bob")
	r := s.run(0, "", "groups", "add-member", "technicians", "bob")
	wantContains(t, "add-member", r.stdout, "groups: technicians\n")
	s.run(0, "", "groups", "add-member", "technicians", "bob") // again: no change
	s.run(0, "", "groups", "add-member", "technicians", "alice")
	s.run(0, "", "policies", "create", "-id", "tech", "-groups", "technicians", "-ops", "read-data", "-all-devices")
	r = s.run(0, "", "groups", "list")
	wantContains(t, "groups list", r.stdout, "GROUP", "technicians  2        tech\n")
	r = s.run(0, "", "groups", "show", "technicians")
	wantContains(t, "groups show", r.stdout, "members:  alice, bob\n", "policies: tech\n")
	s.run(0, "", "groups", "remove-member", "technicians", "bob")
	var sub policy.Subject
	s.record("/admin/v1/subjects/bob", &sub)
	if len(sub.Groups) != 0 {
		t.Fatalf("bob after remove-member: %+v", sub)
	}
	s.run(3, "", "groups", "remove-member", "technicians", "bob")
	s.run(3, "", "groups", "add-member", "technicians", "ghost")
	s.run(3, "", "groups", "show", "nobody")
	s.run(2, "", "groups", "add-member", "technicians")
}

func TestParseRules(t *testing.T) {
	for _, text := range []string{
		"read-data",
		"read-data set-temperature(arg0 in 16..28)",
		`set-mode(arg0 in {"eco", "boost"}, arg1 = 3) flash(arg0 = h'DEADBEEF') *`,
	} {
		rules, err := parseRules(text)
		if err != nil {
			t.Fatalf("parseRules(%q): %v", text, err)
		}
		if got := rulesText(rules); got != text {
			t.Errorf("rulesText(parseRules(%q)) = %q", text, got)
		}
	}
	for _, bad := range []string{"", "read data!", "x(arg0 in 5)", "x(arg99 = 1)"} {
		if _, err := parseRules(bad); err == nil {
			t.Errorf("parseRules(%q) succeeded", bad)
		}
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{"": nil, "a": {"a"}, " a , b,,c ": {"a", "b", "c"}} {
		if got := splitList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		`Roof "A" <b> é`:    `Roof "A" <b> é`,
		"red\x1b[31m\n\x00": `red\x1b[31m\n\x00`,
		"bad\xffutf8\uFFFD": `bad\xffutf8` + "\uFFFD",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
