package wire

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// Message types of the technician -> device envelope.
const (
	TypeNonceRequest     = 1
	TypeOperationRequest = 3
)

// Response types (response key 1).
const (
	TypeNonceResponse     = 2
	TypeOperationResponse = 4
	TypeErrorResponse     = 255
)

// Status is the result number of a response (response key 2): the
// exported [token.Status], named here for the package's own code.
type Status = token.Status

// Status numbers (docs/PROTOCOL.md, "Numbered keys").
const (
	StatusSuccess           = token.StatusSuccess
	StatusError             = token.StatusGeneralError
	StatusInvalidRequest    = token.StatusInvalidRequest
	StatusInternalError     = token.StatusInternalError
	StatusVerificationError = token.StatusVerificationError
	StatusAccessDenied      = token.StatusAccessDenied
	StatusResponseTooSmall  = token.StatusResponseTooSmall
	StatusNotInitialized    = token.StatusNotInitialized
	StatusOperationFailed   = token.StatusOperationFailed
	StatusBusy              = token.StatusBusy
)

// ErrMalformed is matched by every decoding error of this package.
var ErrMalformed = errors.New("wire: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// NonceRequest is the encoded nonce request [1].
var NonceRequest = []byte{0x81, 0x01}

// EncodeOperationRequest wraps a signed bundle (18(COSE_Sign1) bytes) as
// [3, bstr .cbor SignedBundle].
func EncodeOperationRequest(signed []byte) []byte {
	out := make([]byte, 0, len(signed)+6)
	out = append(out, 0x82, 0x03)
	return appendBstr(out, signed)
}

// EncodeOperationRequestWithStatus wraps a signed bundle and a signed
// status update (v2) as [3, bstr .cbor SignedBundle, bstr .cbor
// StatusUpdate]. Only devices that answer with response key 7 take it.
func EncodeOperationRequestWithStatus(signed, status []byte) []byte {
	out := make([]byte, 0, len(signed)+len(status)+12)
	out = append(out, 0x83, 0x03)
	return appendBstr(appendBstr(out, signed), status)
}

// Message is a decoded technician -> device envelope.
type Message struct {
	Type   uint64 // TypeNonceRequest or TypeOperationRequest
	Signed []byte // the signed bundle of an operation request
	// Status is the status update an operation request carries (v2, the
	// envelope's third element), nil when none.
	Status []byte
}

// DecodeMessage decodes an envelope strictly: definite lengths, exact array
// lengths ([1] or [3, bstr]), no trailing bytes.
//
// When the envelope does not decode but is an array (of definite or
// indefinite length) whose first element is the unsigned integer 3, the
// returned Message has Type TypeOperationRequest and no Signed: the
// reference device chooses the response type from that element alone and
// answers every such envelope with an operation response. Otherwise Type
// is 0 with the error.
func DecodeMessage(data []byte) (Message, error) {
	m, err := DecodeMessageView(data)
	if err == nil {
		m.Signed, m.Status = bytes.Clone(m.Signed), bytes.Clone(m.Status)
	}
	return m, err
}

// DecodeMessageView is [DecodeMessage] without copies: Signed and Status
// alias data, for a caller done with them before data changes (the device
// agent, whose token.ParseRequest copies what it keeps).
func DecodeMessageView(data []byte) (Message, error) {
	m, err := decodeMessage(data)
	if err != nil {
		m = Message{}
		if startsAsOperationRequest(data) {
			m.Type = TypeOperationRequest
		}
	}
	return m, err
}

// startsAsOperationRequest reports whether data starts as an operation
// request: an array head, of any length but zero, and the unsigned integer
// 3 (in any length of encoding) as its first element, whatever follows.
func startsAsOperationRequest(data []byte) bool {
	if len(data) == 0 || data[0]>>5 != 4 {
		return false
	}
	ai, n, length := data[0]&0x1f, 1, uint64(1)
	switch {
	case ai < 24:
		length = uint64(ai)
	case ai <= 27:
		k := 1 << (ai - 24)
		if len(data) < 1+k {
			return false
		}
		length = 0
		for _, b := range data[1 : 1+k] {
			length = length<<8 | uint64(b)
		}
		n += k
	case ai != 31: // 31: indefinite length, at least one element unless a break follows
		return false
	}
	if length == 0 {
		return false
	}
	end, err := codec.ItemEnd(data[n:])
	if err != nil {
		return false
	}
	v, err := codec.ReadUint(data[n : n+end])
	return err == nil && v == TypeOperationRequest
}

func decodeMessage(data []byte) (Message, error) {
	if err := codec.Check(data); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if data[0]>>5 != 4 {
		return Message{}, malformed("envelope is not an array")
	}
	// Read without reflection, as the device reads every request: the
	// elements alias data.
	var buf [3][]byte
	items, err := codec.ReadArray(data, buf[:0])
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(items) == 0 {
		return Message{}, malformed("empty envelope")
	}
	var m Message
	if m.Type, err = codec.ReadUint(items[0]); err != nil {
		return Message{}, malformed("message type is not an unsigned integer")
	}
	switch {
	case m.Type == TypeNonceRequest && len(items) == 1:
		return m, nil
	case m.Type == TypeOperationRequest && (len(items) == 2 || len(items) == 3):
		signed, err := codec.ReadBytes(items[1])
		if err != nil || len(signed) == 0 {
			return Message{}, malformed("operation request does not carry a byte string")
		}
		var status []byte
		if len(items) == 3 {
			if status, err = codec.ReadBytes(items[2]); err != nil || len(status) == 0 {
				return Message{}, malformed("operation request carries a status update that is not a byte string")
			}
		}
		m.Signed, m.Status = signed, status
		return m, nil
	case m.Type == TypeNonceRequest || m.Type == TypeOperationRequest:
		return Message{}, malformed("message type %d with %d elements", m.Type, len(items))
	}
	return Message{}, malformed("unknown message type %d", m.Type)
}

// Response keys (docs/PROTOCOL.md, "Numbered keys").
const (
	keyType      = 1
	keyStatus    = 2
	keyNonce     = 3
	keyData      = 4
	keyNextNonce = 5 // v2
	keySigned    = 6 // v2
	keySequences = 7 // v2
)

// Sequence is what a device holds from one issuer (v2, response key 7):
// the sequence number and time of the status update it installed.
type Sequence struct {
	Issuer string
	Seq    uint64
	Time   uint64 // seconds since the epoch
}

// Response is a device -> technician response.
type Response struct {
	Type   uint64
	Status Status
	Nonce  uint64 // nonce responses (key 3); 0 means absent
	Data   []byte // operation responses (key 4); nil means absent

	// NextNonce (v2, key 5) is a fresh nonce offered in an operation
	// response, for the technician's next request; 0 means absent.
	NextNonce uint64
	// Signed (v2, key 6) is the device-signed response, a COSE_Sign1 (see
	// token.SignResponse); nil means absent.
	Signed []byte
	// Sequences (v2, key 7) lists the status updates the device holds, by
	// issuer; HasSequences says whether key 7 is present at all (a device
	// that takes status updates sends it, empty when it holds none).
	Sequences    []Sequence
	HasSequences bool
}

// Encode returns the response laid out as deployed v1 devices lay it out:
// an indefinite-length map with keys 3/4 (and the v2 keys 5, 6) before 1
// and 2. For a v1 response this is byte for byte what the original device
// library sends.
func (r Response) Encode() []byte {
	out := make([]byte, 0, 32+len(r.Data)+len(r.Signed))
	out = append(out, 0xbf)
	if r.Nonce != 0 {
		out = appendUint(append(out, keyNonce), r.Nonce)
	}
	if r.Data != nil {
		out = appendBstr(append(out, keyData), r.Data)
	}
	if r.NextNonce != 0 {
		out = appendUint(append(out, keyNextNonce), r.NextNonce)
	}
	if r.Signed != nil {
		out = appendBstr(append(out, keySigned), r.Signed)
	}
	if r.HasSequences {
		out = appendSequences(append(out, keySequences), r.Sequences)
	}
	out = appendUint(append(out, keyType), r.Type)
	out = appendUint(append(out, keyStatus), uint64(r.Status))
	return append(out, 0xff)
}

type responseWire struct {
	Type      *uint64 `cbor:"1,keyasint"`
	Status    *uint64 `cbor:"2,keyasint"`
	Nonce     *uint64 `cbor:"3,keyasint"`
	Data      []byte  `cbor:"4,keyasint"`
	NextNonce *uint64 `cbor:"5,keyasint"`
	Signed    []byte  `cbor:"6,keyasint"`

	Sequences map[string][]uint64 `cbor:"7,keyasint"`
}

// appendSequences appends {* iss => [seq, time]}, keys in the
// deterministic order (shorter first, then bytewise: RFC 8949 section
// 4.2.1 for text keys).
func appendSequences(b []byte, seqs []Sequence) []byte {
	sorted := slices.Clone(seqs)
	slices.SortFunc(sorted, func(x, y Sequence) int {
		return cmp.Or(cmp.Compare(len(x.Issuer), len(y.Issuer)), strings.Compare(x.Issuer, y.Issuer))
	})
	b = codec.AppendHead(b, 5, uint64(len(sorted)))
	for _, s := range sorted {
		b = codec.AppendText(b, s.Issuer)
		b = appendUint(appendUint(append(b, 0x82), s.Seq), s.Time)
	}
	return b
}

// DecodeResponse decodes a response in any key order, as a definite- or an
// indefinite-length map (deployed v1 devices send the latter); nothing
// inside the map may be indefinite. Unknown keys are rejected.
func DecodeResponse(data []byte) (Response, error) {
	if len(data) == 0 || data[0]>>5 != 5 {
		return Response{}, malformed("response is not a map")
	}
	var w responseWire
	if err := codec.UnmarshalResponse(data, &w); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Type == nil || w.Status == nil {
		return Response{}, malformed("response without type or status")
	}
	if *w.Status > 0xFFFFFFFF {
		return Response{}, malformed("status %d out of range", *w.Status)
	}
	r := Response{Type: *w.Type, Status: Status(*w.Status), Data: w.Data, Signed: w.Signed}
	switch r.Type {
	case TypeNonceResponse, TypeOperationResponse, TypeErrorResponse:
	default:
		return Response{}, malformed("unknown response type %d", r.Type)
	}
	if w.Nonce != nil {
		if r.Type != TypeNonceResponse || *w.Nonce == 0 {
			return Response{}, malformed("nonce in a response of type %d, or zero", r.Type)
		}
		r.Nonce = *w.Nonce
	}
	if r.Type == TypeNonceResponse && r.Status == StatusSuccess && r.Nonce == 0 {
		return Response{}, malformed("successful nonce response without nonce")
	}
	if w.Data != nil && r.Type != TypeOperationResponse {
		return Response{}, malformed("data in a response of type %d", r.Type)
	}
	if w.Signed != nil && r.Type != TypeOperationResponse {
		return Response{}, malformed("device signature in a response of type %d", r.Type)
	}
	if w.NextNonce != nil {
		if r.Type != TypeOperationResponse || *w.NextNonce == 0 {
			return Response{}, malformed("next nonce in a response of type %d, or zero", r.Type)
		}
		r.NextNonce = *w.NextNonce
	}
	if w.Sequences != nil {
		if r.Type == TypeErrorResponse {
			return Response{}, malformed("status sequences in an error response")
		}
		r.HasSequences = true
		for iss, v := range w.Sequences {
			if len(v) != 2 {
				return Response{}, malformed("status sequence of %q has %d elements, want 2", iss, len(v))
			}
			r.Sequences = append(r.Sequences, Sequence{Issuer: iss, Seq: v[0], Time: v[1]})
		}
		slices.SortFunc(r.Sequences, func(x, y Sequence) int { return strings.Compare(x.Issuer, y.Issuer) })
	}
	return r, nil
}

func appendUint(b []byte, v uint64) []byte { return codec.AppendUint(b, v) }

func appendBstr(b, v []byte) []byte { return codec.AppendBytes(b, v) }
