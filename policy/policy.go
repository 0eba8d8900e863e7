package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/token"
)

// Effect says whether a matching policy allows or denies. Deny wins.
type Effect string

// Effects.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Activation says whether a policy takes part in decisions.
type Activation string

// Activations.
const (
	Active   Activation = "active"
	Inactive Activation = "inactive"
)

// AllOperations, as an [OperationRule] name, matches every operation.
const AllOperations = token.AllOperations

// Policy grants (or, with [Deny], withholds) operations on devices to
// subjects. A policy applies to a request at time t when its Status is
// [Active] and ValidFrom <= t < ValidUntil (a zero bound is open).
type Policy struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	Status      Activation `json:"status"`
	Effect      Effect     `json:"effect"`

	// ValidFrom and ValidUntil bound when the policy applies; zero means unbounded.
	// A token's expiry never goes past the ValidUntil of the allow policies used.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`

	Subjects   Subjects        `json:"subjects"`
	Operations []OperationRule `json:"operations"`
	Devices    DeviceSelector  `json:"devices"`

	// Delegation, in an allow policy, lets the holder of a v2 token that
	// this policy grants pass the granted operations on, offline, to
	// other keys (docs/PROTOCOL.md section 9, "Delegation"). Nil: the
	// grant may not be delegated. Deny policies may not carry it.
	Delegation *DelegationRule `json:"delegation,omitempty"`

	// TokenLifetime is the longest lifetime of a token this policy allows,
	// between [MinTokenLifetime] and [MaxTokenLifetime]. Deny policies ignore
	// it and may leave it zero.
	TokenLifetime time.Duration `json:"-"`
}

// MarshalJSON encodes the policy, with TokenLifetime as whole seconds in
// "token_lifetime_seconds".
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	return json.Marshal(struct {
		plain
		TokenLifetime int64 `json:"token_lifetime_seconds,omitempty"`
	}{plain(p), int64(p.TokenLifetime / time.Second)})
}

// policyJSON is the JSON shape [Policy.UnmarshalJSON] decodes.
type policyJSON struct {
	plainPolicy
	TokenLifetime int64 `json:"token_lifetime_seconds"`
}

// plainPolicy is a Policy without its JSON methods.
type plainPolicy Policy

// jsonShape returns the type of policyJSON, for strictUnmarshal's errors.
func (*Policy) jsonShape() reflect.Type { return reflect.TypeFor[policyJSON]() }

// UnmarshalJSON decodes a policy strictly: unknown fields are an error.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var v policyJSON
	if err := strictUnmarshal(b, &v); err != nil {
		return err
	}
	return p.fromJSON(&v)
}

// decodePolicy decodes a policy as strictUnmarshal into a Policy does, and
// with the same errors, but in one pass: the decoder fills the policy's
// JSON shape directly instead of finding the value's end and calling
// UnmarshalJSON, which decodes it again (stores read every policy record
// with it).
func decodePolicy(b []byte) (*Policy, error) {
	var v policyJSON
	if err := strictUnmarshal(b, &v); err != nil {
		return nil, err
	}
	p := new(Policy)
	if err := p.fromJSON(&v); err != nil {
		return nil, err
	}
	return p, nil
}

// fromJSON sets p from its decoded JSON shape.
func (p *Policy) fromJSON(v *policyJSON) error {
	if v.TokenLifetime < 0 || v.TokenLifetime > int64(MaxTokenLifetime/time.Second) {
		return &ValidationError{Fields: []FieldError{{Name: "token_lifetime_seconds", Message: "out of range"}}}
	}
	*p = Policy(v.plainPolicy)
	p.TokenLifetime = time.Duration(v.TokenLifetime) * time.Second
	return nil
}

// Subjects names who a policy applies to: users and applications by
// subject id, groups by name. A subject matches when it is listed by id
// under its kind, or belongs to a listed group.
type Subjects struct {
	Users        []string `json:"users,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	Applications []string `json:"applications,omitempty"`
}

// OperationRule names an operation (or [AllOperations]) and, optionally,
// constraints on its arguments that all must hold (v2 structured scopes).
type OperationRule struct {
	Name        string          `json:"name"`
	Constraints []ArgConstraint `json:"constraints,omitempty"`
}

// ArgConstraint restricts one argument of an operation (0-based index Arg).
// Exactly one of Range, OneOf and Equals is set. Range bounds an integer
// argument (inclusive); OneOf and Equals compare with values.
type ArgConstraint struct {
	Arg    int        `json:"arg"`
	Range  *[2]int64  `json:"range,omitempty"`
	OneOf  []ArgValue `json:"one_of,omitempty"`
	Equals *ArgValue  `json:"equals,omitempty"`
}

// ArgValue is one operation argument value: exactly one field is set.
type ArgValue struct {
	Int   *int64  `json:"int,omitempty"`
	Text  *string `json:"text,omitempty"`
	Bytes []byte  `json:"bytes,omitzero"`
}

// DeviceSelector chooses devices. A device matches when All is set, its
// device id is in IDs, its endpoint name is in EndpointNames, or Attributes
// is not empty and, for every key, the device's value of that attribute is
// one of the listed values.
type DeviceSelector struct {
	All           bool                `json:"all,omitempty"`
	IDs           []string            `json:"ids,omitempty"`
	EndpointNames []string            `json:"endpoint_names,omitempty"`
	Attributes    map[string][]string `json:"attributes,omitempty"`
}

// idRE documents the syntax of ids; isID implements it.
const idRE = `^[A-Za-z0-9][A-Za-z0-9._:@-]*$`

func checkID(f *fieldErrs, name, v string) {
	switch {
	case v == "":
		f.add(name, "required")
	case len(v) > maxIDLen:
		f.add(name, "longer than %d bytes", maxIDLen)
	case !isID(v):
		f.add(name, "must match %s", idRE)
	}
}

// isID reports whether v matches idRE, without the cost of a regexp.
func isID(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return v != ""
}

func checkText(f *fieldErrs, name, v string, max int) {
	if len(v) > max {
		f.add(name, "longer than %d bytes", max)
	} else if !utf8.ValidString(v) {
		f.add(name, "not valid UTF-8")
	}
}

// checkIDList checks each entry with check and rejects duplicates. Field
// names are formatted only for the entries that fail.
func checkIDList(f *fieldErrs, name string, list []string, check func(*fieldErrs, string, string)) {
	if len(list) > maxListLen {
		f.add(name, "more than %d entries", maxListLen)
		return
	}
	var seen map[string]struct{}
	if len(list) > 8 {
		seen = make(map[string]struct{}, len(list))
	}
	for i, v := range list {
		// check reports into f, and its report is renamed: a fieldErrs
		// of its own per entry would be an allocation per entry.
		n := len(f.list)
		if check(f, "", v); len(f.list) > n {
			msg := f.list[n].Message
			f.list = f.list[:n]
			f.add(fmt.Sprintf("%s[%d]", name, i), "%s", msg)
		}
		dup := false
		if seen != nil {
			_, dup = seen[v]
			seen[v] = struct{}{}
		} else {
			dup = slices.Contains(list[:i], v)
		}
		if dup {
			f.add(fmt.Sprintf("%s[%d]", name, i), "duplicate %q", v)
		}
	}
}

func checkOperationName(f *fieldErrs, name, v string) {
	if token.ValidateName(v) != nil {
		f.add(name, "operation names are 1 to %d characters matching ^[A-Za-z][A-Za-z0-9-]*$", token.MaxNameLength)
	}
}

func checkDeviceID(f *fieldErrs, name, v string) {
	ok := len(v) == 32
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if !ok {
		f.add(name, "device ids are 32 lower-case hexadecimal digits")
	}
}

func checkEndpointName(f *fieldErrs, name, v string) {
	ok := len(v) > 0 && len(v) <= token.MaxAudienceValueLength
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == ' ' || c == '-'
	}
	if !ok {
		f.add(name, "endpoint names are 1 to %d characters of [A-Za-z0-9+/= -]", token.MaxAudienceValueLength)
	}
}

func checkAttrKey(f *fieldErrs, name, v string) {
	ok := len(v) > 0 && len(v) <= maxAttrKeyLen
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-')
	}
	if !ok {
		f.add(name, "attribute names are 1 to %d characters matching ^[A-Za-z][A-Za-z0-9_.-]*$", maxAttrKeyLen)
	}
}

func checkAttrValue(f *fieldErrs, name, v string) {
	if len(v) > maxAttrValueLen || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		f.add(name, "attribute values are at most %d bytes of UTF-8 without NUL", maxAttrValueLen)
	}
}

// Validate reports whether the policy is well formed, as a *[ValidationError]
// (matching [ErrInvalid]) naming every bad field.
func (p *Policy) Validate() error {
	var f fieldErrs
	checkID(&f, "id", p.ID)
	checkText(&f, "name", p.Name, maxNameLen)
	checkText(&f, "description", p.Description, maxDescriptionLen)
	if p.Status != Active && p.Status != Inactive {
		f.add("status", "must be %q or %q", Active, Inactive)
	}
	if p.Effect != Allow && p.Effect != Deny {
		f.add("effect", "must be %q or %q", Allow, Deny)
	}
	if !p.ValidFrom.IsZero() && !p.ValidUntil.IsZero() && !p.ValidFrom.Before(p.ValidUntil) {
		f.add("valid_until", "must be after valid_from")
	}
	checkIDList(&f, "subjects.users", p.Subjects.Users, checkID)
	checkIDList(&f, "subjects.groups", p.Subjects.Groups, checkID)
	checkIDList(&f, "subjects.applications", p.Subjects.Applications, checkID)
	if len(p.Subjects.Users)+len(p.Subjects.Groups)+len(p.Subjects.Applications) == 0 {
		f.add("subjects", "name at least one user, group or application")
	}
	p.validateOperations(&f)
	p.Devices.validate(&f)
	p.validateDelegation(&f)
	switch {
	case p.Effect == Deny && p.TokenLifetime == 0:
	case p.TokenLifetime < MinTokenLifetime || p.TokenLifetime > MaxTokenLifetime:
		f.add("token_lifetime_seconds", "must be between %d and %d", int64(MinTokenLifetime/time.Second), int64(MaxTokenLifetime/time.Second))
	case p.TokenLifetime%time.Second != 0:
		f.add("token_lifetime_seconds", "must be whole seconds")
	}
	return f.err()
}

func (p *Policy) validateOperations(f *fieldErrs) {
	if len(p.Operations) == 0 {
		f.add("operations", "name at least one operation or %q", AllOperations)
		return
	}
	if len(p.Operations) > maxRules {
		f.add("operations", "more than %d rules", maxRules)
		return
	}
	for i, r := range p.Operations {
		if r.Name != AllOperations && len(r.Constraints) == 0 && token.ValidateName(r.Name) == nil &&
			!slices.ContainsFunc(p.Operations[:i], func(o OperationRule) bool { return o.Name == r.Name && len(o.Constraints) == 0 }) {
			continue // valid: spare building the field's name
		}
		n := "operations[" + strconv.Itoa(i) + "]"
		if r.Name != AllOperations {
			checkOperationName(f, n+".name", r.Name)
		}
		if len(r.Constraints) > 0 {
			if r.Name == AllOperations {
				f.add(n+".constraints", "not allowed on %q", AllOperations)
			}
			if p.Effect == Deny {
				f.add(n+".constraints", "not allowed in deny policies: a token cannot carry a negative constraint")
			}
		} else {
			// Unconstrained rules must be unique per name; constrained rules
			// are alternatives and may repeat a name.
			if slices.ContainsFunc(p.Operations[:i], func(o OperationRule) bool { return o.Name == r.Name && len(o.Constraints) == 0 }) {
				f.add(n+".name", "duplicate operation %q", r.Name)
			}
		}
		if len(r.Constraints) > maxConstraints {
			f.add(n+".constraints", "more than %d constraints", maxConstraints)
			continue
		}
		for j, c := range r.Constraints {
			cn := fmt.Sprintf("%s.constraints[%d]", n, j)
			c.validate(f, cn)
			if slices.ContainsFunc(r.Constraints[:j], func(o ArgConstraint) bool { return o.Arg == c.Arg }) {
				f.add(cn+".arg", "argument %d constrained twice", c.Arg)
			}
		}
	}
}

func (c *ArgConstraint) validate(f *fieldErrs, n string) {
	if c.Arg < 0 || c.Arg > maxArgIndex {
		f.add(n+".arg", "must be between 0 and %d", maxArgIndex)
	}
	set := 0
	if c.Range != nil {
		set++
		if c.Range[0] > c.Range[1] {
			f.add(n+".range", "minimum above maximum")
		}
	}
	if c.OneOf != nil {
		set++
		if len(c.OneOf) == 0 || len(c.OneOf) > maxOneOf {
			f.add(n+".one_of", "1 to %d values", maxOneOf)
		}
		for k := range c.OneOf {
			if k >= maxOneOf {
				break
			}
			c.OneOf[k].validate(f, fmt.Sprintf("%s.one_of[%d]", n, k))
		}
	}
	if c.Equals != nil {
		set++
		c.Equals.validate(f, n+".equals")
	}
	if set != 1 {
		f.add(n, "set exactly one of range, one_of, equals")
	}
}

func (v *ArgValue) validate(f *fieldErrs, n string) {
	set := 0
	if v.Int != nil {
		set++
	}
	if v.Text != nil {
		set++
		if len(*v.Text) > maxArgValueLen || !utf8.ValidString(*v.Text) {
			f.add(n+".text", "at most %d bytes of UTF-8", maxArgValueLen)
		}
	}
	if v.Bytes != nil {
		set++
		if len(v.Bytes) > maxArgValueLen {
			f.add(n+".bytes", "at most %d bytes", maxArgValueLen)
		}
	}
	if set != 1 {
		f.add(n, "set exactly one of int, text, bytes")
	}
}

func (s *DeviceSelector) validate(f *fieldErrs) {
	checkIDList(f, "devices.ids", s.IDs, checkDeviceID)
	checkIDList(f, "devices.endpoint_names", s.EndpointNames, checkEndpointName)
	if len(s.Attributes) > maxAttributes {
		f.add("devices.attributes", "more than %d attributes", maxAttributes)
	} else {
		var buf [4]string
		for _, k := range sortedKeys(buf[:0], s.Attributes) {
			// The checks report under names relative to the attribute's,
			// which is built only when they report: a valid selector is
			// validated without allocating.
			m := len(f.list)
			checkAttrKey(f, "", k)
			if vals := s.Attributes[k]; len(vals) == 0 || len(vals) > maxAttrValues {
				f.add("", "1 to %d values", maxAttrValues)
			} else {
				checkIDList(f, "", vals, checkAttrValue)
			}
			if len(f.list) > m {
				n := "devices.attributes." + k
				for i := m; i < len(f.list); i++ {
					f.list[i].Name = n + f.list[i].Name
				}
			}
		}
	}
	if s.All && (len(s.IDs) > 0 || len(s.EndpointNames) > 0 || len(s.Attributes) > 0) {
		f.add("devices.all", "all devices excludes other selectors")
	}
	if !s.All && len(s.IDs)+len(s.EndpointNames)+len(s.Attributes) == 0 {
		f.add("devices", "select all devices or name ids, endpoint names or attributes")
	}
}

// sortedKeys appends the keys of m to buf, sorts them and returns them.
// Callers pass a small array's slice, which spares an allocation for the
// usual few keys.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// appliesAt reports whether the policy is active and valid at t.
func (p *Policy) appliesAt(t time.Time) bool {
	return p.Status == Active &&
		(p.ValidFrom.IsZero() || !t.Before(p.ValidFrom)) &&
		(p.ValidUntil.IsZero() || t.Before(p.ValidUntil))
}

// clone returns a deep copy so that stored policies never alias callers' slices.
func (p *Policy) clone() *Policy {
	c := *p
	// The lists of names share one array, each capped at its end.
	n := len(p.Subjects.Users) + len(p.Subjects.Groups) + len(p.Subjects.Applications) +
		len(p.Devices.IDs) + len(p.Devices.EndpointNames)
	for _, v := range p.Devices.Attributes {
		n += len(v)
	}
	if p.Delegation != nil {
		n += len(p.Delegation.Operations)
	}
	names := make([]string, 0, n)
	clone := func(s []string) []string {
		if s == nil {
			return nil
		}
		i := len(names)
		names = append(names, s...)
		return names[i:len(names):len(names)]
	}
	c.Subjects.Users = clone(p.Subjects.Users)
	c.Subjects.Groups = clone(p.Subjects.Groups)
	c.Subjects.Applications = clone(p.Subjects.Applications)
	c.Operations = make([]OperationRule, len(p.Operations))
	for i, r := range p.Operations {
		c.Operations[i] = OperationRule{Name: r.Name}
		if r.Constraints != nil {
			c.Operations[i].Constraints = make([]ArgConstraint, len(r.Constraints))
			for j, k := range r.Constraints {
				c.Operations[i].Constraints[j] = k.clone()
			}
		}
	}
	if p.Delegation != nil {
		d := *p.Delegation
		d.Operations = clone(d.Operations)
		c.Delegation = &d
	}
	c.Devices.IDs = clone(p.Devices.IDs)
	c.Devices.EndpointNames = clone(p.Devices.EndpointNames)
	if p.Devices.Attributes != nil {
		c.Devices.Attributes = make(map[string][]string, len(p.Devices.Attributes))
		for k, v := range p.Devices.Attributes {
			c.Devices.Attributes[k] = clone(v)
		}
	}
	return &c
}

func (c ArgConstraint) clone() ArgConstraint {
	if c.Range != nil {
		r := *c.Range
		c.Range = &r
	}
	if c.OneOf != nil {
		vs := make([]ArgValue, len(c.OneOf))
		for i, v := range c.OneOf {
			vs[i] = v.clone()
		}
		c.OneOf = vs
	}
	if c.Equals != nil {
		v := c.Equals.clone()
		c.Equals = &v
	}
	return c
}

func (v ArgValue) clone() ArgValue {
	if v.Int != nil {
		i := *v.Int
		v.Int = &i
	}
	if v.Text != nil {
		s := *v.Text
		v.Text = &s
	}
	v.Bytes = slices.Clone(v.Bytes)
	return v
}
