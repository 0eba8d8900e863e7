// Package token holds the bytes that carry authority in Secure Device Access:
// access tokens (CWTs, RFC 8392, signed as COSE_Sign1, RFC 9052), the scope
// language, COSE keys, and the signed operation requests a technician sends
// to a device. All three roles use it, mostly through packages policy,
// client and device: an authorization service signs [Claims] with [Issue], a
// device reads a token with [Parse] and [Token.Verify], and a technician
// signs a [Request] with [SignRequest]; [ParseScope] reads the scope a token
// grants, and [ParseScopeText] reads back, constraints included, the
// readable form that [Scope.String] prints.
//
// The package does no I/O, keeps no clock and does not log: time is passed
// in ([Validation.Now]) and randomness may be ([IssueOptions.Rand]).
//
// # Issuing and verifying a token
//
// An authorization service calls [Issue] with the [Claims] and the trust
// anchor's private key (any [crypto.Signer]). A device calls [Parse], which
// checks the structure strictly and does no cryptography, picks the anchor
// using the explicitly unverified [Token.UnverifiedIssuer] and
// [Token.UnverifiedKeyID], calls [Token.Verify] with the anchor's public key
// and only then sees the claims, which [Claims.Validate] checks against its
// identity and the time.
//
// A token without a cti is revoked on devices by its [RevocationHash], the
// SHA-256 of what its signature covers: its holder cannot escape the
// revocation by re-encoding the token (tag 61, unprotected header, the
// other ECDSA signature), which its signature does not cover.
//
// # Operation requests
//
// The technician signs a [Request] (nonce, [Operation], token bytes) with the
// proof-of-possession key named in the token's cnf claim: [SignRequest]. The
// device parses it with [ParseRequest] and verifies it with
// [SignedRequest.Verify] and the key from the verified claims; the token's
// [Scope] then decides with [Scope.Check] whether the operation with its
// arguments is permitted.
//
// # Delegation (v2)
//
// The holder of a v2 token whose [Claims.Delegation] allows it passes a
// narrower part of it to another public key, offline, with [Delegate]: a
// [Link] signed with the key the token is bound to, naming its parent by
// hash. The delegate holds a [DelegatedToken] (the token and the [Chain] of
// links down to its key), may delegate further as deep as the chain
// allows, and signs its requests with its own key, the chain going in
// [Request.Chain]. A device takes the chain [ParseRequest] parsed
// ([SignedRequest.Chain]; [ParseChain] parses one alone), verifies it
// below the verified token with [Chain.Verify], validates the effective
// claims of the [VerifiedChain], verifies the request with the chain's
// last key and decides with [VerifiedChain.Check], which requires the
// token's scope and every link's to permit the operation. Each link must narrow its parent:
// a selection of its permissions or a scope [Scope.Within] it, a time
// window and audience inside its, a smaller depth, a new key. Every
// refusal is a [*DelegationError] matching [ErrDelegation] and one of
// [ErrNotDelegable], [ErrDelegationDepth], [ErrLinkSignature],
// [ErrNotNarrower] and [ErrDelegationLoop]. v1 tokens are never delegable.
//
// # Security considerations
//
// The key decides the algorithm: a P-256 key verifies ES256 only, a P-384 key
// ES384 only, an Ed25519 key EdDSA only. The alg header must be protected and
// must agree ([ErrAlgorithmMismatch]); a message never selects a key or an
// algorithm. Signatures are checked over the bytes received, never over a
// re-encoding. crit is honoured (RFC 9052 section 3.1): a critical label this
// package does not understand is rejected ([ErrCritical]); a label present in
// both the protected and the unprotected header is rejected.
//
// Degenerate public keys are refused wherever a key enters the package
// ([AlgorithmFor], the gate every key passes, [ParseCOSEKey],
// [ParsePublicKeyDER], [ParsePublicKeyPEM], a token's cnf, [Issue], and
// every verification): an Ed25519 point of small order (the identity and
// the other seven points whose order divides 8, with either sign bit) or
// in a non-canonical encoding is refused with [ErrWeakKey], since with such
// a key crypto/ed25519 accepts signatures made without any private key,
// and a stolen token bound to it would work as a bearer token; an ECDSA
// point off its curve, at infinity or with coordinates out of range is
// refused with [ErrUnsupportedKey] (ErrWeakKey matches it too). The Ed25519
// check is a comparison against a short list, with no allocation and no
// field arithmetic, made on every verification. Not refused: an Ed25519
// encoding that is not a curve point (it fails every verification) and a
// point of mixed order (forging with it needs the private key of its
// prime-order part).
//
// A token is a COSE_Sign1 and nothing else: MACed, encrypted, multi-signer
// and nested CWTs (RFC 8392 Appendix A.4 to A.6) are refused with
// [ErrUnsupportedForm], before any cryptography.
//
// Decoding is strict and bounded (internal/codec): exact tags, definite
// lengths, exact array lengths and field types, no duplicate map keys, no
// unknown claim keys, no trailing bytes, limits on depth, counts and sizes
// (limits.go). Every error matches one sentinel with [errors.Is]; parse
// errors are [*ParseError] values naming the field that failed.
//
// Scope names match exactly, never by prefix: "c" does not permit
// "configure".
//
// Delegation keeps proof of possession: every link names its delegate's
// key and is verified with its parent's key (which pins the algorithm)
// over its parent's hash, with external AAD "SDA delegation", so a link
// cannot be moved under another token or link, reordered, duplicated or
// taken for another kind of signature; the request must be signed by the
// chain's last key. [Chain.Verify] checks each link's depth, key, scope,
// time window and audience before its signature, so a malformed or
// widening link costs no verification. [Scope.Within] is sound, not
// complete: what it cannot prove narrower it refuses. The compressed
// points of link keys and v2 cnf keys are decompressed (a square root and
// an inversion in the field, about a tenth of a verification) through a
// process-wide memo of the 256 points used most recently: only points
// that decoded on their curve are stored, every parse gets a key of its
// own, and a flood of new keys costs no more than it would without the
// memo. (Whether a key was seen lately shows in the time a parse takes;
// the keys are public.) Signing checks the point of an ECDSA signing key
// once: the curve and coordinates of the last key whose point passed are
// kept, and a key equal to them now (compared by value, so a key changed
// in place is checked again) is not validated again. A link's hash is what a revoker lists to revoke
// it and everything below it. A delegated token cannot meet a cnonce
// freshness requirement (its cnonce is the delegator's), and a link's sub
// is the delegator's say-so.
//
// # Compatibility
//
// [ProfileV1], the zero value, produces tokens and requests byte-compatible
// with the deployed Pelion/Izuma SDA protocol: claim keys scope 12 and cnf 25,
// ES256, text scopes, protected header h'A10126'. [ProfileV2] uses the IANA
// claim keys (scope 9, cnf 8), allows kid, ES384 and EdDSA, structured scopes
// with argument constraints, byte-string arguments and compressed cnf
// points. [Parse] accepts both; a token that mixes the two sets of claim keys
// is rejected. docs/PROTOCOL.md documents every format and numbers every key.
package token
