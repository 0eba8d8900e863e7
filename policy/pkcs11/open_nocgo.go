//go:build !cgo

package pkcs11

import (
	"fmt"

	"github.com/securedeviceaccess/sda/token"
)

// Open opens the private key the PKCS#11 URI names. This program is built
// without cgo, so after checking the URI Open fails with [ErrNoCgo].
func Open(uri string, opts *Options) (*Key, error) {
	if _, err := ParseURI(uri); err != nil {
		return nil, err
	}
	return nil, ErrNoCgo
}

// Generate generates a key pair in the token the PKCS#11 URI names. This
// program is built without cgo, so after checking the URI Generate fails
// with [ErrNoCgo].
func Generate(uri string, alg token.Algorithm, opts *Options) (*Key, error) {
	if _, err := ParseURI(uri); err != nil {
		return nil, err
	}
	return nil, ErrNoCgo
}

func tokenErr(err error) error { return fmt.Errorf("%w: %w", ErrModule, err) }
