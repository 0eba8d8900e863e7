package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// A recordForm is the HTML form of one kind of record: it reads the
// posted fields, writes the record's JSON for the administration API,
// and fills itself from a record read from the API.
type recordForm interface {
	// parse reads the posted form.
	parse(v url.Values)
	// record returns the record to send, or the fields that could not be
	// read (named as the API names them, so that they show next to the
	// same inputs as the API's own errors).
	record() (any, []policy.FieldError)
	// fill sets the form from a record of the API.
	fill(raw json.RawMessage) error
	// recordID is the id the form names.
	recordID() string
}

// splitList splits a field holding several values, one a line or
// separated by commas, dropping empty entries.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
	if len(f) > maxLines {
		f = f[:maxLines+1] // enough for the API to say there are too many
	}
	return f
}

// splitLines splits a field holding one value a line, dropping empty lines.
func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
			if len(out) > maxLines {
				break
			}
		}
	}
	return out
}

// policyForm is the structured form of a policy. Operations are one a
// line, a name optionally followed by its constraints as JSON
// ("configure [{"arg":0,"range":[16,28]}]"); attributes of the device
// selector are one a line, "key=value1,value2". The delegation is its
// depth (empty: not delegable) and the operations that may be passed on
// (empty: every operation of the policy).
type policyForm struct {
	ID, Name, Description       string
	Status, Effect              string
	ValidFrom, ValidUntil       string
	Lifetime                    string
	Users, Groups, Applications string
	Operations                  string
	AllDevices                  bool
	DeviceIDs, EndpointNames    string
	Attributes                  string
	DelegateDepth, DelegateOps  string
	AsJSON                      bool
	JSON                        string
}

func (f *policyForm) recordID() string { return f.ID }

func (f *policyForm) parse(v url.Values) {
	f.ID = strings.TrimSpace(v.Get("id"))
	f.Name, f.Description = v.Get("name"), v.Get("description")
	f.Status, f.Effect = v.Get("status"), v.Get("effect")
	f.ValidFrom, f.ValidUntil = strings.TrimSpace(v.Get("valid_from")), strings.TrimSpace(v.Get("valid_until"))
	f.Lifetime = strings.TrimSpace(v.Get("token_lifetime_seconds"))
	f.Users, f.Groups, f.Applications = v.Get("subjects.users"), v.Get("subjects.groups"), v.Get("subjects.applications")
	f.Operations = v.Get("operations")
	f.AllDevices = v.Get("devices.all") != ""
	f.DeviceIDs, f.EndpointNames, f.Attributes = v.Get("devices.ids"), v.Get("devices.endpoint_names"), v.Get("devices.attributes")
	f.DelegateDepth, f.DelegateOps = strings.TrimSpace(v.Get("delegation.max_depth")), v.Get("delegation.operations")
	f.AsJSON = v.Get("as") == "json"
	f.JSON = v.Get("json")
	if f.AsJSON {
		// The id of the record is the one in the JSON.
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(f.JSON), &head) == nil && head.ID != "" {
			f.ID = head.ID
		}
	}
}

func (f *policyForm) record() (any, []policy.FieldError) {
	if f.AsJSON {
		var p policy.Policy
		if err := json.Unmarshal([]byte(f.JSON), &p); err != nil {
			return nil, []policy.FieldError{{Name: "json", Message: jsonProblem(err)}}
		}
		return json.RawMessage(f.JSON), nil
	}
	var errs []policy.FieldError
	p := policy.Policy{ID: f.ID, Name: f.Name, Description: f.Description,
		Status: policy.Activation(f.Status), Effect: policy.Effect(f.Effect)}
	p.ValidFrom = parseTime(f.ValidFrom, "valid_from", &errs)
	p.ValidUntil = parseTime(f.ValidUntil, "valid_until", &errs)
	if f.Lifetime != "" {
		n, err := strconv.ParseInt(f.Lifetime, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, policy.FieldError{Name: "token_lifetime_seconds", Message: "must be a whole number of seconds"})
		}
		// One second over the longest lifetime stands for any longer
		// one: the API refuses it with its field error, where n seconds
		// could overflow a Duration into a valid lifetime.
		p.TokenLifetime = time.Duration(min(n, int64(policy.MaxTokenLifetime/time.Second)+1)) * time.Second
	}
	p.Subjects = policy.Subjects{Users: splitList(f.Users), Groups: splitList(f.Groups), Applications: splitList(f.Applications)}
	for i, l := range splitLines(f.Operations) {
		name, rest, _ := strings.Cut(l, " ")
		rule := policy.OperationRule{Name: name}
		if rest = strings.TrimSpace(rest); rest != "" {
			if err := json.Unmarshal([]byte(rest), &rule.Constraints); err != nil {
				errs = append(errs, policy.FieldError{Name: fmt.Sprintf("operations[%d].constraints", i),
					Message: "after the name, the constraints must be a JSON array such as [{\"arg\":0,\"range\":[16,28]}]"})
			}
		}
		p.Operations = append(p.Operations, rule)
	}
	p.Devices = policy.DeviceSelector{All: f.AllDevices, IDs: splitList(f.DeviceIDs), EndpointNames: splitList(f.EndpointNames)}
	for _, l := range splitLines(f.Attributes) {
		k, vals, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			errs = append(errs, policy.FieldError{Name: "devices.attributes", Message: fmt.Sprintf("%q: write key=value1,value2", l)})
			continue
		}
		if p.Devices.Attributes == nil {
			p.Devices.Attributes = map[string][]string{}
		}
		p.Devices.Attributes[k] = append(p.Devices.Attributes[k], splitList(vals)...)
	}
	switch ops := splitList(f.DelegateOps); {
	case f.DelegateDepth != "":
		n, err := strconv.Atoi(f.DelegateDepth)
		if err != nil {
			errs = append(errs, policy.FieldError{Name: "delegation.max_depth", Message: "must be a whole number of links, or empty for no delegation"})
		}
		p.Delegation = &policy.DelegationRule{MaxDepth: n, Operations: ops}
	case len(ops) > 0:
		errs = append(errs, policy.FieldError{Name: "delegation.max_depth", Message: "set the depth to let the listed operations be passed on"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &p, nil
}

func (f *policyForm) fill(raw json.RawMessage) error {
	var p policy.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	f.ID, f.Name, f.Description = p.ID, p.Name, p.Description
	f.Status, f.Effect = string(p.Status), string(p.Effect)
	f.ValidFrom, f.ValidUntil = formatTime(p.ValidFrom), formatTime(p.ValidUntil)
	if p.TokenLifetime > 0 {
		f.Lifetime = strconv.FormatInt(int64(p.TokenLifetime/time.Second), 10)
	}
	f.Users = strings.Join(p.Subjects.Users, "\n")
	f.Groups = strings.Join(p.Subjects.Groups, "\n")
	f.Applications = strings.Join(p.Subjects.Applications, "\n")
	var ops []string
	for _, o := range p.Operations {
		l := o.Name
		if len(o.Constraints) > 0 {
			b, err := json.Marshal(o.Constraints)
			if err != nil {
				return err
			}
			l += " " + string(b)
		}
		ops = append(ops, l)
	}
	f.Operations = strings.Join(ops, "\n")
	f.AllDevices = p.Devices.All
	f.DeviceIDs = strings.Join(p.Devices.IDs, "\n")
	f.EndpointNames = strings.Join(p.Devices.EndpointNames, "\n")
	var attrs []string
	for _, k := range slices.Sorted(maps.Keys(p.Devices.Attributes)) {
		attrs = append(attrs, k+"="+strings.Join(p.Devices.Attributes[k], ","))
	}
	f.Attributes = strings.Join(attrs, "\n")
	if d := p.Delegation; d != nil {
		f.DelegateDepth = strconv.Itoa(d.MaxDepth)
		f.DelegateOps = strings.Join(d.Operations, "\n")
	}
	f.JSON = indentJSON(p)
	return nil
}

// subjectForm is the form of a subject: groups one a line or separated
// by commas.
type subjectForm struct {
	ID, Kind, Groups string
}

func (f *subjectForm) recordID() string { return f.ID }

func (f *subjectForm) parse(v url.Values) {
	f.ID, f.Kind, f.Groups = strings.TrimSpace(v.Get("id")), v.Get("kind"), v.Get("groups")
}

func (f *subjectForm) record() (any, []policy.FieldError) {
	return &policy.Subject{ID: f.ID, Kind: policy.SubjectKind(f.Kind), Groups: splitList(f.Groups)}, nil
}

func (f *subjectForm) fill(raw json.RawMessage) error {
	var s policy.Subject
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	f.ID, f.Kind, f.Groups = s.ID, string(s.Kind), strings.Join(s.Groups, "\n")
	return nil
}

// deviceForm is the form of a device: attributes one a line, "key=value".
type deviceForm struct {
	ID, EndpointName, Attributes string
}

func (f *deviceForm) recordID() string { return f.ID }

func (f *deviceForm) parse(v url.Values) {
	f.ID, f.EndpointName, f.Attributes = strings.TrimSpace(v.Get("id")), strings.TrimSpace(v.Get("endpoint_name")), v.Get("attributes")
}

func (f *deviceForm) record() (any, []policy.FieldError) {
	d := &policy.Device{ID: f.ID, EndpointName: f.EndpointName}
	var errs []policy.FieldError
	for _, l := range splitLines(f.Attributes) {
		k, val, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			errs = append(errs, policy.FieldError{Name: "attributes", Message: fmt.Sprintf("%q: write key=value", l)})
			continue
		}
		if d.Attributes == nil {
			d.Attributes = map[string]string{}
		}
		d.Attributes[k] = strings.TrimSpace(val)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return d, nil
}

func (f *deviceForm) fill(raw json.RawMessage) error {
	var d policy.Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return err
	}
	f.ID, f.EndpointName = d.ID, d.EndpointName
	var attrs []string
	for _, k := range slices.Sorted(maps.Keys(d.Attributes)) {
		attrs = append(attrs, k+"="+d.Attributes[k])
	}
	f.Attributes = strings.Join(attrs, "\n")
	return nil
}

// apiKeyForm is the form that creates an API key.
type apiKeyForm struct {
	ID, Subject string
	Admin       bool
}

func (f *apiKeyForm) recordID() string { return f.ID }

func (f *apiKeyForm) parse(v url.Values) {
	f.ID, f.Subject, f.Admin = strings.TrimSpace(v.Get("id")), strings.TrimSpace(v.Get("subject")), v.Get("admin") != ""
}

func (f *apiKeyForm) record() (any, []policy.FieldError) {
	return map[string]any{"id": f.ID, "subject": f.Subject, "admin": f.Admin}, nil
}

func (f *apiKeyForm) fill(raw json.RawMessage) error {
	var k struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
		Admin   bool   `json:"admin"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return err
	}
	f.ID, f.Subject, f.Admin = k.ID, k.Subject, k.Admin
	return nil
}

// parseTime reads an RFC 3339 time; empty is the zero time.
func parseTime(s, field string, errs *[]policy.FieldError) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		*errs = append(*errs, policy.FieldError{Name: field, Message: "must be an RFC 3339 time such as 2026-01-31T08:00:00Z"})
	}
	return t
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// jsonProblem says what is wrong with JSON typed by hand.
func jsonProblem(err error) string {
	var ve *policy.ValidationError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ve) && len(ve.Fields) > 0:
		return ve.Fields[0].Name + ": " + ve.Fields[0].Message
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	return "not a policy in JSON: " + err.Error()
}
