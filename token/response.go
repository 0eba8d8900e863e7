package token

import (
	"bytes"
	"crypto"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// DeviceResponse is what a device signs about an operation it processed
// (v2 signed responses, docs/PROTOCOL.md): the status and data it returned,
// the nonce of the request it answers, and its own identity. A technician
// (and later the cloud) holding it has proof of what the device answered.
//
//	ResponsePayload = [status: uint, data: bstr, nonce: uint, endpoint: tstr, device-id: tstr]
type DeviceResponse struct {
	Status uint32
	Data   []byte
	Nonce  uint64 // the nonce of the request answered
	Device Identity
}

// SignResponse signs r with the device's key and returns 18(COSE_Sign1)
// bytes. The key's type decides the algorithm. A payload over 16 KiB (16384
// bytes, the decoders' string limit), which [VerifyResponse] would refuse,
// is an [ErrInvalid] error.
func SignResponse(r *DeviceResponse, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	if r == nil {
		return nil, invalid("nil response")
	}
	if opts == nil {
		opts = &SignOptions{}
	}
	if !utf8.ValidString(r.Device.Endpoint) || !utf8.ValidString(r.Device.DeviceID) {
		return nil, invalid("device identity is not valid UTF-8")
	}
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	payload, err := codec.Marshal([]any{r.Status, data, r.Nonce, r.Device.Endpoint, r.Device.DeviceID})
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(payload) > codec.MaxStringLength {
		// The payload is a byte string, which VerifyResponse would refuse.
		return nil, invalid("response payload of %d bytes exceeds %d", len(payload), codec.MaxStringLength)
	}
	return signSign1(tagSign1Prefix, payload, key, nil, opts.Rand, 0)
}

// VerifyResponse parses a device-signed response strictly and verifies it
// with the device's public key, which pins the algorithm. It does not
// compare the content with anything: callers check Nonce, Status, Data and
// Device against what they sent and received.
func VerifyResponse(data []byte, pub crypto.PublicKey) (*DeviceResponse, error) {
	const f = "response"
	if len(data) == 0 || data[0] != tagSign1Prefix[0] || len(data) > codec.MaxInputSize {
		return nil, malformed(f, "must start with tag 18(")
	}
	m, err := parseSign1(f, data[1:])
	if err != nil {
		return nil, err
	}
	if len(m.payload) == 0 || m.payload[0]>>5 != 4 {
		return nil, malformed(f+".payload", "not an array")
	}
	var buf [5][]byte
	items, err := codec.ReadArray(m.payload, buf[:0])
	if err != nil {
		return nil, wrapMalformed(f+".payload", err)
	}
	if len(items) != 5 {
		return nil, malformed(f+".payload", "%d elements, want 5", len(items))
	}
	r := &DeviceResponse{}
	status, err := codec.ReadUint(items[0])
	if err != nil || status > 0xFFFFFFFF {
		return nil, malformed(f+".status", "must be a 32-bit unsigned integer")
	}
	r.Status = uint32(status)
	d, err := codec.ReadBytes(items[1])
	if err != nil {
		return nil, wrapMalformed(f+".data", err)
	}
	r.Data = bytes.Clone(d)
	if r.Nonce, err = codec.ReadUint(items[2]); err != nil {
		return nil, wrapMalformed(f+".nonce", err)
	}
	if r.Device.Endpoint, err = codec.ReadText(items[3]); err != nil {
		return nil, wrapMalformed(f+".endpoint", err)
	}
	if r.Device.DeviceID, err = codec.ReadText(items[4]); err != nil {
		return nil, wrapMalformed(f+".device_id", err)
	}
	if err := m.verify(pub, nil); err != nil {
		return nil, err
	}
	return r, nil
}
