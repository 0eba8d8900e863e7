package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// The tests in this file run the built sdactl binary, as a user would.

// sdactlBin is the binary the tests run; serverBin, for the long-running
// commands (device, authserver), is built with the race detector when the
// tests run with it, so that the servers' goroutines are race-checked too.
// (One-shot commands use the plain binary: a race-enabled binary takes
// about a second to start here.)
var sdactlBin, serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdactl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sdactlBin, serverBin = filepath.Join(dir, "sdactl"), filepath.Join(dir, "sdactl")
	builds := [][]string{{"build", "-o", sdactlBin, "."}}
	if raceEnabled {
		serverBin = filepath.Join(dir, "sdactl-race")
		builds = append(builds, []string{"build", "-race", "-o", serverBin, "."})
	}
	for _, args := range builds {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		build := exec.CommandContext(ctx, "go", args...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		err = build.Run()
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "building sdactl:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Bounds of the test's subprocesses.
const (
	cmdTimeout   = 60 * time.Second // one sdactl run
	startTimeout = 15 * time.Second // a server printing its address
	stopTimeout  = 15 * time.Second // a server stopping after SIGTERM
)

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// sdactl runs the binary in dir with stdin and returns what it printed and
// its exit code.
func sdactl(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return sdactlEnv(t, dir, nil, stdin, args...)
}

// sdactlEnv is sdactl with the variables of environ ("NAME=value") added
// to the environment.
func sdactlEnv(t *testing.T, dir string, environ []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sdactlBin, args...)
	if environ != nil {
		cmd.Env = append(os.Environ(), environ...)
	}
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sdactl %s: timed out after %v", strings.Join(args, " "), cmdTimeout)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: exitStatus(t, args, err)}
	// Whatever happens, no private key is ever printed: no PEM armour of
	// one ("-----BEGIN PRIVATE KEY-----", "... ENCRYPTED PRIVATE KEY-----",
	// "... EC PRIVATE KEY-----"); help texts may name the block types.
	if strings.Contains(r.stdout+r.stderr, "PRIVATE KEY-----") {
		t.Fatalf("sdactl %s printed a private key:\n%v", strings.Join(args, " "), r)
	}
	return r
}

// exitStatus returns the exit code of a finished sdactl run whose Wait
// returned err, and fails the test if it did not run.
func exitStatus(t *testing.T, args []string, err error) int {
	t.Helper()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return exitErr.ExitCode()
	case err != nil:
		t.Fatalf("sdactl %s: %v", strings.Join(args, " "), err)
	}
	return 0
}

// expect runs sdactl and fails unless it exits with code.
func expect(t *testing.T, code int, dir, stdin string, args ...string) result {
	t.Helper()
	r := sdactl(t, dir, stdin, args...)
	if r.code != code {
		t.Fatalf("sdactl %s: want exit %d, got %v", strings.Join(args, " "), code, r)
	}
	return r
}

func ok(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return expect(t, 0, dir, "", args...)
}

// server is a long-running sdactl (device, authserver) started in the
// background.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string // parsed from the first stdout line
	mu     sync.Mutex
	lines  []string
	stderr lockedBuffer
	exited chan struct{}
	code   int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`^listening on ((tcp|https?)://127\.0\.0\.1:\d+)$`)

// start runs sdactl in the background and waits for its "listening on"
// line. The process is stopped (SIGTERM, then SIGKILL) and waited for when
// the test ends.
func start(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{t: t, cmd: exec.Command(serverBin, args...), exited: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Stderr = &s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			if len(s.lines) == 1 {
				first <- sc.Text()
			}
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
		// All reads are done: now Wait may close the pipe.
		err := s.cmd.Wait()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			s.code = exitErr.ExitCode()
			if s.code < 0 {
				s.code = 128 + int(exitErr.Sys().(syscall.WaitStatus).Signal())
			}
		default:
			s.code = -1
		}
		close(s.exited)
	}()
	t.Cleanup(func() {
		// A clean stop exits with 0; a race detected in a race-enabled
		// server makes it exit with 66.
		if code := s.stop(); code != 0 {
			t.Errorf("sdactl %s: exit %d after SIGTERM; stderr:\n%s", strings.Join(args, " "), code, s.stderr.String())
		}
	})
	select {
	case line := <-first:
		m := listeningRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("sdactl %s: first line %q, want \"listening on ...\"", strings.Join(args, " "), line)
		}
		s.addr = m[1]
	case <-s.exited:
		t.Fatalf("sdactl %s exited with %d before listening; stderr:\n%s", strings.Join(args, " "), s.code, s.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("sdactl %s printed no address within %v; stderr:\n%s", strings.Join(args, " "), startTimeout, s.stderr.String())
	}
	return s
}

// stop sends SIGTERM and waits for the exit, killing the process if it does
// not stop in time. It returns the exit code.
func (s *server) stop() int {
	select {
	case <-s.exited:
		return s.code
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("sdactl did not stop within %v after SIGTERM; killed", stopTimeout)
	}
	return s.code
}

// waitLine waits for an output line matching re.
func (s *server) waitLine(re string) string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			if rx.MatchString(l) {
				s.mu.Unlock()
				return l
			}
		}
		all := strings.Join(s.lines, "\n")
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Fatalf("no output line matches %q; stdout:\n%s", re, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// field returns the value of the "name: value" line of s.
func field(t *testing.T, s, name string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q line in:\n%s", name, s)
	return ""
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSession is the worked example of the package documentation: keys, a
// token issued, inspected and verified, a simulated device, and calls to it,
// with the error paths and their exit codes.
func TestSession(t *testing.T) {
	dir := t.TempDir()

	// Keys: the trust anchor, and the technician's PoP key encrypted with a
	// passphrase read from stdin (a low scrypt work factor keeps the test
	// fast).
	r := ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	wantMode0600(t, filepath.Join(dir, "anchor.key"))
	wantMode0600(t, filepath.Join(dir, "anchor.pem"))
	anchorPub, err := token.ParsePublicKeyPEM(readFile(t, filepath.Join(dir, "anchor.pem")))
	if err != nil {
		t.Fatal(err)
	}
	wantName, _ := token.AnchorName(anchorPub)
	wantTP, _ := token.Thumbprint(anchorPub)
	if got := field(t, r.stdout, "anchor name"); got != wantName {
		t.Errorf("keys generate: anchor name %q, want %q", got, wantName)
	}
	if got := field(t, r.stdout, "thumbprint"); got != hex.EncodeToString(wantTP) {
		t.Errorf("keys generate: thumbprint %q, want %x", got, wantTP)
	}
	r = ok(t, dir, "keys", "show", "anchor.key")
	if field(t, r.stdout, "anchor name") != wantName || field(t, r.stdout, "thumbprint") != hex.EncodeToString(wantTP) {
		t.Errorf("keys show disagrees with keys generate:\n%s", r.stdout)
	}
	r = ok(t, dir, "keys", "show", "anchor.pem")
	if field(t, r.stdout, "anchor name") != wantName {
		t.Errorf("keys show of the public key:\n%s", r.stdout)
	}

	writeFile(t, filepath.Join(dir, "pass.txt"), "correct horse battery\n")
	writeFile(t, filepath.Join(dir, "wrong.txt"), "incorrect horse\n")
	ok(t, dir, "keys", "generate", "-o", "tech.key", "-passphrase-file", "pass.txt", "-scrypt-work-factor", "10")
	wantMode0600(t, filepath.Join(dir, "tech.key"))
	if techKey := string(readFile(t, filepath.Join(dir, "tech.key"))); !strings.HasPrefix(techKey, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n") {
		t.Errorf("tech.key is not an encrypted PKCS#8 file:\n%s", techKey)
	}
	r = expect(t, 0, dir, "correct horse battery\n", "keys", "show", "-pem", "-passphrase-file", "-", "tech.key")
	writeFile(t, filepath.Join(dir, "tech.pem"), r.stdout)
	techPub, err := token.ParsePublicKeyPEM([]byte(r.stdout))
	if err != nil {
		t.Fatalf("keys show -pem: %v\n%s", err, r.stdout)
	}
	techTP, _ := token.Thumbprint(techPub)

	// Keys: refusals.
	before := readFile(t, filepath.Join(dir, "anchor.key"))
	r = expect(t, 4, dir, "", "keys", "generate", "-o", "anchor.key")
	wantContains(t, "stderr", r.stderr, "exists")
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, "anchor.key"))) {
		t.Fatal("keys generate overwrote anchor.key")
	}
	expect(t, 3, dir, "", "keys", "show", "tech.key")                                   // encrypted, no passphrase
	expect(t, 3, dir, "", "keys", "show", "-passphrase-file", "wrong.txt", "tech.key")  // wrong passphrase
	expect(t, 3, dir, "", "keys", "show", "-passphrase-file", "pass.txt", "anchor.key") // not encrypted
	expect(t, 4, dir, "", "keys", "show", "missing.key")
	expect(t, 2, dir, "", "keys", "generate", "-o", "-")
	expect(t, 2, dir, "", "keys", "generate", "-o", "x.key", "-ed25519", "-p384")
	expect(t, 2, dir, "", "keys", "generate", "-o", "x.key", "-openssl")
	expect(t, 2, dir, "", "keys", "generate", "-o", "x.key", "-passphrase-file", "pass.txt", "-openssl", "-scrypt-work-factor", "10")

	// A token for alice on hvac-1, inspected without trust.
	r = ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data configure",
		"-sub", "alice", "-pop", "tech.pem", "-lifetime", "2h", "-o", "alice.token")
	wantMode0600(t, filepath.Join(dir, "alice.token"))
	r = ok(t, dir, "token", "inspect", "alice.token")
	wantContains(t, "token inspect", r.stdout, "UNVERIFIED")
	for name, want := range map[string]string{
		"profile": "v1", "header": "alg=ES256 kid=-", "iss": wantName, "sub": "alice",
		"aud": "ep:hvac-1", "scope": "read-data configure",
		"cnf": "ECDSA P-256 (ES256), thumbprint " + hex.EncodeToString(techTP),
	} {
		if got := field(t, r.stdout, name); got != want {
			t.Errorf("token inspect %s: %q, want %q", name, got, want)
		}
	}
	exp, err := time.Parse(time.RFC3339, strings.Fields(field(t, r.stdout, "exp"))[0])
	if err != nil {
		t.Fatalf("token inspect exp: %v", err)
	}
	if d := time.Until(exp); d < 2*time.Hour-time.Minute || d > 2*time.Hour+time.Minute {
		t.Errorf("token inspect: exp %v is not 2 h from now", exp)
	}
	// The same token from stdin, raw.
	r = ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech.pem", "-raw")
	r = expect(t, 0, dir, r.stdout, "token", "inspect", "-")
	wantContains(t, "token inspect -", r.stdout, "scope:      read-data\n")
	expect(t, 3, dir, "bm90IGEgdG9rZW4=", "token", "inspect", "-")

	// Verification: against the anchor's public key, against an anchor store
	// directory, and the failures with their reasons.
	r = ok(t, dir, "token", "verify", "-anchor", "anchor.pem", "-aud", "ep:hvac-1", "alice.token")
	wantContains(t, "token verify", r.stdout, "valid: signature verified with anchor "+wantName)
	storeDir := filepath.Join(dir, "anchors")
	fst, err := trust.OpenFileStore(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := trust.NewAnchor(anchorPub)
	if err := fst.Add(*a); err != nil {
		t.Fatal(err)
	}
	ok(t, dir, "token", "verify", "-anchor", "anchors", "alice.token")
	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{[]string{"-anchor", "tech.pem"}, "(unknown-anchor)"}, // the wrong anchor
		{[]string{"-anchor", "anchor.pem", "-aud", "ep:hvac-2"}, "(wrong-audience)"},
		{[]string{"-anchor", "anchor.pem", "-now", time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)}, "(expired)"},
		{[]string{"-anchor", "anchor.pem", "-now", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "(not-yet-valid)"},
	} {
		r := expect(t, 3, dir, "", append(append([]string{"token", "verify"}, tc.args...), "alice.token")...)
		wantContains(t, "token verify stderr", r.stderr, tc.reason)
	}
	// A token whose signature was tampered with.
	raw := readFile(t, filepath.Join(dir, "alice.token"))
	tampered, err := decodeToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	tampered[len(tampered)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, "tampered.token"), tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	r = expect(t, 3, dir, "", "token", "verify", "-anchor", "anchor.pem", "tampered.token")
	wantContains(t, "token verify stderr", r.stderr, "(signature)")

	// A v2 token with kid and an Ed25519 PoP key.
	ok(t, dir, "keys", "generate", "-ed25519", "-o", "tech2.key")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech2.key", "-profile", "v2", "-kid", "thumbprint", "-o", "v2.token")
	r = ok(t, dir, "token", "inspect", "v2.token")
	if got, want := field(t, r.stdout, "header"), "alg=ES256 kid="+hex.EncodeToString(wantTP); got != want {
		t.Errorf("v2 header %q, want %q", got, want)
	}
	expect(t, 2, dir, "", "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data",
		"-pop", "tech2.key", "-kid", "thumbprint") // kid needs v2
	expect(t, 2, dir, "", "token", "issue", "-key", "anchor.key", "-aud", "hvac-1", "-scope", "read-data", "-pop", "tech.pem")
	expect(t, 2, dir, "", "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read data!", "-pop", "tech.pem")
	expect(t, 3, dir, "", "token", "issue", "-key", "tech2.key", "-aud", "ep:hvac-1", "-scope", "read-data", "-pop", "tech.pem") // Ed25519 cannot sign v1

	// A token for another device.
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-2", "-scope", "read-data", "-sub", "alice",
		"-pop", "tech.pem", "-o", "hvac2.token")

	// The device.
	dev := start(t, dir, "device", "-listen", "127.0.0.1:0", "-anchor", "anchor.pem", "-endpoint", "hvac-1",
		"-op", "update-firmware", "-op", "version=1.4.2")
	call := func(code int, tok, op string, args ...string) result {
		t.Helper()
		return expect(t, code, dir, "", append([]string{"call", "-token", tok, "-key", "tech.key",
			"-passphrase-file", "pass.txt", "-timeout", "20s", dev.addr, op}, args...)...)
	}
	r = call(0, "alice.token", "read-data")
	if field(t, r.stdout, "status") != "success" {
		t.Errorf("call read-data:\n%v", r)
	}
	var reading struct {
		Endpoint    string  `json:"endpoint"`
		Temperature float64 `json:"temperature_c"`
	}
	if err := json.Unmarshal([]byte(field(t, r.stdout, "data")), &reading); err != nil || reading.Endpoint != "hvac-1" || reading.Temperature != 21.5 {
		t.Errorf("call read-data: data %q (%v)", field(t, r.stdout, "data"), err)
	}
	dev.waitLine(`allowed request=operation op=read-data sub="alice" status="success" remote=127\.0\.0\.1:\d+$`)

	r = call(0, "alice.token", "configure", "int:21", "text:fan", "hex:00ff", "int:-5")
	if got, want := field(t, r.stdout, "data"), `{"operation":"configure","args":[21,"fan",{"hex":"00ff"},-5]}`; got != want {
		t.Errorf("call configure: data %q, want %q", got, want)
	}

	// Out of scope: the device denies, exit 1.
	r = call(1, "alice.token", "update-firmware")
	if field(t, r.stdout, "status") != "access denied" {
		t.Errorf("out-of-scope call:\n%v", r)
	}
	wantContains(t, "out-of-scope call stderr", r.stderr, `device answered "access denied" (status 5)`)
	dev.waitLine(`denied request=operation op=update-firmware sub="alice" status="access denied" check=scope reason=`)

	// Another device's token: verification error, exit 1.
	r = call(1, "hvac2.token", "read-data")
	if field(t, r.stdout, "status") != "verification error" {
		t.Errorf("wrong-audience call:\n%v", r)
	}
	dev.waitLine(`denied request=operation sub="alice" status="verification error" check=audience`)

	// A token bound to another key is refused before anything is sent: 3.
	expect(t, 3, dir, "", "call", "-token", "v2.token", "-key", "tech.key", "-passphrase-file", "pass.txt", dev.addr, "read-data")

	// The v2 token with its Ed25519 key, and an -op with a fixed answer
	// that the token does not permit.
	r = expect(t, 0, dir, "", "call", "-token", "v2.token", "-key", "tech2.key", dev.addr, "read-data")
	wantContains(t, "v2 call", r.stdout, "status: success\n")
	expect(t, 1, dir, "", "call", "-token", "v2.token", "-key", "tech2.key", dev.addr, "version")

	// Unreachable device: 4.
	r = expect(t, 4, dir, "", "call", "-token", "alice.token", "-key", "tech.key", "-passphrase-file", "pass.txt",
		"-timeout", "5s", "tcp://"+freeAddr(t), "read-data")
	wantContains(t, "unreachable call", r.stderr, "device unreachable")

	// Usage errors: 2.
	expect(t, 2, dir, "", "call")
	expect(t, 2, dir, "", "call", "-token", "alice.token", dev.addr, "read-data")
	for _, args := range [][]string{
		{dev.addr, "configure", "int:twenty"},
		{dev.addr, "configure", "21"},
		{dev.addr, "read_data"},
		{"udp://127.0.0.1:1", "read-data"},
		{"tcp://127.0.0.1", "read-data"},
		{"alice.token", "read-data"}, // a regular file, not a serial device
	} {
		expect(t, 2, dir, "", append([]string{"call", "-token", "alice.token", "-key", "tech.key", "-passphrase-file", "pass.txt"}, args...)...)
	}
	expect(t, 2, dir, "", "call", "-bogus")
	expect(t, 2, dir, "", "device", "-anchor", "anchor.pem")                                                        // no identity
	expect(t, 4, dir, "", "device", "-anchor", "anchor.pem", "-endpoint", "x", "-listen", dev.addr[len("tcp://"):]) // address in use

	// The device stops cleanly on SIGTERM.
	if code := dev.stop(); code != 0 {
		t.Errorf("device exit code after SIGTERM: %d; stderr:\n%s", code, dev.stderr.String())
	}
	wantContains(t, "device stderr", dev.stderr.String(), "device stopped")
}

// TestUnreachableAfterStop calls a device that has gone away.
func TestUnreachableAfterStop(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data", "-pop", "tech.key", "-o", "t.token")
	dev := start(t, dir, "device", "-anchor", "anchor.pem", "-endpoint", "hvac-1")
	ok(t, dir, "call", "-token", "t.token", "-key", "tech.key", dev.addr, "read-data")
	if code := dev.stop(); code != 0 {
		t.Fatalf("device exit %d", code)
	}
	r := expect(t, 4, dir, "", "call", "-token", "t.token", "-key", "tech.key", "-timeout", "5s", dev.addr, "read-data")
	wantContains(t, "stderr", r.stderr, "device unreachable")
}

// TestHelp checks that every command has help, on stdout with exit 0.
func TestHelp(t *testing.T) {
	dir := t.TempDir()
	r := ok(t, dir, "help")
	wantContains(t, "sdactl help", r.stdout, "Exit codes:", "keys generate", "authserver")
	for _, c := range commands() {
		words := strings.Fields(c.name)
		r := ok(t, dir, append(words, "-h")...)
		wantContains(t, c.name+" -h", r.stdout, "usage: sdactl "+c.name, "Exit codes:")
		r2 := ok(t, dir, append([]string{"help"}, words...)...)
		if r2.stdout != r.stdout {
			t.Errorf("sdactl help %s differs from sdactl %s -h", c.name, c.name)
		}
	}
	expect(t, 2, dir, "")
	r = expect(t, 2, dir, "", "frobnicate")
	wantContains(t, "stderr", r.stderr, "unknown command")
	r = expect(t, 2, dir, "", "token")
	wantContains(t, "stderr", r.stderr, "token issue", "token verify")
	expect(t, 2, dir, "", "help", "frobnicate")
}

// TestCallTarget: a TARGET that looks like host:port and is no file is a
// usage error that suggests tcp://host:port.
func TestCallTarget(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key", "-pub", "tech.pem")
	ok(t, dir, "token", "issue", "-key", "anchor.key", "-aud", "ep:hvac-1", "-scope", "read-data", "-pop", "tech.pem", "-o", "t.token")
	for _, target := range []string{"127.0.0.1:7301", "localhost:7301", "[::1]:7301", "hvac-1.example:5683"} {
		r := expect(t, 2, dir, "", "call", "-token", "t.token", "-key", "tech.key", target, "read-data")
		wantContains(t, "call "+target, r.stderr, "tcp://"+target)
	}
	// A missing path that is not host:port stays an I/O error.
	expect(t, 4, dir, "", "call", "-token", "t.token", "-key", "tech.key", "/dev/no-such-tty", "read-data")
}

// TestCallWarnsOfTime: "sdactl call" warns, from the token's unverified
// claims, when the token has expired or is not yet valid, before it dials;
// it still tries (the device's clock decides).
func TestCallWarnsOfTime(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	ok(t, dir, "keys", "generate", "-o", "tech.key", "-pub", "tech.pem")
	anchor, err := client.ReadKeyFile(filepath.Join(dir, "anchor.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tech, err := client.ReadKeyFile(filepath.Join(dir, "tech.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := token.AnchorName(anchor.Public())
	scope, _ := token.ParseScope("read-data")
	issue := func(name string, nbf, exp time.Time) {
		raw, err := token.Issue(&token.Claims{
			Issuer: iss, Subject: "alice", Audience: []string{"ep:hvac-1"}, Scope: scope, Key: tech.Public(),
			IssuedAt: nbf.Truncate(time.Second), NotBefore: nbf.Truncate(time.Second), Expiry: exp.Truncate(time.Second), ID: []byte("0123456789abcdef"),
		}, anchor, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	issue("expired.token", now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	issue("future.token", now.Add(2*time.Hour), now.Add(3*time.Hour))
	issue("valid.token", now.Add(-time.Minute), now.Add(time.Hour))

	unreachable := "tcp://" + freeAddr(t)
	for _, tc := range []struct{ file, want string }{
		{"expired.token", "expired"},
		{"future.token", "not valid before"},
	} {
		// Nobody listens: exit 4 shows that the call was still tried.
		r := expect(t, 4, dir, "", "call", "-token", tc.file, "-key", "tech.key", "-timeout", "5s", unreachable, "read-data")
		wantContains(t, "call with "+tc.file, r.stderr, "warning:", tc.want)
		if w, d := strings.Index(r.stderr, "warning:"), strings.Index(r.stderr, "connecting"); w < 0 || d >= 0 && d < w {
			t.Errorf("call with %s: the warning does not come before dialling:\n%s", tc.file, r.stderr)
		}
	}
	r := expect(t, 4, dir, "", "call", "-token", "valid.token", "-key", "tech.key", "-timeout", "5s", unreachable, "read-data")
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("call with a valid token warns:\n%s", r.stderr)
	}
}

// TestVersion: "sdactl version" prints the module version recorded in the
// binary and the Go version it was built with.
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	r := ok(t, dir, "version")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "version", "-m", sdactlBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	// "<path>: go1.x" then lines "\tmod\t<module>\t<version>\t...".
	goVersion := strings.TrimSpace(strings.SplitN(strings.SplitN(string(out), "\n", 2)[0], ": ", 2)[1])
	m := regexp.MustCompile(`(?m)^\tmod\tgithub\.com/securedeviceaccess/sda\t(\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("go version -m shows no module version:\n%s", out)
	}
	wantContains(t, "sdactl version", r.stdout, m[1], goVersion)
	if r2 := ok(t, dir, "version", "-h"); !strings.Contains(r2.stdout, "usage: sdactl version") {
		t.Errorf("sdactl version -h:\n%s", r2.stdout)
	}
	expect(t, 2, dir, "", "version", "extra")
}

// The simulated device reports the connections it drops: one that stays
// silent past -idle-timeout is closed and printed as a "dropped" line.
func TestDeviceReportsDrops(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "keys", "generate", "-o", "anchor.key", "-pub", "anchor.pem")
	dev := start(t, dir, "device", "-anchor", "anchor.pem", "-endpoint", "hvac-1", "-idle-timeout", "200ms")
	c, err := net.Dial("tcp", dev.addr[len("tcp://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line := dev.waitLine(` dropped reason=idle-timeout `)
	wantContains(t, "drop line", line, "remote="+c.LocalAddr().String(), "requests=0")
	// The device closed the connection.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the drop: %v, want EOF", err)
	}
}
