package token

// Within reports whether s is provably within parent: every operation,
// with every argument list, that s permits, parent permits. The check is
// sound, not complete: what it cannot prove narrower it refuses.
//
// Each permission b of s must be covered by one permission a of parent:
// a's operation is AllOperations or equals b's (b an AllOperations
// permission needs an AllOperations a), and each constraint of a is
// implied by one single constraint of b on the same argument: a range
// inside a range; a set (or an equal value) of integers inside a range; a
// set or equal value inside a set or equal value; a range of at most
// MaxSetValues integers, each in a set. The zero Scope is within nothing.
func (s Scope) Within(parent Scope) bool {
	if len(s.perms) == 0 {
		return false
	}
	for _, b := range s.perms {
		covered := false
		for _, a := range parent.perms {
			if covers(a, b) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// covers reports whether permission a provably permits everything b does
// (b an AllOperations permission needs an AllOperations a: only then do
// the names agree).
func covers(a, b Permission) bool {
	if a.Operation != AllOperations && a.Operation != b.Operation {
		return false
	}
	for _, ca := range a.Constraints {
		implied := false
		for _, cb := range b.Constraints {
			if cb.Arg == ca.Arg && implies(cb, ca) {
				implied = true
				break
			}
		}
		if !implied {
			return false
		}
	}
	return true
}

// implies reports whether every argument value that satisfies cb
// satisfies ca (both on the same argument).
func implies(cb, ca Constraint) bool {
	switch ca.Kind {
	case ConstraintRange:
		if cb.Kind == ConstraintRange {
			return cb.Min >= ca.Min && cb.Max <= ca.Max
		}
		for _, v := range cb.Values {
			n, ok := v.Int()
			if !ok || n < ca.Min || n > ca.Max {
				return false
			}
		}
		return len(cb.Values) > 0
	case ConstraintOneOf, ConstraintEqual:
		if cb.Kind == ConstraintRange {
			// cb.Max - cb.Min < MaxSetValues, without overflow.
			if cb.Min > cb.Max || uint64(cb.Max)-uint64(cb.Min) >= MaxSetValues {
				return false
			}
			for n := cb.Min; ; n++ {
				if !inValues(Int(n), ca.Values) {
					return false
				}
				if n == cb.Max {
					return true
				}
			}
		}
		for _, v := range cb.Values {
			if !inValues(v, ca.Values) {
				return false
			}
		}
		return len(cb.Values) > 0
	}
	return false
}

func inValues(v Arg, vals []Arg) bool {
	for _, w := range vals {
		if v == w {
			return true
		}
	}
	return false
}
