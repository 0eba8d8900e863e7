package token

import "testing"

// TestLeadingTag: the head of a leading CBOR tag is read in each of its
// lengths, and only when all of it is there.
func TestLeadingTag(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		tag  uint64
		n    int
		ok   bool
	}{
		{nil, 0, 0, false},
		{[]byte{0x82}, 0, 0, false},             // an array, not a tag
		{[]byte{0xd2}, 18, 1, true},             // COSE_Sign1
		{[]byte{0xd8}, 0, 0, false},             // a 1-byte argument missing
		{[]byte{0xd8, 0x3d}, 61, 2, true},       // CWT, exactly the head
		{[]byte{0xd8, 0x61, 0x84}, 97, 2, true}, // COSE_Mac and more
		{[]byte{0xd9, 0x00}, 0, 0, false},       // a 2-byte argument cut short
		{[]byte{0xd9, 0x00, 0x61}, 97, 3, true}, // COSE_Mac in a longer head
		{[]byte{0xd9, 0x01, 0x00}, 256, 3, true},
		{[]byte{0xda, 0x00, 0x00, 0x00, 0x61}, 0, 0, false}, // 4-byte heads are not read
	} {
		tag, n, ok := leadingTag(tc.data)
		if tag != tc.tag || n != tc.n || ok != tc.ok {
			t.Errorf("leadingTag(% x) = %d, %d, %v; want %d, %d, %v", tc.data, tag, n, ok, tc.tag, tc.n, tc.ok)
		}
	}
}
