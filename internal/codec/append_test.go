package codec

import (
	"bytes"
	"math"
	"testing"
)

// The append helpers write the shortest head (RFC 8949 section 4.2.1), at
// the edges of every head size, the same bytes as the deterministic
// encoder.
func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		want string
	}{
		{0, "00"}, {23, "17"}, {24, "18 18"}, {255, "18 ff"}, {256, "19 0100"}, {65535, "19 ffff"},
		{65536, "1a 00010000"}, {math.MaxUint32, "1a ffffffff"}, {math.MaxUint32 + 1, "1b 0000000100000000"},
		{math.MaxUint64, "1b ffffffffffffffff"},
	} {
		if got := AppendUint([]byte{0xaa}, tc.v); !bytes.Equal(got, append([]byte{0xaa}, h(tc.want)...)) {
			t.Errorf("AppendUint(%d) = %x, want %s after what was there", tc.v, got, tc.want)
		}
		if m, _ := Marshal(tc.v); !bytes.Equal(m, h(tc.want)) {
			t.Errorf("Marshal(%d) = %x, want %s", tc.v, m, tc.want)
		}
		// The major type goes into the top three bits of every head size.
		want := h(tc.want)
		want[0] |= 7 << 5
		if got := AppendHead(nil, 7, tc.v); !bytes.Equal(got, want) {
			t.Errorf("AppendHead(7, %d) = %x, want %x", tc.v, got, want)
		}
	}
	for _, tc := range []struct {
		v    int64
		want string
	}{
		{0, "00"}, {1, "01"}, {-1, "20"}, {-24, "37"}, {-25, "38 18"}, {-256, "38 ff"}, {-257, "39 0100"},
		{math.MaxInt64, "1b 7fffffffffffffff"}, {math.MinInt64, "3b 7fffffffffffffff"},
	} {
		if got := AppendInt(nil, tc.v); !bytes.Equal(got, h(tc.want)) {
			t.Errorf("AppendInt(%d) = %x, want %s", tc.v, got, tc.want)
		}
		if m, _ := Marshal(tc.v); !bytes.Equal(m, h(tc.want)) {
			t.Errorf("Marshal(%d) = %x, want %s", tc.v, m, tc.want)
		}
	}
	if got := AppendBytes(nil, []byte{1, 2, 3}); !bytes.Equal(got, h("43 010203")) {
		t.Errorf("AppendBytes = %x", got)
	}
	if got := AppendText(nil, "hi"); !bytes.Equal(got, h("62 6869")) {
		t.Errorf("AppendText = %x", got)
	}
	long := bytes.Repeat([]byte{7}, 300)
	if got := AppendBytes(nil, long); !bytes.Equal(got, append(h("59 012c"), long...)) {
		t.Errorf("AppendBytes of 300 bytes: head %x", got[:3])
	}
}
