package token

import "crypto/sha256"

// RevocationHash returns the hash under which devices find the access
// token data on their revocation list (the device's "sda-revoke" operation
// with kind "hash", docs/PROTOCOL.md section 8): the SHA-256 of the token's
// COSE ToBeSigned (RFC 9052 section 4.4), which covers exactly what the
// issuer's signature covers:
//
//	["Signature1", protected, h'', payload]
//
// It is therefore the same for every encoding of the same signed token:
// with or without tag 61, whatever the unprotected header holds (a kid
// there, or labels nobody reads), and for either of the two valid ECDSA
// signatures (r, s) and (r, n-s). Whoever holds a revoked token can change
// those parts and the token still verifies, so a revocation must not
// depend on them. For an ES256 token it is the digest the issuer signed.
// The same claims signed again by the same issuer have the same hash: it
// names the grant, not one signature of it.
//
// data must parse as [Parse] parses tokens (errors match [ErrMalformed]);
// the signature is not verified, so a revoker can compute the hash of any
// token it has seen.
func RevocationHash(data []byte) ([32]byte, error) {
	t, err := Parse(data)
	if err != nil {
		return [32]byte{}, err
	}
	return t.RevocationHash(), nil
}

// RevocationHash returns the token's revocation hash: see the function
// [RevocationHash].
func (t *Token) RevocationHash() [32]byte {
	// A token is at most MaxTokenSize bytes and its ToBeSigned at most 9
	// more (tag 18 alone and an empty signature), so it fits: no
	// allocation on a device's hot path.
	var buf [MaxTokenSize + 32]byte
	return sha256.Sum256(appendSigStructure(buf[:0], t.msg.protected, nil, t.msg.payload))
}
