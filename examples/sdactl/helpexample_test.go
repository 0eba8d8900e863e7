package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The help of "sdactl authserver" shows how to bootstrap a service and
// seed it through the administration API with curl. The test below runs
// that example as printed: the sdactl lines with the built binary, the curl
// lines as the HTTP requests curl would send (method, headers, body). The
// only change is the service's address: a free port instead of the one
// printed.

// exampleLines returns the shell commands of the indented example lines of
// a help text that start with "sdactl ", "curl " or a variable assignment,
// each with its continuation lines (a trailing backslash, or a quote left
// open).
func exampleLines(help string) []string {
	var cmds []string
	lines := strings.Split(help, "\n")
	start := regexp.MustCompile(`^  (sdactl |curl |[A-Z_]+=)`)
	for i := 0; i < len(lines); i++ {
		if !start.MatchString(lines[i]) {
			continue
		}
		cmd := strings.TrimSpace(lines[i])
		for i+1 < len(lines) {
			switch {
			case strings.HasSuffix(cmd, `\`):
				cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(lines[i+1])
			case strings.Count(cmd, "'")%2 == 1:
				cmd += "\n" + strings.TrimSpace(lines[i+1])
			default:
				goto done
			}
			i++
		}
	done:
		cmds = append(cmds, cmd)
	}
	return cmds
}

// shellWords splits a command into words as a POSIX shell does for the
// subset the examples use: blanks, single quotes, double quotes with
// $NAME and ${NAME} expanded from vars (an unset variable is an error),
// and backslash escapes outside single quotes.
func shellWords(cmd string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(s string, i int) (int, error) { // s[i] == '$'
		j := i + 1
		braced := j < len(s) && s[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9') {
			k++
		}
		name := s[j:k]
		if braced {
			if k >= len(s) || s[k] != '}' {
				return 0, fmt.Errorf("unclosed ${ in %q", s)
			}
			k++
		}
		v, ok := vars[name]
		if !ok || name == "" {
			return 0, fmt.Errorf("the example uses $%s, which it does not set", name)
		}
		cur.WriteString(v)
		return k, nil
	}
	for i := 0; i < len(cmd); {
		c := cmd[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(cmd[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", cmd)
			}
			cur.WriteString(cmd[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(cmd) {
					return nil, fmt.Errorf("unclosed \" in %q", cmd)
				}
				if cmd[i] == '"' {
					i++
					break
				}
				switch {
				case cmd[i] == '\\' && i+1 < len(cmd) && strings.IndexByte("\"\\$`", cmd[i+1]) >= 0:
					cur.WriteByte(cmd[i+1])
					i += 2
				case cmd[i] == '$':
					var err error
					if i, err = expand(cmd, i); err != nil {
						return nil, err
					}
				case cmd[i] == '`':
					return nil, fmt.Errorf("command substitution in %q", cmd)
				default:
					cur.WriteByte(cmd[i])
					i++
				}
			}
		case c == '\\' && i+1 < len(cmd):
			cur.WriteByte(cmd[i+1])
			inWord, i = true, i+2
		case c == '$':
			var err error
			if i, err = expand(cmd, i); err != nil {
				return nil, err
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"A": "x y"}
	for in, want := range map[string][]string{
		`curl -H "Authorization: Bearer $A" --data '{"id":"a b"}'`: {"curl", "-H", "Authorization: Bearer x y", "--data", `{"id":"a b"}`},
		"a 'b\nc' ${A}z \\$A \"q\\\"\"":                            {"a", "b\nc", "x yz", "$A", `q"`},
	} {
		got, err := shellWords(in, vars)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := shellWords(`echo "$UNSET"`, vars); err == nil {
		t.Error("an unset variable was expanded")
	}
}

// curlRequest builds the HTTP request that curl sends for args (the curl
// options the examples use: -H, -X, -d/--data, -s, and the URL). Like curl,
// --data without a Content-Type header sends
// application/x-www-form-urlencoded, and --data @FILE sends the content of
// FILE (in dir) without its line breaks.
func curlRequest(ctx context.Context, dir string, args []string) (*http.Request, error) {
	var (
		method, url string
		body        *string
		hdr         = http.Header{}
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("curl %s: missing value", a)
			}
			i++
			return args[i], nil
		}
		switch a {
		case "-H", "--header":
			v, err := next()
			if err != nil {
				return nil, err
			}
			name, val, ok := strings.Cut(v, ":")
			if !ok {
				return nil, fmt.Errorf("curl -H %q: not a header", v)
			}
			hdr.Add(strings.TrimSpace(name), strings.TrimSpace(val))
		case "-X", "--request":
			v, err := next()
			if err != nil {
				return nil, err
			}
			method = v
		case "-d", "--data":
			v, err := next()
			if err != nil {
				return nil, err
			}
			if name, ok := strings.CutPrefix(v, "@"); ok {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					return nil, fmt.Errorf("curl --data @%s: %w", name, err)
				}
				v = strings.NewReplacer("\r", "", "\n", "").Replace(string(b))
			}
			body = &v
		case "-s", "--silent", "-S", "--show-error", "-f", "--fail":
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				return nil, fmt.Errorf("curl: the test does not know %q", a)
			}
			url = a
		}
	}
	var r io.Reader
	if body != nil {
		r = strings.NewReader(*body)
		if method == "" {
			method = "POST"
		}
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	req.Header = hdr
	return req, nil
}

// TestAuthServerHelpExample runs the example of "sdactl help authserver".
func TestAuthServerHelpExample(t *testing.T) {
	dir := t.TempDir()
	help := ok(t, dir, "help", "authserver").stdout
	cmds := exampleLines(help)
	if len(cmds) < 4 {
		t.Fatalf("sdactl help authserver has %d example commands, want the bootstrap, the service and curl lines:\n%s", len(cmds), help)
	}
	// The keys the example uses, under the names it uses.
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")

	vars := map[string]string{}
	var srv *server
	listen := "" // the address printed in the example
	curls := 0
	assign := regexp.MustCompile(`^([A-Z_]+)=\$\(cat ([^ )]+)\)$`)
	for _, cmd := range cmds {
		if m := assign.FindStringSubmatch(cmd); m != nil {
			vars[m[1]] = strings.TrimRight(string(readFile(t, filepath.Join(dir, m[2]))), "\n")
			continue
		}
		words, err := shellWords(cmd, vars)
		if err != nil {
			t.Fatalf("example line %q: %v", cmd, err)
		}
		switch words[0] {
		case "sdactl":
			args := words[1:]
			switch {
			case args[len(args)-1] == "&": // the service, in the background
				args = args[:len(args)-1]
				for i, a := range args {
					if a == "-listen" && i+1 < len(args) {
						listen, args[i+1] = args[i+1], "127.0.0.1:0"
					}
				}
				if listen == "" {
					listen = "127.0.0.1:8080" // the default
					args = append(args, "-listen", "127.0.0.1:0")
				}
				srv = start(t, dir, args...)
			case len(args) >= 2 && args[len(args)-2] == ">":
				r := ok(t, dir, args[:len(args)-2]...)
				writeFile(t, filepath.Join(dir, args[len(args)-1]), r.stdout)
			default:
				ok(t, dir, args...)
			}
		case "curl":
			if srv == nil {
				t.Fatalf("example line %q: the example has not started the service", cmd)
			}
			for i, w := range words {
				if u, found := strings.CutPrefix(w, "http://"+listen); found {
					words[i] = srv.addr + u
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, err := curlRequest(ctx, dir, words[1:])
			if err != nil {
				cancel()
				t.Fatalf("example line %q: %v", cmd, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("example line %q: %v", cmd, err)
			}
			out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			cancel()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("example line %q: HTTP %d %s", cmd, resp.StatusCode, bytes.TrimSpace(out))
			}
			curls++
		default:
			t.Fatalf("example line %q: the test runs only sdactl, curl and NAME=$(cat FILE)", cmd)
		}
	}
	if curls == 0 {
		t.Fatal("the example has no curl line")
	}
	// What the example created is in the service: a policy through the
	// administration API.
	(&admin{t: t, url: srv.addr, secret: vars["ADMIN"]}).do("GET", "/admin/v1/policies/roof", nil, 200)
}

// notRun are the example lines of sdactl's help that TestEveryHelpExample
// does not run, and why. Every other example line of every command's help
// is run as printed.
var notRun = map[string]string{
	// "sdactl help version" shows what the command prints.
	"sdactl github.com/securedeviceaccess/sda v1.2.3": "output, not a command",
	// A PKCS#11 module is not on every machine; pkcs11_test.go runs the
	// same command with SoftHSM2 when it is installed.
	"sdactl keys generate -pin-file pin.txt -pub anchor.pem -pkcs11 'pkcs11:token=sda;object=anchor?module-path=/usr/lib/softhsm/libsofthsm2.so'": "needs SoftHSM2",
	// It writes into the database the DSN names, which need not be empty;
	// TestStoreExportImport runs it with a schema of its own.
	`sdactl store import -postgres "$DSN" export.json`: "needs an empty PostgreSQL database",
}

// skipped reports whether notRun lists the example line cmd (compared with
// runs of blanks as one, as continuation lines are joined).
func skipped(cmd string) bool {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for line := range notRun {
		if norm(line) == norm(cmd) {
			return true
		}
	}
	return false
}

// exampleRunner runs example lines of sdactl's help in one directory as a
// shell would: sdactl with the built binary (a line ending in & or running
// a device in the background), "> FILE" redirections, NAME=$(cat FILE),
// and curl as the HTTP request curl sends. Servers listen on free ports;
// the addresses printed in the examples are replaced by the real ones in
// the lines that follow.
type exampleRunner struct {
	t     *testing.T
	dir   string
	vars  map[string]string
	addrs map[string]string // printed host:port -> real host:port
	ran   map[string]bool
	last  []byte // the body of the last curl answer
}

func newExampleRunner(t *testing.T, dir string, ran map[string]bool) *exampleRunner {
	return &exampleRunner{t: t, dir: dir, vars: map[string]string{}, addrs: map[string]string{}, ran: ran}
}

// exampleFileRE matches a file printed in a help text: "For example,
// NAME:" and the lines indented by four spaces that follow.
var exampleFileRE = regexp.MustCompile(`For example, ([\w.-]+):\n((?:    .*\n)+)`)

var assignRE = regexp.MustCompile(`^([A-Z_]+)=\$\(cat ([^ )]+)\)$`)

// run runs one example line; the test fails if it fails.
func (x *exampleRunner) run(cmd string) {
	t := x.t
	t.Helper()
	x.ran[cmd] = true
	if m := assignRE.FindStringSubmatch(cmd); m != nil {
		x.vars[m[1]] = strings.TrimRight(string(readFile(t, filepath.Join(x.dir, m[2]))), "\n")
		return
	}
	words, err := shellWords(cmd, x.vars)
	if err != nil {
		t.Fatalf("example line %q: %v", cmd, err)
	}
	for i, w := range words {
		for printed, real := range x.addrs {
			words[i] = strings.ReplaceAll(w, printed, real)
			w = words[i]
		}
	}
	switch words[0] {
	case "sdactl":
		args := words[1:]
		background := args[len(args)-1] == "&"
		if background {
			args = args[:len(args)-1]
		}
		if background || args[0] == "device" {
			printed := ""
			for i, a := range args {
				if a == "-listen" && i+1 < len(args) {
					printed, args[i+1] = args[i+1], "127.0.0.1:0"
				}
			}
			srv := start(t, x.dir, args...)
			if printed != "" {
				_, hostport, _ := strings.Cut(srv.addr, "://")
				x.addrs[printed] = hostport
			}
			return
		}
		if len(args) >= 2 && args[len(args)-2] == ">" {
			r := ok(t, x.dir, args[:len(args)-2]...)
			writeFile(t, filepath.Join(x.dir, args[len(args)-1]), r.stdout)
			return
		}
		ok(t, x.dir, args...)
	case "curl":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := curlRequest(ctx, x.dir, words[1:])
		if err != nil {
			t.Fatalf("example line %q: %v", cmd, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("example line %q: %v", cmd, err)
		}
		defer resp.Body.Close()
		x.last, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 {
			t.Fatalf("example line %q: HTTP %d %s", cmd, resp.StatusCode, bytes.TrimSpace(x.last))
		}
	default:
		t.Fatalf("example line %q: the test runs only sdactl, curl and NAME=$(cat FILE)", cmd)
	}
}

// TestEveryHelpExample runs every example of sdactl's help as printed, in
// the order a new user would (keys, tokens issued offline, a device and a
// call; then the service, seeded as its help shows, and the commands that
// talk to it), and fails when an example line of any command's help is
// neither run nor listed in notRun.
func TestEveryHelpExample(t *testing.T) {
	examples := map[string][]string{} // command name -> its example lines
	for _, c := range commands() {
		examples[c.name] = exampleLines(helpText(c))
	}
	ran := map[string]bool{}
	runAll := func(x *exampleRunner, names ...string) {
		t.Helper()
		for _, name := range names {
			for _, cmd := range examples[name] {
				if !skipped(cmd) {
					x.run(cmd)
				}
			}
		}
	}
	// The passphrase file the examples read: the user writes it.
	const passphrase = "correct horse battery staple\n"

	offline := newExampleRunner(t, t.TempDir(), ran)
	writeFile(t, filepath.Join(offline.dir, "pass.txt"), passphrase)
	runAll(offline, "keys generate", "token issue", "device", "call", "token delegate")

	online := newExampleRunner(t, t.TempDir(), ran)
	for _, f := range []string{"anchor.key", "anchor.pem", "tech.key", "tech.pem", "pass.txt"} {
		writeFile(t, filepath.Join(online.dir, f), string(readFile(t, filepath.Join(offline.dir, f))))
	}
	runAll(online, "authserver")
	// "The last answer holds alice's API key secret": the user keeps it
	// in the file the other examples read.
	var created struct{ Secret string }
	if err := json.Unmarshal(online.last, &created); err != nil || created.Secret == "" {
		t.Fatalf("the last answer of the authserver example, %s, holds no secret: %v", online.last, err)
	}
	writeFile(t, filepath.Join(online.dir, "alice.apikey"), created.Secret+"\n")
	runAll(online, "device", "token fetch", "tokens list", "status show", "status push",
		"revoke token", "revoke subject", "revoke device", "revoke anchor", "revocations list")
	runAll(online, "store export")

	// The owner's commands, on what the service's example created: bob
	// is created first and deleted last. The files they read (a what-if's
	// changes, a test suite) are printed in their help.
	for _, c := range commands() {
		for _, m := range exampleFileRE.FindAllStringSubmatch(helpText(c), -1) {
			writeFile(t, filepath.Join(online.dir, m[1]), strings.ReplaceAll(m[2], "\n    ", "\n")[4:])
		}
	}
	runAll(online, "admin subjects create", "admin subjects list", "admin subjects show", "admin subjects update",
		"admin policies list", "admin policies show", "admin policies create", "admin policies update", "admin policies delete",
		"admin devices list", "admin devices show", "admin devices create", "admin devices update", "admin devices delete",
		"admin api-keys list", "admin api-keys show", "admin api-keys create", "admin api-keys delete",
		"admin groups list", "admin groups show", "admin groups add-member", "admin groups remove-member",
		"admin explain", "admin what-if", "admin diff", "admin test", "admin changes", "admin subjects delete")

	for _, c := range commands() {
		for _, cmd := range examples[c.name] {
			if !ran[cmd] && !skipped(cmd) {
				t.Errorf("the example %q of \"sdactl help %s\" is not run by this test", cmd, c.name)
			}
		}
	}
}
