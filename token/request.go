package token

import (
	"bytes"
	"crypto"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// operationFunctionCall is the operation type of a function call; type 2 was
// reserved for LwM2M and never supported.
const operationFunctionCall = 1

// Request is the signed bundle of WIRE.md: the device's nonce, the operation
// and the access token, signed by the technician's proof-of-possession key.
//
//	Bundle    = [nonce: uint, Operation, token: bstr]
//	Operation = [1, name: tstr, [* (int / tstr / bstr)]]
type Request struct {
	Nonce     uint64
	Operation Operation
	Token     []byte
}

type operationWire struct {
	_    struct{} `cbor:",toarray"`
	Type uint64
	Name cbor.RawMessage
	Args []Arg
}

type bundleWire struct {
	_         struct{} `cbor:",toarray"`
	Nonce     uint64
	Operation cbor.RawMessage
	Token     cbor.RawMessage
}

// SignOptions control [SignRequest].
type SignOptions struct {
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// SignRequest encodes r and signs it with the proof-of-possession key,
// returning 18(COSE_Sign1) bytes. With a P-256 key the result is laid out
// exactly as SDA v1 technicians build it: protected header h'A10126', empty
// unprotected header. The key's type decides the algorithm.
func SignRequest(r *Request, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	if r == nil {
		return nil, invalid("nil request")
	}
	if opts == nil {
		opts = &SignOptions{}
	}
	if err := validateOperation(r.Operation); err != nil {
		return nil, invalid("%v", err)
	}
	if len(r.Token) == 0 {
		return nil, invalid("request without token")
	}
	args := r.Operation.Args
	if args == nil {
		args = []Arg{}
	}
	payload, err := codec.Marshal([]any{r.Nonce, []any{operationFunctionCall, r.Operation.Name, args}, r.Token})
	if err != nil {
		return nil, invalid("%v", err)
	}
	return signSign1(tagSign1Prefix, payload, key, nil, opts.Rand)
}

func validateOperation(op Operation) error {
	if err := ValidateName(op.Name); err != nil {
		return err
	}
	if len(op.Args) > MaxArgs {
		return fmt.Errorf("%d arguments, more than %d", len(op.Args), MaxArgs)
	}
	for i, a := range op.Args {
		if a.kind == 0 {
			return fmt.Errorf("argument %d is the zero Arg", i)
		}
		if a.kind != KindInt && len(a.s) > MaxArgBytes {
			return fmt.Errorf("argument %d has %d bytes, more than %d", i, len(a.s), MaxArgBytes)
		}
	}
	return nil
}

// SignedRequest is an operation request that has been parsed strictly but
// whose proof-of-possession signature has not been verified.
type SignedRequest struct {
	msg *sign1
	req Request
}

// ParseRequest parses a signed operation request strictly: tag 18 required,
// a COSE_Sign1 whose payload is the bundle with exact array lengths and field
// types. It does no cryptography, and it does not parse the embedded token
// (see [SignedRequest.UnverifiedToken] and [Parse]).
func ParseRequest(data []byte) (*SignedRequest, error) {
	if !bytes.HasPrefix(data, tagSign1Prefix) || bytes.HasPrefix(data, tagCWTPrefix) {
		return nil, malformed("request", "must start with tag 18(")
	}
	m, err := parseSign1("request", bytes.Clone(data[len(tagSign1Prefix):]))
	if err != nil {
		return nil, err
	}
	if len(m.payload) == 0 || m.payload[0]>>5 != 4 {
		return nil, malformed("request.bundle", "not an array")
	}
	var b bundleWire
	if err := codec.Unmarshal(m.payload, &b); err != nil {
		return nil, wrapMalformed("request.bundle", err)
	}
	sr := &SignedRequest{msg: m, req: Request{Nonce: b.Nonce}}
	if sr.req.Token, err = byteString(b.Token); err != nil {
		return nil, wrapMalformed("request.bundle.token", err)
	}
	if len(sr.req.Token) == 0 {
		return nil, malformed("request.bundle.token", "empty")
	}
	if sr.req.Operation, err = decodeOperation(b.Operation); err != nil {
		return nil, err
	}
	return sr, nil
}

func decodeOperation(raw []byte) (Operation, error) {
	const f = "request.bundle.operation"
	if raw[0]>>5 != 4 {
		return Operation{}, malformed(f, "not an array")
	}
	var w operationWire
	if err := codec.Unmarshal(raw, &w); err != nil {
		return Operation{}, wrapMalformed(f, err)
	}
	if w.Type != operationFunctionCall {
		return Operation{}, malformed(f+".type", "%d, only function calls (1) are supported", w.Type)
	}
	op := Operation{Args: w.Args}
	if err := decodeText(w.Name, &op.Name); err != nil {
		return Operation{}, malformed(f+".name", "must be a text string")
	}
	if err := validateOperation(op); err != nil {
		return Operation{}, wrapMalformed(f, err)
	}
	return op, nil
}

// UnverifiedToken returns the access token carried in the request, not yet
// verified. Parse and verify it ([Parse], [Token.Verify]) to learn the key
// that must have signed the request.
func (r *SignedRequest) UnverifiedToken() []byte { return bytes.Clone(r.req.Token) }

// UnverifiedNonce returns the nonce carried in the request, not yet verified.
func (r *SignedRequest) UnverifiedNonce() uint64 { return r.req.Nonce }

// Algorithm returns the algorithm named in the protected header.
func (r *SignedRequest) Algorithm() Algorithm { return r.msg.alg }

// Verify checks the proof-of-possession signature, over the bytes received,
// with pub (the cnf key of the verified token), which pins the algorithm,
// and only then returns the request.
func (r *SignedRequest) Verify(pub crypto.PublicKey) (*Request, error) {
	if err := r.msg.verify(pub, nil); err != nil {
		return nil, err
	}
	out := r.req
	out.Operation.Args = append([]Arg(nil), out.Operation.Args...)
	out.Token = bytes.Clone(out.Token)
	return &out, nil
}
