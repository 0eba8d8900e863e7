// Command report summarises gremlins results (its -o JSON) per package,
// leaving out the mutants listed as equivalent, and prints the efficacy.
//
//	go run .ci/mutation/report.go .ci/mutation/mutants.go -equivalent .ci/mutation/equivalent.txt -target 95 \
//		-group 'policy engine=policy/engine.go,policy/decide.go' -informational policy \
//		token=out/token.json policy=out/policy.json ...
//
// Each argument is package-directory=results-file. Only files directly in
// the package directory count (gremlins also walks subpackages, which have
// tests of their own and their own line here if wanted). A -group adds a
// line for some files of the packages run. Every line is held to -target
// except the packages named by -informational; the command exits 1 when a
// line is under it.
//
// The equivalent-mutant list has one mutant per line:
//
//	path/file.go | MUTATION_TYPE | column | source line, trimmed | reason
//
// Mutants are named by the text of their source line, not its number, so
// the list survives edits elsewhere in the file; a listed mutant that no
// longer exists is reported as stale, and the run fails.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type groups map[string][]string

func (g groups) String() string { return fmt.Sprint(map[string][]string(g)) }

func (g groups) Set(v string) error {
	name, files, ok := strings.Cut(v, "=")
	if !ok || name == "" || files == "" {
		return fmt.Errorf("want name=file,file,...")
	}
	g[name] = strings.Split(files, ",")
	return nil
}

// tally counts the outcomes of one line of the report.
type tally struct{ killed, lived, equiv, timedOut, notCovered int }

func (t tally) efficacy() float64 {
	if t.killed+t.lived == 0 {
		return 100
	}
	return 100 * float64(t.killed) / float64(t.killed+t.lived)
}

func main() {
	equivalent := flag.String("equivalent", "", "the list of equivalent mutants")
	root := flag.String("root", ".", "the module root")
	verbose := flag.Bool("v", false, "list every surviving mutant")
	target := flag.Float64("target", 0, "the efficacy every line must reach, in percent")
	informational := flag.String("informational", "", "comma-separated packages reported but not held to -target")
	grp := groups{}
	flag.Var(grp, "group", "name=file,file: a line for these files (repeatable)")
	flag.Parse()
	exempt := map[string]bool{}
	for _, p := range strings.Split(*informational, ",") {
		exempt[p] = true
	}
	inGroup := func(path string) []string {
		var names []string
		for name, files := range grp {
			for _, f := range files {
				if f == path {
					names = append(names, name)
				}
			}
		}
		return names
	}
	groupTally := map[string]*tally{}
	for name := range grp {
		groupTally[name] = &tally{}
	}

	listed, err := readList(*equivalent)
	if err != nil {
		fail(err)
	}
	used := map[key]bool{}
	var lines []string
	ok := true
	for _, arg := range flag.Args() {
		pkg, file, found := strings.Cut(arg, "=")
		if !found {
			fail(fmt.Errorf("argument %q: want package-directory=results.json", arg))
		}
		data, err := os.ReadFile(file)
		if err != nil {
			fail(err)
		}
		var r results
		if err := json.Unmarshal(data, &r); err != nil {
			fail(fmt.Errorf("%s: %v", file, err))
		}
		var t tally
		var survivors []string
		for _, f := range r.Files {
			if strings.Contains(f.FileName, "/") {
				continue // a subpackage
			}
			path := filepath.ToSlash(filepath.Join(pkg, f.FileName))
			src, err := sourceLines(filepath.Join(*root, path))
			if err != nil {
				fail(err)
			}
			for _, m := range f.Mutations {
				counts := []*tally{&t}
				for _, g := range inGroup(path) {
					counts = append(counts, groupTally[g])
				}
				add := func(f func(*tally)) {
					for _, c := range counts {
						f(c)
					}
				}
				switch m.Status {
				case "KILLED":
					add(func(c *tally) { c.killed++ })
				case "TIMED OUT":
					add(func(c *tally) { c.timedOut++ })
				case "NOT COVERED":
					// Run by uncovered.go, which reads the same list:
					// an entry for such a mutant is not stale.
					if k := mutantKey(path, src, m.Type, m.Line, m.Column); listed[k] != "" {
						used[k] = true
					}
					add(func(c *tally) { c.notCovered++ })
				case "LIVED":
					k := mutantKey(path, src, m.Type, m.Line, m.Column)
					text := k.text
					if listed[k] != "" {
						used[k] = true
						add(func(c *tally) { c.equiv++ })
						continue
					}
					add(func(c *tally) { c.lived++ })
					survivors = append(survivors, fmt.Sprintf("  %s | %s | %d | %s |   (line %d)", path, m.Type, m.Column, text, m.Line))
				}
			}
		}
		lines = append(lines, row(pkg, t, *target, exempt[pkg], &ok))
		if *verbose && len(survivors) > 0 {
			sort.Strings(survivors)
			fmt.Fprintf(os.Stderr, "surviving mutants in %s:\n%s\n", pkg, strings.Join(survivors, "\n"))
		}
	}
	names := make([]string, 0, len(grp))
	for name := range grp {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if t := *groupTally[name]; t.killed+t.lived+t.equiv > 0 {
			lines = append(lines, row(name, t, *target, exempt[name], &ok))
		}
	}
	fmt.Println("| package | killed | lived | equivalent | timed out | not covered | efficacy |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, l := range lines {
		fmt.Println(l)
	}
	var stale []string
	for k, reason := range listed {
		if !used[k] && covers(flag.Args(), k.path) {
			stale = append(stale, fmt.Sprintf("  %s | %s | %d | %s | %s", k.path, k.typ, k.column, k.text, reason))
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		fmt.Fprintf(os.Stderr, "listed as equivalent but not a surviving mutant of this run (killed now, or the line changed):\n%s\n", strings.Join(stale, "\n"))
		ok = false
	}
	if !ok {
		os.Exit(1)
	}
}

// row formats one line of the report and clears ok when it misses target.
func row(name string, t tally, target float64, exempt bool, ok *bool) string {
	mark := ""
	if !exempt && t.efficacy() < target {
		mark = " (under target)"
		*ok = false
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %.1f%%%s |", name, t.killed, t.lived, t.equiv, t.timedOut, t.notCovered, t.efficacy(), mark)
}

// covers reports whether one of the run's packages holds path directly.
func covers(args []string, path string) bool {
	for _, arg := range args {
		pkg, _, _ := strings.Cut(arg, "=")
		if filepath.ToSlash(filepath.Dir(path)) == filepath.ToSlash(filepath.Clean(pkg)) {
			return true
		}
	}
	return false
}
