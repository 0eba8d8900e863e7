package main

// What report.go and uncovered.go share: gremlins' results and the list of
// equivalent mutants. Run each command with this file:
//
//	go run .ci/mutation/report.go .ci/mutation/mutants.go ...

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// results is gremlins' -o JSON, as far as it is read here.
type results struct {
	Files []struct {
		FileName  string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// key names a mutant as the equivalent list does.
type key struct {
	path, typ string
	column    int
	text      string
}

// readList reads the equivalent-mutant list: mutant key -> reason.
func readList(name string) (map[key]string, error) {
	out := map[key]string{}
	if name == "" {
		return out, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) < 5 {
			return nil, fmt.Errorf("%s:%d: want 5 fields separated by \" | \"", name, n)
		}
		col, err := strconv.Atoi(strings.TrimSpace(parts[2]))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: column: %v", name, n, err)
		}
		// The source text may itself contain " | "; the reason is the last field.
		text := strings.TrimSpace(strings.Join(parts[3:len(parts)-1], " | "))
		reason := strings.TrimSpace(parts[len(parts)-1])
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: no reason given", name, n)
		}
		k := key{strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), col, text}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s:%d: listed twice", name, n)
		}
		out[k] = reason
	}
	return out, sc.Err()
}

// sourceLines returns the lines of a file, read once.
var cache = map[string][]string{}

func sourceLines(name string) ([]string, error) {
	if l, ok := cache[name]; ok {
		return l, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	l := strings.Split(string(data), "\n")
	cache[name] = l
	return l, nil
}

// mutantKey names a mutant as the equivalent list does.
func mutantKey(path string, src []string, typ string, line, column int) key {
	text := ""
	if line >= 1 && line <= len(src) {
		text = strings.TrimSpace(src[line-1])
	}
	return key{path, typ, column, text}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutation:", err)
	os.Exit(2)
}
