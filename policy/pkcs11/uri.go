package pkcs11

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// URI is a PKCS#11 URI (RFC 7512) naming one private key in one token of
// one PKCS#11 module, as [ParseURI] accepts it:
//
//	pkcs11:token=sda;object=anchor;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sda/pin
//
// The path names the token by exactly one of token (its label), serial or
// slot-id, and the key by object (its label, CKA_LABEL), id (CKA_ID) or
// both; type, if present, is "private". The query names the module by
// module-path (an absolute file name) and, optionally, the PIN's file by
// pin-source (a "file:" URI or a file name).
type URI struct {
	// Token is the token label (the token attribute).
	Token string
	// Serial is the token serial number (the serial attribute).
	Serial string
	// SlotID is the slot's id (the slot-id attribute); HasSlotID says
	// whether the URI has one.
	SlotID    int
	HasSlotID bool
	// Object is the key's label, CKA_LABEL (the object attribute).
	Object string
	// ID is the key's CKA_ID (the id attribute), as bytes.
	ID []byte
	// ModulePath is the PKCS#11 module's file (the module-path attribute).
	ModulePath string
	// PINFile is the file named by the pin-source attribute, or empty.
	PINFile string
}

// Attribute names of RFC 7512 section 2.3.
const (
	attrToken      = "token"
	attrSerial     = "serial"
	attrSlotID     = "slot-id"
	attrObject     = "object"
	attrID         = "id"
	attrType       = "type"
	attrModulePath = "module-path"
	attrPINSource  = "pin-source"
	attrPINValue   = "pin-value"
)

// unsupportedAttrs are RFC 7512 attributes this package does not act on.
// Each would narrow which token, library or key the URI names; ignoring
// one could select another key than the operator meant, so URIs with them
// are refused.
var unsupportedAttrs = map[string]bool{
	"manufacturer":         true,
	"model":                true,
	"library-manufacturer": true,
	"library-description":  true,
	"library-version":      true,
	"slot-description":     true,
	"slot-manufacturer":    true,
	"module-name":          true,
}

const scheme = "pkcs11:"

// ParseURI parses a PKCS#11 URI strictly (RFC 7512 section 2.3) and
// checks that it names one private key as [URI] describes. It refuses,
// with a *[URIError] matching [ErrURI]: a URI longer than [MaxURILength],
// another scheme, a component that is not name=value, a character outside
// the attribute's grammar, a bad percent-encoding, an attribute given
// twice, an unknown or vendor-specific (x-) attribute, an attribute it
// does not act on (manufacturer, model, library-*, slot-description,
// slot-manufacturer, module-name: give module-path), a type other than
// private, none or several of token, serial and slot-id, neither object
// nor id, an id longer than [MaxIDLength], and a module-path that is not
// absolute. A pin-value is refused with [ErrPINInURI]: the PIN comes from
// a file or a reader, never from the URI.
func ParseURI(s string) (*URI, error) {
	if len(s) > MaxURILength {
		return nil, uriErr("", "longer than "+strconv.Itoa(MaxURILength)+" bytes")
	}
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return nil, uriErr("", `the scheme is not "pkcs11:"`)
	}
	rest := s[len(scheme):]
	path, query, hasQuery := strings.Cut(rest, "?")
	u := &URI{}
	seen := map[string]bool{}
	var typ string
	if err := parseAttrs(path, ";", false, seen, func(name, value string) error {
		switch name {
		case attrToken:
			u.Token = value
		case attrSerial:
			u.Serial = value
		case attrSlotID:
			n, ok := parseSlotID(value)
			if !ok {
				return uriErr(name, "not a decimal number of at most 9 digits")
			}
			u.SlotID, u.HasSlotID = n, true
		case attrObject:
			u.Object = value
		case attrID:
			if len(value) == 0 || len(value) > MaxIDLength {
				return uriErr(name, "empty or longer than "+strconv.Itoa(MaxIDLength)+" bytes")
			}
			u.ID = []byte(value)
			return nil // bytes, not text
		case attrType:
			typ = value
		default:
			return unknownAttr(name)
		}
		if !utf8.ValidString(value) {
			return uriErr(name, "not UTF-8")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if hasQuery {
		if err := parseAttrs(query, "&", true, seen, func(name, value string) error {
			switch name {
			case attrModulePath:
				if !strings.HasPrefix(value, "/") {
					return uriErr(name, "not an absolute file name")
				}
				u.ModulePath = value
			case attrPINSource:
				f, err := pinFile(value)
				if err != nil {
					return err
				}
				u.PINFile = f
			case attrPINValue:
				return &URIError{Attribute: name, Reason: "the PIN must not be in the URI", Err: ErrPINInURI}
			default:
				return unknownAttr(name)
			}
			if strings.IndexByte(value, 0) >= 0 {
				return uriErr(name, "contains a NUL byte")
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	selectors := 0
	for _, set := range []bool{u.Token != "", u.Serial != "", u.HasSlotID} {
		if set {
			selectors++
		}
	}
	switch {
	case typ != "" && typ != "private":
		return nil, uriErr(attrType, `"`+typ+`" names no private key`)
	case selectors != 1:
		return nil, uriErr("", "name the token by exactly one of token, serial and slot-id")
	case u.Object == "" && len(u.ID) == 0:
		return nil, uriErr("", "name the key by object, id or both")
	case u.ModulePath == "":
		return nil, uriErr("", "module-path is required")
	}
	return u, nil
}

func uriErr(attr, reason string) error {
	return &URIError{Attribute: attr, Reason: reason, Err: ErrURI}
}

func unknownAttr(name string) error {
	if unsupportedAttrs[name] {
		return uriErr(name, "not supported: it would narrow the selection in a way this package does not check")
	}
	return uriErr(name, "unknown attribute")
}

// parseAttrs splits s into sep-separated name=value attributes, checks
// their characters and decodes their values, refuses repeated names and
// calls f for each.
func parseAttrs(s, sep string, query bool, seen map[string]bool, f func(name, value string) error) error {
	if s == "" {
		return nil
	}
	for _, a := range strings.Split(s, sep) {
		name, raw, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return uriErr("", "a component is not name=value")
		}
		if !validName(name) {
			return uriErr("", "a malformed attribute name")
		}
		if seen[name] {
			return uriErr(name, "given twice")
		}
		seen[name] = true
		value, ok := decodeValue(raw, query)
		if !ok {
			return uriErr(name, "a character outside the grammar or a bad percent-encoding")
		}
		if err := f(name, value); err != nil {
			return err
		}
	}
	return nil
}

func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// decodeValue percent-decodes an attribute value after checking each
// character against pk11-pchar (path) or pk11-qchar (query) of RFC 7512
// section 2.3.
func decodeValue(s string, query bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case unreserved(c) || strings.IndexByte(":[]@!$'()*+,=", c) >= 0:
			b.WriteByte(c)
		case !query && c == '&':
			b.WriteByte(c)
		case query && strings.IndexByte("/?|", c) >= 0:
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	return b.String(), true
}

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func parseSlotID(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// pinFile returns the file a pin-source names: a "file:" URI with an
// empty or absent authority, or a URI reference without a scheme (a file
// name). Other schemes, and p11-kit's "|program", are refused: this
// package reads PINs from files only.
func pinFile(v string) (string, error) {
	if v == "" {
		return "", uriErr(attrPINSource, "empty")
	}
	if v[0] == '|' {
		return "", uriErr(attrPINSource, "running a program for the PIN is not supported")
	}
	if i := strings.IndexByte(v, ':'); i > 0 && isScheme(v[:i]) {
		if !strings.EqualFold(v[:i], "file") {
			return "", uriErr(attrPINSource, "only file: PIN sources are supported")
		}
		p := v[i+1:]
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			if !strings.HasPrefix(rest, "/") {
				return "", uriErr(attrPINSource, "a file: URI with a host")
			}
			p = rest
		}
		if !strings.HasPrefix(p, "/") {
			return "", uriErr(attrPINSource, "a file: URI without an absolute path")
		}
		return p, nil
	}
	return v, nil
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// String returns the URI in the form ParseURI accepts, with type=private,
// the id fully percent-encoded and other values percent-encoded where
// their grammar needs it. It never holds a PIN.
func (u *URI) String() string {
	var b strings.Builder
	b.WriteString(scheme)
	var path []string
	if u.Token != "" {
		path = append(path, attrToken+"="+encode(u.Token, false))
	}
	if u.Serial != "" {
		path = append(path, attrSerial+"="+encode(u.Serial, false))
	}
	if u.HasSlotID {
		path = append(path, attrSlotID+"="+strconv.Itoa(u.SlotID))
	}
	if u.Object != "" {
		path = append(path, attrObject+"="+encode(u.Object, false))
	}
	if len(u.ID) > 0 {
		var id strings.Builder
		for _, c := range u.ID {
			id.WriteByte('%')
			id.WriteByte("0123456789abcdef"[c>>4])
			id.WriteByte("0123456789abcdef"[c&15])
		}
		path = append(path, attrID+"="+id.String())
	}
	path = append(path, attrType+"=private")
	b.WriteString(strings.Join(path, ";"))
	var query []string
	if u.ModulePath != "" {
		query = append(query, attrModulePath+"="+encode(u.ModulePath, true))
	}
	if u.PINFile != "" {
		src := u.PINFile
		if strings.HasPrefix(src, "/") {
			src = "file:" + src
		}
		query = append(query, attrPINSource+"="+encode(src, true))
	}
	if len(query) > 0 {
		b.WriteByte('?')
		b.WriteString(strings.Join(query, "&"))
	}
	return b.String()
}

// encode percent-encodes every byte of s but the unreserved characters and,
// in the query, "/" and ":".
func encode(s string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || query && (c == '/' || c == ':') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}
