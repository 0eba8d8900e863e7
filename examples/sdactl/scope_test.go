package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// tokenScope reads a token file written by "token issue" and returns its
// scope (unverified).
func tokenScope(t *testing.T, path string) token.Scope {
	t.Helper()
	raw, err := decodeToken(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tok.UnverifiedClaims().Scope
}

// TestTokenIssueStructuredScope: "token issue" accepts the scope text that
// "token inspect" prints, constraints included: issue, inspect, issue again
// with the printed text, and both tokens carry the same scope.
func TestTokenIssueStructuredScope(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	issue := func(scope, out string, extra ...string) result {
		args := append([]string{"token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-pop", "tech.key",
			"-scope", scope, "-o", out}, extra...)
		return sdactl(t, dir, "", args...)
	}
	for _, scope := range []string{
		`set-temperature(arg0 in 16..28)`,
		`read-data set-temperature(arg0 in -40..-5, arg1 = 3) set-mode(arg0 in {"eco", "boost"})`,
		`label(arg0 = "a \"quoted\" (text), {with} .. spaces") flash(arg0 = h'DEADBEEF', arg2 in {h'00', -1, "x"})`,
		`* reboot`,
	} {
		t.Run(scope, func(t *testing.T) {
			for _, f := range []string{"a.token", "b.token"} { // "token issue" writes new files only
				if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
			if r := issue(scope, "a.token", "-profile", "v2"); r.code != 0 {
				t.Fatalf("token issue -scope %q: %v", scope, r)
			}
			r := ok(t, dir, "token", "inspect", "a.token")
			printed := field(t, r.stdout, "scope")
			if printed != scope {
				t.Errorf("token inspect scope: %q, want %q", printed, scope)
			}
			if r := issue(printed, "b.token", "-profile", "v2"); r.code != 0 {
				t.Fatalf("token issue -scope %q (as printed): %v", printed, r)
			}
			a, b := tokenScope(t, filepath.Join(dir, "a.token")), tokenScope(t, filepath.Join(dir, "b.token"))
			if !a.Equal(b) || a.String() != scope {
				t.Errorf("scopes differ: %v and %v, want %q", a, b, scope)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ scope, profile, want string }{
			{`set-temperature(arg0 in 16..28)`, "v1", "v1"},                      // a v1 token has a text scope only
			{`set-temperature(arg0 in 28..16)`, "v2", "-scope"},                  // empty range
			{`set-temperature(arg0 in 16..28`, "v2", "-scope"},                   // unclosed
			{`set-temperature(arg16 = 1)`, "v2", "-scope"},                       // argument index
			{`set-mode(arg0 in {eco})`, "v2", "-scope"},                          // unquoted text
			{`read-data  configure`, "v2", "-scope"},                             // two spaces
			{`set-temperature()`, "v2", "-scope"},                                // no constraint
			{`set-temperature(arg0 in 1..2) extra)`, "v2", "-scope"},             // trailing
			{`flash(arg0 = h'ABC')`, "v2", "-scope"},                             // odd hex
			{`x(arg0 = 99999999999999999999)`, "v2", "-scope"},                   // int64 overflow
			{`x(arg0 = "\xff")`, "v2", "-scope"},                                 // not UTF-8
			{strings.Repeat("x(arg0 = 1) ", 20) + "x(arg0 = 1)", "v2", "-scope"}, // 21 permissions
		} {
			r := issue(tc.scope, "bad.token", "-profile", tc.profile)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("token issue -profile %s -scope %q: %v, want exit 2 naming %s", tc.profile, tc.scope, r, tc.want)
			}
		}
	})
}

// TestTokenIssueHelpExample runs the sdactl lines of "sdactl help token
// issue" as printed.
func TestTokenIssueHelpExample(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	pemOut := ok(t, dir, "keys", "show", "-pem", "tech.key").stdout
	if err := os.WriteFile(filepath.Join(dir, "tech.pem"), []byte(pemOut), 0o600); err != nil {
		t.Fatal(err)
	}
	help := ok(t, dir, "help", "token", "issue").stdout
	cmds := exampleLines(help)
	if len(cmds) < 2 {
		t.Fatalf("sdactl help token issue has %d example commands, want a v1 and a v2 token:\n%s", len(cmds), help)
	}
	for _, cmd := range cmds {
		words, err := shellWords(cmd, nil)
		if err != nil {
			t.Fatal(err)
		}
		if words[0] != "sdactl" {
			t.Fatalf("example %q", cmd)
		}
		ok(t, dir, words[1:]...)
	}
	ok(t, dir, "token", "verify", "-anchor", "anchor.key", "-aud", "ep:hvac-1", "alice.token")
	r := ok(t, dir, "token", "inspect", "alice-v2.token")
	if got := field(t, r.stdout, "scope"); !strings.Contains(got, "(arg0 in 16..28)") {
		t.Errorf("the v2 example's scope %q has no constraint", got)
	}
}
