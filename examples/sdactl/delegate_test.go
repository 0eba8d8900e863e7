package main

import (
	"strings"
	"testing"
)

// TestDelegation: a token whose holder may delegate; the holder passes
// read-data on to a subcontractor's key; the subcontractor inspects and
// verifies the delegated token and calls a device with it and their own
// key; every refusal names its reason and exits with 3.
func TestDelegation(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key", "-pub", "tech.pem")
	ok(t, dir, "keys", "generate", "-o", "sub.key", "-pub", "sub.pem")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-profile", "v2", "-sub", "alice",
		"-pop", "tech.pem", "-scope", "read-data configure", "-delegate-depth", "1", "-lifetime", "8h", "-o", "alice.token")
	r := ok(t, dir, "token", "inspect", "alice.token")
	if got := field(t, r.stdout, "delegation"); got != "depth 1" {
		t.Errorf("token inspect: delegation %q, want \"depth 1\"", got)
	}

	r = ok(t, dir, "token", "delegate", "-token", "alice.token", "-key", "tech.key", "-to", "sub.pem",
		"-scope", "read-data", "-lifetime", "2h", "-sub", "subcontractor", "-o", "sub.token")
	wantContains(t, "token delegate", r.stderr, "wrote delegated token to sub.token")

	r = ok(t, dir, "token", "inspect", "sub.token")
	wantContains(t, "token inspect", r.stdout, "UNVERIFIED", "chain:      1 link,", "link 1:")
	for name, want := range map[string]string{"  sub": "subcontractor", "  scope": "read-data", "  depth": "0", "  aud": "the parent's"} {
		if got := field(t, r.stdout, name); got != want {
			t.Errorf("token inspect: link %s %q, want %q", strings.TrimSpace(name), got, want)
		}
	}
	r = ok(t, dir, "token", "verify", "-anchor", "anchor.pem", "-pop", "sub.pem", "-aud", "ep:hvac-1", "sub.token")
	wantContains(t, "token verify", r.stdout, "delegation: 1 link verified", "scope: read-data")
	r = expect(t, 3, dir, "", "token", "verify", "-anchor", "anchor.pem", "-pop", "tech.pem", "sub.token")
	wantContains(t, "token verify with the delegator's key", r.stderr, "(wrong-pop)")

	dev := start(t, dir, "device", "-listen", "127.0.0.1:0", "-anchor", "anchor.pem", "-endpoint", "hvac-1")
	r = ok(t, dir, "call", "-token", "sub.token", "-key", "sub.key", dev.addr, "read-data")
	wantContains(t, "call read-data", r.stdout, "status: success", "hvac-1")
	// The device's audit line names every key of the chain, alice's first.
	techTP := field(t, ok(t, dir, "keys", "show", "tech.pem").stdout, "thumbprint")
	subTP := field(t, ok(t, dir, "keys", "show", "sub.pem").stdout, "thumbprint")
	dev.waitLine(`allowed request=operation op=read-data sub="alice" .*chain=` + techTP + "," + subTP + ` delegate="subcontractor"`)
	r = expect(t, 1, dir, "", "call", "-token", "sub.token", "-key", "sub.key", dev.addr, "configure", "int:1")
	wantContains(t, "call configure", r.stdout, "status: access denied")
	r = expect(t, 3, dir, "", "call", "-token", "sub.token", "-key", "tech.key", dev.addr, "read-data")
	wantContains(t, "call with the delegator's key", r.stderr, "does not fit -key")

	// Refusals, each with its reason.
	ok(t, dir, "keys", "generate", "-o", "third.key", "-pub", "third.pem")
	r = expect(t, 3, dir, "", "token", "delegate", "-token", "alice.token", "-key", "tech.key", "-to", "tech.pem",
		"-scope", "read-data", "-lifetime", "1h", "-o", "x.token")
	wantContains(t, "token delegate to the holder's own key", r.stderr, "(delegation-loop)")
	for _, tc := range []struct {
		name, reason string
		args         []string
	}{
		{"widening", "(not-narrower, scope)", []string{"-token", "alice.token", "-key", "tech.key", "-scope", "read-data update-firmware", "-lifetime", "1h"}},
		{"outliving", "(not-narrower, exp)", []string{"-token", "alice.token", "-key", "tech.key", "-scope", "read-data", "-lifetime", "9h"}},
		{"too deep", "(delegation-depth", []string{"-token", "sub.token", "-key", "sub.key", "-scope", "read-data", "-lifetime", "1h"}},
	} {
		args := append([]string{"token", "delegate", "-to", "third.pem", "-o", "x.token"}, tc.args...)
		r = expect(t, 3, dir, "", args...)
		wantContains(t, "token delegate "+tc.name, r.stderr, tc.reason)
	}
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.pem", "-o", "v1.token")
	r = expect(t, 3, dir, "", "token", "delegate", "-token", "v1.token", "-key", "tech.key", "-to", "sub.pem",
		"-scope", "read-data", "-lifetime", "1h", "-o", "x.token")
	wantContains(t, "token delegate from a v1 token", r.stderr, "(not-delegable")
	expect(t, 2, dir, "", "token", "delegate", "-token", "alice.token", "-key", "tech.key", "-to", "sub.pem",
		"-scope", "read-data", "-o", "x.token") // neither -lifetime nor -until
	expect(t, 2, dir, "", "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.pem", "-delegate-depth", "1", "-o", "x.token") // v1
}
