package codec

import (
	"errors"
	"math"
	"testing"
)

// The integer readers return every value of their range, at the edges of
// each head size, and refuse other major types, trailing bytes and values
// outside the range.
func TestReadIntegers(t *testing.T) {
	for _, v := range []uint64{0, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		it := AppendUint(nil, v)
		if got, err := ReadUint(it); err != nil || got != v {
			t.Errorf("ReadUint(%x) = %d, %v; want %d", it, got, err, v)
		}
		got, err := ReadInt(it)
		if v > math.MaxInt64 {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("ReadInt(%x) = %d, %v; want an error", it, got, err)
			}
		} else if err != nil || got != int64(v) {
			t.Errorf("ReadInt(%x) = %d, %v; want %d", it, got, err, v)
		}
	}
	for _, v := range []int64{-1, -24, -25, -256, -257, math.MinInt32, math.MinInt64 + 1, math.MinInt64} {
		it := AppendInt(nil, v)
		if got, err := ReadInt(it); err != nil || got != v {
			t.Errorf("ReadInt(%x) = %d, %v; want %d", it, got, err, v)
		}
		if got, err := ReadUint(it); err == nil {
			t.Errorf("ReadUint(%x) = %d, want an error", it, got)
		}
	}
	for _, bad := range []string{"", "40", "60", "80", "a0", "c1 01", "f5", "18", "01 01", "20 00", "3b 8000000000000000"} {
		var e *Error
		if got, err := ReadInt(h(bad)); !errors.As(err, &e) {
			t.Errorf("ReadInt(%s) = %d, %v; want an error", bad, got, err)
		}
		if bad == "3b 8000000000000000" {
			continue
		}
		if got, err := ReadUint(h(bad)); !errors.As(err, &e) {
			t.Errorf("ReadUint(%s) = %d, %v; want an error", bad, got, err)
		}
	}
}

// The string readers take an item that is exactly one definite-length
// string of their type, and nothing else.
func TestReadStrings(t *testing.T) {
	if b, err := ReadBytes(h("40")); err != nil || len(b) != 0 {
		t.Fatalf("ReadBytes(40) = %x, %v", b, err)
	}
	if s, err := ReadText(h("62 6869")); err != nil || s != "hi" {
		t.Fatalf("ReadText(626869) = %q, %v", s, err)
	}
	for _, bad := range []string{"", "43 0102", "42 010203", "5f 41 00 ff", "63 6869", "01", "5b 7fffffffffffffff"} {
		var e *Error
		if b, err := ReadBytes(h(bad)); !errors.As(err, &e) || b != nil {
			t.Errorf("ReadBytes(%s) = %x, %v; want an error", bad, b, err)
		}
	}
	for _, bad := range []string{"", "63 6869", "62 686970", "7f 61 61 ff", "42 6869", "62 c328"} {
		var e *Error
		if s, err := ReadText(h(bad)); !errors.As(err, &e) || s != "" {
			t.Errorf("ReadText(%s) = %q, %v; want an error", bad, s, err)
		}
	}
}
