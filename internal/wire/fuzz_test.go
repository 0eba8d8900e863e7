package wire

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// v1ResponseSeeds are response layouts of deployed SDA v1 devices (an
// indefinite-length map, keys 3/4 before 1/2), a few definite-length and
// reordered forms, v2 responses, and near misses.
var v1ResponseSeeds = [][]byte{
	// nonce response {3: 0x0123456789abcdef, 1: 2, 2: 0}, as v1 devices send it
	{0xbf, 0x03, 0x1b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x02, 0x02, 0x00, 0xff},
	// operation response {4: h'323100', 1: 4, 2: 0}
	{0xbf, 0x04, 0x43, 0x32, 0x31, 0x00, 0x01, 0x04, 0x02, 0x00, 0xff},
	// operation response without data, access denied
	{0xbf, 0x01, 0x04, 0x02, 0x05, 0xff},
	// operation failed (0x0FFFFFFF)
	{0xbf, 0x01, 0x04, 0x02, 0x1a, 0x0f, 0xff, 0xff, 0xff, 0xff},
	// error response, invalid request
	{0xbf, 0x01, 0x18, 0xff, 0x02, 0x02, 0xff},
	// definite-length, keys in order
	{0xa3, 0x01, 0x02, 0x02, 0x00, 0x03, 0x01},
	{0xa2, 0x02, 0x00, 0x01, 0x04},
	// v2: next nonce and a (fake) signed response
	{0xbf, 0x04, 0x41, 0x61, 0x05, 0x19, 0x12, 0x34, 0x06, 0x42, 0xd2, 0x84, 0x01, 0x04, 0x02, 0x00, 0xff},
	// near misses: unknown key, duplicate key, nested indefinite, trailing
	// bytes, missing status, zero nonce, unterminated map
	{0xbf, 0x01, 0x04, 0x02, 0x00, 0x07, 0x00, 0xff},
	{0xbf, 0x01, 0x04, 0x01, 0x04, 0x02, 0x00, 0xff},
	{0xbf, 0x04, 0x5f, 0x41, 0x61, 0xff, 0x01, 0x04, 0x02, 0x00, 0xff},
	{0xa2, 0x01, 0x04, 0x02, 0x00, 0x00},
	{0xbf, 0x01, 0x04, 0xff},
	{0xbf, 0x03, 0x00, 0x01, 0x02, 0x02, 0x00, 0xff},
	{0xbf, 0x01, 0x04, 0x02, 0x00},
}

// FuzzDecodeResponse checks that DecodeResponse never panics, that what it
// accepts is consistent (a known type, a status that fits 32 bits, fields
// only where the type allows them), and that an accepted response survives
// an Encode/DecodeResponse round trip unchanged.
func FuzzDecodeResponse(f *testing.F) {
	if len(v1ResponseSeeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range v1ResponseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err != nil {
			return
		}
		switch r.Type {
		case TypeNonceResponse:
			if r.Data != nil || r.NextNonce != 0 || r.Signed != nil || (r.Status == StatusSuccess && r.Nonce == 0) {
				t.Fatalf("inconsistent nonce response %+v", r)
			}
		case TypeOperationResponse:
			if r.Nonce != 0 {
				t.Fatalf("operation response with a nonce %+v", r)
			}
		case TypeErrorResponse:
			if r.Nonce != 0 || r.Data != nil || r.NextNonce != 0 || r.Signed != nil {
				t.Fatalf("inconsistent error response %+v", r)
			}
		default:
			t.Fatalf("accepted unknown type %d", r.Type)
		}
		enc := r.Encode()
		r2, err := DecodeResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v\n% x", err, enc)
		}
		if r2.Type != r.Type || r2.Status != r.Status || r2.Nonce != r.Nonce || r2.NextNonce != r.NextNonce ||
			!bytes.Equal(r2.Data, r.Data) || (r2.Data == nil) != (r.Data == nil) ||
			!bytes.Equal(r2.Signed, r.Signed) || (r2.Signed == nil) != (r.Signed == nil) ||
			r2.HasSequences != r.HasSequences || !slices.Equal(r2.Sequences, r.Sequences) {
			t.Fatalf("round trip changed the response:\n%+v\n%+v", r, r2)
		}
	})
}

// TestResponseSeeds keeps the seeds meaningful: the first eight are valid
// responses (so the fuzz target's round trip runs on them), the rest are
// rejected.
func TestResponseSeeds(t *testing.T) {
	for i, s := range v1ResponseSeeds {
		_, err := DecodeResponse(s)
		if valid := i < 8; valid != (err == nil) {
			t.Errorf("seed %d (% x): valid %v, error %v", i, s, valid, err)
		}
	}
}

// FuzzDecodeMessage: DecodeMessage accepts only [1], [3, non-empty bstr]
// and [3, non-empty bstr, non-empty bstr]; a malformed envelope reports type 0, or 3 when it starts as an
// operation request, and never a bundle. It accepts exactly what
// oracleDecodeMessage, the reflection decoder it replaced, accepts and
// returns the same message; its result does not alias data.
// DecodeMessageView answers the same.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{"81 01", "82 03 42 d2 84", "82 03 01", "81 03", "9f 03 41 00 ff", "83 03 41 00 00", "82 18 03 41 00", "80", "83 03 41 00 41 01"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if o, oerr := oracleDecodeMessage(data); (oerr == nil) != (err == nil) || !sameMessage(o, m) {
			t.Fatalf("%x: DecodeMessage %+v %v, the reflection decoder %+v %v", data, m, err, o, oerr)
		}
		if v, verr := DecodeMessageView(data); (verr == nil) != (err == nil) || !sameMessage(v, m) {
			t.Fatalf("%x: DecodeMessageView %+v %v, DecodeMessage %+v %v", data, v, verr, m, err)
		}
		// The message must not change when the caller reuses its buffer
		// (a copy of data: the fuzz function must not modify data).
		buf := bytes.Clone(data)
		if mb, _ := DecodeMessage(buf); mb.Signed != nil || mb.Status != nil {
			for i := range buf {
				buf[i] ^= 0xff
			}
			if !sameMessage(mb, m) {
				t.Fatalf("%x: DecodeMessage's result changed with its input: %+v, was %+v", data, mb, m)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) || m.Type != 0 && m.Type != TypeOperationRequest || m.Signed != nil || m.Status != nil {
				t.Fatalf("malformed %x: %+v %v", data, m, err)
			}
			return
		}
		switch {
		case m.Type == TypeNonceRequest && m.Signed == nil && m.Status == nil:
		case m.Type == TypeOperationRequest && len(m.Signed) > 0:
			enc := EncodeOperationRequest(m.Signed)
			if m.Status != nil {
				enc = EncodeOperationRequestWithStatus(m.Signed, m.Status)
			}
			again, err := DecodeMessage(enc)
			if err != nil || !bytes.Equal(again.Signed, m.Signed) || !bytes.Equal(again.Status, m.Status) {
				t.Fatalf("re-encoded %x: %+v %v", data, again, err)
			}
		default:
			t.Fatalf("accepted %x as %+v", data, m)
		}
	})
}

// sameMessage reports whether a and b are the same message, a nil byte
// string differing from an empty one.
func sameMessage(a, b Message) bool {
	return a.Type == b.Type && bytes.Equal(a.Signed, b.Signed) && (a.Signed == nil) == (b.Signed == nil) &&
		bytes.Equal(a.Status, b.Status) && (a.Status == nil) == (b.Status == nil)
}

// oracleDecodeMessage is DecodeMessage as it was before it read the
// envelope with the codec readers: by reflection, into raw messages. The
// fuzz target compares the two.
func oracleDecodeMessage(data []byte) (Message, error) {
	m, err := oracleDecode(data)
	if err != nil {
		m = Message{}
		if startsAsOperationRequest(data) {
			m.Type = TypeOperationRequest
		}
	}
	return m, err
}

func oracleDecode(data []byte) (Message, error) {
	if err := codec.Check(data); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if data[0]>>5 != 4 {
		return Message{}, malformed("envelope is not an array")
	}
	var items []cbor.RawMessage
	if err := codec.Unmarshal(data, &items); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(items) == 0 {
		return Message{}, malformed("empty envelope")
	}
	var m Message
	if items[0][0]>>5 != 0 || codec.Unmarshal(items[0], &m.Type) != nil {
		return Message{}, malformed("message type is not an unsigned integer")
	}
	switch {
	case m.Type == TypeNonceRequest && len(items) == 1:
		return m, nil
	case m.Type == TypeOperationRequest && (len(items) == 2 || len(items) == 3):
		if items[1][0]>>5 != 2 || codec.Unmarshal(items[1], &m.Signed) != nil || len(m.Signed) == 0 {
			return Message{}, malformed("operation request does not carry a byte string")
		}
		if len(items) == 3 && (items[2][0]>>5 != 2 || codec.Unmarshal(items[2], &m.Status) != nil || len(m.Status) == 0) {
			return Message{}, malformed("operation request carries a status update that is not a byte string")
		}
		return m, nil
	case m.Type == TypeNonceRequest || m.Type == TypeOperationRequest:
		return Message{}, malformed("message type %d with %d elements", m.Type, len(items))
	}
	return Message{}, malformed("unknown message type %d", m.Type)
}
