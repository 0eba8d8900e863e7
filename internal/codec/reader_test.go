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
