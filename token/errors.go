package token

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per failure class. Every error returned by this
// package matches at least one of them with [errors.Is]; the structured errors
// [*ParseError] and [*ScopeError] carry the detail. A *ParseError always
// matches [ErrMalformed] and, when its cause is one, also the more precise
// sentinel (for example an unknown alg matches both ErrMalformed and
// [ErrUnsupportedAlgorithm]).
var (
	// ErrMalformed: the bytes are not a well-formed message of the expected
	// kind (wrong tag, wrong type, missing or unknown field, limits
	// exceeded, trailing bytes, ...). Returned before any cryptography.
	ErrMalformed = errors.New("token: malformed")

	// ErrUnsupportedForm: the bytes are a CWT in a form this package does
	// not implement: MACed (COSE_Mac0, tag 17, or COSE_Mac, 97), encrypted
	// (COSE_Encrypt0, 16, or COSE_Encrypt, 96), signed by several signers
	// (COSE_Sign, 98), or nested (RFC 8392 section 6 and Appendix A.4 to
	// A.6: a CWT whose payload is itself a COSE message or a CWT). It comes
	// inside a [*ParseError], so it also matches ErrMalformed.
	ErrUnsupportedForm = errors.New("token: CWT form not supported")

	// ErrUnsupportedAlgorithm: the message names an algorithm this package
	// does not implement.
	ErrUnsupportedAlgorithm = errors.New("token: unsupported algorithm")

	// ErrAlgorithmMismatch: the algorithm in the message is not the one the
	// verification key pins.
	ErrAlgorithmMismatch = errors.New("token: algorithm does not match the key")

	// ErrUnsupportedKey: a key of a type or curve this package does not
	// support, or an invalid key (a point not on its curve).
	ErrUnsupportedKey = errors.New("token: unsupported or invalid key")

	// ErrWeakKey: a public key that is degenerate, with which a signature
	// can verify without any private key: an Ed25519 point of small order
	// (the identity and the other seven points whose order divides 8), or
	// an Ed25519 key in a non-canonical encoding (y not reduced modulo
	// 2^255-19). It also matches [ErrUnsupportedKey], so callers that test
	// for that keep refusing such keys.
	ErrWeakKey error = weakKeyError{}

	// ErrCritical: the message lists a critical header parameter (RFC 9052
	// section 3.1, crit) that this package does not understand.
	ErrCritical = errors.New("token: unknown critical header parameter")

	// ErrSignature: the signature does not verify with the given key.
	ErrSignature = errors.New("token: signature verification failed")

	// ErrExpired: the token's exp, plus the leeway, is before the time of
	// validation.
	ErrExpired = errors.New("token: expired")

	// ErrNotYetValid: the token's nbf, minus the leeway, is after the time of
	// validation.
	ErrNotYetValid = errors.New("token: not yet valid")

	// ErrWrongAudience: no audience entry names the device.
	ErrWrongAudience = errors.New("token: wrong audience")

	// ErrOutOfScope: the scope does not permit the operation with its
	// arguments.
	ErrOutOfScope = errors.New("token: operation not permitted by scope")

	// ErrInvalid: a value given to an encoding or signing function cannot be
	// encoded in the requested profile (for example a structured scope in a
	// v1 token, or a missing required claim).
	ErrInvalid = errors.New("token: invalid input")

	// ErrSigner: the crypto.Signer given to a signing function failed, or
	// returned a signature that is not a well-formed signature of its key's
	// algorithm (a faulty hardware key, say). Nothing was produced.
	ErrSigner = errors.New("token: signer failed")
)

// weakKeyError is the type of [ErrWeakKey], a kind of [ErrUnsupportedKey].
type weakKeyError struct{}

func (weakKeyError) Error() string { return "token: weak public key (small order or non-canonical)" }

// Is reports whether target is ErrUnsupportedKey.
func (weakKeyError) Is(target error) bool { return target == ErrUnsupportedKey }

// ParseError reports which field of a message failed strict parsing. It
// matches [ErrMalformed] with errors.Is, and unwraps to its cause.
type ParseError struct {
	Field string // e.g. "token.claims.aud", "request.operation.args[1]"
	Err   error  // the cause; may match other sentinels (ErrUnsupportedAlgorithm, ...)
}

// Error names the field and the cause.
func (e *ParseError) Error() string {
	return fmt.Sprintf("token: malformed %s: %v", e.Field, e.Err)
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func malformed(field string, format string, args ...any) error {
	return &ParseError{Field: field, Err: fmt.Errorf(format, args...)}
}

func wrapMalformed(field string, err error) error {
	return &ParseError{Field: field, Err: err}
}

// ScopeError reports why a scope does not permit an operation. It matches
// [ErrOutOfScope] with errors.Is.
type ScopeError struct {
	Operation string // the operation asked for
	Arg       int    // index of the argument that failed a constraint, or -1
	Reason    string
}

// Error names the operation and why it is not permitted.
func (e *ScopeError) Error() string {
	if e.Arg >= 0 {
		return fmt.Sprintf("token: operation %q not permitted: argument %d %s", e.Operation, e.Arg, e.Reason)
	}
	return fmt.Sprintf("token: operation %q not permitted: %s", e.Operation, e.Reason)
}

// Is reports whether target is ErrOutOfScope.
func (e *ScopeError) Is(target error) bool { return target == ErrOutOfScope }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Delegation refusals (docs/PROTOCOL.md section 13). Each matches
// [ErrDelegation] with errors.Is, and [Chain.Verify] and [Delegate] return
// them inside a [*DelegationError] naming the link and the field.
var (
	// ErrDelegation matches every delegation refusal.
	ErrDelegation = errors.New("token: delegation refused")

	// ErrNotDelegable: the token carries no delegation claim (a v1 token
	// never does), or a link passes on a permission whose operation the
	// token's delegation claim does not list.
	ErrNotDelegable error = delegationError("token: not delegable")

	// ErrDelegationDepth: more links than the token's delegation depth, or
	// than the link above allows.
	ErrDelegationDepth error = delegationError("token: delegation too deep")

	// ErrLinkSignature: a link does not verify with its parent's key over
	// its parent's hash (a wrong key, a link moved under another parent,
	// reordered or duplicated), or its algorithm is not the one the
	// parent's key pins.
	ErrLinkSignature error = delegationError("token: delegation link signature")

	// ErrNotNarrower: a link widens the scope, the time window or the
	// audience of its parent, or does not provably narrow them.
	ErrNotNarrower error = delegationError("token: delegation not narrower")

	// ErrDelegationLoop: a link delegates to a key already in the chain
	// (the token's key or an earlier link's).
	ErrDelegationLoop error = delegationError("token: delegation loop")
)

// delegationError is the type of the delegation sentinels: each also
// matches ErrDelegation.
type delegationError string

func (e delegationError) Error() string { return string(e) }

// Is reports whether target is ErrDelegation.
func (e delegationError) Is(target error) bool { return target == ErrDelegation }

// DelegationError reports why a delegation chain (or a new link) is
// refused: which link, which of its fields, and the sentinel. It matches
// [ErrDelegation] and, through Unwrap, its Err.
type DelegationError struct {
	Link   int    // index of the refused link, from 0
	Field  string // "depth", "signature", "key", "scope", "exp", "nbf" or "aud"
	Err    error  // ErrNotDelegable, ErrDelegationDepth, ErrLinkSignature, ErrNotNarrower or ErrDelegationLoop
	Reason string // a readable detail
}

// Error names the link, the field and the reason.
func (e *DelegationError) Error() string {
	return fmt.Sprintf("%v: link %d %s: %s", e.Err, e.Link, e.Field, e.Reason)
}

// Unwrap returns Err.
func (e *DelegationError) Unwrap() error { return e.Err }

// Is reports whether target is ErrDelegation.
func (e *DelegationError) Is(target error) bool { return target == ErrDelegation }

func refuse(link int, field string, err error, format string, args ...any) error {
	return &DelegationError{Link: link, Field: field, Err: err, Reason: fmt.Sprintf(format, args...)}
}
