package certreload

import "errors"

// ErrInvalid reports a certificate and key pair that cannot be used: PEM
// that does not parse, no certificate, or a key that does not match the
// certificate. A file that cannot be read is reported with the error of
// package os (errors.Is(err, fs.ErrNotExist) for a missing one).
var ErrInvalid = errors.New("certreload: invalid certificate or key")
