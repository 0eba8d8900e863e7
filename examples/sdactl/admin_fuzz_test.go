package main

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// FuzzAdminFiles: the decoding of the files the admin commands read
// (records, changes and test suites in JSON or YAML; store files and
// export documents) returns an error for bad input, never panics.
func FuzzAdminFiles(f *testing.F) {
	for _, s := range []string{
		`{"id":"p","status":"active","effect":"allow","subjects":{"users":["a"]},"operations":[{"name":"x"}],"devices":{"all":true}}`,
		"id: p\nsubjects: {groups: [g]}\noperations: [{name: x, constraints: [{arg: 0, range: [1, 2]}]}]\n",
		"- kind: policy\n  id: p\n  delete: true\n",
		`{"changes":[{"kind":"subject","id":"s","subject":{"id":"s","kind":"user"}}],"limit":5}`,
		`{"format":"sda-policy-store/1","seq":3,"policies":[],"subjects":[],"devices":[],"api_keys":[]}`,
		`{"format":"sda-policy-export/1","issued":[{}]}`,
		"a: &a [*a, *a]\n", "", "[", "{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &env{stdin: bytes.NewReader(data), stdout: io.Discard, stderr: io.Discard, now: time.Now}
		if j, err := e.readJSONOrYAML("-"); err == nil {
			for _, c := range adminCollections {
				if c.editor != nil {
					c.editor.decode(j)
				}
			}
			var body map[string]json.RawMessage
			json.Unmarshal(j, &body)
		}
		e.stdin = bytes.NewReader(data)
		e.readSnapshotFile("-")
	})
}

// FuzzAdminAnswers: whatever the service answers, the admin commands
// print it or refuse it, never panic.
func FuzzAdminAnswers(f *testing.F) {
	for _, s := range []string{
		`{"object":"impact","gained":1,"summary":[{"change":"gained","operation":"x","constraints":[{"arg":0}],"subjects":{"sample":["a"]}}],"details":[{}]}`,
		`{"object":"explanation","pairs":[{"matched":[{"constraints":[{"arg":1,"equals":{}}]}],"near_misses":[{"failed":[{}]}]}],"grants":[{"alternatives":[[{"one_of":[]}]]}],"denied":{}}`,
		`{"object":"policy-test-report","failed":1,"results":[{"failures":[{"explanation":{}}]}]}`,
		`{"id":"x","operations":[{"name":"n","constraints":[{"arg":0,"range":[1,0]}]}],"attributes":{"k":"\u0000"},"members":["a"]}`,
		`{"members":3}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		printImpactAnswer(io.Discard, data, 10, false)
		var ex explanationJSON
		if json.Unmarshal(data, &ex) == nil {
			printExplanation(io.Discard, &ex)
		}
		var rep testReportJSON
		if json.Unmarshal(data, &rep) == nil {
			printTestReport(io.Discard, &rep)
		}
		for _, c := range adminCollections {
			c.row(data)
			c.show(io.Discard, data)
		}
		showGroup(io.Discard, data)
	})
}
