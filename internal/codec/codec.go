package codec

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ErrLimit is matched (errors.Is) by every error reporting that the input
// exceeds one of the limits of limits.go.
var ErrLimit = errors.New("cbor: limit exceeded")

// Error describes why an encoded item was rejected by [Check].
type Error struct {
	Offset int    // byte offset of the offending item head
	Reason string // what was wrong
	limit  bool
}

// Error describes the problem and where it is.
func (e *Error) Error() string {
	return fmt.Sprintf("cbor: %s at offset %d", e.Reason, e.Offset)
}

// Is reports whether the error is a limit violation when target is [ErrLimit].
func (e *Error) Is(target error) bool { return target == ErrLimit && e.limit }

var (
	decMode     cbor.DecMode // definite lengths only
	respDecMode cbor.DecMode // indefinite lengths allowed (Check restricts them)
	encMode     cbor.EncMode
)

func init() {
	opts := cbor.DecOptions{
		DupMapKey:           cbor.DupMapKeyEnforcedAPF,
		IndefLength:         cbor.IndefLengthForbidden,
		TagsMd:              cbor.TagsForbidden, // SDA tags are matched by prefix, never decoded
		MaxNestedLevels:     MaxDepth + 1,
		MaxArrayElements:    max(MaxArrayLength, 16),
		MaxMapPairs:         max(MaxMapPairs, 16),
		IntDec:              cbor.IntDecConvertNone,
		ExtraReturnErrors:   cbor.ExtraDecErrorUnknownField,
		UTF8:                cbor.UTF8RejectInvalid,
		ByteStringToString:  cbor.ByteStringToStringForbidden,
		FieldNameByteString: cbor.FieldNameByteStringForbidden,
		BignumTag:           cbor.BignumTagForbidden,
		DefaultMapType:      reflect.TypeOf(map[any]any(nil)),
	}
	var err error
	if decMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
	opts.IndefLength = cbor.IndefLengthAllowed
	if respDecMode, err = opts.DecMode(); err != nil {
		panic(err)
	}
	eo := cbor.CoreDetEncOptions()
	eo.IndefLength = cbor.IndefLengthForbidden
	if encMode, err = eo.EncMode(); err != nil {
		panic(err)
	}
}

// Unmarshal checks data with [Check] and then decodes it into v with the
// strict decoding mode. Tags are rejected: no field of an SDA format is
// tagged (the tags around tokens and requests are matched as a prefix before
// decoding), and the decoder would otherwise skip an unknown tag and decode
// its content as if it were untagged.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	return decMode.Unmarshal(data, v)
}

// UnmarshalResponse is [Unmarshal] for device responses: deployed v1 devices
// send their response as an indefinite-length map, so the top-level item (and
// only it) may be an indefinite-length map.
func UnmarshalResponse(data []byte, v any) error {
	if err := check(data, true); err != nil {
		return err
	}
	return respDecMode.Unmarshal(data, v)
}

// Marshal encodes v with the deterministic encoding of RFC 8949 section 4.2.1
// (Core Deterministic Encoding): shortest forms, definite lengths, map keys
// sorted by their encoded bytes.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Check reports whether data is exactly one well-formed CBOR item that
// respects the limits of limits.go and uses definite lengths only. It does
// not allocate. Null, undefined, floats and simple values other than false
// and true are rejected: no SDA format uses them, and a null would otherwise
// decode silently as a Go zero value.
func Check(data []byte) error { return check(data, false) }

func check(data []byte, indefTopMap bool) error {
	if len(data) == 0 {
		return &Error{Reason: "empty input"}
	}
	if len(data) > MaxInputSize {
		return &Error{Reason: fmt.Sprintf("input of %d bytes exceeds %d", len(data), MaxInputSize), limit: true}
	}
	c := checker{data: data}
	if err := c.item(0, indefTopMap); err != nil {
		return err
	}
	if c.pos != len(data) {
		return &Error{Offset: c.pos, Reason: fmt.Sprintf("%d trailing bytes", len(data)-c.pos)}
	}
	return nil
}

type checker struct {
	data []byte
	pos  int
}

const indefinite = 31

// head reads an item head and returns its major type, additional information
// and argument.
func (c *checker) head() (major, ai byte, arg uint64, err error) {
	if c.pos >= len(c.data) {
		return 0, 0, 0, &Error{Offset: c.pos, Reason: "unexpected end of input"}
	}
	b := c.data[c.pos]
	start := c.pos
	c.pos++
	major, ai = b>>5, b&0x1f
	var n int
	switch {
	case ai < 24:
		return major, ai, uint64(ai), nil
	case ai <= 27:
		n = 1 << (ai - 24)
	case ai == indefinite:
		return major, ai, 0, nil
	default:
		return 0, 0, 0, &Error{Offset: start, Reason: fmt.Sprintf("reserved additional information %d", ai)}
	}
	if len(c.data)-c.pos < n {
		return 0, 0, 0, &Error{Offset: start, Reason: "unexpected end of input"}
	}
	for _, x := range c.data[c.pos : c.pos+n] {
		arg = arg<<8 | uint64(x)
	}
	c.pos += n
	return major, ai, arg, nil
}

func (c *checker) item(depth int, indefMap bool) error {
	start := c.pos
	if depth > MaxDepth {
		return &Error{Offset: start, Reason: fmt.Sprintf("nesting deeper than %d", MaxDepth), limit: true}
	}
	major, ai, arg, err := c.head()
	if err != nil {
		return err
	}
	if ai == indefinite && !(major == 5 && indefMap) {
		switch major {
		case 0, 1, 6:
			return &Error{Offset: start, Reason: "malformed item head"}
		case 7:
			return &Error{Offset: start, Reason: "unexpected break"}
		default:
			return &Error{Offset: start, Reason: "indefinite length not allowed"}
		}
	}
	switch major {
	case 0, 1:
		return nil
	case 2, 3:
		if arg > MaxStringLength {
			return &Error{Offset: start, Reason: fmt.Sprintf("string of %d bytes exceeds %d", arg, MaxStringLength), limit: true}
		}
		if arg > uint64(len(c.data)-c.pos) {
			return &Error{Offset: start, Reason: "unexpected end of input"}
		}
		c.pos += int(arg)
		return nil
	case 4:
		if arg > MaxArrayLength {
			return &Error{Offset: start, Reason: fmt.Sprintf("array of %d elements exceeds %d", arg, MaxArrayLength), limit: true}
		}
		for i := uint64(0); i < arg; i++ {
			if err := c.item(depth+1, false); err != nil {
				return err
			}
		}
		return nil
	case 5:
		if ai == indefinite {
			for pairs := 0; ; pairs++ {
				if c.pos >= len(c.data) {
					return &Error{Offset: c.pos, Reason: "unexpected end of input"}
				}
				if c.data[c.pos] == 0xff {
					c.pos++
					return nil
				}
				if pairs >= MaxMapPairs {
					return &Error{Offset: start, Reason: fmt.Sprintf("map of more than %d pairs", MaxMapPairs), limit: true}
				}
				if err := c.pair(depth); err != nil {
					return err
				}
			}
		}
		if arg > MaxMapPairs {
			return &Error{Offset: start, Reason: fmt.Sprintf("map of %d pairs exceeds %d", arg, MaxMapPairs), limit: true}
		}
		for i := uint64(0); i < arg; i++ {
			if err := c.pair(depth); err != nil {
				return err
			}
		}
		return nil
	case 6:
		return c.item(depth+1, false)
	default: // 7: simple values and floats
		// Only false (20) and true (21) appear in SDA formats. null and
		// undefined would silently decode as Go zero values, so they are
		// rejected here along with floats and other simple values.
		if ai == 20 || ai == 21 {
			return nil
		}
		return &Error{Offset: start, Reason: fmt.Sprintf("simple value or float 0x%02x not allowed", c.data[start])}
	}
}

func (c *checker) pair(depth int) error {
	if err := c.item(depth+1, false); err != nil {
		return err
	}
	return c.item(depth+1, false)
}
