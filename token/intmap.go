package token

import "github.com/securedeviceaccess/sda/internal/codec"

// readIntKeyMap reads a map item whose keys are integers 1..len(raw)-1 in
// ascending order, each at most once (the deterministic encoding of the
// SDK's own payloads), storing each value in raw[key]. Anything else is a
// *ParseError naming field f.
func readIntKeyMap(f string, data []byte, raw [][]byte) error {
	if len(data) == 0 || data[0]>>5 != 5 {
		return malformed(f, "not a map")
	}
	last := int64(0)
	err := codec.ReadMap(data, func(k, v []byte) error {
		key, err := codec.ReadInt(k)
		if err != nil || key < 1 || key >= int64(len(raw)) {
			return malformed(f, "unknown key")
		}
		if key <= last {
			return malformed(f, "key %d repeated or out of order", key)
		}
		last, raw[key] = key, v
		return nil
	})
	if err != nil {
		if _, ok := err.(*ParseError); ok {
			return err
		}
		return wrapMalformed(f, err)
	}
	return nil
}
