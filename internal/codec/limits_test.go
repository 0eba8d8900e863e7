package codec

import (
	"bytes"
	"errors"
	"testing"
)

// repeat returns n copies of the bytes of hex string s.
func repeat(s string, n int) []byte { return bytes.Repeat(h(s), n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// pairs returns n key/value pairs with distinct unsigned keys 0, 1, ...
func pairs(n int) []byte {
	var b []byte
	for i := range n {
		b = AppendUint(b, uint64(i))
		b = append(b, 0x00)
	}
	return b
}

// checkLimit fails t unless err is an *Error matching ErrLimit at offset.
func checkLimit(t *testing.T, err error, offset int) {
	t.Helper()
	var e *Error
	if !errors.Is(err, ErrLimit) || !errors.As(err, &e) || e.Offset != offset {
		t.Fatalf("got %v, want a limit error at offset %d", err, offset)
	}
}

// Every limit of limits.go holds at exactly its value and refuses one more,
// in every position: nesting through arrays, map keys, map values, tags
// and the v1 response's indefinite-length map, and lengths in Check, the
// decoders and the readers.
func TestLimits(t *testing.T) {
	t.Run("depth", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			// item returns an item nested n levels deep, and the offset
			// of the item at depth n.
			item func(n int) ([]byte, int)
			top  bool // an indefinite-length top-level map (UnmarshalResponse)
		}{
			{"arrays", func(n int) ([]byte, int) { return cat(repeat("81", n), h("01")), n }, false},
			// The key of the innermost map is the first item at depth n.
			{"map values", func(n int) ([]byte, int) { return cat(repeat("a1 01", n), h("01")), 2*n - 1 }, false},
			{"map keys", func(n int) ([]byte, int) { return cat(repeat("a1", n), h("01"), repeat("01", n)), n }, false},
			{"tags", func(n int) ([]byte, int) { return cat(repeat("c1", n), h("01")), n }, false},
			{"mixed", func(n int) ([]byte, int) {
				var b []byte
				for i := range n { // the last level is not a map for n = MaxDepth+1
					b = append(b, [][]byte{h("81"), h("c1"), h("a1 01")}[i%3]...)
				}
				return append(b, 0x01), len(b)
			}, false},
			{"indefinite map", func(n int) ([]byte, int) { return cat(h("bf 01"), repeat("81", n-1), h("01 ff")), n + 1 }, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ok, _ := tc.item(MaxDepth)
				if err := check(ok, tc.top); err != nil {
					t.Fatalf("depth %d: %v", MaxDepth, err)
				}
				if n, err := ItemEnd(ok); !tc.top && (err != nil || n != len(ok)) {
					t.Fatalf("ItemEnd at depth %d: %d, %v", MaxDepth, n, err)
				}
				bad, offset := tc.item(MaxDepth + 1)
				checkLimit(t, check(bad, tc.top), offset)
				if !tc.top {
					_, err := ItemEnd(bad)
					checkLimit(t, err, offset)
				}
			})
		}
		// The decoders' own nesting limit is not below Check's.
		var v any
		if err := Unmarshal(cat(repeat("81", MaxDepth), h("01")), &v); err != nil {
			t.Fatalf("Unmarshal of arrays %d deep: %v", MaxDepth, err)
		}
		if err := Unmarshal(cat(repeat("a1 01", MaxDepth), h("01")), &v); err != nil {
			t.Fatalf("Unmarshal of maps %d deep: %v", MaxDepth, err)
		}
		if err := UnmarshalResponse(cat(h("bf 01"), repeat("81", MaxDepth-1), h("01 ff")), &v); err != nil {
			t.Fatalf("UnmarshalResponse %d deep: %v", MaxDepth, err)
		}
	})

	t.Run("array length", func(t *testing.T) {
		ok := cat(h("98 40"), repeat("00", MaxArrayLength))
		var a []int
		if err := Unmarshal(ok, &a); err != nil || len(a) != MaxArrayLength {
			t.Fatalf("Unmarshal of %d elements: %d, %v", MaxArrayLength, len(a), err)
		}
		if items, err := ReadArray(ok, nil); err != nil || len(items) != MaxArrayLength {
			t.Fatalf("ReadArray of %d elements: %d, %v", MaxArrayLength, len(items), err)
		}
		bad := cat(h("98 41"), repeat("00", MaxArrayLength+1))
		checkLimit(t, Check(bad), 0)
		checkLimit(t, Check(cat(h("82 00"), bad)), 2)
		_, err := ReadArray(bad, nil)
		checkLimit(t, err, 0)
	})

	t.Run("map pairs", func(t *testing.T) {
		ok := cat(h("b8 20"), pairs(MaxMapPairs))
		var m map[int]int
		if err := Unmarshal(ok, &m); err != nil || len(m) != MaxMapPairs {
			t.Fatalf("Unmarshal of %d pairs: %d, %v", MaxMapPairs, len(m), err)
		}
		n := 0
		if err := ReadMap(ok, func(k, v []byte) error { n++; return nil }); err != nil || n != MaxMapPairs {
			t.Fatalf("ReadMap of %d pairs: %d, %v", MaxMapPairs, n, err)
		}
		bad := cat(h("b8 21"), pairs(MaxMapPairs+1))
		checkLimit(t, Check(bad), 0)
		checkLimit(t, Check(cat(h("81"), bad)), 1)
		checkLimit(t, ReadMap(bad, func(k, v []byte) error { return nil }), 0)
	})

	t.Run("indefinite map pairs", func(t *testing.T) {
		ok := cat(h("bf"), pairs(MaxMapPairs), h("ff"))
		var m map[int]int
		if err := UnmarshalResponse(ok, &m); err != nil || len(m) != MaxMapPairs {
			t.Fatalf("UnmarshalResponse of %d pairs: %d, %v", MaxMapPairs, len(m), err)
		}
		bad := cat(h("bf"), pairs(MaxMapPairs+1), h("ff"))
		checkLimit(t, UnmarshalResponse(bad, &m), 0)
		checkLimit(t, UnmarshalResponse(cat(h("bf"), pairs(10*MaxMapPairs), h("ff")), &m), 0)
	})

	t.Run("string length", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			major byte
			read  func([]byte) (int, error)
		}{
			{"bytes", 2, func(it []byte) (int, error) { b, err := ReadBytes(it); return len(b), err }},
			{"text", 3, func(it []byte) (int, error) { s, err := ReadText(it); return len(s), err }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				str := func(n int) []byte {
					return append(AppendHead(nil, tc.major, uint64(n)), bytes.Repeat([]byte("a"), n)...)
				}
				ok := str(MaxStringLength)
				if err := Check(ok); err != nil {
					t.Fatalf("Check of %d bytes: %v", MaxStringLength, err)
				}
				if n, err := tc.read(ok); err != nil || n != MaxStringLength {
					t.Fatalf("reading %d bytes: %d, %v", MaxStringLength, n, err)
				}
				var v any
				if err := Unmarshal(ok, &v); err != nil {
					t.Fatalf("Unmarshal of %d bytes: %v", MaxStringLength, err)
				}
				bad := str(MaxStringLength + 1)
				checkLimit(t, Check(bad), 0)
				checkLimit(t, Check(cat(h("82 00"), bad)), 2)
				_, err := tc.read(bad)
				checkLimit(t, err, 0)
			})
		}
	})

	t.Run("input size", func(t *testing.T) {
		// Four byte strings, the last made to fill the input exactly.
		item := func(size int) []byte {
			b := h("84")
			for i := range 4 {
				n := MaxStringLength
				if i == 3 {
					n = size - len(b) - 3 // its 3-byte head
				}
				b = AppendBytes(b, make([]byte, n))
			}
			return b
		}
		ok := item(MaxInputSize)
		if len(ok) != MaxInputSize {
			t.Fatalf("built %d bytes", len(ok))
		}
		if err := Check(ok); err != nil {
			t.Fatalf("Check of %d bytes: %v", MaxInputSize, err)
		}
		var v [][]byte
		if err := Unmarshal(ok, &v); err != nil || len(v) != 4 {
			t.Fatalf("Unmarshal of %d bytes: %v", MaxInputSize, err)
		}
		checkLimit(t, Check(item(MaxInputSize+1)), 0)
	})
}
