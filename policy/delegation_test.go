package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// delegable lets the policy's tokens be delegated to depth, passing on
// the named operations (none: every operation of the policy).
func delegable(depth int, ops ...string) polOpt {
	return func(p *Policy) { p.Delegation = &DelegationRule{MaxDepth: depth, Operations: ops} }
}

// TestDelegationRuleValidate checks each rule of a policy's delegation
// field: depth bounds, operation names, deny policies.
func TestDelegationRuleValidate(t *testing.T) {
	valid := []struct {
		name string
		mod  polOpt
	}{
		{"every operation, depth 1", delegable(1)},
		{"the maximum depth", delegable(maxDelegationDepth)},
		{"one of the policy's operations", func(p *Policy) { ops("read", "write")(p); delegable(2, "read")(p) }},
		{"all of the policy's operations listed", func(p *Policy) { ops("read", "write")(p); delegable(2, "write", "read")(p) }},
		{"any name under a wildcard rule", func(p *Policy) { ops("*")(p); delegable(1, "read-data")(p) }},
		{"a name of a constrained rule", func(p *Policy) { ops()(p); constrained("set", rangeArg(0, 1, 2))(p); delegable(1, "set")(p) }},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1", tt.mod)
			if err := p.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	wrong := []struct {
		name, field string
		mod         polOpt
	}{
		{"depth 0", "delegation.max_depth", delegable(0)},
		{"a negative depth", "delegation.max_depth", delegable(-1)},
		{"a depth above the maximum", "delegation.max_depth", delegable(maxDelegationDepth + 1)},
		{"an empty operation list", "delegation.operations", func(p *Policy) { p.Delegation = &DelegationRule{MaxDepth: 1, Operations: []string{}} }},
		{"an operation the policy does not grant", "delegation.operations[1]", func(p *Policy) { ops("read", "write")(p); delegable(1, "read", "reboot")(p) }},
		{"a malformed name", "delegation.operations[0]", delegable(1, "read data")},
		{"the wildcard", "delegation.operations[0]", func(p *Policy) { ops("*")(p); delegable(1, "*")(p) }},
		{"a duplicate", "delegation.operations[1]", delegable(1, "read", "read")},
		{"too many", "delegation.operations", func(p *Policy) { ops("*")(p); delegable(1, names("op", maxRules+1)...)(p) }},
		{"a deny policy", "delegation", func(p *Policy) { denyEffect(p); delegable(1)(p) }},
	}
	for _, tt := range wrong {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1", tt.mod)
			if err := p.Validate(); !errors.Is(err, ErrInvalid) || !hasField(err, tt.field) {
				t.Errorf("Validate = %v, want a *ValidationError on %s", err, tt.field)
			}
		})
	}
}

// TestDelegationJSON: the delegation field is decoded strictly, encoded
// back unchanged, omitted when nil, and copied by clone.
func TestDelegationJSON(t *testing.T) {
	const base = `{"id":"p","status":"active","effect":"allow","subjects":{"users":["u"]},"operations":[{"name":"read-data"},{"name":"configure"}],"devices":{"all":true},"token_lifetime_seconds":3600`
	c, err := DecodeChange(KindPolicy, []byte(base+`,"delegation":{"max_depth":2,"operations":["read-data"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &DelegationRule{MaxDepth: 2, Operations: []string{"read-data"}}
	if diff := cmp.Diff(want, c.Policy.Delegation); diff != "" {
		t.Fatalf("decoded delegation (-want +got):\n%s", diff)
	}
	b, err := EncodeRecord(&c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delegation":{"max_depth":2,"operations":["read-data"]}`) {
		t.Errorf("encoded %s, want the delegation as decoded", b)
	}
	c2, err := DecodeChange(KindPolicy, b)
	if err != nil || !cmp.Equal(c.Policy, c2.Policy) {
		t.Errorf("re-decoded %+v, %v; want %+v", c2.Policy, err, c.Policy)
	}

	cl := c.Policy.clone()
	cl.Delegation.Operations[0] = "configure"
	cl.Delegation.MaxDepth = 3
	if c.Policy.Delegation.Operations[0] != "read-data" || c.Policy.Delegation.MaxDepth != 2 {
		t.Errorf("clone shares the delegation: %+v", c.Policy.Delegation)
	}

	// No delegation: the field is left out.
	c, err = DecodeChange(KindPolicy, []byte(base+`}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(c.Policy)
	if err != nil || strings.Contains(string(b), "delegation") {
		t.Errorf("encoded %s, %v: want no delegation field", b, err)
	}

	for _, tc := range []struct {
		name, body string
		problem    JSONProblem
		path       string
	}{
		{"an unknown member", `,"delegation":{"max_depth":1,"depth":2}}`, JSONUnknownField, "delegation.depth"},
		{"a depth as text", `,"delegation":{"max_depth":"1"}}`, JSONWrongType, "delegation.max_depth"},
		{"operations as text", `,"delegation":{"max_depth":1,"operations":"read-data"}}`, JSONWrongType, "delegation.operations"},
		{"a number as an operation", `,"delegation":{"max_depth":1,"operations":["read-data",7]}}`, JSONWrongType, "delegation.operations[1]"},
		{"not an object", `,"delegation":true}`, JSONWrongType, "delegation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeChange(KindPolicy, []byte(base+tc.body))
			var je *JSONError
			if !errors.As(err, &je) || je.Problem != tc.problem || je.Path != tc.path {
				t.Errorf("DecodeChange = %v, want a %v *JSONError at %s", err, tc.problem, tc.path)
			}
		})
	}
	// Decoded but invalid: a field error.
	c, err = DecodeChange(KindPolicy, []byte(base+`,"delegation":{"max_depth":9}}`))
	if err == nil {
		err = c.Policy.Validate()
	}
	if !errors.Is(err, ErrInvalid) || !hasField(err, "delegation.max_depth") {
		t.Errorf("depth 9: %v, want a field error on delegation.max_depth", err)
	}
}
