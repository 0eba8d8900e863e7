package console

import (
	"strings"

	"github.com/securedeviceaccess/sda/policy"
)

// fieldErrors are the messages of a form: by input (the input's name is
// the API's field name, so that "subjects.users[2]" shows next to the
// input "subjects.users"), and those that belong to no input.
type fieldErrors struct {
	byInput map[string][]string
	General []string
}

// For returns the messages of one input.
func (e fieldErrors) For(input string) []string { return e.byInput[input] }

// Any reports whether there is a message.
func (e fieldErrors) Any() bool { return len(e.byInput) > 0 || len(e.General) > 0 }

// All lists every message with the field it names, for the summary at
// the top of the form.
func (e fieldErrors) All() []string { return e.General }

// inputs lists the names of a form's inputs, and aliases maps API field
// names that no input has to the input that sets them.
var formInputs = map[string][]string{
	"policies": {"id", "name", "description", "status", "effect", "valid_from", "valid_until", "token_lifetime_seconds",
		"subjects.users", "subjects.groups", "subjects.applications", "operations", "devices.all", "devices.ids",
		"devices.endpoint_names", "devices.attributes", "delegation.max_depth", "delegation.operations", "json"},
	"subjects": {"id", "kind", "groups"},
	"devices":  {"id", "endpoint_name", "attributes"},
	"api-keys": {"id", "subject", "admin"},
}

var inputAliases = map[string]string{
	"subjects":   "subjects.users",
	"devices":    "devices.ids",
	"delegation": "delegation.max_depth",
}

func formCollection(f recordForm) string {
	switch f.(type) {
	case *policyForm:
		return "policies"
	case *subjectForm:
		return "subjects"
	case *deviceForm:
		return "devices"
	}
	return "api-keys"
}

// sortErrors places each field error next to its input.
func sortErrors(errs []policy.FieldError, f recordForm) fieldErrors {
	out := fieldErrors{byInput: map[string][]string{}}
	inputs := formInputs[formCollection(f)]
	asJSON := false
	if pf, ok := f.(*policyForm); ok {
		asJSON = pf.AsJSON
	}
	for _, fe := range errs {
		msg := fe.Message
		if asJSON {
			out.byInput["json"] = append(out.byInput["json"], fe.Name+": "+msg)
			out.General = append(out.General, fe.Name+": "+msg)
			continue
		}
		in := inputFor(fe.Name, inputs)
		if in == "" {
			out.General = append(out.General, fe.Name+": "+msg)
			continue
		}
		if fe.Name != in {
			msg = fe.Name + ": " + msg
		}
		out.byInput[in] = append(out.byInput[in], msg)
		out.General = append(out.General, fe.Name+": "+fe.Message)
	}
	return out
}

// sortAPIErrors places an API error's fields next to the inputs, and its
// message on top. The API names a field of the record in a PUT body
// "policy.subjects.users[1]", and in a what-if "changes[0].policy....":
// the first of prefixes that a name starts with is stripped.
func sortAPIErrors(ae *apiError, f recordForm, prefixes ...string) fieldErrors {
	fields := make([]policy.FieldError, len(ae.Fields))
	for i, fe := range ae.Fields {
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(fe.Name, p); ok {
				fe.Name = rest
				break
			}
		}
		fields[i] = fe
	}
	out := sortErrors(fields, f)
	out.General = append([]string{ae.Message}, out.General...)
	return out
}

// inputFor returns the input an API field name belongs to: the longest
// input name that is the field or a prefix of it before "." or "[".
func inputFor(name string, inputs []string) string {
	best := ""
	for _, in := range inputs {
		if (name == in || strings.HasPrefix(name, in+".") || strings.HasPrefix(name, in+"[")) && len(in) > len(best) {
			best = in
		}
	}
	if best == "" {
		head, _, _ := strings.Cut(name, "[")
		head, _, _ = strings.Cut(head, ".")
		best = inputAliases[head]
		if best == "" && name == head {
			best = inputAliases[name]
		}
	}
	return best
}
