// Command uncovered runs the mutants that gremlins lists as NOT COVERED.
//
// gremlins v0.5.0 decides coverage from Go's coverage profile, whose blocks
// start after a case clause's colon: the expressions of `case a < b:` are
// never "covered", so their mutants are never run, although the tests run
// them. This command applies each such mutant itself (the operator at the
// listed line and column, swapped as gremlins would) through `go test
// -overlay`, without touching the tree, and reports it killed when the
// package's tests fail, lived when they pass, and not viable when it does
// not compile.
//
//	go run .ci/mutation/uncovered.go .ci/mutation/mutants.go [-v] token=out/token.json device=out/device.json ...
//
// With -status LIVED it re-runs the mutants that survived gremlins against
// the tree as it is now, to check tests written since the run (the source
// files must be those the run mutated).
//
// Every lived mutant must be killed by a test or listed in
// .ci/mutation/equivalent/*.txt like the others (-equivalent); the command
// exits 1 when one is neither.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// swaps are gremlins' operator replacements, by mutation type.
var swaps = map[string]map[token.Token]token.Token{
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.NEQ: token.EQL, token.LSS: token.GEQ, token.LEQ: token.GTR, token.GTR: token.LEQ, token.GEQ: token.LSS},
	"CONDITIONALS_BOUNDARY": {token.LSS: token.LEQ, token.LEQ: token.LSS, token.GTR: token.GEQ, token.GEQ: token.GTR},
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.SUB: token.ADD, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL},
	"INVERT_NEGATIVES":      {token.SUB: token.ADD},
	"INCREMENT_DECREMENT":   {token.INC: token.DEC, token.DEC: token.INC},
}

func main() {
	verbose := flag.Bool("v", false, "list every mutant with its result")
	equivalentFile := flag.String("equivalent", "", "the equivalent-mutant list (path | TYPE | column | source line | reason)")
	timeout := flag.Duration("timeout", 3*time.Minute, "time allowed to one test run")
	statuses := flag.String("status", "NOT COVERED", "comma-separated gremlins statuses of the mutants to run (LIVED re-runs survivors against the tree as it is now)")
	flag.Parse()
	equivalent, err := readList(*equivalentFile)
	if err != nil {
		fail(err)
	}
	failed := false
	for _, arg := range flag.Args() {
		pkg, file, ok := strings.Cut(arg, "=")
		if !ok {
			fail(fmt.Errorf("argument %q: want package-directory=results.json", arg))
		}
		var r results
		data, err := os.ReadFile(file)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			fail(err)
		}
		counts := map[string]int{}
		for _, f := range r.Files {
			path := filepath.ToSlash(filepath.Join(pkg, f.FileName))
			if filepath.Dir(path) != filepath.Clean(pkg) {
				continue // a subpackage
			}
			src, err := os.ReadFile(path)
			if err != nil {
				fail(err)
			}
			lines, err := sourceLines(path)
			if err != nil {
				fail(err)
			}
			for _, m := range f.Mutations {
				if !slices.Contains(strings.Split(*statuses, ","), m.Status) {
					continue
				}
				k := mutantKey(path, lines, m.Type, m.Line, m.Column)
				status := run(pkg, path, src, m.Type, m.Line, m.Column, *timeout)
				if status == "LIVED" && equivalent[k] != "" {
					status = "EQUIVALENT"
				}
				counts[status]++
				if *verbose || status == "LIVED" || status == "ERROR" {
					fmt.Printf("%-11s %s:%d:%d %s  %s\n", status, path, m.Line, m.Column, m.Type, k.text)
				}
				if status == "LIVED" || status == "ERROR" {
					failed = true
				}
			}
		}
		fmt.Printf("%s: %s mutants: %d killed, %d lived, %d equivalent, %d not viable, %d errors\n",
			pkg, *statuses, counts["KILLED"], counts["LIVED"], counts["EQUIVALENT"], counts["NOT VIABLE"], counts["ERROR"])
	}
	if failed {
		os.Exit(1)
	}
}

// run applies one mutant through an overlay and runs the package's tests.
func run(pkg, path string, src []byte, typ string, line, col int, timeout time.Duration) string {
	mutated, ok := mutate(src, typ, line, col)
	if !ok {
		return "ERROR"
	}
	dir, err := os.MkdirTemp("", "sda-uncovered")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	abs, err := filepath.Abs(path)
	if err != nil {
		fail(err)
	}
	file := filepath.Join(dir, filepath.Base(path))
	overlay := filepath.Join(dir, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: file}})
	if err := os.WriteFile(file, mutated, 0o600); err != nil {
		fail(err)
	}
	if err := os.WriteFile(overlay, ov, 0o600); err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-overlay", overlay, "-count=1", "-failfast", "./"+pkg)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return "LIVED"
	case ctx.Err() != nil:
		return "KILLED" // timed out: noticed
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		return "NOT VIABLE"
	}
	return "KILLED"
}

// mutate swaps the operator token at line:col as gremlins would.
func mutate(src []byte, typ string, line, col int) ([]byte, bool) {
	swap, ok := swaps[typ]
	if !ok {
		return nil, false
	}
	fset := token.NewFileSet()
	f := fset.AddFile("x.go", -1, len(src))
	var s scanner.Scanner
	s.Init(f, src, nil, scanner.ScanComments)
	for {
		pos, tok, _ := s.Scan()
		if tok == token.EOF {
			return nil, false
		}
		p := fset.Position(pos)
		if p.Line != line || p.Column != col {
			continue
		}
		to, ok := swap[tok]
		if !ok {
			return nil, false
		}
		off := p.Offset
		out := append([]byte{}, src[:off]...)
		out = append(out, to.String()...)
		return append(out, src[off+len(tok.String()):]...), true
	}
}
