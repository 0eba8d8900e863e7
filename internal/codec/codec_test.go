package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestCheck(t *testing.T) {
	deep := bytes.Repeat([]byte{0x81}, MaxDepth)
	tooDeep := bytes.Repeat([]byte{0x81}, MaxDepth+1)
	for _, tc := range []struct {
		name  string
		data  []byte
		ok    bool
		limit bool
	}{
		{"uint", h("1b 0000000000000001"), true, false},
		{"map", h("a2 01 02 03 04"), true, false},
		{"tagged array", h("d2 84 43a10126 a0 40 40"), true, false},
		{"bool", h("f5"), true, false},
		{"nesting at the limit", append(deep, 0x01), true, false},
		{"nesting over the limit", append(tooDeep, 0x01), false, true},
		{"empty", nil, false, false},
		{"trailing byte", h("01 01"), false, false},
		{"truncated string", h("43 0102"), false, false},
		{"truncated head", h("19 01"), false, false},
		{"reserved ai", h("1c"), false, false},
		{"indefinite array", h("9f 01 ff"), false, false},
		{"indefinite map", h("bf 01 02 ff"), false, false},
		{"indefinite bytes", h("5f 41 00 ff"), false, false},
		{"lone break", h("ff"), false, false},
		{"null", h("f6"), false, false},
		{"undefined", h("f7"), false, false},
		{"float", h("f9 3c00"), false, false},
		{"simple 255", h("f8 ff"), false, false},
		{"bad simple", h("f8 10"), false, false},
		{"array too long", append(h("98 41"), bytes.Repeat([]byte{0}, 65)...), false, true},
		{"map too big", h("b8 21"), false, true},
		{"string too long", h("5a 00010000"), false, true},
		{"huge declared string", h("5b 7fffffffffffffff"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%x) = %v, want ok=%v", tc.data, err, tc.ok)
			}
			if errors.Is(err, ErrLimit) != tc.limit {
				t.Fatalf("Check(%x) = %v, limit=%v", tc.data, err, tc.limit)
			}
		})
	}
	if err := Check(make([]byte, MaxInputSize+1)); !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized input: %v", err)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	var m map[int]int
	if err := Unmarshal(h("a2 01 02 01 03"), &m); err == nil {
		t.Fatal("duplicate map key accepted")
	}
	var s struct {
		A int `cbor:"1,keyasint"`
	}
	if err := Unmarshal(h("a2 01 02 02 03"), &s); err == nil {
		t.Fatal("unknown struct field accepted")
	}
	var str string
	if err := Unmarshal(h("62 c328"), &str); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	if err := Unmarshal(h("42 6869"), &str); err == nil {
		t.Fatal("byte string decoded into a string")
	}
}

// TestUnmarshalRejectsTags: no field decoded through Unmarshal is tagged in
// any SDA format (the tags of tokens and requests are matched by prefix), so
// a tag must not be silently skipped: 1(-7) is not the integer -7.
func TestUnmarshalRejectsTags(t *testing.T) {
	var i int64
	var s string
	var a []any
	var m map[any]cbor.RawMessage
	var r []cbor.RawMessage
	var st struct {
		A *uint64 `cbor:"1,keyasint"`
	}
	for _, tc := range []struct {
		name string
		data string
		v    any
	}{
		{"tagged int", "c1 26", &i},
		{"unknown tag on int", "d8 64 05", &i},
		{"tagged text", "d8 64 61 61", &s},
		{"tagged array element", "81 c1 01", &a},
		{"tagged map key", "a1 c1 01 02", &m},
		{"tagged map value", "a1 01 c1 02", &m},
		{"tagged raw element", "81 d8 64 01", &r},
		{"tagged struct field", "a1 01 c1 04", &st},
	} {
		if err := Unmarshal(h(tc.data), tc.v); err == nil {
			t.Errorf("%s: Unmarshal(%s) accepted a tag", tc.name, tc.data)
		}
		if err := UnmarshalResponse(h(tc.data), tc.v); err == nil {
			t.Errorf("%s: UnmarshalResponse(%s) accepted a tag", tc.name, tc.data)
		}
	}
}

func TestUnmarshalResponse(t *testing.T) {
	var m map[int]any
	if err := UnmarshalResponse(h("bf 03 1a 01020304 01 02 02 00 ff"), &m); err != nil {
		t.Fatalf("v1 indefinite response rejected: %v", err)
	}
	if err := UnmarshalResponse(h("a2 01 04 02 00"), &m); err != nil {
		t.Fatalf("definite response rejected: %v", err)
	}
	for _, bad := range []string{
		"bf 04 5f 41 00 ff 01 04 02 00 ff", // indefinite string inside
		"bf 01 9f ff ff",                   // indefinite array inside
		"bf 01 bf ff ff",                   // nested indefinite map
		"bf 01 02",                         // no break
		"9f 01 ff",                         // indefinite array at the top
	} {
		if err := UnmarshalResponse(h(bad), &m); err == nil {
			t.Errorf("UnmarshalResponse(%s) accepted", bad)
		}
	}
}

func TestMarshalDeterministic(t *testing.T) {
	b, err := Marshal(map[int]any{25: 1, -1: 2, 1: 3, 12: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := h("a4 01 03 0c 04 18 19 01 20 02"); !bytes.Equal(b, want) {
		t.Fatalf("Marshal = %x, want %x (RFC 8949 section 4.2.1 order)", b, want)
	}
}

func TestReaders(t *testing.T) {
	if v, err := ReadInt(h("3b 7fffffffffffffff")); err != nil || v != -1<<63 {
		t.Fatalf("ReadInt min int64 = %d, %v", v, err)
	}
	if _, err := ReadInt(h("3b 8000000000000000")); err == nil {
		t.Fatal("ReadInt accepted a value below int64")
	}
	if _, err := ReadUint(h("01 02")); err == nil {
		t.Fatal("ReadUint accepted trailing bytes")
	}
	if b, err := ReadBytes(h("43 010203")); err != nil || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("ReadBytes = %x, %v", b, err)
	}
	if _, err := ReadBytes(h("63 010203")); err == nil {
		t.Fatal("ReadBytes accepted a text string")
	}
	if _, err := ReadText(h("62 c328")); err == nil {
		t.Fatal("ReadText accepted invalid UTF-8")
	}
	items, err := ReadArray(h("83 01 42 0102 a1 01 02"), nil)
	if err != nil || len(items) != 3 || !bytes.Equal(items[2], h("a1 01 02")) {
		t.Fatalf("ReadArray = %x, %v", items, err)
	}
	if _, err := ReadArray(h("82 01"), nil); err == nil {
		t.Fatal("ReadArray accepted a short array")
	}
	n := 0
	if err := ReadMap(h("a2 01 02 03 04"), func(k, v []byte) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("ReadMap: %d pairs, %v", n, err)
	}
}

// FuzzCheck: Check never panics, and whatever it accepts is well-formed
// CBOR according to fxamacker/cbor as well (a differential check).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"01", "a2 01 02 03 04", "d2 84 43a10126 a0 40 40", "9f ff", "bf 01 02 ff", "f6", "5a 00010000"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if err == nil {
			if werr := cbor.Wellformed(data); werr != nil {
				t.Fatalf("Check accepted %x, fxamacker says %v", data, werr)
			}
			if n, err := ItemEnd(data); err != nil || n != len(data) {
				t.Fatalf("Check accepted %x, ItemEnd says %d, %v", data, n, err)
			}
		}
		_ = check(data, true)
	})
}

// Check reports where the offending item starts (the head of a truncated
// or oversized item, the first trailing byte, the missing item at the end
// of the input), also inside other items.
func TestCheckErrorOffsets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   string
		offset int
	}{
		{"empty", "", 0},
		{"trailing byte", "01 01", 1},
		{"trailing bytes after an array", "82 01 02 03 04", 3},
		{"truncated string", "43 0102", 0},
		{"truncated string in an array", "82 01 43 0102", 2},
		{"truncated text in a map", "a1 01 63 6869", 2},
		{"string longer than the input by far", "82 01 58 ff 00", 2},
		{"truncated head", "19 01", 0},
		{"truncated head in an array", "82 01 19 01", 2},
		{"missing element", "82 01", 2},
		{"missing map value", "a1 01", 2},
		{"missing tag content", "81 c1", 2},
		{"reserved ai in an array", "82 01 1c", 2},
		{"indefinite array inside", "81 9f ff", 1},
		{"indefinite string inside", "a1 01 5f 41 00 ff", 2},
		{"break inside", "82 01 ff", 2},
		{"null inside", "82 01 f6", 2},
		{"float inside", "81 f9 3c00", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(h(tc.data))
			var e *Error
			if !errors.As(err, &e) || e.Offset != tc.offset || errors.Is(err, ErrLimit) {
				t.Fatalf("Check(%s) = %v, want an error at offset %d", tc.data, err, tc.offset)
			}
		})
	}
}
