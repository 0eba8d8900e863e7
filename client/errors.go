package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/securedeviceaccess/sda/token"
)

// Errors of a device operation. Every status a device answers with maps to
// exactly one of the status sentinels through [*StatusError]; test with
// errors.Is, or errors.As for the exact status.
var (
	// ErrInvalidRequest: the device could not parse the request (status 2,
	// or an error response of type 255). The operation did not run.
	ErrInvalidRequest = errors.New("client: device rejected the request as malformed")

	// ErrVerification: the device rejected the token or the proof of
	// possession: signature, audience, time, nonce or unknown issuer
	// (status 4). The operation did not run.
	ErrVerification = errors.New("client: device could not verify the request")

	// ErrAccessDenied: the token does not permit the operation (status 5).
	// The operation did not run.
	ErrAccessDenied = errors.New("client: access denied by the device")

	// ErrOperationFailed: the operation ran and failed (status 0x0FFFFFFF).
	ErrOperationFailed = errors.New("client: operation failed on the device")

	// ErrBusy: the device refuses new work for a while (v2 status 8). The
	// operation did not run; try again later.
	ErrBusy = errors.New("client: device busy")

	// ErrDevice: any other failure status (1 error, 3 internal error, 6
	// response too small, 7 not initialized, and unknown numbers).
	ErrDevice = errors.New("client: device error")

	// ErrOutcomeUnknown: the signed request was (or may have been) sent, but
	// no valid response to it arrived: the operation may or may not have
	// run. The session never re-sends a signed request; deciding whether to
	// try again is the caller's business. The error also wraps its cause
	// (a transport error, context.DeadlineExceeded, [ErrBadResponse], ...).
	ErrOutcomeUnknown = errors.New("client: outcome unknown, the operation may have run")

	// ErrBadResponse: the device's answer could not be decoded, was not the
	// kind expected, or was a device-signed response that does not verify or
	// does not match the plain response (see [Session.DeviceKey]).
	ErrBadResponse = errors.New("client: bad response from the device")

	// ErrTokenMismatch: a token is not the one asked for: its cnf key is not
	// the client's key, or its audience or scope differ from the request,
	// or it has expired. See [CheckToken].
	ErrTokenMismatch = errors.New("client: token does not match the request")

	// ErrStatusMismatch: a status update received from the service is not
	// the one asked for: it does not parse, names another device, or does
	// not verify with the trust anchors. See [TokenClient.StatusUpdate].
	ErrStatusMismatch = errors.New("client: status update does not match the request")

	// ErrInvalid: the caller's input or configuration is invalid (a request
	// outside the limits of the token endpoint, an empty passphrase, a
	// session without a key, ...). Nothing was sent.
	ErrInvalid = errors.New("client: invalid input")
)

// Errors of private key files.
var (
	// ErrMalformedKey: a private key file cannot be decoded: not PEM, an
	// unknown block type, a damaged body, or key derivation parameters
	// outside the bounds this package accepts (so a file cannot demand an
	// unbounded amount of work or memory).
	ErrMalformedKey = errors.New("client: malformed private key file")

	// ErrUnsupportedKeyEncryption: an encrypted key file uses a key
	// derivation function or a cipher this package does not read (PBKDF2,
	// which `openssl pkcs8 -topk8` uses without -scrypt, AES-128, PBES1, a
	// later version of the SDA format, ...). It also matches
	// [ErrMalformedKey]. Re-encrypt such a key with scrypt and AES-256-CBC
	// (`openssl pkcs8 -topk8 -scrypt`).
	ErrUnsupportedKeyEncryption = errors.New("client: unsupported key file encryption")

	// ErrWrongPassphrase: the passphrase does not decrypt the key file, or
	// the file was modified (the two cannot be told apart).
	ErrWrongPassphrase = errors.New("client: wrong passphrase or damaged key file")

	// ErrKeyEncrypted: [ParsePrivateKeyPEM] was given an encrypted key
	// file; use [DecryptPrivateKeyPEM].
	ErrKeyEncrypted = errors.New("client: private key file is encrypted")

	// ErrKeyNotEncrypted: [DecryptPrivateKeyPEM] was given a key file that
	// is not encrypted; use [ParsePrivateKeyPEM] if that is expected.
	ErrKeyNotEncrypted = errors.New("client: private key file is not encrypted")
)

// StatusError is the error for a response whose status is not success. It
// matches the sentinel of its status with errors.Is: [ErrInvalidRequest],
// [ErrVerification], [ErrAccessDenied], [ErrOperationFailed], [ErrBusy] or
// [ErrDevice].
type StatusError struct {
	// Status is the status the device answered with.
	Status token.Status
	// ErrorResponse is true when the device answered with an error
	// response (type 255: it could not parse the request).
	ErrorResponse bool
	// Data is the application data of the response, if any (a failed
	// operation may explain itself). It is not interpreted.
	Data []byte
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	if e.ErrorResponse {
		return fmt.Sprintf("client: device error response: %v", e.Status)
	}
	return fmt.Sprintf("client: device answered %v", e.Status)
}

// Is reports whether target is the sentinel of the status.
func (e *StatusError) Is(target error) bool {
	return target == e.sentinel()
}

func (e *StatusError) sentinel() error {
	if e.ErrorResponse && e.Status == token.StatusSuccess {
		return ErrInvalidRequest // an error response never means success
	}
	switch e.Status {
	case token.StatusInvalidRequest:
		return ErrInvalidRequest
	case token.StatusVerificationError:
		return ErrVerification
	case token.StatusAccessDenied:
		return ErrAccessDenied
	case token.StatusOperationFailed:
		return ErrOperationFailed
	case token.StatusBusy:
		return ErrBusy
	}
	return ErrDevice
}

// ServiceError is an error answer of the authorization service's token
// endpoint, decoded from its JSON error object (docs/PROTOCOL.md
// section 9, "Errors"). When the body is not such an object, only StatusCode is set.
type ServiceError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code, Type, Message, Fields and RequestID are the fields of the error
	// object. They come from the server and are not trusted: print them,
	// do not act on them.
	Code      int
	Type      string
	Message   string
	Fields    []FieldError
	RequestID string
}

// FieldError names a request field the service rejected, and why.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *ServiceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: token service answered HTTP %d", e.StatusCode)
	if e.Type != "" {
		fmt.Fprintf(&b, " %s", quoteShort(e.Type))
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", quoteShort(e.Message))
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", quoteShort(f.Name), quoteShort(f.Message))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", quoteShort(e.RequestID))
	}
	return b.String()
}

// quoteShort quotes a server-supplied string for an error message, cut to a
// readable length, so that it cannot forge lines in a log.
func quoteShort(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// TokenCheckError reports why a received token was refused by
// [CheckToken]. It matches [ErrTokenMismatch] with errors.Is, and unwraps to
// its cause when there is one (a token parse or signature error).
type TokenCheckError struct {
	// Check is what failed: "parse", "signature", "delegation" (the
	// chain of a delegated token does not verify; Err is then a
	// [*token.DelegationError]), "cnf", "aud", "scope", "cnonce" or
	// "expiry".
	Check  string
	Reason string
	Err    error
}

// Error implements the error interface.
func (e *TokenCheckError) Error() string {
	s := fmt.Sprintf("client: token refused (%s): %s", e.Check, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrTokenMismatch.
func (e *TokenCheckError) Is(target error) bool { return target == ErrTokenMismatch }

// Unwrap returns the cause, or nil.
func (e *TokenCheckError) Unwrap() error { return e.Err }

// StatusCheckError reports why a status update received from the service
// was refused by [TokenClient.StatusUpdate]. It matches [ErrStatusMismatch]
// with errors.Is, and unwraps to its cause when there is one (a parse or
// signature error of package token, a trust store error).
type StatusCheckError struct {
	// Check is what failed: "parse", "aud", "seq", "time" (the answer's
	// fields disagree with the signed update) or "signature".
	Check  string
	Reason string
	Err    error
}

// Error implements the error interface.
func (e *StatusCheckError) Error() string {
	s := fmt.Sprintf("client: status update refused (%s): %s", e.Check, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrStatusMismatch.
func (e *StatusCheckError) Is(target error) bool { return target == ErrStatusMismatch }

// Unwrap returns the cause, or nil.
func (e *StatusCheckError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func badResponse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadResponse, fmt.Sprintf(format, args...))
}
