// Package wire encodes and decodes the SDA message envelope shared by the
// technician client and the device agent (docs/PROTOCOL.md sections 2
// and 3): the technician's nonce and operation requests, and the
// device's response map. It does not look inside the signed bundle; that is
// the token package's job.
//
// The package is internal: its API may change at any time.
package wire
