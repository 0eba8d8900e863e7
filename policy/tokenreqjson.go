package policy

import (
	"strings"

	"github.com/securedeviceaccess/sda/internal/wire"
)

// decodeTokenRequestJSON decodes the JSON body of a token request into j
// exactly as strictUnmarshal does (same value, same refusals), without
// its copy of the input and its reflection for the common case: a
// hand-written reader (tokenRequestFast) decodes the bodies clients send,
// an object of the five members named as the API spells them, each at
// most once, with strings of printable ASCII and the short escapes; any
// other body (a refusal to name, a duplicate or case-folded member, null,
// \u escapes, bytes outside ASCII) goes to strictUnmarshal, whose outcome
// is the answer. FuzzDecodeTokenRequestJSON checks that the reader never
// accepts what strictUnmarshal would decode differently.
func decodeTokenRequestJSON(body []byte, j *wire.TokenRequest) error {
	var fast wire.TokenRequest
	if tokenRequestFast(body, &fast) {
		*j = fast
		return nil
	}
	var slow wire.TokenRequest // on the heap only on this path
	err := strictUnmarshal(body, &slow)
	*j = slow
	return err
}

// Members of wire.TokenRequest, as bits of the set of members seen.
const (
	trGrantType = 1 << iota
	trAud
	trScope
	trCnf
	trCNonce
)

// tokenRequestFast decodes body into j and reports true when body is in
// the subset of JSON it reads (see decodeTokenRequestJSON); it reports
// false, leaving j in any state, for anything else.
func tokenRequestFast(body []byte, j *wire.TokenRequest) bool {
	r := jsonReader{b: body}
	if !r.byte('{') {
		return false
	}
	seen := 0
	if r.peek() == '}' {
		r.i++
		return r.end()
	}
	for {
		name, ok := r.rawString()
		if !ok || !r.byte(':') {
			return false
		}
		var bit int
		switch string(name) {
		case "grant_type":
			bit = trGrantType
			j.GrantType, ok = r.string()
		case "aud":
			bit = trAud
			j.Aud, ok = r.stringArray()
		case "scope":
			bit = trScope
			j.Scope, ok = r.string()
		case "cnf":
			bit = trCnf
			j.Cnf, ok = r.string()
		case "cnonce":
			bit = trCNonce
			var s string
			s, ok = r.string()
			j.CNonce = &s
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch r.next() {
		case ',':
		case '}':
			return r.end()
		default:
			return false
		}
	}
}

// jsonReader reads the subset of JSON of tokenRequestFast from b.
type jsonReader struct {
	b []byte
	i int
}

// skip passes JSON whitespace (RFC 8259 section 2).
func (r *jsonReader) skip() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end.
func (r *jsonReader) peek() byte {
	r.skip()
	if r.i == len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// next consumes and returns the next byte after whitespace, 0 at the end.
func (r *jsonReader) next() byte {
	c := r.peek()
	if c != 0 {
		r.i++
	}
	return c
}

// byte consumes c, the next byte after whitespace, or reports false.
func (r *jsonReader) byte(c byte) bool { return r.next() == c }

// end reports whether only whitespace is left.
func (r *jsonReader) end() bool {
	r.skip()
	return r.i == len(r.b)
}

// rawString reads a string without escapes, of printable ASCII, and
// returns its bytes within b.
func (r *jsonReader) rawString() ([]byte, bool) {
	if !r.byte('"') {
		return nil, false
	}
	start := r.i
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return r.b[start : r.i-1], true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// string reads a string of printable ASCII with the escapes \" \\ \/ \b
// \f \n \r \t.
func (r *jsonReader) string() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	start := r.i
	escapes := false
	for ; r.i < len(r.b); r.i++ {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if !escapes {
				return string(r.b[start : r.i-1]), true
			}
			return unescapeJSON(r.b[start : r.i-1])
		case c < 0x20 || c >= 0x80:
			return "", false
		case c == '\\':
			escapes = true
			r.i++ // the escaped byte, checked by unescapeJSON
			if r.i == len(r.b) {
				return "", false
			}
		}
	}
	return "", false
}

// unescapeJSON decodes the short escapes of s, which holds no '"' but
// after a backslash; it reports false for any other escape.
func unescapeJSON(s []byte) (string, bool) {
	var out strings.Builder // one allocation: String does not copy
	out.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			switch c = s[i]; c {
			case '"', '\\', '/':
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default:
				return "", false
			}
		}
		out.WriteByte(c)
	}
	return out.String(), true
}

// stringArray reads an array of strings (string), not null.
func (r *jsonReader) stringArray() ([]string, bool) {
	if !r.byte('[') {
		return nil, false
	}
	list := []string{}
	if r.peek() == ']' {
		r.i++
		return list, true
	}
	for len(list) < maxFastAudiences {
		s, ok := r.string()
		if !ok {
			return nil, false
		}
		list = append(list, s)
		switch r.next() {
		case ',':
		case ']':
			return list, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// maxFastAudiences bounds the audiences tokenRequestFast reads; a longer
// list goes to strictUnmarshal (and is refused by the audience limit).
const maxFastAudiences = 64
