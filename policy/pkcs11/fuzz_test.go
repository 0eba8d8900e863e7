package pkcs11

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseURI checks that ParseURI refuses bad input with ErrURI, never
// panics, and that what it accepts survives a round trip through String.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=sda;object=anchor;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sda/pin",
		"pkcs11:serial=1;id=%01%02?module-path=/m.so",
		"pkcs11:slot-id=3;object=a%20b?module-path=/m.so&pin-source=pin",
		"pkcs11:token=t;object=o?module-path=/m&pin-value=1",
		"pkcs11:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrURI) {
				t.Fatalf("ParseURI(%q): %v does not match ErrURI", s, err)
			}
			return
		}
		again, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q) accepted, but not its String %q: %v", s, u.String(), err)
		}
		if diff := cmp.Diff(u, again); diff != "" {
			t.Fatalf("round trip of %q through %q (-first +second):\n%s", s, u.String(), diff)
		}
	})
}
