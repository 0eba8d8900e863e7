package token

import (
	"crypto"

	"github.com/fxamacker/cbor/v2"
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

type deviceResponseWire struct {
	_        struct{} `cbor:",toarray"`
	Status   uint32
	Data     cbor.RawMessage
	Nonce    uint64
	Endpoint cbor.RawMessage
	DeviceID cbor.RawMessage
}

// SignResponse signs r with the device's key and returns 18(COSE_Sign1)
// bytes. The key's type decides the algorithm.
func SignResponse(r *DeviceResponse, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	if r == nil {
		return nil, invalid("nil response")
	}
	if opts == nil {
		opts = &SignOptions{}
	}
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	payload, err := codec.Marshal([]any{r.Status, data, r.Nonce, r.Device.Endpoint, r.Device.DeviceID})
	if err != nil {
		return nil, invalid("%v", err)
	}
	return signSign1(tagSign1Prefix, payload, key, nil, opts.Rand)
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
	var w deviceResponseWire
	if err := codec.Unmarshal(m.payload, &w); err != nil {
		return nil, wrapMalformed(f+".payload", err)
	}
	r := &DeviceResponse{Status: w.Status, Nonce: w.Nonce}
	if r.Data, err = byteString(w.Data); err != nil {
		return nil, wrapMalformed(f+".data", err)
	}
	if decodeText(w.Endpoint, &r.Device.Endpoint) != nil || decodeText(w.DeviceID, &r.Device.DeviceID) != nil {
		return nil, malformed(f+".device", "identity must be two text strings")
	}
	if err := m.verify(pub, nil); err != nil {
		return nil, err
	}
	return r, nil
}
