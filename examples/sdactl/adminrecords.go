package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

// The collections of the administration API, their flags, tables and
// readable forms.

// The example lines of the help texts use this service and key file;
// TestEveryHelpExample runs them after the example of "sdactl help
// authserver", which creates alice, hvac-1, the policy roof and alice's key.
const exampleService = "-url http://127.0.0.1:8080 -api-key-file admin.apikey"

var policiesCollection = &adminCollection{
	name: "policies", one: "policy", many: "policies", kind: policy.KindPolicy,
	header: "ID\tEFFECT\tSTATUS\tSUBJECTS\tOPERATIONS\tDEVICES\tLIFETIME\tVALID",
	row: func(raw json.RawMessage) (string, error) {
		var p policy.Policy
		if err := decodeServiceRecord(raw, &p); err != nil {
			return "", err
		}
		lifetime := "-"
		if p.Effect == policy.Allow {
			lifetime = p.TokenLifetime.String()
		}
		return strings.Join([]string{p.ID, string(p.Effect), string(p.Status), cell(subjectsText(&p.Subjects)),
			cell(rulesText(p.Operations)), cell(devicesText(&p.Devices)), lifetime, validText(&p)}, "\t"), nil
	},
	show: func(w io.Writer, raw json.RawMessage) error {
		var p policy.Policy
		if err := decodeServiceRecord(raw, &p); err != nil {
			return err
		}
		var b strings.Builder
		line := func(name, v string) { fmt.Fprintf(&b, "%-13s%s\n", name+":", v) }
		line("id", p.ID)
		if p.Name != "" {
			line("name", clean(p.Name))
		}
		if p.Description != "" {
			line("description", clean(p.Description))
		}
		line("effect", string(p.Effect))
		line("status", string(p.Status))
		line("subjects", subjectsText(&p.Subjects))
		line("operations", rulesText(p.Operations))
		line("devices", devicesText(&p.Devices))
		if p.Effect == policy.Allow {
			line("lifetime", p.TokenLifetime.String())
		}
		if d := p.Delegation; d != nil {
			line("delegation", delegationText(d))
		}
		line("valid", validText(&p))
		_, err := io.WriteString(w, b.String())
		return ioErr(err)
	},
	editor: &recordEditor{
		blank: func() any {
			return &policy.Policy{Status: policy.Active, Effect: policy.Allow}
		},
		decode: func(data []byte) (any, error) {
			p := new(policy.Policy)
			return p, strictJSON(data, p)
		},
		id:    func(rec any) string { return rec.(*policy.Policy).ID },
		flags: policyFlags,
	},
	examples: map[string]string{
		"list": "  sdactl admin policies list " + exampleService + "\n",
		"show": "  sdactl admin policies show " + exampleService + " roof\n",
		"create": "  sdactl admin policies create " + exampleService + ` \
      -id rooftop-techs -groups technicians -attr site=rooftop \
      -ops 'read-data set-temperature(arg0 in 16..28)' -lifetime 2h \
      -delegate-depth 1 -delegate-ops read-data
`,
		"update": "  sdactl admin policies update " + exampleService + ` rooftop-techs \
      -ops read-data -valid-until 2030-01-01T00:00:00Z
`,
		"delete": "  sdactl admin policies delete " + exampleService + " rooftop-techs\n",
	},
}

// policyFlags declares the flags of a policy's fields.
func policyFlags(fs *flag.FlagSet) func(rec any, set map[string]bool, create bool) error {
	id := fs.String("id", "", "the policy's `id` (create)")
	name := fs.String("name", "", "a short `name` for owners")
	desc := fs.String("description", "", "a longer description")
	effect := fs.String("effect", "", "`effect`: allow or deny (create: allow); deny wins over allow")
	inactive := fs.Bool("inactive", false, "the policy takes no part in decisions (update: -inactive=false activates it)")
	users := fs.String("users", "", "user subject `ids`, comma-separated")
	groups := fs.String("groups", "", "group `names`, comma-separated")
	apps := fs.String("apps", "", "application subject `ids`, comma-separated")
	ops := fs.String("ops", "", "the `operations`, as a scope: names separated by spaces, each with optional\nconstraints as \"sdactl token inspect\" prints them, such as\n'read-data set-temperature(arg0 in 16..28)'; \"*\" for every operation")
	all := fs.Bool("all-devices", false, "the policy applies to every device")
	ids := fs.String("device-ids", "", "device `ids` (32 hex digits), comma-separated")
	eps := fs.String("endpoint-names", "", "device endpoint `names`, comma-separated")
	var attrs stringList
	fs.Var(&attrs, "attr", "devices whose attribute has one of the values, `key=v1,v2`; repeatable, all must hold")
	lifetime := fs.Duration("lifetime", 0, "longest lifetime of a token the policy allows (create: 1h for allow policies)")
	from := fs.String("valid-from", "", "RFC 3339 `time` from which the policy applies (\"\": no bound)")
	until := fs.String("valid-until", "", "RFC 3339 `time` until which the policy applies (\"\": no bound)")
	delegDepth := fs.Int("delegate-depth", 0, "let the holder of a v2 token this policy grants delegate it, offline, to `N` links\n(1 to 4: 1 lets the holder delegate, 2 also the delegate, ...); 0: not delegable")
	delegOps := fs.String("delegate-ops", "", "the `operations` of the policy that may be passed on, comma-separated\n(\"\": every operation it grants); needs a delegation depth")
	return func(rec any, set map[string]bool, create bool) error {
		p := rec.(*policy.Policy)
		if set["id"] {
			p.ID = *id
		}
		if set["name"] {
			p.Name = *name
		}
		if set["description"] {
			p.Description = *desc
		}
		if set["effect"] {
			switch e := policy.Effect(*effect); e {
			case policy.Allow, policy.Deny:
				p.Effect = e
			default:
				return usageErrorf("-effect %q: want allow or deny", *effect)
			}
		}
		if set["inactive"] {
			p.Status = policy.Active
			if *inactive {
				p.Status = policy.Inactive
			}
		}
		if set["users"] {
			p.Subjects.Users = splitList(*users)
		}
		if set["groups"] {
			p.Subjects.Groups = splitList(*groups)
		}
		if set["apps"] {
			p.Subjects.Applications = splitList(*apps)
		}
		if set["ops"] {
			rules, err := parseRules(*ops)
			if err != nil {
				return usageErrorf("-ops: %v", err)
			}
			p.Operations = rules
		}
		if set["all-devices"] || set["device-ids"] || set["endpoint-names"] || set["attr"] {
			// The selector is one field: the flags replace it together.
			sel := policy.DeviceSelector{All: *all, IDs: splitList(*ids), EndpointNames: splitList(*eps)}
			for _, a := range attrs {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usageErrorf("-attr %q: want key=value[,value...]", a)
				}
				if sel.Attributes == nil {
					sel.Attributes = map[string][]string{}
				}
				if _, dup := sel.Attributes[k]; dup {
					return usageErrorf("-attr %q: attribute %q given twice (list its values after one =)", a, k)
				}
				sel.Attributes[k] = splitList(v)
			}
			p.Devices = sel
		}
		switch {
		case set["lifetime"]:
			if *lifetime%time.Second != 0 {
				return usageErrorf("-lifetime %v: want whole seconds", *lifetime)
			}
			p.TokenLifetime = *lifetime
		case create && p.TokenLifetime == 0 && p.Effect == policy.Allow:
			p.TokenLifetime = time.Hour
		}
		if err := applyDelegationFlags(p, set, *delegDepth, *delegOps); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			v    string
			t    *time.Time
		}{{"valid-from", *from, &p.ValidFrom}, {"valid-until", *until, &p.ValidUntil}} {
			if !set[f.name] {
				continue
			}
			t, err := parseOptionalTime(f.name, f.v)
			if err != nil {
				return err
			}
			*f.t = t
		}
		return nil
	}
}

// applyDelegationFlags applies -delegate-depth and -delegate-ops (named
// in set) to p: a depth of 0 removes the delegation, another sets it,
// keeping the operations unless -delegate-ops names them; -delegate-ops
// alone changes the operations of a delegable policy.
func applyDelegationFlags(p *policy.Policy, set map[string]bool, depth int, ops string) error {
	switch {
	case set["delegate-depth"] && depth < 0:
		return usageErrorf("-delegate-depth %d: want 0 (not delegable) or a number of links", depth)
	case set["delegate-depth"] && depth == 0:
		if set["delegate-ops"] && ops != "" {
			return usageErrorf("-delegate-ops with -delegate-depth 0: a policy that is not delegable passes nothing on")
		}
		p.Delegation = nil
		return nil
	case set["delegate-depth"]:
		if p.Delegation == nil {
			p.Delegation = &policy.DelegationRule{}
		}
		p.Delegation.MaxDepth = depth
	case set["delegate-ops"] && p.Delegation == nil:
		return usageErrorf("-delegate-ops: the policy is not delegable; give -delegate-depth too")
	}
	if set["delegate-ops"] {
		p.Delegation.Operations = nil
		if l := splitList(ops); len(l) > 0 {
			p.Delegation.Operations = l
		}
	}
	return nil
}

// delegationText describes a policy's delegation: "depth 2, operations
// read-data" or "depth 1, every operation".
func delegationText(d *policy.DelegationRule) string {
	if d.Operations == nil {
		return fmt.Sprintf("depth %d, every operation", d.MaxDepth)
	}
	return fmt.Sprintf("depth %d, operations %s", d.MaxDepth, clean(strings.Join(d.Operations, ",")))
}

var subjectsCollection = &adminCollection{
	name: "subjects", one: "subject", many: "subjects", kind: policy.KindSubject,
	header: "ID\tKIND\tGROUPS",
	row: func(raw json.RawMessage) (string, error) {
		var s policy.Subject
		if err := decodeServiceRecord(raw, &s); err != nil {
			return "", err
		}
		return strings.Join([]string{s.ID, string(s.Kind), cell(orDash(strings.Join(s.Groups, ",")))}, "\t"), nil
	},
	show: func(w io.Writer, raw json.RawMessage) error {
		var s policy.Subject
		if err := decodeServiceRecord(raw, &s); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "id:     %s\nkind:   %s\ngroups: %s\n", s.ID, s.Kind, orDash(strings.Join(s.Groups, ", ")))
		return ioErr(err)
	},
	editor: &recordEditor{
		blank: func() any { return &policy.Subject{Kind: policy.User} },
		decode: func(data []byte) (any, error) {
			s := new(policy.Subject)
			return s, strictJSON(data, s)
		},
		id: func(rec any) string { return rec.(*policy.Subject).ID },
		flags: func(fs *flag.FlagSet) func(rec any, set map[string]bool, create bool) error {
			id := fs.String("id", "", "the subject's `id` (create)")
			kind := fs.String("kind", "", "`kind`: user or application (create: user)")
			groups := fs.String("groups", "", "the `groups` the subject belongs to, comma-separated")
			return func(rec any, set map[string]bool, _ bool) error {
				s := rec.(*policy.Subject)
				if set["id"] {
					s.ID = *id
				}
				if set["kind"] {
					switch k := policy.SubjectKind(*kind); k {
					case policy.User, policy.Application:
						s.Kind = k
					default:
						return usageErrorf("-kind %q: want user or application", *kind)
					}
				}
				if set["groups"] {
					s.Groups = splitList(*groups)
				}
				return nil
			}
		},
	},
	examples: map[string]string{
		"list":   "  sdactl admin subjects list " + exampleService + "\n",
		"show":   "  sdactl admin subjects show " + exampleService + " alice\n",
		"create": "  sdactl admin subjects create " + exampleService + " -id bob -groups technicians\n",
		"update": "  sdactl admin subjects update " + exampleService + " bob -groups technicians,juniors\n",
		"delete": "  sdactl admin subjects delete " + exampleService + " bob\n",
	},
}

var devicesCollection = &adminCollection{
	name: "devices", one: "device", many: "devices", kind: policy.KindDevice,
	header: "ID\tENDPOINT\tATTRIBUTES",
	row: func(raw json.RawMessage) (string, error) {
		var d policy.Device
		if err := decodeServiceRecord(raw, &d); err != nil {
			return "", err
		}
		return strings.Join([]string{d.ID, orDash(d.EndpointName), cell(orDash(attributesText(d.Attributes)))}, "\t"), nil
	},
	show: func(w io.Writer, raw json.RawMessage) error {
		var d policy.Device
		if err := decodeServiceRecord(raw, &d); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "id:         %s\nendpoint:   %s\nattributes: %s\n", d.ID, orDash(d.EndpointName), orDash(attributesText(d.Attributes)))
		return ioErr(err)
	},
	editor: &recordEditor{
		blank: func() any { return &policy.Device{} },
		decode: func(data []byte) (any, error) {
			d := new(policy.Device)
			return d, strictJSON(data, d)
		},
		id: func(rec any) string { return rec.(*policy.Device).ID },
		flags: func(fs *flag.FlagSet) func(rec any, set map[string]bool, create bool) error {
			id := fs.String("id", "", "the device `id`, 32 lower-case hex digits (create)")
			ep := fs.String("endpoint-name", "", "the device's endpoint `name` (its ep: audience), unique")
			var attrs stringList
			fs.Var(&attrs, "attr", "an attribute, `key=value`; repeatable; the -attr flags given replace all attributes")
			return func(rec any, set map[string]bool, _ bool) error {
				d := rec.(*policy.Device)
				if set["id"] {
					d.ID = *id
				}
				if set["endpoint-name"] {
					d.EndpointName = *ep
				}
				if set["attr"] {
					d.Attributes = map[string]string{}
					for _, a := range attrs {
						k, v, ok := strings.Cut(a, "=")
						if !ok || k == "" {
							return usageErrorf("-attr %q: want key=value", a)
						}
						if _, dup := d.Attributes[k]; dup {
							return usageErrorf("-attr %q: attribute %q given twice", a, k)
						}
						d.Attributes[k] = v
					}
				}
				return nil
			}
		},
	},
	examples: map[string]string{
		"list": "  sdactl admin devices list " + exampleService + "\n",
		"show": "  sdactl admin devices show " + exampleService + " 0123456789abcdef0123456789abcdef\n",
		"create": "  sdactl admin devices create " + exampleService + ` \
      -id 00112233445566778899aabbccddeeff -endpoint-name hvac-2 -attr site=rooftop
`,
		"update": "  sdactl admin devices update " + exampleService + ` 00112233445566778899aabbccddeeff \
      -attr site=rooftop -attr model=x2
`,
		"delete": "  sdactl admin devices delete " + exampleService + " 00112233445566778899aabbccddeeff\n",
	},
}

// apiKeyJSON is how the administration API shows an API key.
type apiKeyJSON struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	Secret    string    `json:"secret"`
}

var apiKeysCollection = &adminCollection{
	name: "api-keys", one: "API key", many: "API keys",
	header: "ID\tSUBJECT\tADMIN\tCREATED",
	row: func(raw json.RawMessage) (string, error) {
		var k apiKeyJSON
		if err := decodeServiceRecord(raw, &k); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s\t%s\t%t\t%s", k.ID, k.Subject, k.Admin, fmtTime(k.CreatedAt)), nil
	},
	show: func(w io.Writer, raw json.RawMessage) error {
		var k apiKeyJSON
		if err := decodeServiceRecord(raw, &k); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "id:      %s\nsubject: %s\nadmin:   %t\ncreated: %s\n", k.ID, k.Subject, k.Admin, fmtTime(k.CreatedAt))
		return ioErr(err)
	},
	examples: map[string]string{
		"list":   "  sdactl admin api-keys list " + exampleService + "\n",
		"show":   "  sdactl admin api-keys show " + exampleService + " alice-key\n",
		"create": "  sdactl admin api-keys create " + exampleService + " -id bob-key -subject bob > bob.apikey\n",
		"delete": "  sdactl admin api-keys delete " + exampleService + " bob-key\n",
	},
}

// adminCollections are the collections with CRUD commands, in help order.
var adminCollections = []*adminCollection{policiesCollection, subjectsCollection, devicesCollection, apiKeysCollection}

var apiKeysCreateCmd = adminCommand("api-keys create", "", "create an API key and print its secret once",
	`Creates an API key for -subject with POST /admin/v1/api-keys and prints its
secret on stdout, once: the service keeps only its hash. Redirect it to a
file for "sdactl token fetch -credential-file" (sdactl does not write key
files itself so that the secret goes where you send it). With -admin the key
may use the administration API. With -json the service's whole answer,
secret included, is printed instead.
`, apiKeysCollection.examples["create"],
	func(fs *flag.FlagSet) func(ctx context.Context, e *env, api *adminAPI, args []string) error {
		id := fs.String("id", "", "the key's `id` (required)")
		subject := fs.String("subject", "", "the `subject` the key authenticates (required)")
		admin := fs.Bool("admin", false, "the key may use the administration API")
		asJSON := fs.Bool("json", false, "print the service's answer, secret included, as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			switch {
			case *id == "":
				return usageErrorf("-id is required")
			case *subject == "":
				return usageErrorf("-subject is required")
			}
			var out json.RawMessage
			body := map[string]any{"id": *id, "subject": *subject, "admin": *admin}
			if err := api.call(ctx, "POST", apiKeysCollection.path(), nil, body, &out); err != nil {
				return err
			}
			var k apiKeyJSON
			if err := decodeServiceRecord(out, &k); err != nil {
				return err
			}
			if k.Secret == "" || strings.ContainsAny(k.Secret, " \t\r\n") {
				return inputErr(fmt.Errorf("the service's answer holds no secret"))
			}
			e.status("created API key %q for %s; its secret follows on stdout and is shown only this once", k.ID, k.Subject)
			if *asJSON {
				return printRecord(e.stdout, out, true, nil)
			}
			_, err := fmt.Fprintln(e.stdout, k.Secret)
			return ioErr(err)
		}
	})

// decodeServiceRecord decodes a record from the service, leniently: a
// field a newer service adds is ignored.
func decodeServiceRecord(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return inputErr(fmt.Errorf("a record that is not the JSON expected: %w", err))
	}
	return nil
}

// splitList splits a comma-separated flag value; "" is the empty list.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseOptionalTime parses an RFC 3339 flag value; "" is the zero time.
func parseOptionalTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErrorf("-%s %q: want an RFC 3339 time such as 2026-05-01T12:00:00Z", name, v)
	}
	return t, nil
}

// parseRules parses operations in the scope text form of
// token.ParseScopeText into a policy's operation rules.
func parseRules(text string) ([]policy.OperationRule, error) {
	sc, err := token.ParseScopeText(text)
	if err != nil {
		return nil, err
	}
	var rules []policy.OperationRule
	for _, p := range sc.Permissions() {
		r := policy.OperationRule{Name: p.Operation}
		for _, c := range p.Constraints {
			r.Constraints = append(r.Constraints, argConstraint(c))
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// argConstraint converts a token constraint to a policy's.
func argConstraint(c token.Constraint) policy.ArgConstraint {
	out := policy.ArgConstraint{Arg: c.Arg}
	switch c.Kind {
	case token.ConstraintRange:
		out.Range = &[2]int64{c.Min, c.Max}
	case token.ConstraintEqual:
		v := argValue(c.Values[0])
		out.Equals = &v
	default:
		for _, v := range c.Values {
			out.OneOf = append(out.OneOf, argValue(v))
		}
	}
	return out
}

func argValue(a token.Arg) policy.ArgValue {
	if i, ok := a.Int(); ok {
		return policy.ArgValue{Int: &i}
	}
	if s, ok := a.Text(); ok {
		return policy.ArgValue{Text: &s}
	}
	b, _ := a.Bytes()
	return policy.ArgValue{Bytes: b}
}

// tokenConstraint converts a policy's constraint to the token package's,
// for its text form.
func tokenConstraint(c policy.ArgConstraint) token.Constraint {
	switch {
	case c.Range != nil:
		return token.InRange(c.Arg, c.Range[0], c.Range[1])
	case c.Equals != nil:
		return token.Equals(c.Arg, tokenArg(*c.Equals))
	}
	vals := make([]token.Arg, len(c.OneOf))
	for i, v := range c.OneOf {
		vals[i] = tokenArg(v)
	}
	return token.OneOf(c.Arg, vals...)
}

func tokenArg(v policy.ArgValue) token.Arg {
	switch {
	case v.Int != nil:
		return token.Int(*v.Int)
	case v.Text != nil:
		return token.Text(*v.Text)
	}
	return token.Bytes(v.Bytes)
}

// ruleText is an operation rule in the scope text form, such as
// "set-temperature(arg0 in 16..28)".
func ruleText(name string, cs []policy.ArgConstraint) string {
	if len(cs) == 0 {
		return name
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = tokenConstraint(c).String()
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

// rulesText is a policy's operations in the scope text form.
func rulesText(rules []policy.OperationRule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = ruleText(r.Name, r.Constraints)
	}
	return orDash(strings.Join(parts, " "))
}

// subjectsText describes who a policy names.
func subjectsText(s *policy.Subjects) string {
	var parts []string
	for _, l := range []struct {
		what string
		ids  []string
	}{{"users", s.Users}, {"groups", s.Groups}, {"applications", s.Applications}} {
		if len(l.ids) > 0 {
			parts = append(parts, l.what+" "+strings.Join(l.ids, ","))
		}
	}
	return orDash(strings.Join(parts, "; "))
}

// devicesText describes the devices a selector chooses.
func devicesText(d *policy.DeviceSelector) string {
	if d.All {
		return "all devices"
	}
	var parts []string
	if len(d.IDs) > 0 {
		parts = append(parts, "ids "+strings.Join(d.IDs, ","))
	}
	if len(d.EndpointNames) > 0 {
		parts = append(parts, "endpoint names "+clean(strings.Join(d.EndpointNames, ",")))
	}
	if len(d.Attributes) > 0 {
		var as []string
		for _, k := range slices.Sorted(maps.Keys(d.Attributes)) {
			as = append(as, k+"="+clean(strings.Join(d.Attributes[k], ",")))
		}
		parts = append(parts, "attributes "+strings.Join(as, " "))
	}
	return orDash(strings.Join(parts, "; "))
}

// attributesText shows a device's attributes, sorted by key.
func attributesText(attrs map[string]string) string {
	var as []string
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		as = append(as, k+"="+clean(attrs[k]))
	}
	return strings.Join(as, " ")
}

// validText shows a policy's validity window.
func validText(p *policy.Policy) string {
	switch {
	case p.ValidFrom.IsZero() && p.ValidUntil.IsZero():
		return "always"
	case p.ValidFrom.IsZero():
		return "until " + fmtTime(p.ValidUntil)
	case p.ValidUntil.IsZero():
		return "from " + fmtTime(p.ValidFrom)
	}
	return fmtTime(p.ValidFrom) + " to " + fmtTime(p.ValidUntil)
}

// clean escapes the characters of text from the service that are not
// printable (control characters, invalid UTF-8), as %q would, and keeps the
// others, quotes included.
func clean(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[0])
		case unicode.IsPrint(r):
			b.WriteString(s[:size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}

// maxCell bounds a table cell; "show" and -json print everything.
const maxCell = 60

// cell shortens a table cell to maxCell bytes.
func cell(s string) string {
	if len(s) <= maxCell {
		return s
	}
	cut := maxCell - 3
	for cut > 0 && s[cut]&0xc0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}
