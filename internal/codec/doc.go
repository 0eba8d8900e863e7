// Package codec holds the one strict CBOR decoding mode used for every byte
// that arrives from outside, and the one deterministic encoding mode used for
// everything that is signed or hashed.
//
// Decoding is done in two passes. [Check] walks the encoded item without
// allocating and enforces the limits of limits.go, definite lengths, the
// absence of trailing bytes and well-formedness; only then does the
// fxamacker/cbor decoder, configured to reject duplicate map keys, unknown
// struct fields, invalid UTF-8 and tags, turn the bytes into Go values.
//
// The package is internal: its API may change at any time.
package codec
