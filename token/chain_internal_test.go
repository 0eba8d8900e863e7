package token

import (
	"errors"
	"testing"
)

// TestVerifiedChainCheckDefenceInDepth: Check asks the token's scope and
// every link's, whatever Verify proved about them, so an operation one of
// them does not permit is refused even if a later scope were wider.
func TestVerifiedChainCheckDefenceInDepth(t *testing.T) {
	scope := func(s string) Scope {
		sc, err := ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	v := &VerifiedChain{
		tokenScope: scope("read-data"),
		Links:      []Link{{Scope: scope("read-data configure")}, {Scope: scope("read-data configure reboot")}},
	}
	for _, tc := range []struct {
		op string
		ok bool
	}{{"read-data", true}, {"configure", false}, {"reboot", false}} {
		err := v.Check(Operation{Name: tc.op})
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrOutOfScope) {
			t.Errorf("Check(%s) with a token scope narrower than its links': %v", tc.op, err)
		}
	}
	v = &VerifiedChain{
		tokenScope: scope("read-data configure reboot"),
		Links:      []Link{{Scope: scope("read-data reboot")}, {Scope: scope("read-data configure reboot")}},
	}
	if err := v.Check(Operation{Name: "configure"}); !errors.Is(err, ErrOutOfScope) {
		t.Errorf("Check(configure) with a middle link without it: %v", err)
	}
}
