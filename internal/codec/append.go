package codec

// Append helpers write deterministic (shortest-form, definite-length) CBOR
// items without reflection; hot encoders use them.

// AppendHead appends an item head of the given major type and argument in
// shortest form.
func AppendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xff:
		return append(b, m|24, byte(v))
	case v <= 0xffff:
		return append(b, m|25, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, m|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, m|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendUint appends an unsigned integer.
func AppendUint(b []byte, v uint64) []byte { return AppendHead(b, 0, v) }

// AppendInt appends a signed integer.
func AppendInt(b []byte, v int64) []byte {
	if v < 0 {
		return AppendHead(b, 1, uint64(-1-v))
	}
	return AppendHead(b, 0, uint64(v))
}

// AppendBytes appends a byte string.
func AppendBytes(b, v []byte) []byte { return append(AppendHead(b, 2, uint64(len(v))), v...) }

// AppendText appends a text string; the caller guarantees valid UTF-8.
func AppendText(b []byte, s string) []byte { return append(AppendHead(b, 3, uint64(len(s))), s...) }
