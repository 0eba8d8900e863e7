package pkcs11

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Callers test for them with [errors.Is];
// a *[URIError] carries the detail of a bad URI and matches [ErrURI].
var (
	// ErrURI reports a PKCS#11 URI that is not one this package accepts:
	// malformed under RFC 7512, or asking for something it does not do.
	ErrURI = errors.New("pkcs11: bad PKCS#11 URI")

	// ErrPINInURI reports a URI that carries the PIN itself (the
	// pin-value query attribute). It is refused: a URI ends up in
	// command lines, process listings, logs and shell histories. The PIN
	// comes from a file (pin-source) or from [Options].PIN. Errors that
	// match it also match [ErrURI].
	ErrPINInURI = fmt.Errorf("%w: pin-value is refused; give the PIN through pin-source or Options.PIN", ErrURI)

	// ErrPIN reports a missing, empty or oversized PIN, one from two
	// sources at once, a PIN file that cannot be read, or a PIN the token
	// refuses.
	ErrPIN = errors.New("pkcs11: PIN")

	// ErrModule reports a PKCS#11 module that cannot be loaded, a token
	// that cannot be found or opened, or a token operation that failed.
	ErrModule = errors.New("pkcs11: module or token")

	// ErrKeyNotFound reports that the token holds no key pair the URI
	// names.
	ErrKeyNotFound = errors.New("pkcs11: key not found")

	// ErrAmbiguous reports a URI that names more than one key pair in
	// the token: add the object or id attribute that tells them apart.
	ErrAmbiguous = errors.New("pkcs11: the URI names several keys")

	// ErrKeyExists reports that [Generate] was asked for a key the token
	// already holds (a key pair with the URI's object label or id).
	ErrKeyExists = errors.New("pkcs11: key already exists")

	// ErrUnsupportedKey reports a key or algorithm this package does not
	// sign with: anything but ECDSA on P-256 or P-384.
	ErrUnsupportedKey = errors.New("pkcs11: unsupported key")

	// ErrNoCgo reports a program built without cgo, which cannot load a
	// PKCS#11 module.
	ErrNoCgo = errors.New("pkcs11: built without cgo, which loading a PKCS#11 module needs")

	// ErrClosed reports a [Key] used after Close.
	ErrClosed = errors.New("pkcs11: key closed")
)

// URIError describes a PKCS#11 URI refused by [ParseURI]. It matches
// [ErrURI], and [ErrPINInURI] when the URI carries a pin-value.
type URIError struct {
	// Attribute is the attribute at fault, or empty for the URI as a whole.
	Attribute string
	// Reason says what is wrong.
	Reason string
	// Err is ErrURI or ErrPINInURI.
	Err error
}

// Error implements error.
func (e *URIError) Error() string {
	if e.Attribute == "" {
		return fmt.Sprintf("pkcs11: bad PKCS#11 URI: %s", e.Reason)
	}
	return fmt.Sprintf("pkcs11: bad PKCS#11 URI: %s: %s", e.Attribute, e.Reason)
}

// Unwrap returns the sentinel the error matches.
func (e *URIError) Unwrap() error { return e.Err }
