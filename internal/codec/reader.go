package codec

import (
	"fmt"
	"unicode/utf8"
)

// The readers below take one encoded item and return its value without
// copying: byte strings alias the input. They validate what they read (an
// item that was not passed through Check is still read safely), and they
// accept definite lengths only. Callers that keep results beyond the life of
// the input must copy them.

// head decodes the head of the item at the start of it.
func head(it []byte) (major, ai byte, arg uint64, n int, err error) {
	c := checker{data: it}
	major, ai, arg, err = c.head()
	return major, ai, arg, c.pos, err
}

// ItemEnd returns the length of the first encoded item in data, checking it
// as [Check] does (limits, definite lengths, well-formedness).
func ItemEnd(data []byte) (int, error) {
	c := checker{data: data}
	if err := c.item(0, false); err != nil {
		return 0, err
	}
	return c.pos, nil
}

// typeError reports that it, an item whose head was read, is not of the
// type wanted.
func typeError(it []byte, want string) error {
	return &Error{Reason: fmt.Sprintf("item of major type %d, want %s", it[0]>>5, want)}
}

// ReadUint returns the value of an unsigned integer item that makes up all
// of it.
func ReadUint(it []byte) (uint64, error) {
	major, _, arg, n, err := head(it)
	if err != nil {
		return 0, err
	}
	if major != 0 || n != len(it) {
		return 0, typeError(it, "unsigned integer")
	}
	return arg, nil
}

// ReadInt returns the value of an integer item in the int64 range.
func ReadInt(it []byte) (int64, error) {
	major, _, arg, n, err := head(it)
	if err != nil {
		return 0, err
	}
	if (major != 0 && major != 1) || n != len(it) {
		return 0, typeError(it, "integer")
	}
	if arg > 1<<63-1 {
		return 0, &Error{Reason: "integer out of int64 range"}
	}
	if major == 1 {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// ReadBytes returns the content of a definite-length byte string item; the
// result aliases it.
func ReadBytes(it []byte) ([]byte, error) {
	return readString(it, 2, "byte string")
}

// ReadText returns the content of a definite-length text string item,
// which must be valid UTF-8.
func ReadText(it []byte) (string, error) {
	b, err := readString(it, 3, "text string")
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", &Error{Reason: "invalid UTF-8 in text string"}
	}
	return string(b), nil
}

func readString(it []byte, want byte, name string) ([]byte, error) {
	major, ai, arg, n, err := head(it)
	if err != nil {
		return nil, err
	}
	if major != want || ai == indefinite {
		return nil, typeError(it, "definite-length "+name)
	}
	if arg > MaxStringLength {
		return nil, &Error{Reason: fmt.Sprintf("string of %d bytes exceeds %d", arg, MaxStringLength), limit: true}
	}
	if arg != uint64(len(it)-n) {
		return nil, &Error{Reason: name + " length does not match the item"}
	}
	return it[n:], nil
}

// ReadArray appends the encoded elements of a definite-length array item to
// dst and returns it. Each element is checked as by [Check].
func ReadArray(it []byte, dst [][]byte) ([][]byte, error) {
	major, ai, arg, n, err := head(it)
	if err != nil {
		return nil, err
	}
	if major != 4 || ai == indefinite {
		return nil, typeError(it, "definite-length array")
	}
	if arg > MaxArrayLength {
		return nil, &Error{Reason: fmt.Sprintf("array of %d elements exceeds %d", arg, MaxArrayLength), limit: true}
	}
	pos := n
	for i := uint64(0); i < arg; i++ {
		end, err := ItemEnd(it[pos:])
		if err != nil {
			return nil, err
		}
		dst = append(dst, it[pos:pos+end])
		pos += end
	}
	if pos != len(it) {
		return nil, &Error{Offset: pos, Reason: "trailing bytes after array"}
	}
	return dst, nil
}

// ReadMap calls fn with each encoded key and value of a definite-length map
// item, in order. It does not detect duplicate keys: callers that do not
// decode through the strict mode must (see the token package's claim set).
func ReadMap(it []byte, fn func(k, v []byte) error) error {
	major, ai, arg, n, err := head(it)
	if err != nil {
		return err
	}
	if major != 5 || ai == indefinite {
		return typeError(it, "definite-length map")
	}
	if arg > MaxMapPairs {
		return &Error{Reason: fmt.Sprintf("map of %d pairs exceeds %d", arg, MaxMapPairs), limit: true}
	}
	pos := n
	for i := uint64(0); i < arg; i++ {
		kEnd, err := ItemEnd(it[pos:])
		if err != nil {
			return err
		}
		k := it[pos : pos+kEnd]
		pos += kEnd
		vEnd, err := ItemEnd(it[pos:])
		if err != nil {
			return err
		}
		if err := fn(k, it[pos:pos+vEnd]); err != nil {
			return err
		}
		pos += vEnd
	}
	if pos != len(it) {
		return &Error{Offset: pos, Reason: "trailing bytes after map"}
	}
	return nil
}
