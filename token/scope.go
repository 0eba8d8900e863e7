package token

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// ArgKind is the type of an operation argument.
type ArgKind uint8

// Argument kinds. Bytes arguments are a v2 extension.
const (
	KindInt ArgKind = iota + 1
	KindText
	KindBytes
)

// Arg is one operation argument: a 64-bit integer, a text string or (v2) a
// byte string. Build one with [Int], [Text] or [Bytes]; the zero Arg is
// invalid.
type Arg struct {
	kind ArgKind
	i    int64
	s    string // text, or bytes held as a string so Arg stays comparable
}

// Int returns an integer argument.
func Int(v int64) Arg { return Arg{kind: KindInt, i: v} }

// Text returns a text string argument.
func Text(v string) Arg { return Arg{kind: KindText, s: v} }

// Bytes returns a byte string argument (v2). The bytes are copied.
func Bytes(v []byte) Arg { return Arg{kind: KindBytes, s: string(v)} }

// Kind returns the argument's type, or 0 for the zero Arg.
func (a Arg) Kind() ArgKind { return a.kind }

// Int returns the value of an integer argument.
func (a Arg) Int() (int64, bool) { return a.i, a.kind == KindInt }

// Text returns the value of a text argument.
func (a Arg) Text() (string, bool) { return a.s, a.kind == KindText }

// Bytes returns a copy of the value of a byte string argument.
func (a Arg) Bytes() ([]byte, bool) {
	if a.kind != KindBytes {
		return nil, false
	}
	return []byte(a.s), true
}

// Equal reports whether two arguments have the same kind and value.
func (a Arg) Equal(b Arg) bool { return a == b }

// String returns the argument in CBOR diagnostic notation.
func (a Arg) String() string {
	switch a.kind {
	case KindInt:
		return fmt.Sprint(a.i)
	case KindText:
		return fmt.Sprintf("%q", a.s)
	case KindBytes:
		return fmt.Sprintf("h'%X'", a.s)
	}
	return "invalid"
}

// MarshalCBOR encodes the argument as a CBOR int, text or byte string.
func (a Arg) MarshalCBOR() ([]byte, error) {
	switch a.kind {
	case KindInt:
		return codec.Marshal(a.i)
	case KindText:
		return codec.Marshal(a.s)
	case KindBytes:
		return codec.Marshal([]byte(a.s))
	}
	return nil, invalid("zero Arg")
}

// UnmarshalCBOR decodes a CBOR int (in int64 range), text or byte string.
func (a *Arg) UnmarshalCBOR(data []byte) error {
	if err := codec.Check(data); err != nil {
		return err
	}
	v, err := readArg(data)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func readArg(data []byte) (Arg, error) {
	switch data[0] >> 5 {
	case 0, 1:
		v, err := codec.ReadInt(data)
		return Int(v), err
	case 2:
		v, err := codec.ReadBytes(data)
		if err == nil && len(v) > MaxArgBytes {
			err = fmt.Errorf("byte string argument of %d bytes exceeds %d", len(v), MaxArgBytes)
		}
		return Bytes(v), err
	case 3:
		v, err := codec.ReadText(data)
		if err == nil && len(v) > MaxArgBytes {
			err = fmt.Errorf("text argument of %d bytes exceeds %d", len(v), MaxArgBytes)
		}
		return Text(v), err
	}
	return Arg{}, fmt.Errorf("argument must be an integer, text or byte string")
}

// Operation is what a technician asks a device to do: a function name and its
// arguments (docs/PROTOCOL.md section 6: Operation = [1, name, [* args]]).
type Operation struct {
	Name string
	Args []Arg
}

// ConstraintKind says how a [Constraint] restricts an argument.
type ConstraintKind uint8

// Constraint kinds; the numbers are the wire values (docs/PROTOCOL.md).
const (
	ConstraintRange ConstraintKind = 1 // integer in [Min, Max]
	ConstraintOneOf ConstraintKind = 2 // equal to one of Values
	ConstraintEqual ConstraintKind = 3 // equal to Values[0]
)

// Constraint restricts one argument of an operation. Build one with
// [InRange], [OneOf] or [Equals].
type Constraint struct {
	Arg    int // index of the argument, from 0
	Kind   ConstraintKind
	Min    int64 // ConstraintRange: inclusive bounds
	Max    int64
	Values []Arg // ConstraintOneOf: the allowed values; ConstraintEqual: exactly one
}

// InRange constrains argument arg to an integer in [min, max].
func InRange(arg int, min, max int64) Constraint {
	return Constraint{Arg: arg, Kind: ConstraintRange, Min: min, Max: max}
}

// OneOf constrains argument arg to one of vals.
func OneOf(arg int, vals ...Arg) Constraint {
	return Constraint{Arg: arg, Kind: ConstraintOneOf, Values: vals}
}

// Equals constrains argument arg to exactly v.
func Equals(arg int, v Arg) Constraint {
	return Constraint{Arg: arg, Kind: ConstraintEqual, Values: []Arg{v}}
}

func (c Constraint) validate() error {
	if c.Arg < 0 || c.Arg >= MaxArgs {
		return fmt.Errorf("constraint argument index %d outside 0..%d", c.Arg, MaxArgs-1)
	}
	switch c.Kind {
	case ConstraintRange:
		if c.Min > c.Max {
			return fmt.Errorf("empty range %d..%d", c.Min, c.Max)
		}
		if c.Values != nil {
			return fmt.Errorf("range constraint with values")
		}
		return nil
	case ConstraintOneOf:
		if len(c.Values) == 0 || len(c.Values) > MaxSetValues {
			return fmt.Errorf("one-of constraint needs 1..%d values, has %d", MaxSetValues, len(c.Values))
		}
	case ConstraintEqual:
		if len(c.Values) != 1 {
			return fmt.Errorf("equal constraint needs exactly one value")
		}
	default:
		return fmt.Errorf("unknown constraint kind %d", c.Kind)
	}
	if c.Min != 0 || c.Max != 0 {
		return fmt.Errorf("bounds on a %v constraint", c.Kind)
	}
	for _, v := range c.Values {
		if v.kind == 0 {
			return fmt.Errorf("zero Arg in constraint values")
		}
		if v.kind == KindText && !utf8.ValidString(v.s) {
			return fmt.Errorf("text value is not valid UTF-8")
		}
		if v.kind != KindInt && len(v.s) > MaxArgBytes {
			// No argument it could equal is accepted (readArg).
			return fmt.Errorf("value of %d bytes, more than %d", len(v.s), MaxArgBytes)
		}
	}
	return nil
}

// permits reports whether args satisfy the constraint, or why not.
func (c Constraint) permits(args []Arg) string {
	if c.Arg >= len(args) {
		return "missing"
	}
	a := args[c.Arg]
	switch c.Kind {
	case ConstraintRange:
		v, ok := a.Int()
		if !ok {
			return "is not an integer"
		}
		if v < c.Min || v > c.Max {
			return fmt.Sprintf("%d outside %d..%d", v, c.Min, c.Max)
		}
		return ""
	default:
		for _, want := range c.Values {
			if a == want {
				return ""
			}
		}
		return fmt.Sprintf("%v not an allowed value", a)
	}
}

// String returns "range", "one-of" or "equal".
func (k ConstraintKind) String() string {
	switch k {
	case ConstraintRange:
		return "range"
	case ConstraintOneOf:
		return "one-of"
	case ConstraintEqual:
		return "equal"
	}
	return fmt.Sprintf("ConstraintKind(%d)", uint8(k))
}

// String returns the constraint in the readable form used by [Scope.String].
func (c Constraint) String() string {
	switch c.Kind {
	case ConstraintRange:
		return fmt.Sprintf("arg%d in %d..%d", c.Arg, c.Min, c.Max)
	case ConstraintEqual:
		if len(c.Values) == 1 {
			return fmt.Sprintf("arg%d = %v", c.Arg, c.Values[0])
		}
	}
	vals := make([]string, len(c.Values))
	for i, v := range c.Values {
		vals[i] = v.String()
	}
	return fmt.Sprintf("arg%d in {%s}", c.Arg, strings.Join(vals, ", "))
}

// AllOperations is the operation name of a [Permission] that covers every
// operation (structured scopes only).
const AllOperations = "*"

// Permission grants one operation (or, with [AllOperations], every
// operation), optionally only with arguments that satisfy all of its
// constraints.
type Permission struct {
	Operation   string
	Constraints []Constraint
}

func (p Permission) validate() error {
	if p.Operation != AllOperations {
		if err := ValidateName(p.Operation); err != nil {
			return err
		}
	}
	if len(p.Constraints) > MaxConstraints {
		return fmt.Errorf("permission %q has %d constraints, more than %d", p.Operation, len(p.Constraints), MaxConstraints)
	}
	for _, c := range p.Constraints {
		if err := c.validate(); err != nil {
			return fmt.Errorf("permission %q: %v", p.Operation, err)
		}
	}
	return nil
}

// ValidateName reports whether name is a valid operation name: 1 to 60
// characters matching ^[A-Za-z][A-Za-z0-9-]*$.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("operation name of %d characters, want 1..%d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c|0x20 >= 'a' && c|0x20 <= 'z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return fmt.Errorf("operation name %q: invalid character at %d", name, i)
		}
	}
	return nil
}

// Scope is the set of operations a token permits: the permission language of
// SDA. The zero Scope permits nothing.
//
// A scope has a text form (v1 and v2: operation names separated by single
// spaces) and a structured form (v2 only: permissions with argument
// constraints, or [AllOperations]). Scopes are immutable.
type Scope struct {
	perms []Permission
}

// ParseScope parses the text form: 1 to 20 operation names separated by
// single spaces, each valid according to [ValidateName].
func ParseScope(text string) (Scope, error) {
	if text == "" {
		return Scope{}, invalid("empty scope")
	}
	n := strings.Count(text, " ") + 1
	if n > MaxScopeItems {
		return Scope{}, invalid("scope of %d items, more than %d", n, MaxScopeItems)
	}
	perms := make([]Permission, 0, n)
	for name := range strings.SplitSeq(text, " ") {
		if err := ValidateName(name); err != nil {
			return Scope{}, invalid("scope: %v", err)
		}
		perms = append(perms, Permission{Operation: name})
	}
	return Scope{perms: perms}, nil
}

// NewScope returns a scope of 1 to 20 permissions. The permissions are
// copied and validated.
func NewScope(perms ...Permission) (Scope, error) {
	if len(perms) == 0 || len(perms) > MaxScopeItems {
		return Scope{}, invalid("scope needs 1..%d permissions, has %d", MaxScopeItems, len(perms))
	}
	out := Scope{perms: perms}.Permissions() // a deep copy, validated below
	for _, p := range out {
		if err := p.validate(); err != nil {
			return Scope{}, invalid("scope: %v", err)
		}
	}
	return Scope{perms: out}, nil
}

// Permissions returns a deep copy of the scope's permissions: changing it
// never changes the scope.
func (s Scope) Permissions() []Permission {
	out := make([]Permission, len(s.perms))
	for i, p := range s.perms {
		out[i] = Permission{Operation: p.Operation}
		if len(p.Constraints) > 0 {
			out[i].Constraints = make([]Constraint, len(p.Constraints))
			for j, c := range p.Constraints {
				c.Values = append([]Arg(nil), c.Values...)
				out[i].Constraints[j] = c
			}
		}
	}
	return out
}

// IsZero reports whether the scope is the zero Scope.
func (s Scope) IsZero() bool { return len(s.perms) == 0 }

// Names returns the operation names of the permissions, in order.
func (s Scope) Names() []string {
	out := make([]string, len(s.perms))
	for i, p := range s.perms {
		out[i] = p.Operation
	}
	return out
}

// Text returns the text form of the scope, and false when the scope has
// constraints or AllOperations and so has no text form.
func (s Scope) Text() (string, bool) {
	if len(s.perms) == 0 {
		return "", false
	}
	var b strings.Builder
	for i, p := range s.perms {
		if p.Operation == AllOperations || len(p.Constraints) > 0 {
			return "", false
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.Operation)
	}
	return b.String(), true
}

// String returns the text form when there is one, and otherwise a readable
// form such as `read-data set-temperature(arg0 in 16..28)`.
func (s Scope) String() string {
	if t, ok := s.Text(); ok {
		return t
	}
	parts := make([]string, len(s.perms))
	for i, p := range s.perms {
		parts[i] = p.Operation
		if len(p.Constraints) > 0 {
			cs := make([]string, len(p.Constraints))
			for j, c := range p.Constraints {
				cs[j] = c.String()
			}
			parts[i] += "(" + strings.Join(cs, ", ") + ")"
		}
	}
	return strings.Join(parts, " ")
}

// Check reports whether the scope permits op: some permission names op
// exactly (or is AllOperations) and all of that permission's constraints hold
// for op's arguments. Names are compared byte for byte, never by prefix. A
// nil error means permitted; otherwise the error is a [*ScopeError].
func (s Scope) Check(op Operation) error {
	reason, arg := "not in scope", -1
	for _, p := range s.perms {
		if p.Operation != op.Name && p.Operation != AllOperations {
			continue
		}
		ok := true
		for _, c := range p.Constraints {
			if why := c.permits(op.Args); why != "" {
				ok = false
				if arg < 0 {
					reason, arg = why, c.Arg
				}
				break
			}
		}
		if ok {
			return nil
		}
	}
	return &ScopeError{Operation: op.Name, Arg: arg, Reason: reason}
}

// Wire form of the structured scope (docs/PROTOCOL.md):
//
//	scope      = tstr / [+ permission]
//	permission = tstr / [name: tstr, [+ constraint]]
//	constraint = [arg: uint, 1, min: int, max: int]
//	           / [arg: uint, 2, [+ value]]
//	           / [arg: uint, 3, value]
//	value      = int / tstr / bstr

// MarshalCBOR encodes the scope: the text form when it has one, else the
// structured form.
func (s Scope) MarshalCBOR() ([]byte, error) {
	if len(s.perms) == 0 {
		return nil, invalid("empty scope")
	}
	if t, ok := s.Text(); ok {
		return codec.Marshal(t)
	}
	items := make([]any, len(s.perms))
	for i, p := range s.perms {
		if len(p.Constraints) == 0 {
			items[i] = p.Operation
			continue
		}
		cs := make([]any, len(p.Constraints))
		for j, c := range p.Constraints {
			switch c.Kind {
			case ConstraintRange:
				cs[j] = []any{c.Arg, uint8(c.Kind), c.Min, c.Max}
			case ConstraintOneOf:
				cs[j] = []any{c.Arg, uint8(c.Kind), c.Values}
			case ConstraintEqual:
				cs[j] = []any{c.Arg, uint8(c.Kind), c.Values[0]}
			}
		}
		items[i] = []any{p.Operation, cs}
	}
	return codec.Marshal(items)
}

// UnmarshalCBOR decodes either form strictly, as found in the scope claim.
func (s *Scope) UnmarshalCBOR(data []byte) error {
	if err := codec.Check(data); err != nil {
		return wrapMalformed("scope", err)
	}
	sc, err := decodeScope(data)
	if err != nil {
		return err
	}
	*s = sc
	return nil
}

// decodeScope decodes a scope item that is part of a checked message.
func decodeScope(data []byte) (Scope, error) {
	switch data[0] >> 5 {
	case 3:
		t, err := codec.ReadText(data)
		if err != nil {
			return Scope{}, wrapMalformed("scope", err)
		}
		sc, err := ParseScope(t)
		if err != nil {
			return Scope{}, wrapMalformed("scope", err)
		}
		return sc, nil
	case 4:
	default:
		return Scope{}, malformed("scope", "must be a text string or an array")
	}
	var items []cbor.RawMessage
	if err := codec.Unmarshal(data, &items); err != nil {
		return Scope{}, wrapMalformed("scope", err)
	}
	perms := make([]Permission, len(items))
	for i, it := range items {
		field := fmt.Sprintf("scope[%d]", i)
		if it[0]>>5 == 3 {
			if err := codec.Unmarshal(it, &perms[i].Operation); err != nil {
				return Scope{}, wrapMalformed(field, err)
			}
			continue
		}
		var p struct {
			_    struct{} `cbor:",toarray"`
			Name string
			Cons []cbor.RawMessage
		}
		if err := codec.Unmarshal(it, &p); err != nil {
			return Scope{}, wrapMalformed(field, err)
		}
		if len(p.Cons) == 0 {
			return Scope{}, malformed(field, "constraint list is empty (use the bare name)")
		}
		perms[i].Operation = p.Name
		perms[i].Constraints = make([]Constraint, len(p.Cons))
		for j, raw := range p.Cons {
			c, err := decodeConstraint(raw)
			if err != nil {
				return Scope{}, wrapMalformed(fmt.Sprintf("%s.constraints[%d]", field, j), err)
			}
			perms[i].Constraints[j] = c
		}
	}
	if len(perms) == 0 || len(perms) > MaxScopeItems {
		return Scope{}, malformed("scope", "%d permissions, want 1..%d", len(perms), MaxScopeItems)
	}
	for i, p := range perms {
		if err := p.validate(); err != nil {
			return Scope{}, malformed(fmt.Sprintf("scope[%d]", i), "%v", err)
		}
	}
	return Scope{perms: perms}, nil
}

func decodeConstraint(raw []byte) (Constraint, error) {
	var parts []cbor.RawMessage
	if err := codec.Unmarshal(raw, &parts); err != nil {
		return Constraint{}, err
	}
	if len(parts) < 3 {
		return Constraint{}, fmt.Errorf("constraint of %d elements", len(parts))
	}
	var idx uint64
	var kind uint8
	if err := codec.Unmarshal(parts[0], &idx); err != nil {
		return Constraint{}, err
	}
	if idx >= MaxArgs {
		return Constraint{}, fmt.Errorf("argument index %d out of range", idx)
	}
	if err := codec.Unmarshal(parts[1], &kind); err != nil {
		return Constraint{}, err
	}
	c := Constraint{Arg: int(idx), Kind: ConstraintKind(kind)}
	switch c.Kind {
	case ConstraintRange:
		if len(parts) != 4 {
			return Constraint{}, fmt.Errorf("range constraint of %d elements", len(parts))
		}
		if err := codec.Unmarshal(parts[2], &c.Min); err != nil {
			return Constraint{}, err
		}
		if err := codec.Unmarshal(parts[3], &c.Max); err != nil {
			return Constraint{}, err
		}
	case ConstraintOneOf:
		if len(parts) != 3 {
			return Constraint{}, fmt.Errorf("one-of constraint of %d elements", len(parts))
		}
		if err := codec.Unmarshal(parts[2], &c.Values); err != nil {
			return Constraint{}, err
		}
	case ConstraintEqual:
		if len(parts) != 3 {
			return Constraint{}, fmt.Errorf("equal constraint of %d elements", len(parts))
		}
		v, err := readArg(parts[2])
		if err != nil {
			return Constraint{}, err
		}
		c.Values = []Arg{v}
	default:
		return Constraint{}, fmt.Errorf("unknown constraint kind %d", kind)
	}
	return c, c.validate()
}

// Equal reports whether two scopes have the same permissions in the same
// order.
func (s Scope) Equal(o Scope) bool {
	if len(s.perms) != len(o.perms) {
		return false
	}
	for i, p := range s.perms {
		q := o.perms[i]
		if p.Operation != q.Operation || len(p.Constraints) != len(q.Constraints) {
			return false
		}
		for j, c := range p.Constraints {
			d := q.Constraints[j]
			if c.Arg != d.Arg || c.Kind != d.Kind || c.Min != d.Min || c.Max != d.Max || len(c.Values) != len(d.Values) {
				return false
			}
			for k, v := range c.Values {
				if v != d.Values[k] {
					return false
				}
			}
		}
	}
	return true
}
