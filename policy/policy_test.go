package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// hasField reports whether err is a *ValidationError naming field.
func hasField(err error, field string) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Name == field })
}

// TestSyntax checks each character class of ids, device ids, endpoint
// names and attribute names at its ends and just outside them.
func TestSyntax(t *testing.T) {
	hex32 := func(c string) string { return strings.Repeat("0", 31) + c }
	tests := []struct {
		name      string
		field     string
		validate  func(v string) error
		ok, wrong []string
	}{
		{
			name: "id", field: "id",
			validate: func(v string) error { return (&Subject{ID: v, Kind: User}).Validate() },
			ok:       []string{"a", "z", "A", "Z", "0", "9", "a.b_c:d@e-f", "x." + "z" + "Z" + "9"},
			wrong:    []string{"", "`", "{", "@", "[", "/", ":", ".x", "_x", ":x", "@x", "-x", "a/", "a`", "a{", "a[", "a b", "a\x00", "a\u00e9"},
		},
		{
			name: "device id", field: "id",
			validate: func(v string) error { return (&Device{ID: v}).Validate() },
			ok:       []string{hex32("0"), hex32("9"), hex32("a"), hex32("f"), dev1},
			wrong:    []string{hex32("/"), hex32(":"), hex32("`"), hex32("g"), hex32("A"), hex32("F"), hex32(" ")},
		},
		{
			name: "endpoint name", field: "endpoint_name",
			validate: func(v string) error { return (&Device{ID: dev1, EndpointName: v}).Validate() },
			ok:       []string{"a", "z", "A", "Z", "0", "9", "+", "/", "=", " ", "-", "hvac 1/b=c+d-e"},
			wrong:    []string{"`", "{", "@", "[", ":", ".", "_", "*", "\t", "a\x00", "\u00e9"},
		},
		{
			name: "attribute name", field: "",
			validate: func(v string) error { return (&Device{ID: dev1, Attributes: map[string]string{v: "x"}}).Validate() },
			ok:       []string{"a", "z", "A", "Z", "a0", "a9", "a_", "a.", "a-", "site_2.b-c"},
			wrong:    []string{"", "0a", "9", "_a", ".a", "-a", "`", "{", "@", "[", "a/", "a:", "a ", "a`", "a{", strings.Repeat("a", maxAttrKeyLen+1)},
		},
		{
			name: "attribute value", field: "attributes.k",
			validate: func(v string) error { return (&Device{ID: dev1, Attributes: map[string]string{"k": v}}).Validate() },
			ok:       []string{"", "any text, with spaces", "\u00e9t\u00e9"},
			wrong:    []string{"\x00", "\x00a", "a\x00", "\xff"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range tt.ok {
				if err := tt.validate(v); err != nil {
					t.Errorf("%q: %v, want accepted", v, err)
				}
			}
			for _, v := range tt.wrong {
				field := tt.field
				if field == "" {
					field = "attributes." + v
				}
				if err := tt.validate(v); !errors.Is(err, ErrInvalid) || !hasField(err, field) {
					t.Errorf("%q: %v, want a *ValidationError on %s", v, err, field)
				}
			}
		})
	}
}

// TestPolicyShape checks rules of Policy.Validate that TestPolicyValidate
// and TestLimits leave out: which combinations are valid, and which not.
func TestPolicyShape(t *testing.T) {
	five, one := int64(5), int64(1)
	valid := []struct {
		name string
		mod  polOpt
	}{
		{"users and groups", func(p *Policy) { p.Subjects = Subjects{Users: []string{"a"}, Groups: []string{"g"}} }},
		{"groups and applications", func(p *Policy) { p.Subjects = Subjects{Groups: []string{"g"}, Applications: []string{"a"}} }},
		{"users and applications", func(p *Policy) { p.Subjects = Subjects{Users: []string{"u"}, Applications: []string{"a"}} }},
		{"ids and endpoint names", devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: []string{"e"}})},
		{"endpoint names and attributes", devices(DeviceSelector{EndpointNames: []string{"e"}, Attributes: map[string][]string{"k": {"v"}}})},
		{"ids and attributes", devices(DeviceSelector{IDs: []string{dev1}, Attributes: map[string][]string{"k": {"v"}}})},
		{"a constrained then an unconstrained rule of one name", func(p *Policy) {
			p.Operations = []OperationRule{{Name: "set", Constraints: []ArgConstraint{rangeArg(0, 1, 2)}}, {Name: "set"}}
		}},
		{"an unconstrained then a constrained rule of one name", func(p *Policy) {
			p.Operations = []OperationRule{{Name: "set"}, {Name: "set", Constraints: []ArgConstraint{rangeArg(0, 1, 2)}}}
		}},
		{"two constrained rules of one name", func(p *Policy) {
			p.Operations = []OperationRule{{Name: "set", Constraints: []ArgConstraint{rangeArg(0, 1, 2)}}, {Name: "set", Constraints: []ArgConstraint{rangeArg(0, 1, 2)}}}
		}},
		{"a range of one value", constrained("set", rangeArg(0, 5, 5))},
		{"constraints on two arguments", constrained("set", rangeArg(0, 1, 2), rangeArg(1, 1, 2))},
		{"equals and one_of", constrained("set", ArgConstraint{Arg: 0, Equals: &ArgValue{Int: &five}}, ArgConstraint{Arg: 1, OneOf: []ArgValue{{Int: &one}}})},
		{"a deny with a lifetime", func(p *Policy) { denyEffect(p); p.TokenLifetime = time.Hour }},
		{"a window of one nanosecond", func(p *Policy) { p.ValidFrom = t0; p.ValidUntil = t0.Add(1) }},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1")
			tt.mod(p)
			if err := p.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	wrong := []struct {
		name, field string
		mod         polOpt
	}{
		{"all and endpoint names", "devices.all", devices(DeviceSelector{All: true, EndpointNames: []string{"e"}})},
		{"all and attributes", "devices.all", devices(DeviceSelector{All: true, Attributes: map[string][]string{"k": {"v"}}})},
		{"an argument constrained twice", "operations[1].constraints[1].arg", constrained("set", rangeArg(3, 1, 2), rangeArg(3, 1, 2))},
		{"no constraint kind", "operations[1].constraints[0]", constrained("set", ArgConstraint{Arg: 0})},
		{"range and equals", "operations[1].constraints[0]", constrained("set", ArgConstraint{Range: &[2]int64{1, 2}, Equals: &ArgValue{Int: &one}})},
		{"one_of and equals", "operations[1].constraints[0]", constrained("set", ArgConstraint{OneOf: []ArgValue{{Int: &one}}, Equals: &ArgValue{Int: &one}})},
		{"a value of two kinds", "operations[1].constraints[0].equals", constrained("set", ArgConstraint{Equals: &ArgValue{Int: &one, Bytes: []byte{1}}})},
		{"an empty window", "valid_until", func(p *Policy) { p.ValidFrom = t0; p.ValidUntil = t0 }},
		{"a duplicate group", "subjects.groups[9]", func(p *Policy) { p.Subjects.Groups = append(names("g", 9), "g3") }},
	}
	for _, tt := range wrong {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1")
			tt.mod(p)
			if err := p.Validate(); !errors.Is(err, ErrInvalid) || !hasField(err, tt.field) {
				t.Errorf("Validate = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}

	// Only the values of a one_of within its limit are examined: one past
	// it is reported as a count, not as a value.
	bad := func(n int) []ArgValue {
		vs := make([]ArgValue, n)
		for i := range vs {
			v := int64(i)
			vs[i] = ArgValue{Int: &v}
		}
		vs[n-1] = ArgValue{}
		return vs
	}
	for _, n := range []int{maxOneOf, maxOneOf + 1} {
		p := pol("p1", ops(), constrained("set", ArgConstraint{OneOf: bad(n)}))
		err := p.Validate()
		last := fmt.Sprintf("operations[0].constraints[0].one_of[%d]", n-1)
		if n <= maxOneOf && !hasField(err, last) || n > maxOneOf && (hasField(err, last) || !hasField(err, "operations[0].constraints[0].one_of")) {
			t.Errorf("%d values, the last empty: %v", n, err)
		}
	}
}

// TestPolicyJSONLifetime: token_lifetime_seconds is decoded within 0 and
// MaxTokenLifetime and encoded back unchanged.
func TestPolicyJSONLifetime(t *testing.T) {
	maxSeconds := int64(MaxTokenLifetime / time.Second)
	for _, tc := range []struct {
		seconds int64
		ok      bool
	}{{-1, false}, {0, true}, {3600, true}, {maxSeconds, true}, {maxSeconds + 1, false}} {
		body := fmt.Sprintf(`{"id":"p","status":"active","effect":"deny","subjects":{"users":["u"]},"operations":[{"name":"x"}],"devices":{"all":true},"token_lifetime_seconds":%d}`, tc.seconds)
		c, err := DecodeChange(KindPolicy, []byte(body))
		if !tc.ok {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%d seconds: %v, want ErrInvalid", tc.seconds, err)
			}
			continue
		}
		if err != nil || c.Policy.TokenLifetime != time.Duration(tc.seconds)*time.Second {
			t.Fatalf("%d seconds: %v, %v", tc.seconds, c.Policy, err)
		}
		b, err := EncodeRecord(&c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeChange(KindPolicy, b)
		if err != nil || c2.Policy.TokenLifetime != c.Policy.TokenLifetime {
			t.Errorf("%d seconds: re-decoded %v, %v", tc.seconds, c2.Policy, err)
		}
	}
}
