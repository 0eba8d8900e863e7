package token

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// operationFunctionCall is the operation type of a function call; type 2 was
// reserved for LwM2M and never supported.
const operationFunctionCall = 1

// Request is the signed bundle of docs/PROTOCOL.md section 6: the device's nonce, the operation
// and the access token, signed by the technician's proof-of-possession key
// (with a delegation chain, v2: by the chain's last key).
//
//	Bundle    = [nonce: uint, Operation, token: bstr, ? chain: Chain]
//	Operation = [1, name: tstr, [* (int / tstr / bstr)]]
type Request struct {
	Nonce     uint64
	Operation Operation
	Token     []byte
	// Chain is the encoded delegation chain ([Chain.Bytes]) of a delegated
	// token, the bundle's 4th element; nil: none, and the bundle has the
	// 3 elements of SDA v1.
	Chain []byte
}

// SignOptions control [SignRequest].
type SignOptions struct {
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// SignRequest encodes r and signs it with the proof-of-possession key,
// returning 18(COSE_Sign1) bytes. With a P-256 key the result is laid out
// exactly as SDA v1 technicians build it: protected header h'A10126', empty
// unprotected header. The key's type decides the algorithm. A bundle over
// 16 KiB (16384 bytes, the decoders' string limit), which [ParseRequest]
// would refuse, is an [ErrInvalid] error.
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
	if len(r.Token) == 0 || len(r.Token) > MaxTokenSize {
		return nil, invalid("request token of %d bytes, want 1..%d", len(r.Token), MaxTokenSize)
	}
	args := r.Operation.Args
	if args == nil {
		args = []Arg{}
	}
	bundle := []any{r.Nonce, []any{operationFunctionCall, r.Operation.Name, args}, r.Token}
	if r.Chain != nil {
		if _, err := ParseChain(r.Chain); err != nil {
			return nil, invalid("request chain: %v", err)
		}
		bundle = append(bundle, cbor.RawMessage(r.Chain))
	}
	payload, err := codec.Marshal(bundle)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(payload) > codec.MaxStringLength {
		// The bundle is a byte string, which ParseRequest would refuse.
		return nil, invalid("request bundle of %d bytes exceeds %d", len(payload), codec.MaxStringLength)
	}
	return signSign1(tagSign1Prefix, payload, key, nil, opts.Rand, 0)
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
		if a.kind == KindText && !utf8.ValidString(a.s) {
			return fmt.Errorf("argument %d is not valid UTF-8", i)
		}
	}
	return nil
}

// SignedRequest is an operation request that has been parsed strictly but
// whose proof-of-possession signature has not been verified.
type SignedRequest struct {
	msg   *sign1
	req   Request
	chain *Chain // req.Chain parsed; nil when none
}

// ParseRequest parses a signed operation request strictly: tag 18 required,
// a COSE_Sign1 whose payload is the bundle with exact array lengths and field
// types, and a delegation chain in a 4-element bundle parsed as
// [ParseChain] does. It does no cryptography, and it does not parse the
// embedded token (see [SignedRequest.UnverifiedToken] and [Parse]).
func ParseRequest(data []byte) (*SignedRequest, error) {
	if !bytes.HasPrefix(data, tagSign1Prefix) || bytes.HasPrefix(data, tagCWTPrefix) {
		return nil, malformed("request", "must start with tag 18(")
	}
	if len(data) > codec.MaxInputSize {
		// Before the copy below: the size is the peer's choice.
		return nil, malformed("request", "%d bytes exceed %d", len(data), codec.MaxInputSize)
	}
	m, err := parseSign1("request", bytes.Clone(data[len(tagSign1Prefix):]))
	if err != nil {
		return nil, err
	}
	const f = "request.bundle"
	var buf [4][]byte
	items, err := codec.ReadArray(m.payload, buf[:0])
	if err != nil {
		return nil, wrapMalformed(f, err)
	}
	if len(items) != 3 && len(items) != 4 {
		return nil, malformed(f, "%d elements, want 3 (or 4 with a delegation chain)", len(items))
	}
	sr := &SignedRequest{msg: m}
	if sr.req.Nonce, err = codec.ReadUint(items[0]); err != nil {
		return nil, wrapMalformed(f+".nonce", err)
	}
	if sr.req.Token, err = codec.ReadBytes(items[2]); err != nil {
		return nil, wrapMalformed(f+".token", err)
	}
	if len(sr.req.Token) == 0 {
		return nil, malformed(f+".token", "empty")
	}
	if sr.req.Operation, err = decodeOperation(items[1]); err != nil {
		return nil, err
	}
	if len(items) == 4 {
		if sr.chain, err = parseChainItem(items[3]); err != nil {
			return nil, err
		}
		sr.req.Chain = items[3]
	}
	return sr, nil
}

func decodeOperation(raw []byte) (Operation, error) {
	const f = "request.bundle.operation"
	var buf [3][]byte
	items, err := codec.ReadArray(raw, buf[:0])
	if err != nil {
		return Operation{}, wrapMalformed(f, err)
	}
	if len(items) != 3 {
		return Operation{}, malformed(f, "%d elements, want 3", len(items))
	}
	if typ, err := codec.ReadUint(items[0]); err != nil || typ != operationFunctionCall {
		return Operation{}, malformed(f+".type", "only function calls (1) are supported")
	}
	var op Operation
	if op.Name, err = codec.ReadText(items[1]); err != nil {
		return Operation{}, wrapMalformed(f+".name", err)
	}
	var argBuf [4][]byte
	args, err := codec.ReadArray(items[2], argBuf[:0])
	if err != nil {
		return Operation{}, wrapMalformed(f+".args", err)
	}
	op.Args = make([]Arg, len(args)) // Verify returns nil for none
	for i, a := range args {
		if op.Args[i], err = readArg(a); err != nil {
			return Operation{}, wrapMalformed(fmt.Sprintf("%s.args[%d]", f, i), err)
		}
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

// Chain returns the delegation chain carried in the request as
// [ParseRequest] parsed it (strictly, as [ParseChain] does), or nil when
// the bundle has 3 elements. It is not verified: verify it with
// [Chain.Verify] below the verified token to learn the key that must have
// signed the request. A Chain is never modified, so each call returns the
// same one, and parsing it again is unnecessary.
func (r *SignedRequest) Chain() *Chain { return r.chain }

// UnverifiedNonce returns the nonce carried in the request, not yet verified.
func (r *SignedRequest) UnverifiedNonce() uint64 { return r.req.Nonce }

// algorithm returns the algorithm named in the protected header.
func (r *SignedRequest) algorithm() Algorithm { return r.msg.alg }

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
	out.Chain = bytes.Clone(out.Chain)
	return &out, nil
}
