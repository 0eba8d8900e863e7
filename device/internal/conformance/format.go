package conformance

// The JSON format of the vector files, documented field by field in
// docs/CONFORMANCE.md. Byte strings are lowercase hex; times are seconds
// since the Unix epoch, 0 meaning unset; nonces are 16 hex digits (a JSON
// number cannot hold every 64-bit value exactly).

// Format names the version of the file format; every file carries it.
const Format = "sda-conformance-vectors/1"

// KeysFile is the name of the file holding every key the vectors use,
// private halves included.
const KeysFile = "keys.json"

// File is one file of vectors: the cases of one group, in the order they
// are meant to run (each case is independent of the others).
type File struct {
	Format      string `json:"format"`
	Group       string `json:"group"`
	Description string `json:"description"`
	Cases       []Case `json:"cases"`
}

// Case is one scenario: a device set up from scratch, then one or more
// requests in order, each with the response the device must send.
type Case struct {
	// Name is unique across all files: "<group>/<what>".
	Name string `json:"name"`
	// Description says what is attacked or exercised and which rule
	// decides.
	Description string `json:"description"`
	// DiffersFromReference, when not empty, says how the deployed SDA v1
	// reference device is known to answer differently (docs/PROTOCOL.md
	// documents each difference).
	DiffersFromReference string `json:"differs_from_reference,omitempty"`
	Setup                Setup  `json:"setup"`
	Steps                []Step `json:"steps"`
}

// Setup is the device's state before the first step.
type Setup struct {
	Identity Identity `json:"identity"`
	// Time is the device's clock when the case starts. In the clockless
	// modes the clock only measures durations (nonce lifetime, throttling).
	Time int64 `json:"time"`
	// ClockMode is "trusted", "lower-bound" or "strict" (docs/PROTOCOL.md
	// section 8, clock rules).
	ClockMode string `json:"clock_mode"`
	// MinTime is the provisioned lower bound of time, 0 for none.
	MinTime int64 `json:"min_time"`
	// LeewaySeconds is the clock skew tolerated on exp and nbf (0: none).
	LeewaySeconds int64 `json:"leeway_seconds"`

	MaxNonces            int      `json:"max_nonces"`
	NonceLifetimeSeconds int64    `json:"nonce_lifetime_seconds"`
	Throttle             Throttle `json:"throttle"`
	MaxMessageSize       int      `json:"max_message_size"`
	MaxResponseSize      int      `json:"max_response_size"`

	// RejectV1 makes the device refuse v1 tokens.
	RejectV1 bool `json:"reject_v1"`
	// NextNonce (v2) offers a next nonce in operation responses (key 5).
	NextNonce bool `json:"next_nonce"`
	// DeviceKey (v2), when not null, signs operation responses (key 6).
	// It is an Ed25519 key, so the signature, and the response, are
	// deterministic.
	DeviceKey *Key `json:"device_key"`
	// TokenCacheSize (v2) is the number of verified tokens the device may
	// cache; it must not change any response.
	TokenCacheSize int `json:"token_cache_size"`

	Anchors     []Anchor     `json:"anchors"`
	Operations  []Operation  `json:"operations"`
	Revocations []Revocation `json:"revocations"`

	// Nonces are outstanding when the case starts: issued, in this order,
	// at Time, and not yet used.
	Nonces []string `json:"nonces"`
	// Random is what the device's random source yields after the nonces
	// above: each nonce the device issues during the steps (nonce
	// responses, next nonces) is the next 8 bytes, big-endian. The
	// generator never lets a value be 0 or repeat one, which a device
	// would skip.
	Random string `json:"random"`
}

// Identity is the device's name as audiences carry it.
type Identity struct {
	Endpoint string `json:"endpoint"`
	DeviceID string `json:"device_id"`
}

// Throttle configures the refusal of nonces after repeated verification
// failures; Failures -1 disables it.
type Throttle struct {
	Failures       int   `json:"failures"`
	WindowSeconds  int64 `json:"window_seconds"`
	LockoutSeconds int64 `json:"lockout_seconds"`
}

// Anchor is a trust anchor the device holds.
type Anchor struct {
	Issuer string `json:"issuer"`
	// KeyID is the anchor's key id (hex), "" for none: the anchor then
	// matches a kid equal to its key's COSE Key Thumbprint (RFC 9679).
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	// PublicKeyDER is the DER SubjectPublicKeyInfo, PublicKeyCOSE the
	// same key as a COSE_Key; Key names it in keys.json.
	PublicKeyDER  string `json:"public_key_der"`
	PublicKeyCOSE string `json:"public_key_cose"`
	Key           string `json:"key"`

	NotBefore   int64       `json:"not_before"`
	NotAfter    int64       `json:"not_after"`
	RetiredAt   int64       `json:"retired_at"`
	Revoked     bool        `json:"revoked"`
	Constraints Constraints `json:"constraints"`
}

// Constraints limit what an anchor may grant; null lists limit nothing.
type Constraints struct {
	Operations         []string `json:"operations"`
	Audiences          []string `json:"audiences"`
	MaxLifetimeSeconds int64    `json:"max_lifetime_seconds"`
}

// Operation is an operation the device has a handler for, and what the
// handler does: "data" returns Data, "error" fails (status 0x0FFFFFFF),
// "crash" fails inside the device (status 3; in Go, a panic).
type Operation struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Data   string `json:"data"`
}

// Revocation is an entry of the device's revocation list: Kind "cti" (ID is
// a token id) or "hash" (ID is a token's revocation hash, the SHA-256 of
// its COSE ToBeSigned, or for compatibility the SHA-256 of the token as
// issued). Until is the revoked token's exp, 0 for none.
type Revocation struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"`
	Until int64  `json:"until"`
}

// Step is one request and the device's answer.
type Step struct {
	Description string `json:"description"`
	// AdvanceSeconds moves the device's clock forward before the request.
	AdvanceSeconds int64  `json:"advance_seconds"`
	Request        string `json:"request"`
	// Built, when present, says how the request was made, so that a
	// technician implementation can make the same bytes.
	Built *Built `json:"built,omitempty"`

	// Response is the whole response, byte for byte.
	Response     string `json:"response"`
	ResponseType uint64 `json:"response_type"`
	Status       uint32 `json:"status"`
	// Check names the failed step of the verification order as the SDK's
	// audit log does ("none" for success), Reason the SDK's error (a Go
	// sentinel, "package.ErrName"; "" for success).
	Check  string `json:"check"`
	Reason string `json:"reason"`
	// HandlerRan says whether the operation's handler (or the built-in
	// operation) ran.
	HandlerRan bool `json:"handler_ran"`
}

// Built is how a request was made: the signed bundle
// [nonce, [1, operation, args], token], signed with PoPKey (a COSE_Sign1,
// ES256 and ES384 signatures deterministic as in RFC 6979).
type Built struct {
	Nonce     string `json:"nonce"`
	Operation string `json:"operation"`
	// Args is the encoded argument array, ArgsDiagnostic the same in CBOR
	// diagnostic notation.
	Args           string `json:"args"`
	ArgsDiagnostic string `json:"args_diagnostic"`
	Token          string `json:"token"`
	// Chain is the delegation chain (v2) the bundle carries as its fourth
	// element, encoded; omitted for none.
	Chain  string `json:"chain,omitempty"`
	PoPKey string `json:"pop_key"`
}

// Keys is the content of keys.json.
type Keys struct {
	Format      string `json:"format"`
	Description string `json:"description"`
	Keys        []Key  `json:"keys"`
}

// Key is a key pair. Private is for tests only: the raw private scalar
// (ECDSA, big-endian, the curve's size) or the 32-byte seed (Ed25519).
type Key struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Algorithm     string `json:"algorithm"`
	Private       string `json:"private"`
	PublicKeyDER  string `json:"public_key_der"`
	PublicKeyCOSE string `json:"public_key_cose"`
}
