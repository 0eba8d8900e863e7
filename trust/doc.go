// Package trust holds what a device believes: trust anchors, the public
// keys allowed to sign access tokens, with their metadata and constraints,
// and the stores that keep them. A device agent is given a [Store]
// (device.Config.Anchors); whoever provisions the device builds it: an
// [Anchor] from the key the authorization service publishes ([ParsePEM],
// [NewAnchor]) in a [MemoryStore] or, to survive restarts, a [FileStore]
// ([OpenFileStore]), which also rotate and revoke anchors.
//
// An [Anchor] names its issuer (the iss claim of the tokens it signs),
// optionally a key id (the kid of v2 tokens; the key's COSE Key Thumbprint
// otherwise), the key, the algorithm the key pins, a validity window and
// [Constraints]: the operations and audiences it may grant and the longest
// token lifetime it may sign. [NewAnchor], [ParsePEM], [ParseDER] and
// [ParseCOSEKey] build anchors named as SDA names them ("mbed.ta." and the
// SHA-256 of the key).
//
// A [Store] looks anchors up by issuer and key id; [LookupToken] chooses the
// anchors for a token as devices do (in a v1 token the kid only orders the
// issuer's anchors). [MemoryStore] and
// [FileStore] hold several anchors per issuer, so a key can rotate with an
// overlap: add the new key, then [MemoryStore.Retire] the old one (tokens
// it issued before the retirement stay valid until they expire) and finally
// remove it; [MemoryStore.Revoke] rejects a compromised key's tokens at
// once.
//
// # Security considerations
//
// Lookups use only the token's unverified iss and kid, and only to choose
// keys to verify with; the anchor's key, never the token, decides the
// algorithm. [Anchor.Check] runs after the signature verified.
//
// An anchor's key is validated whenever an anchor is made, parsed, added or
// read from a file ([Anchor.Validate], through token.AlgorithmFor): a key
// with which a signature could verify without a private key (an Ed25519
// point of small order, token.ErrWeakKey) or that is no point of its curve
// is refused, so no store ever trusts it.
//
// Stores are safe for concurrent use. Every change builds a new immutable
// snapshot and publishes it atomically, so a lookup never sees a
// half-applied change; [FileStore] writes a complete new file to a
// temporary name, syncs it, renames it over the old file and syncs the
// directory before publishing, so a crash leaves the old or the new store
// and a failed write leaves the store unchanged. A store file that does not
// read back completely is an error ([ErrCorrupt]), never a partial store.
// Stores are bounded ([MaxAnchors], [MaxAnchorsPerIssuer]).
//
// # Compatibility
//
// SDA v1 devices find an anchor by iss alone, named "mbed.ta." followed by
// the upper-case hex SHA-256 of the key's DER SubjectPublicKeyInfo
// ([token.AnchorName]); [NewAnchor] names anchors that way, and
// [Anchor.Fingerprint] returns the fingerprint the SDA cloud publishes.
// The file format of [FileStore] is versioned JSON with PEM keys.
package trust
