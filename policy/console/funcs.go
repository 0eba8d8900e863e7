package console

import (
	"encoding/json"
	"html/template"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

var templateFuncs = template.FuncMap{
	"lower": strings.ToLower,
	// when writes a time to the second; empty for the zero time.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	},
	// code is the reason code of a denial's reason.
	"code": policy.ReasonCode,
	"join": func(s []string) string { return strings.Join(s, ", ") },
	// constraints writes argument constraints as JSON on one line; empty
	// when there are none.
	"constraints": func(c []policy.ArgConstraint) string {
		if len(c) == 0 {
			return ""
		}
		b, err := json.Marshal(c)
		if err != nil {
			return ""
		}
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
