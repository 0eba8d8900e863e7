package pkcs11

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Options are the options of [Open] and [Generate]. The zero value (or
// nil) reads the PIN from the URI's pin-source.
type Options struct {
	// PIN, if not nil, is read for the user PIN: its first line, without
	// the line end. The URI must then have no pin-source.
	PIN io.Reader
}

// pin returns the user PIN: the first line of Options.PIN or of the URI's
// pin-source file. Exactly one of them must be given.
func (u *URI) pin(opts *Options) ([]byte, error) {
	var r io.Reader
	switch {
	case opts != nil && opts.PIN != nil && u.PINFile != "":
		return nil, fmt.Errorf("%w: both a pin-source and Options.PIN", ErrPIN)
	case opts != nil && opts.PIN != nil:
		r = opts.PIN
	case u.PINFile != "":
		f, err := os.Open(u.PINFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPIN, err)
		}
		defer f.Close()
		r = f
	default:
		return nil, fmt.Errorf("%w: none given: add pin-source to the URI or set Options.PIN", ErrPIN)
	}
	return readPIN(r)
}

// readPIN reads the first line of r, without its line end ("\n" or
// "\r\n"), of 1 to MaxPINLength bytes.
func readPIN(r io.Reader) ([]byte, error) {
	limit := MaxPINLength + 2 // the PIN and "\r\n"
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPIN, err)
	}
	line, _, found := bytes.Cut(data, []byte("\n"))
	if !found && len(data) == limit {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrPIN, MaxPINLength)
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	switch {
	case len(line) == 0:
		return nil, fmt.Errorf("%w: empty", ErrPIN)
	case len(line) > MaxPINLength:
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrPIN, MaxPINLength)
	}
	return line, nil
}
