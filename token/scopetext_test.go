package token_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

func newScope(t testing.TB, perms ...token.Permission) token.Scope {
	t.Helper()
	s, err := token.NewScope(perms...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestParseScopeText: the text Scope.String prints parses back to the same
// scope, for every kind of constraint and value.
func TestParseScopeText(t *testing.T) {
	perm := func(op string, cs ...token.Constraint) token.Permission {
		return token.Permission{Operation: op, Constraints: cs}
	}
	for _, tc := range []struct {
		text  string
		scope token.Scope
	}{
		{"read-data", newScope(t, perm("read-data"))},
		{"read-data configure", newScope(t, perm("read-data"), perm("configure"))},
		{"*", newScope(t, perm("*"))},
		{"read *", newScope(t, perm("read"), perm("*"))},
		{"set-temperature(arg0 in 16..28)", newScope(t, perm("set-temperature", token.InRange(0, 16, 28)))},
		{"t(arg15 in -9223372036854775808..9223372036854775807)", newScope(t, perm("t", token.InRange(15, -1<<63, 1<<63-1)))},
		{"t(arg1 = -5)", newScope(t, perm("t", token.Equals(1, token.Int(-5))))},
		{`t(arg0 = "")`, newScope(t, perm("t", token.Equals(0, token.Text(""))))},
		{`t(arg0 in {5})`, newScope(t, perm("t", token.OneOf(0, token.Int(5))))},
		{`set-mode(arg0 in {"eco", "boost"}) read-data`, newScope(t, perm("set-mode", token.OneOf(0, token.Text("eco"), token.Text("boost"))), perm("read-data"))},
		{`flash(arg0 = h'DEADBEEF', arg1 in {h'', h'00', -1, "x"})`, newScope(t, perm("flash",
			token.Equals(0, token.Bytes([]byte{0xde, 0xad, 0xbe, 0xef})),
			token.OneOf(1, token.Bytes(nil), token.Bytes([]byte{0}), token.Int(-1), token.Text("x"))))},
		{`label(arg0 = "a \"b\" (c), {d} .. e\n\\ é\x01")`, newScope(t, perm("label", token.Equals(0, token.Text("a \"b\" (c), {d} .. e\n\\ é\x01"))))},
		{`a(arg0 in 1..2, arg0 in 2..3) b(arg3 = 0)`, newScope(t, perm("a", token.InRange(0, 1, 2), token.InRange(0, 2, 3)), perm("b", token.Equals(3, token.Int(0))))},
	} {
		t.Run(tc.text, func(t *testing.T) {
			if got := tc.scope.String(); got != tc.text {
				t.Fatalf("the test's scope prints %q, want %q", got, tc.text)
			}
			s, err := token.ParseScopeText(tc.text)
			if err != nil {
				t.Fatalf("ParseScopeText: %v", err)
			}
			if !s.Equal(tc.scope) {
				t.Errorf("ParseScopeText = %v, want %v", s, tc.scope)
			}
			if s.String() != tc.text {
				t.Errorf("String = %q, want %q", s.String(), tc.text)
			}
		})
	}
}

// TestParseScopeTextLenient: spaces around the punctuation inside the
// parentheses, lower-case hex and a plus sign are accepted too.
func TestParseScopeTextLenient(t *testing.T) {
	for text, want := range map[string]string{
		"t( arg0 in 16 .. 28 )":         "t(arg0 in 16..28)",
		"t(arg0 in{ 1 ,2 },arg1=h'ab')": "t(arg0 in {1, 2}, arg1 = h'AB')",
		"t(arg0 = +7)":                  "t(arg0 = 7)",
		`t(arg0 in {"a"  ,  h'0A'  })`:  `t(arg0 in {"a", h'0A'})`,
	} {
		s, err := token.ParseScopeText(text)
		if err != nil {
			t.Errorf("ParseScopeText(%q): %v", text, err)
			continue
		}
		if s.String() != want {
			t.Errorf("ParseScopeText(%q) = %q, want %q", text, s.String(), want)
		}
	}
}

// TestParseScopeTextErrors: text that is not a scope is ErrInvalid.
func TestParseScopeTextErrors(t *testing.T) {
	for _, text := range []string{
		"", " ", "read ", " read", "read  write", "read\twrite", "9read", "read!", "**", "read(", "read()",
		"read)", "read(arg0 in 1..2", "read(arg0 in 1..2))", "read(arg0 in 1..2)x", "read(arg0 in 1..2)(arg0 = 1)",
		"read(arg0 in 2..1)", "read(arg0 in 1..)", "read(arg0 in ..2)", "read(arg0 in 1.2)", "read(arg0 in 1...2)",
		"read(arg16 = 1)", "read(arg-1 = 1)", "read(arg = 1)", "read(argx = 1)", "read(arg0 == 1)", "read(arg0 1)",
		"read(arg0 = )", "read(arg0 = eco)", `read(arg0 = "eco)`, `read(arg0 = "\q")`, `read(arg0 = "\xff")`,
		"read(arg0 = h'ABC')", "read(arg0 = h'GG')", "read(arg0 = h'AB)", "read(arg0 = 9223372036854775808)",
		"read(arg0 in {})", "read(arg0 in {1,})", "read(arg0 in {1, 2)", "read(arg0 in {1..2})", "read(arg0 = 1,)",
		"read(arg0 = 1 arg1 = 2)", "read(arg00000000000000000000001 = 1)", "read(arg0 = `raw`)", "read(arg0 = \"\x01\")",
		"read(" + strings.Repeat("arg0 = 1, ", 8) + "arg0 = 1)",
		"read(arg0 in {" + strings.Repeat("1, ", 16) + "1})",
		`read(arg0 = "` + strings.Repeat("x", token.MaxArgBytes+1) + `")`,
		strings.Repeat("a ", token.MaxScopeItems) + "a",
		strings.Repeat("a", token.MaxNameLength+1),
		strings.Repeat("a(arg0 = 1) ", token.MaxScopeTextLength/12+1) + "a",
	} {
		if s, err := token.ParseScopeText(text); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("ParseScopeText(%.60q) = %v, %v; want ErrInvalid", text, s, err)
		}
	}
}

// FuzzParseScopeText: any text either fails with ErrInvalid or parses to
// a scope whose printed form parses to the same scope and prints the same.
func FuzzParseScopeText(f *testing.F) {
	for _, s := range []string{
		"read-data configure", "*", "set-temperature(arg0 in 16..28)", `set-mode(arg0 in {"eco", "boost"})`,
		`flash(arg0 = h'DEADBEEF', arg1 = -5)`, `label(arg0 = "a \"b\" (c)\u00e9")`, "t( arg0 in{ 1 ,2 } )", "read(",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := token.ParseScopeText(text)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		printed := s.String()
		if len(printed) > token.MaxScopeTextLength {
			// Spaces and escapes the canonical form adds to a long
			// lenient text; no token's scope prints this long.
			return
		}
		s2, err := token.ParseScopeText(printed)
		if err != nil {
			t.Fatalf("%q parsed, printed as %q, which does not parse: %v", text, printed, err)
		}
		if !s2.Equal(s) || s2.String() != printed {
			t.Fatalf("%q: printed %q parses to %v", text, printed, s2)
		}
		if _, err := s.MarshalCBOR(); err != nil {
			t.Fatalf("%q: parsed scope does not encode: %v", text, err)
		}
	})
}

// TestParseScopeTextLength: text of MaxScopeTextLength bytes is read, one
// byte more is not.
func TestParseScopeTextLength(t *testing.T) {
	build := func(n int) string {
		head, tail := `t(arg0 in {`, `})`
		var vals []string
		left := n - len(head) - len(tail)
		for left > 0 {
			v := min(left-2, token.MaxArgBytes) // the quotes
			if len(vals) > 0 {
				v = min(left-4, token.MaxArgBytes) // ", " and the quotes
			}
			vals = append(vals, `"`+strings.Repeat("x", v)+`"`)
			left -= v + 2
			if len(vals) > 1 {
				left -= 2
			}
		}
		return head + strings.Join(vals, ", ") + tail
	}
	at := build(token.MaxScopeTextLength)
	if len(at) != token.MaxScopeTextLength {
		t.Fatalf("built %d bytes", len(at))
	}
	if _, err := token.ParseScopeText(at); err != nil {
		t.Errorf("%d bytes: %v", len(at), err)
	}
	over := build(token.MaxScopeTextLength + 1)
	if _, err := token.ParseScopeText(over); !errors.Is(err, token.ErrInvalid) || len(over) != token.MaxScopeTextLength+1 {
		t.Errorf("%d bytes: %v, want ErrInvalid", len(over), err)
	}
}
