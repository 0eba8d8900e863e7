package token

import "fmt"

// CBOR tags of the COSE messages (RFC 9052 section 2) and of a CWT (RFC
// 8392 section 6). This package implements one form of CWT: a COSE_Sign1,
// tagged 18, optionally inside tag 61.
const (
	tagEncrypt0 = 16
	tagMac0     = 17
	tagSign1    = 18
	tagCWT      = 61
	tagEncrypt  = 96
	tagMac      = 97
	tagSign     = 98
)

// coseFormName names the COSE message of a tag, or returns "".
func coseFormName(tag uint64) string {
	switch tag {
	case tagEncrypt0:
		return "COSE_Encrypt0"
	case tagMac0:
		return "COSE_Mac0"
	case tagSign1:
		return "COSE_Sign1"
	case tagEncrypt:
		return "COSE_Encrypt"
	case tagMac:
		return "COSE_Mac"
	case tagSign:
		return "COSE_Sign"
	}
	return ""
}

// leadingTag returns the number of the CBOR tag data starts with and the
// length of its head. Tags above 65535 are reported as not a tag: none of
// the tags looked for is that large.
func leadingTag(data []byte) (tag uint64, n int, ok bool) {
	if len(data) == 0 || data[0]>>5 != 6 {
		return 0, 0, false
	}
	switch ai := data[0] & 0x1f; {
	case ai < 24:
		return uint64(ai), 1, true
	case ai == 24 && len(data) >= 2:
		return uint64(data[1]), 2, true
	case ai == 25 && len(data) >= 3:
		return uint64(data[1])<<8 | uint64(data[2]), 3, true
	}
	return 0, 0, false
}

// unsupportedForm returns an [ErrUnsupportedForm] error if data, which is
// not a tagged COSE_Sign1, is another COSE message, optionally inside the
// CWT tag 61: a MACed or encrypted CWT (RFC 8392 Appendix A.4, A.5 and
// A.6), or one signed by several signers. Otherwise it returns nil and the
// caller reports the bytes as plainly malformed.
func unsupportedForm(field string, data []byte) error {
	tag, n, ok := leadingTag(data)
	if ok && tag == tagCWT {
		tag, _, ok = leadingTag(data[n:])
	}
	if name := coseFormName(tag); ok && tag != tagSign1 && name != "" {
		return &ParseError{Field: field, Err: fmt.Errorf("%w: a %s (tag %d); only COSE_Sign1 (tag 18) is supported", ErrUnsupportedForm, name, tag)}
	}
	return nil
}

// nestedForm returns an [ErrUnsupportedForm] error if the COSE_Sign1 m of
// a token carries a nested CWT (RFC 8392 section 7.1 step 6 and section
// 7.2 step 6): its content type is 61 ("application/cwt"), or its payload
// is a tagged COSE message or CWT rather than a claims map.
func nestedForm(field string, m *sign1) error {
	if m.contentCWT {
		return &ParseError{Field: field, Err: fmt.Errorf("%w: a nested CWT (content type application/cwt)", ErrUnsupportedForm)}
	}
	if tag, _, ok := leadingTag(m.payload); ok && (tag == tagCWT || coseFormName(tag) != "") {
		return &ParseError{Field: field, Err: fmt.Errorf("%w: a nested CWT (payload tagged %d)", ErrUnsupportedForm, tag)}
	}
	return nil
}
