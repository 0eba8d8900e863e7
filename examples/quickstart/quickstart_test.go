// Package quickstart_test runs the README's quick start as a newcomer
// would: it builds the CLI and the two quick-start programs, then runs the
// README's shell commands, as written, in a scratch directory.
package quickstart_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlocks returns the fenced code blocks of the given language in the
// README's "Quick start" section.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "## Quick start")
	if start < 0 {
		t.Fatal("README has no Quick start section")
	}
	s = s[start:]
	if end := strings.Index(s[3:], "\n## "); end >= 0 {
		s = s[:end+3]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestREADMEProgramsAreTheSources checks that the programs shown in the
// README are the ones in this directory, which go vet and the test below
// build and run.
func TestREADMEProgramsAreTheSources(t *testing.T) {
	blocks := readmeBlocks(t, "go")
	if len(blocks) < 2 {
		t.Fatalf("README quick start has %d Go blocks, want at least 2", len(blocks))
	}
	for i, file := range []string{"device/main.go", "technician/main.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), blocks[i]) {
			t.Errorf("README's Go block %d is not the code of %s; copy the file's func main into the README", i+1, file)
		}
	}
	harness, err := os.ReadFile("../../device/devicetest/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(blocks[2], "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "}" || strings.HasPrefix(line, "func Test") {
			continue
		}
		if !bytes.Contains(harness, []byte(line)) {
			t.Errorf("README's test-harness line %q is not in device/devicetest/example_test.go, whose Example runs it", line)
		}
	}
}

// TestQuickStart runs the README's commands. The only changes: `go run
// ./examples/X` runs a binary built from the same package, and the device
// listens on a free port instead of 5683.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three programs")
	}
	blocks := readmeBlocks(t, "sh")
	if len(blocks) != 3 {
		t.Fatalf("README quick start has %d shell blocks, want 3 (setup, device, technician)", len(blocks))
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, pkg := range []string{"sdactl", "quickstart/device", "quickstart/technician"} {
		out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, filepath.Base(pkg)), "../"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rewrite := func(block string) string {
		block = strings.ReplaceAll(block, "go run ./examples/quickstart/", bin+"/")
		block = strings.ReplaceAll(block, "go run ./examples/", bin+"/")
		block = strings.ReplaceAll(block, "-anchor anchor.pem", "-anchor anchor.pem -listen "+addr)
		return strings.ReplaceAll(block, "-token token.cbor", "-token token.cbor -device "+addr)
	}
	dir := t.TempDir()
	bash := func(ctx context.Context, script string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		return cmd
	}

	if out, err := bash(ctx, rewrite(blocks[0])).CombinedOutput(); err != nil {
		t.Fatalf("setup commands: %v\n%s", err, out)
	}

	devCtx, stopDev := context.WithCancel(ctx)
	dev := bash(devCtx, "exec "+strings.TrimSpace(rewrite(blocks[1])))
	stderr, err := dev.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopDev()
		_ = dev.Wait()
	}()
	lines := bufio.NewScanner(stderr)
	listening := make(chan bool, 1)
	go func() {
		sent := false
		for lines.Scan() {
			if !sent && strings.Contains(lines.Text(), "listening on") {
				listening <- true
				sent = true
			}
		}
		if !sent {
			listening <- false
		}
	}()
	select {
	case ok := <-listening:
		if !ok {
			t.Fatal("the device exited before listening")
		}
	case <-ctx.Done():
		t.Fatal("the device did not start listening")
	}

	out, err := bash(ctx, rewrite(blocks[2])).CombinedOutput()
	if err != nil {
		t.Fatalf("technician: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `rooftop-1 says: {"setpoint_c": 21, "fan_pct": 60}`) {
		t.Fatalf("technician printed %q", out)
	}
}

// TestREADMERaceNeedsCgo: the race detector needs cgo and a C compiler;
// the README's test command uses it, so the README says so and gives the
// command that works without one.
func TestREADMERaceNeedsCgo(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "go test -race ./...")
	if i < 0 {
		t.Skip("the README does not use -race")
	}
	// Within the section of the command.
	section := s[i:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	for _, want := range []string{"cgo", "C compiler", "`go test ./...`"} {
		if !strings.Contains(section, want) {
			t.Errorf("the README's section with `go test -race ./...` does not mention %s", want)
		}
	}
}
