package token_test

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

func TestParseScope(t *testing.T) {
	long := "a" + strings.Repeat("b", 59)
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"read-data", true},
		{"read-data configure update-firmware", true},
		{long, true},
		{long + "c", false},
		{strings.TrimSpace(strings.Repeat("op ", 20)), true},
		{strings.TrimSpace(strings.Repeat("op ", 21)), false},
		{"", false},
		{" read-data", false},
		{"read-data ", false},
		{"read-data  configure", false},
		{"1read", false},
		{"-read", false},
		{"read_data", false},
		{"read.data", false},
		{"*", false},
		{"réad", false},
		{"read\tdata", false},
	} {
		_, err := token.ParseScope(tc.text)
		if (err == nil) != tc.ok {
			t.Errorf("ParseScope(%q) = %v, want ok=%v", tc.text, err, tc.ok)
		}
		if err != nil && !errors.Is(err, token.ErrInvalid) {
			t.Errorf("ParseScope(%q) error %v is not ErrInvalid", tc.text, err)
		}
	}
}

func TestScopeCheck(t *testing.T) {
	structured, err := token.NewScope(
		token.Permission{Operation: "read-data"},
		token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}},
		token.Permission{Operation: "set-mode", Constraints: []token.Constraint{token.OneOf(0, token.Text("heat"), token.Text("cool"))}},
		token.Permission{Operation: "set-fan", Constraints: []token.Constraint{token.Equals(0, token.Int(2)), token.Equals(1, token.Bytes([]byte{1}))}},
	)
	if err != nil {
		t.Fatal(err)
	}
	all, err := token.NewScope(token.Permission{Operation: token.AllOperations})
	if err != nil {
		t.Fatal(err)
	}
	text := mustScope(t, "read-data configure")
	op := func(name string, args ...token.Arg) token.Operation { return token.Operation{Name: name, Args: args} }
	for _, tc := range []struct {
		name    string
		scope   token.Scope
		op      token.Operation
		ok      bool
		failArg int
	}{
		{"exact name", text, op("configure"), true, -1},
		{"prefix lookalike", text, op("c"), false, -1},
		{"longer name", text, op("configure-all"), false, -1},
		{"case differs", text, op("Configure"), false, -1},
		{"args ignored without constraints", text, op("configure", token.Int(99)), true, -1},
		{"in range", structured, op("set-temperature", token.Int(21)), true, -1},
		{"range low edge", structured, op("set-temperature", token.Int(16)), true, -1},
		{"range high edge", structured, op("set-temperature", token.Int(28)), true, -1},
		{"below range", structured, op("set-temperature", token.Int(15)), false, 0},
		{"above range", structured, op("set-temperature", token.Int(29)), false, 0},
		{"range on text", structured, op("set-temperature", token.Text("21")), false, 0},
		{"missing argument", structured, op("set-temperature"), false, 0},
		{"one of", structured, op("set-mode", token.Text("cool")), true, -1},
		{"not one of", structured, op("set-mode", token.Text("off")), false, 0},
		{"one of, wrong kind", structured, op("set-mode", token.Bytes([]byte("cool"))), false, 0},
		{"all equal", structured, op("set-fan", token.Int(2), token.Bytes([]byte{1})), true, -1},
		{"second not equal", structured, op("set-fan", token.Int(2), token.Bytes([]byte{2})), false, 1},
		{"wildcard", all, op("anything-at-all", token.Int(1)), true, -1},
		{"zero scope", token.Scope{}, op("read-data"), false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.scope.Check(tc.op)
			if tc.ok {
				if err != nil {
					t.Fatalf("want permitted, got %v", err)
				}
				return
			}
			var se *token.ScopeError
			if !errors.Is(err, token.ErrOutOfScope) || !errors.As(err, &se) {
				t.Fatalf("got %v, want a *ScopeError matching ErrOutOfScope", err)
			}
			if se.Arg != tc.failArg || se.Operation != tc.op.Name {
				t.Fatalf("ScopeError %+v, want Arg %d", se, tc.failArg)
			}
		})
	}
}

func TestScopeEncoding(t *testing.T) {
	structured, err := token.NewScope(
		token.Permission{Operation: "read-data"},
		token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, -5, 28)}},
		token.Permission{Operation: "set-mode", Constraints: []token.Constraint{token.OneOf(1, token.Text("heat"), token.Int(3), token.Bytes([]byte{9}))}},
		token.Permission{Operation: "*", Constraints: []token.Constraint{token.Equals(0, token.Text("x"))}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []token.Scope{mustScope(t, "read-data configure"), structured} {
		b, err := sc.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		got, err := unmarshalScope(b)
		if err != nil {
			t.Fatalf("UnmarshalCBOR(%x): %v", b, err)
		}
		if !got.Equal(sc) {
			t.Fatalf("round trip of %v gave %v", sc, got)
		}
	}
	if _, ok := structured.Text(); ok {
		t.Fatal("a constrained scope has no text form")
	}
	if got, want := structured.String(), `read-data set-temperature(arg0 in -5..28) set-mode(arg1 in {"heat", 3, h'09'}) *(arg0 = "x")`; got != want {
		t.Fatalf("String() = %s\nwant %s", got, want)
	}
	// A text scope encodes as a text string, so v1 tokens can carry it.
	b, _ := mustScope(t, "read-data").MarshalCBOR()
	if b[0] != 0x69 {
		t.Fatalf("text scope encoded as %x", b)
	}
	for _, bad := range []token.Permission{
		{Operation: "x", Constraints: []token.Constraint{token.InRange(0, 5, 4)}},
		{Operation: "x", Constraints: []token.Constraint{token.OneOf(0)}},
		{Operation: "x", Constraints: []token.Constraint{token.InRange(-1, 0, 1)}},
		{Operation: "x", Constraints: []token.Constraint{token.InRange(token.MaxArgs, 0, 1)}},
		{Operation: "x y"},
		{Operation: ""},
		{Operation: "x", Constraints: []token.Constraint{{Arg: 0, Kind: 9}}},
		{Operation: "x", Constraints: []token.Constraint{token.Equals(0, token.Arg{})}},
	} {
		if _, err := token.NewScope(bad); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("NewScope(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := token.Issue(&token.Claims{Issuer: "i", Audience: []string{"ep:x"}, Expiry: testNow, Scope: structured, Key: newKey(t, "P-256").Public()}, newKey(t, "P-256"), nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("v1 token with a structured scope: %v, want ErrInvalid", err)
	}
}

// TestPermissionsIsADeepCopy: a caller (a device handler, say) that changes
// what Permissions returns cannot widen the scope.
func TestPermissionsIsADeepCopy(t *testing.T) {
	sc, err := token.NewScope(token.Permission{Operation: "set-mode", Constraints: []token.Constraint{token.OneOf(0, token.Text("heat"))}})
	if err != nil {
		t.Fatal(err)
	}
	perms := sc.Permissions()
	perms[0].Constraints[0].Values[0] = token.Text("off")
	perms[0].Constraints[0].Arg = 3
	perms[0].Operation = "*"
	if err := sc.Check(token.Operation{Name: "set-mode", Args: []token.Arg{token.Text("off")}}); !errors.Is(err, token.ErrOutOfScope) {
		t.Fatalf("changing Permissions() widened the scope: %v", err)
	}
}

// TestUnmarshalScopeRejectsTags: the structured scope has no tagged fields; a
// tag anywhere in it is malformed, not skipped.
func TestUnmarshalScopeRejectsTags(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"valid", "81 82 63 736574 81 84 00 01 05 0a"},
		{"tagged permission", "81 d8 64 82 63 736574 81 84 00 01 05 0a"},
		{"tagged name", "81 82 d8 64 63 736574 81 84 00 01 05 0a"},
		{"tagged constraint list", "81 82 63 736574 d8 64 81 84 00 01 05 0a"},
		{"tagged constraint", "81 82 63 736574 81 d8 64 84 00 01 05 0a"},
		{"tagged argument index", "81 82 63 736574 81 84 d8 64 00 01 05 0a"},
		{"tagged kind", "81 82 63 736574 81 84 00 d8 64 01 05 0a"},
		{"tagged min", "81 82 63 736574 81 84 00 01 c1 05 0a"},
		{"tagged bare name", "81 d8 64 63 736574"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(tc.data, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			_, err = unmarshalScope(b)
			if tc.name == "valid" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("UnmarshalCBOR(%s) = %v, want ErrMalformed", tc.data, err)
			}
		})
	}
}

// TestScopeSingleValueRange: a range constraint whose bounds are equal
// permits that one value.
func TestScopeSingleValueRange(t *testing.T) {
	sc, err := token.NewScope(token.Permission{Operation: "set", Constraints: []token.Constraint{token.InRange(0, 5, 5)}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := unmarshalScope(b)
	if err != nil {
		t.Fatalf("UnmarshalCBOR(%x): %v", b, err)
	}
	for _, s := range []token.Scope{sc, decoded} {
		for v, ok := range map[int64]bool{4: false, 5: true, 6: false} {
			if err := s.Check(token.Operation{Name: "set", Args: []token.Arg{token.Int(v)}}); (err == nil) != ok {
				t.Errorf("set(%d) in 5..5: %v, want permitted %v", v, err, ok)
			}
		}
	}
}

// TestScopeCheckReportsFirstFailure: when several permissions name the
// operation and each fails a constraint, the ScopeError names the argument
// of the first failure in scope order.
func TestScopeCheckReportsFirstFailure(t *testing.T) {
	on := func(arg int) token.Permission {
		return token.Permission{Operation: "set", Constraints: []token.Constraint{token.InRange(arg, 1, 5)}}
	}
	op := token.Operation{Name: "set", Args: []token.Arg{token.Int(9), token.Int(9)}}
	for _, tc := range []struct {
		perms []token.Permission
		want  int
	}{
		{[]token.Permission{on(0), on(1)}, 0},
		{[]token.Permission{on(1), on(0)}, 1},
		{[]token.Permission{{Operation: "get"}, on(1), on(0)}, 1},
	} {
		sc, err := token.NewScope(tc.perms...)
		if err != nil {
			t.Fatal(err)
		}
		var se *token.ScopeError
		if err := sc.Check(op); !errors.As(err, &se) || se.Arg != tc.want {
			t.Errorf("%v: Check = %v, want a *ScopeError for argument %d", sc, err, tc.want)
		}
	}
}

// TestPermissionsRoundTrip: Permissions returns what NewScope was given,
// a permission without constraints with nil Constraints.
func TestPermissionsRoundTrip(t *testing.T) {
	perms := []token.Permission{
		{Operation: "read-data"},
		{Operation: "set", Constraints: []token.Constraint{token.InRange(0, 1, 2), token.OneOf(1, token.Text("a"), token.Int(3))}},
		{Operation: token.AllOperations, Constraints: []token.Constraint{token.Equals(2, token.Bytes([]byte{7}))}},
	}
	sc, err := token.NewScope(perms...)
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Permissions(); !reflect.DeepEqual(got, perms) {
		t.Fatalf("Permissions() = %#v\nwant %#v", got, perms)
	}
	perms[1].Constraints[1].Values[0] = token.Text("b")
	if err := sc.Check(token.Operation{Name: "set", Args: []token.Arg{token.Int(1), token.Text("a")}}); err != nil {
		t.Fatalf("changing NewScope's argument changed the scope: %v", err)
	}
}

// TestUTF8OnlyForText: a text value or argument must be valid UTF-8 (the
// decoders refuse any other), a byte string may hold any bytes.
func TestUTF8OnlyForText(t *testing.T) {
	pop := newKey(t, "P-256")
	for _, tc := range []struct {
		arg token.Arg
		ok  bool
	}{
		{token.Bytes([]byte{0xff, 0xfe}), true},
		{token.Text("\xff\xfe"), false},
		{token.Text("ünïcode"), true},
	} {
		_, err := token.NewScope(token.Permission{Operation: "set", Constraints: []token.Constraint{token.Equals(0, tc.arg)}})
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrInvalid) {
			t.Errorf("NewScope with the value %v: %v, want ok=%v", tc.arg, err, tc.ok)
		}
		op := token.Operation{Name: "set", Args: []token.Arg{tc.arg}}
		raw, err := token.SignRequest(&token.Request{Nonce: 1, Operation: op, Token: []byte{1}}, pop, nil)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrInvalid) {
			t.Errorf("SignRequest with the argument %v: %v, want ok=%v", tc.arg, err, tc.ok)
		}
		if err == nil {
			if _, err := token.ParseRequest(raw); err != nil {
				t.Errorf("ParseRequest with the argument %v: %v", tc.arg, err)
			}
		}
	}
}

// unmarshalScope decodes a scope as the scope claim is decoded.
func unmarshalScope(data []byte) (token.Scope, error) {
	var s token.Scope
	err := s.UnmarshalCBOR(data)
	return s, err
}

// TestArgAccessors: each accessor answers for its own kind only.
func TestArgAccessors(t *testing.T) {
	i, s, b := token.Int(7), token.Text("on"), token.Bytes([]byte{1, 2})
	if v, ok := i.Int(); !ok || v != 7 {
		t.Errorf("Int().Int() = %d, %v", v, ok)
	}
	if v, ok := s.Text(); !ok || v != "on" {
		t.Errorf("Text().Text() = %q, %v", v, ok)
	}
	if v, ok := b.Bytes(); !ok || string(v) != "\x01\x02" {
		t.Errorf("Bytes().Bytes() = %x, %v", v, ok)
	}
	for _, a := range []token.Arg{i, b, {}} {
		if _, ok := a.Text(); ok {
			t.Errorf("%v.Text() ok", a.Kind())
		}
	}
	for _, a := range []token.Arg{i, s, {}} {
		if _, ok := a.Bytes(); ok {
			t.Errorf("%v.Bytes() ok", a.Kind())
		}
	}
	for _, a := range []token.Arg{s, b, {}} {
		if _, ok := a.Int(); ok {
			t.Errorf("%v.Int() ok", a.Kind())
		}
	}
}
