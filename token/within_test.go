package token_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

func perm(op string, cs ...token.Constraint) token.Permission {
	return token.Permission{Operation: op, Constraints: cs}
}

// TestWithinRules: each subset rule of Scope.Within, and what it refuses
// because it cannot prove it narrower.
func TestWithinRules(t *testing.T) {
	I, T := token.Int, token.Text
	for _, tc := range []struct {
		name          string
		child, parent []token.Permission
		want          bool
	}{
		{"same names", []token.Permission{perm("a")}, []token.Permission{perm("a"), perm("b")}, true},
		{"fewer names", []token.Permission{perm("b")}, []token.Permission{perm("a"), perm("b")}, true},
		{"another name", []token.Permission{perm("c")}, []token.Permission{perm("a"), perm("b")}, false},
		{"names by prefix", []token.Permission{perm("read-data")}, []token.Permission{perm("read")}, false},
		{"a name under *", []token.Permission{perm("a")}, []token.Permission{perm("*")}, true},
		{"* under *", []token.Permission{perm("*")}, []token.Permission{perm("*")}, true},
		{"* under every name", []token.Permission{perm("*")}, []token.Permission{perm("a"), perm("b")}, false},
		{"a constraint added", []token.Permission{perm("a", token.InRange(0, 1, 2))}, []token.Permission{perm("a")}, true},
		{"a constraint dropped", []token.Permission{perm("a")}, []token.Permission{perm("a", token.InRange(0, 1, 2))}, false},
		{"range inside range", []token.Permission{perm("a", token.InRange(0, 2, 3))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, true},
		{"range equal", []token.Permission{perm("a", token.InRange(0, 1, 5))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, true},
		{"range wider below", []token.Permission{perm("a", token.InRange(0, 0, 3))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, false},
		{"range wider above", []token.Permission{perm("a", token.InRange(0, 2, 6))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, false},
		{"range on another argument", []token.Permission{perm("a", token.InRange(1, 2, 3))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, false},
		{"integers inside a range", []token.Permission{perm("a", token.OneOf(0, I(1), I(5)))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, true},
		{"an integer outside a range", []token.Permission{perm("a", token.OneOf(0, I(1), I(6)))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, false},
		{"equal integer inside a range", []token.Permission{perm("a", token.Equals(0, I(3)))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, true},
		{"text under a range", []token.Permission{perm("a", token.Equals(0, T("3")))}, []token.Permission{perm("a", token.InRange(0, 1, 5))}, false},
		{"subset of a set", []token.Permission{perm("a", token.OneOf(0, T("x")))}, []token.Permission{perm("a", token.OneOf(0, T("x"), I(1)))}, true},
		{"not a subset", []token.Permission{perm("a", token.OneOf(0, T("x"), T("y")))}, []token.Permission{perm("a", token.OneOf(0, T("x"), I(1)))}, false},
		{"text is not bytes", []token.Permission{perm("a", token.Equals(0, token.Bytes([]byte("x"))))}, []token.Permission{perm("a", token.OneOf(0, T("x")))}, false},
		{"equal inside equal", []token.Permission{perm("a", token.Equals(0, T("x")))}, []token.Permission{perm("a", token.Equals(0, T("x")))}, true},
		{"set of one inside equal", []token.Permission{perm("a", token.OneOf(0, T("x")))}, []token.Permission{perm("a", token.Equals(0, T("x")))}, true},
		{"set of two under equal", []token.Permission{perm("a", token.OneOf(0, T("x"), T("y")))}, []token.Permission{perm("a", token.Equals(0, T("x")))}, false},
		{"small range inside a set", []token.Permission{perm("a", token.InRange(0, 2, 3))}, []token.Permission{perm("a", token.OneOf(0, I(1), I(2), I(3)))}, true},
		{"range with a hole in the set", []token.Permission{perm("a", token.InRange(0, 1, 3))}, []token.Permission{perm("a", token.OneOf(0, I(1), I(3)))}, false},
		{"range of one under equal", []token.Permission{perm("a", token.InRange(0, 7, 7))}, []token.Permission{perm("a", token.Equals(0, I(7)))}, true},
		{"range of 16 values in a set", []token.Permission{perm("a", token.InRange(0, 0, 15))}, []token.Permission{perm("a", token.OneOf(0, ints16()...))}, true},
		{"huge range under a set", []token.Permission{perm("a", token.InRange(0, math.MinInt64, math.MaxInt64))}, []token.Permission{perm("a", token.OneOf(0, ints16()...))}, false},
		{"range at the top of int64 in a set", []token.Permission{perm("a", token.InRange(0, math.MaxInt64, math.MaxInt64))}, []token.Permission{perm("a", token.Equals(0, I(math.MaxInt64)))}, true},
		{"every parent constraint implied", []token.Permission{perm("a", token.InRange(0, 1, 2), token.Equals(1, T("x")))}, []token.Permission{perm("a", token.InRange(0, 0, 9), token.OneOf(1, T("x"), T("y")))}, true},
		{"one parent constraint not implied", []token.Permission{perm("a", token.InRange(0, 1, 2))}, []token.Permission{perm("a", token.InRange(0, 0, 9), token.OneOf(1, T("x")))}, false},
		{"a constrained name under a constrained *", []token.Permission{perm("a", token.InRange(0, 1, 2))}, []token.Permission{perm("*", token.InRange(0, 0, 9))}, true},
		// Narrower, but only by two child constraints together or by
		// two parent permissions together: not provable by the rules,
		// so refused.
		{"narrower only by two constraints together", []token.Permission{perm("a", token.InRange(0, -10, 5), token.InRange(0, 0, 10))}, []token.Permission{perm("a", token.InRange(0, 0, 5))}, false},
		{"narrower only by two parent permissions", []token.Permission{perm("a", token.InRange(0, 0, 10))}, []token.Permission{perm("a", token.InRange(0, 0, 5)), perm("a", token.InRange(0, 6, 10))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			child, parent := newScope(t, tc.child...), newScope(t, tc.parent...)
			if got := child.Within(parent); got != tc.want {
				t.Fatalf("%v within %v: %v, want %v", child, parent, got, tc.want)
			}
		})
	}
	if (token.Scope{}).Within(mustScope(t, "a")) {
		t.Fatal("the zero scope is within a scope")
	}
	if mustScope(t, "a").Within(token.Scope{}) {
		t.Fatal("a scope is within the zero scope")
	}
}

func ints16() []token.Arg {
	out := make([]token.Arg, 16)
	for i := range out {
		out[i] = token.Int(int64(i))
	}
	return out
}

// scopeGen generates random scopes over a small vocabulary, so that pairs
// share names, arguments and values.
type scopeGen struct{ r *rand.Rand }

var genNames = []string{"a", "b", "*"}

func (g scopeGen) value() token.Arg {
	switch g.r.IntN(6) {
	case 0:
		return token.Text([]string{"x", "y"}[g.r.IntN(2)])
	case 1:
		return token.Bytes([]byte{byte(g.r.IntN(2))})
	}
	return token.Int(int64(g.r.IntN(11) - 5))
}

func (g scopeGen) constraint() token.Constraint {
	arg := g.r.IntN(3)
	switch g.r.IntN(3) {
	case 0:
		lo := int64(g.r.IntN(11) - 5)
		return token.InRange(arg, lo, lo+int64(g.r.IntN(6)))
	case 1:
		n := 1 + g.r.IntN(4)
		vals := make([]token.Arg, n)
		for i := range vals {
			vals[i] = g.value()
		}
		return token.OneOf(arg, vals...)
	}
	return token.Equals(arg, g.value())
}

func (g scopeGen) scope(t *testing.T) token.Scope {
	perms := make([]token.Permission, 1+g.r.IntN(3))
	for i := range perms {
		perms[i].Operation = genNames[g.r.IntN(len(genNames))]
		for range g.r.IntN(3) {
			perms[i].Constraints = append(perms[i].Constraints, g.constraint())
		}
	}
	return newScope(t, perms...)
}

// narrow returns a scope derived from s by steps each of which narrows:
// dropping permissions, naming an operation for *, adding constraints,
// shrinking a range, taking a subset of a set, replacing a range by some
// of its integers or a set of integers by a range of them.
func (g scopeGen) narrow(t *testing.T, s token.Scope) token.Scope {
	perms := s.Permissions()
	g.r.Shuffle(len(perms), func(i, j int) { perms[i], perms[j] = perms[j], perms[i] })
	perms = perms[:1+g.r.IntN(len(perms))]
	for i := range perms {
		p := &perms[i]
		if p.Operation == "*" && g.r.IntN(2) == 0 {
			p.Operation = genNames[g.r.IntN(2)]
		}
		for j := range p.Constraints {
			p.Constraints[j] = g.narrowConstraint(p.Constraints[j])
		}
		if g.r.IntN(3) == 0 && len(p.Constraints) < token.MaxConstraints {
			p.Constraints = append(p.Constraints, g.constraint())
		}
	}
	return newScope(t, perms...)
}

func (g scopeGen) narrowConstraint(c token.Constraint) token.Constraint {
	switch c.Kind {
	case token.ConstraintRange:
		lo := c.Min + int64(g.r.IntN(int(c.Max-c.Min)+1))
		hi := lo + int64(g.r.IntN(int(c.Max-lo)+1))
		if g.r.IntN(2) == 0 {
			return token.InRange(c.Arg, lo, hi)
		}
		return token.OneOf(c.Arg, token.Int(lo), token.Int(hi))
	default:
		vals := slices.Clone(c.Values)
		g.r.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
		vals = vals[:1+g.r.IntN(len(vals))]
		if n, ok := vals[0].Int(); ok && g.r.IntN(3) == 0 {
			return token.InRange(c.Arg, n, n)
		}
		if len(vals) == 1 && g.r.IntN(2) == 0 {
			return token.Equals(c.Arg, vals[0])
		}
		return token.OneOf(c.Arg, vals...)
	}
}

// perturb moves one bound of one range of s by one, or adds a value to
// one set: the result may or may not be narrower than what s narrowed.
func (g scopeGen) perturb(t *testing.T, s token.Scope) token.Scope {
	perms := s.Permissions()
	p := &perms[g.r.IntN(len(perms))]
	if len(p.Constraints) == 0 {
		p.Operation = genNames[g.r.IntN(len(genNames))]
		return newScope(t, perms...)
	}
	c := &p.Constraints[g.r.IntN(len(p.Constraints))]
	switch {
	case c.Kind == token.ConstraintRange && g.r.IntN(2) == 0:
		c.Min--
	case c.Kind == token.ConstraintRange:
		c.Max++
	case c.Kind == token.ConstraintOneOf && len(c.Values) < token.MaxSetValues:
		c.Values = append(c.Values, g.value())
	default:
		c.Values[0] = g.value()
	}
	return newScope(t, perms...)
}

// candidates returns, for each argument, the values the constraints of
// both scopes mention, each integer ±1, and a few others.
func candidates(r *rand.Rand, scopes ...token.Scope) [3][]token.Arg {
	var out [3][]token.Arg
	for i := range out {
		out[i] = []token.Arg{token.Text("z"), token.Int(int64(r.IntN(41) - 20))}
	}
	add := func(arg int, v token.Arg) {
		if n, ok := v.Int(); ok {
			out[arg] = append(out[arg], token.Int(n-1), token.Int(n+1))
		}
		out[arg] = append(out[arg], v)
	}
	for _, s := range scopes {
		for _, p := range s.Permissions() {
			for _, c := range p.Constraints {
				if c.Kind == token.ConstraintRange {
					add(c.Arg, token.Int(c.Min))
					add(c.Arg, token.Int(c.Max))
					add(c.Arg, token.Int((c.Min+c.Max)/2))
				}
				for _, v := range c.Values {
					add(c.Arg, v)
				}
			}
		}
	}
	return out
}

// TestWithinIsSound is the property test of the issue: for random scopes
// A and B, whenever B.Within(A), every operation and arguments B permits,
// A permits. It also checks that Within is reflexive and that it accepts
// the narrowings generated by rules it knows (so that it is not trivially
// false).
func TestWithinIsSound(t *testing.T) {
	g := scopeGen{rand.New(rand.NewPCG(16, 2026))}
	const pairs = 6000
	within, narrowed, narrowAccepted, checked := 0, 0, 0, 0
	for i := range pairs {
		a := g.scope(t)
		if !a.Within(a) {
			t.Fatalf("%v is not within itself", a)
		}
		var b token.Scope
		switch i % 3 {
		case 0:
			b = g.narrow(t, a)
			narrowed++
		case 1:
			b = g.perturb(t, g.narrow(t, a))
		default:
			b = g.scope(t)
		}
		if !b.Within(a) {
			continue
		}
		within++
		if i%3 == 0 {
			narrowAccepted++
		}
		cands := candidates(g.r, a, b)
		for range 200 {
			op := token.Operation{Name: []string{"a", "b", "c"}[g.r.IntN(3)], Args: make([]token.Arg, g.r.IntN(4))}
			for j := range op.Args {
				op.Args[j] = cands[j][g.r.IntN(len(cands[j]))]
			}
			if b.Check(op) != nil {
				continue
			}
			checked++
			if err := a.Check(op); err != nil {
				t.Fatalf("%v is within %v, but %s%v is permitted by the first only: %v", b, a, op.Name, op.Args, err)
			}
		}
	}
	t.Logf("%d pairs: %d within (%d of %d generated narrowings), %d operations permitted by B checked against A", pairs, within, narrowAccepted, narrowed, checked)
	if narrowAccepted < narrowed*9/10 {
		t.Fatalf("Within accepts %d of %d generated narrowings, want at least 90%%", narrowAccepted, narrowed)
	}
	if within == narrowAccepted {
		t.Fatalf("no perturbed or independent pair was within: the generator is too narrow to test soundness")
	}
	if checked < pairs {
		t.Fatalf("only %d permitted operations checked", checked)
	}
}

func ExampleScope_Within() {
	parent, _ := token.NewScope(perm("set-temperature", token.InRange(0, 16, 28)), perm("read-data"))
	child, _ := token.NewScope(perm("set-temperature", token.InRange(0, 20, 22)))
	wider, _ := token.NewScope(perm("set-temperature", token.InRange(0, 10, 22)))
	fmt.Println(child.Within(parent), wider.Within(parent))
	// Output: true false
}
