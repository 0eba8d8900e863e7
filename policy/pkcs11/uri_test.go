package pkcs11

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

const mod = "?module-path=/usr/lib/softhsm/libsofthsm2.so"

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		name, uri string
		want      URI
	}{
		{"token and object", "pkcs11:token=sda;object=anchor;type=private" + mod + "&pin-source=file:/etc/sda/pin",
			URI{Token: "sda", Object: "anchor", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/etc/sda/pin"}},
		{"scheme in upper case, no type", "PKCS11:token=sda;object=anchor" + mod,
			URI{Token: "sda", Object: "anchor", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{"serial and id", "pkcs11:serial=8a1b;id=%01%02%ff" + mod,
			URI{Serial: "8a1b", ID: []byte{1, 2, 0xff}, ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{"slot-id", "pkcs11:slot-id=0;object=a" + mod,
			URI{HasSlotID: true, Object: "a", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{"percent-encoded label with reserved characters", "pkcs11:token=My%20HSM%3b1;object=a&b:c" + mod,
			URI{Token: "My HSM;1", Object: "a&b:c", ModulePath: "/usr/lib/softhsm/libsofthsm2.so"}},
		{"file URI with empty authority", "pkcs11:token=t;object=o" + mod + "&pin-source=file:///run/pin",
			URI{Token: "t", Object: "o", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "/run/pin"}},
		{"relative PIN file", "pkcs11:token=t;object=o" + mod + "&pin-source=pin.txt",
			URI{Token: "t", Object: "o", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINFile: "pin.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURI(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tc.want, u); diff != "" {
				t.Fatalf("ParseURI (-want +got):\n%s", diff)
			}
			again, err := ParseURI(u.String())
			if err != nil {
				t.Fatalf("ParseURI(%q) of String: %v", u.String(), err)
			}
			if diff := cmp.Diff(u, again); diff != "" {
				t.Fatalf("round trip through %q (-want +got):\n%s", u.String(), diff)
			}
		})
	}
}

func TestParseURIRefuses(t *testing.T) {
	long := "pkcs11:token=t;object=" + strings.Repeat("a", MaxURILength) + mod
	for _, tc := range []struct {
		name, uri string
		attr      string
		pin       bool
	}{
		{"another scheme", "pkcs12:token=t;object=o" + mod, "", false},
		{"too long", long, "", false},
		{"empty", "", "", false},
		{"component without =", "pkcs11:token=t;object" + mod, "", false},
		{"empty component", "pkcs11:token=t;;object=o" + mod, "", false},
		{"empty name", "pkcs11:=t;object=o" + mod, "", false},
		{"upper-case name", "pkcs11:Token=t;object=o" + mod, "", false},
		{"space", "pkcs11:token=a b;object=o" + mod, attrToken, false},
		{"slash in path value", "pkcs11:token=a/b;object=o" + mod, attrToken, false},
		{"truncated percent", "pkcs11:token=t;object=o%4" + mod, attrObject, false},
		{"bad percent", "pkcs11:token=t;object=o%zz" + mod, attrObject, false},
		{"percent at end", "pkcs11:token=t;object=o" + mod + "%", attrModulePath, false},
		{"repeated", "pkcs11:token=t;token=u;object=o" + mod, attrToken, false},
		{"repeated across path and query", "pkcs11:token=t;object=o" + mod + "&module-path=/x", attrModulePath, false},
		{"unknown", "pkcs11:token=t;object=o;colour=red" + mod, "colour", false},
		{"vendor", "pkcs11:token=t;object=o;x-vendor=1" + mod, "x-vendor", false},
		{"manufacturer", "pkcs11:token=t;manufacturer=m;object=o" + mod, "manufacturer", false},
		{"module-name", "pkcs11:token=t;object=o?module-name=softhsm2", "module-name", false},
		{"type cert", "pkcs11:token=t;object=o;type=cert" + mod, attrType, false},
		{"no token", "pkcs11:object=o" + mod, "", false},
		{"token and serial", "pkcs11:token=t;serial=1;object=o" + mod, "", false},
		{"no key", "pkcs11:token=t" + mod, "", false},
		{"empty id", "pkcs11:token=t;id=" + mod, attrID, false},
		{"id too long", "pkcs11:token=t;id=" + strings.Repeat("%01", MaxIDLength+1) + mod, attrID, false},
		{"slot-id not a number", "pkcs11:slot-id=-1;object=o" + mod, attrSlotID, false},
		{"slot-id too large", "pkcs11:slot-id=9999999999;object=o" + mod, attrSlotID, false},
		{"label not UTF-8", "pkcs11:token=%ff;object=o" + mod, attrToken, false},
		{"no module", "pkcs11:token=t;object=o", "", false},
		{"relative module", "pkcs11:token=t;object=o?module-path=libsofthsm2.so", attrModulePath, false},
		{"NUL in module", "pkcs11:token=t;object=o?module-path=/a%00b", attrModulePath, false},
		{"pin-value", "pkcs11:token=t;object=o" + mod + "&pin-value=1234", attrPINValue, true},
		{"pin-source program", "pkcs11:token=t;object=o" + mod + "&pin-source=|/bin/getpin", attrPINSource, false},
		{"pin-source https", "pkcs11:token=t;object=o" + mod + "&pin-source=https://example.org/pin", attrPINSource, false},
		{"pin-source with host", "pkcs11:token=t;object=o" + mod + "&pin-source=file://host/pin", attrPINSource, false},
		{"pin-source relative file URI", "pkcs11:token=t;object=o" + mod + "&pin-source=file:pin", attrPINSource, false},
		{"empty pin-source", "pkcs11:token=t;object=o" + mod + "&pin-source=", attrPINSource, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseURI(tc.uri)
			if !errors.Is(err, ErrURI) {
				t.Fatalf("ParseURI = %+v, %v; want ErrURI", u, err)
			}
			var ue *URIError
			if !errors.As(err, &ue) || ue.Attribute != tc.attr {
				t.Fatalf("error %v (%#v), want a *URIError about %q", err, ue, tc.attr)
			}
			if errors.Is(err, ErrPINInURI) != tc.pin {
				t.Fatalf("errors.Is(err, ErrPINInURI) = %v", !tc.pin)
			}
		})
	}
}

func TestReadPIN(t *testing.T) {
	long := strings.Repeat("7", MaxPINLength)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bare", "1234", "1234"},
		{"line", "1234\n", "1234"},
		{"CRLF and more lines", "1234\r\nsecond line\n", "1234"},
		{"longest", long + "\r\n", long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPIN(strings.NewReader(tc.in))
			if err != nil || string(got) != tc.want {
				t.Fatalf("readPIN = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"empty", strings.NewReader("")},
		{"empty line", strings.NewReader("\nsecond\n")},
		{"too long", strings.NewReader(long + "8")},
		{"too long without line end", strings.NewReader(long + "89")},
		{"read error", iotest.ErrReader(errors.New("broken"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := readPIN(tc.r); !errors.Is(err, ErrPIN) {
				t.Fatalf("readPIN = %q, %v; want ErrPIN", got, err)
			}
		})
	}
}

func TestPINSource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(file, []byte("5678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := &URI{PINFile: file}
	if got, err := withFile.pin(nil); err != nil || !bytes.Equal(got, []byte("5678")) {
		t.Fatalf("pin from the file = %q, %v", got, err)
	}
	if got, err := (&URI{}).pin(&Options{PIN: strings.NewReader("42\n")}); err != nil || string(got) != "42" {
		t.Fatalf("pin from Options.PIN = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		u    *URI
		opts *Options
	}{
		"both":         {withFile, &Options{PIN: strings.NewReader("42")}},
		"neither":      {&URI{}, nil},
		"missing file": {&URI{PINFile: filepath.Join(t.TempDir(), "nothing")}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := tc.u.pin(tc.opts); !errors.Is(err, ErrPIN) {
				t.Fatalf("pin = %q, %v; want ErrPIN", got, err)
			}
		})
	}
}
