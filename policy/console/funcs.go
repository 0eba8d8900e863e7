package console

import (
	"encoding/json"
	"html/template"
	"strings"
	"time"
)

var templateFuncs = template.FuncMap{
	"lower": strings.ToLower,
	// when writes an RFC 3339 time of the API to the second.
	"when": func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.Format(time.RFC3339)
	},
	"join": func(s []string) string { return strings.Join(s, ", ") },
	// compact writes a JSON value on one line; empty when absent.
	"compact": func(raw json.RawMessage) string {
		if len(raw) == 0 || string(raw) == "null" || string(raw) == "[]" {
			return ""
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return string(raw)
		}
		b, _ := json.Marshal(v)
		return string(b)
	},
	"reason": func(code string) string {
		if s, ok := reasons[code]; ok {
			return s
		}
		return code
	},
	// fe is an input's messages, for the template "ferr".
	"fe": func(e fieldErrors, name string) feView { return feView{Name: name, Msgs: e.For(name)} },
	"yesno": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}

// feView is the messages of one input.
type feView struct {
	Name string
	Msgs []string
}
