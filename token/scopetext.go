package token

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseScopeText parses the readable form of a scope that [Scope.String]
// prints, constraints included, so that a scope shown by a tool can be
// typed back: permissions separated by single spaces, each an operation
// name (or [AllOperations], "*") optionally followed by its constraints in
// parentheses, separated by commas:
//
//	read-data set-temperature(arg0 in 16..28, arg1 = 3)
//	set-mode(arg0 in {"eco", "boost"}) flash(arg0 = h'DEADBEEF')
//
// A constraint is "argN in MIN..MAX" (an integer range), "argN in {V, ...}"
// (one of the values) or "argN = V" (exactly the value). A value is a
// decimal 64-bit integer, a text string quoted as Go quotes it (escapes
// such as \" and \u00e9; characters that are not printable must be
// escaped) or a byte string h'HEX'. Inside the parentheses spaces around
// the punctuation are optional, hex digits may be lower case and an
// integer may carry a plus sign; [Scope.String] prints the canonical form.
//
// The text form of [ParseScope] is a special case: names without
// constraints. The result is validated as by [NewScope]; text of more than
// [MaxScopeTextLength] bytes, or that is not a scope, is [ErrInvalid].
func ParseScopeText(text string) (Scope, error) {
	if text == "" {
		return Scope{}, invalid("empty scope")
	}
	if len(text) > MaxScopeTextLength {
		return Scope{}, invalid("scope text of %d bytes, more than %d", len(text), MaxScopeTextLength)
	}
	p := &scopeParser{s: text}
	perms, err := p.scope()
	if err != nil {
		return Scope{}, invalid("scope text at byte %d: %v", p.i, err)
	}
	return NewScope(perms...)
}

// scopeParser reads the readable scope form; i is the offset of the next
// byte.
type scopeParser struct {
	s string
	i int
}

func (p *scopeParser) more() bool { return p.i < len(p.s) }

// peek returns the next byte, or 0 at the end.
func (p *scopeParser) peek() byte {
	if p.more() {
		return p.s[p.i]
	}
	return 0
}

func (p *scopeParser) skipSpaces() {
	for p.peek() == ' ' {
		p.i++
	}
}

// accept consumes tok if the text continues with it.
func (p *scopeParser) accept(tok string) bool {
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *scopeParser) expect(tok string) error {
	if !p.accept(tok) {
		return fmt.Errorf("want %q", tok)
	}
	return nil
}

func (p *scopeParser) scope() ([]Permission, error) {
	var perms []Permission
	for {
		if len(perms) == MaxScopeItems {
			return nil, fmt.Errorf("more than %d permissions", MaxScopeItems)
		}
		perm, err := p.permission()
		if err != nil {
			return nil, err
		}
		perms = append(perms, perm)
		if !p.more() {
			return perms, nil
		}
		if err := p.expect(" "); err != nil {
			return nil, err
		}
	}
}

func (p *scopeParser) permission() (Permission, error) {
	var perm Permission
	if p.accept(AllOperations) {
		perm.Operation = AllOperations
	} else {
		start := p.i
		for c := p.peek(); c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c == '-'; c = p.peek() {
			p.i++
		}
		perm.Operation = p.s[start:p.i]
		if err := ValidateName(perm.Operation); err != nil {
			return Permission{}, err
		}
	}
	if !p.accept("(") {
		return perm, nil
	}
	for {
		if len(perm.Constraints) == MaxConstraints {
			return Permission{}, fmt.Errorf("permission %q has more than %d constraints", perm.Operation, MaxConstraints)
		}
		p.skipSpaces()
		c, err := p.constraint()
		if err != nil {
			return Permission{}, err
		}
		perm.Constraints = append(perm.Constraints, c)
		p.skipSpaces()
		if p.accept(")") {
			return perm, nil
		}
		if err := p.expect(","); err != nil {
			return Permission{}, fmt.Errorf("want \",\" or \")\"")
		}
	}
}

func (p *scopeParser) constraint() (Constraint, error) {
	if err := p.expect("arg"); err != nil {
		return Constraint{}, err
	}
	start := p.i
	for c := p.peek(); c >= '0' && c <= '9'; c = p.peek() {
		p.i++
	}
	digits := p.s[start:p.i]
	idx, err := strconv.Atoi(digits)
	if digits == "" || len(digits) > 2 || err != nil || idx >= MaxArgs {
		return Constraint{}, fmt.Errorf("argument index %q, want 0..%d", digits, MaxArgs-1)
	}
	p.skipSpaces()
	switch {
	case p.accept("="):
		p.skipSpaces()
		v, err := p.value()
		return Equals(idx, v), err
	case p.accept("in"):
		p.skipSpaces()
		if p.accept("{") {
			return p.set(idx)
		}
		lo, err := p.integer()
		if err != nil {
			return Constraint{}, err
		}
		p.skipSpaces()
		if err := p.expect(".."); err != nil {
			return Constraint{}, err
		}
		p.skipSpaces()
		hi, err := p.integer()
		return InRange(idx, lo, hi), err
	}
	return Constraint{}, fmt.Errorf("want \"=\" or \"in\"")
}

// set reads the values of a one-of constraint after its "{".
func (p *scopeParser) set(idx int) (Constraint, error) {
	var vals []Arg
	for {
		if len(vals) == MaxSetValues {
			return Constraint{}, fmt.Errorf("more than %d values", MaxSetValues)
		}
		p.skipSpaces()
		v, err := p.value()
		if err != nil {
			return Constraint{}, err
		}
		vals = append(vals, v)
		p.skipSpaces()
		if p.accept("}") {
			return OneOf(idx, vals...), nil
		}
		if !p.accept(",") {
			return Constraint{}, fmt.Errorf("want \",\" or \"}\"")
		}
	}
}

// value reads an integer, a quoted text string or h'HEX'.
func (p *scopeParser) value() (Arg, error) {
	switch {
	case p.peek() == '"':
		return p.text()
	case p.accept("h'"):
		end := strings.IndexByte(p.s[p.i:], '\'')
		if end < 0 {
			return Arg{}, fmt.Errorf("unterminated byte string")
		}
		b, err := hex.DecodeString(p.s[p.i : p.i+end])
		if err != nil {
			return Arg{}, fmt.Errorf("byte string: %v", err)
		}
		if len(b) > MaxArgBytes {
			return Arg{}, fmt.Errorf("byte string of %d bytes, more than %d", len(b), MaxArgBytes)
		}
		p.i += end + 1
		return Bytes(b), nil
	}
	v, err := p.integer()
	return Int(v), err
}

// text reads a string in Go's double-quoted syntax.
func (p *scopeParser) text() (Arg, error) {
	start := p.i
	p.i++ // the opening quote
	for {
		if !p.more() {
			return Arg{}, fmt.Errorf("unterminated text string")
		}
		c := p.s[p.i]
		p.i++
		if c == '\\' && p.more() {
			p.i++
			continue
		}
		if c == '"' {
			break
		}
	}
	lit := p.s[start:p.i]
	if !utf8.ValidString(lit) {
		return Arg{}, fmt.Errorf("text string is not valid UTF-8")
	}
	for _, r := range lit {
		if !strconv.IsPrint(r) {
			return Arg{}, fmt.Errorf("text string with the unprintable character %U: escape it", r)
		}
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		return Arg{}, fmt.Errorf("text string: %v", err)
	}
	if !utf8.ValidString(s) || len(s) > MaxArgBytes {
		return Arg{}, fmt.Errorf("text string is not valid UTF-8 or is longer than %d bytes", MaxArgBytes)
	}
	return Text(s), nil
}

// integer reads a decimal 64-bit integer with an optional sign.
func (p *scopeParser) integer() (int64, error) {
	start := p.i
	if c := p.peek(); c == '-' || c == '+' {
		p.i++
	}
	for c := p.peek(); c >= '0' && c <= '9'; c = p.peek() {
		p.i++
	}
	v, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a 64-bit integer, have %q", p.s[start:p.i])
	}
	return v, nil
}
