// Package client is the technician's side of Secure Device Access: the
// proof-of-possession (PoP) key, access tokens fetched from an authorization
// service, and sessions that perform operations on devices.
//
// # Keys
//
// [GenerateKey] makes a PoP key (P-256 by default, as SDA v1 requires;
// Ed25519 or P-384 for v2 devices). [MarshalPrivateKeyPEM] and
// [ParsePrivateKeyPEM] store it as PKCS#8 PEM; [EncryptPrivateKeyPEM] and
// [DecryptPrivateKeyPEM] protect it with a passphrase; [WriteKeyFile] and
// [ReadKeyFile] do both with a file. Everything else takes any
// [crypto.Signer], so keys held in hardware keystores work unchanged.
//
// # Tokens
//
// A [TokenClient] asks the authorization service's token endpoint
// (POST /ace-auth/token, docs/PROTOCOL.md section 9) for a token naming the devices (audience),
// the operations (scope) and the PoP key (cnf). A [TokenSource] caches the
// token and fetches a new one before it expires. Every token received is
// checked by [CheckToken] before use.
//
// # Sessions
//
// A [Session] performs operations on one device over a transport.Conn:
// nonce request, signed operation request, response. Device statuses are
// typed errors ([*StatusError], matching [ErrAccessDenied],
// [ErrVerification], ...). See [Session] for the exact retry rules.
//
// # Security considerations
//
// A signed operation request is sent at most once. Retries happen only
// before it is handed to the connection, always with a fresh nonce; once it
// may have left, a missing or unreadable answer is reported as
// [ErrOutcomeUnknown] and the caller decides, knowing the operation may
// have run. [ErrOperationFailed] means it ran and failed. Any other error
// means the device did not run it, with one exception on links that
// duplicate or reorder whole messages (framed streams, TCP and the v2
// fragmentation format do not; the compat fragmentation format, which has
// no message id, delivers a repeated one-packet message twice): if the
// device ran a request and its answer was lost or overtaken, the answer to
// a duplicate of the request is a verification error (the nonce was used).
//
// An SDA v1 response carries no request identifier and no integrity
// protection: on such links a late or duplicated v1 response can only be
// recognised by its type. Set [Session.DeviceKey] for v2 devices that sign
// their responses: the session then requires a device-signed response for
// every success, checks that it verifies and agrees with the plain
// response on status, data, nonce and (with [Session.Device]) identity,
// and discards signed responses to other nonces.
//
// Degenerate keys are refused: a proof-of-possession key whose public half
// is an Ed25519 point of small order (with which anyone could sign for it)
// or an ECDSA point off its curve is refused by [TokenRequest.Validate] and
// never written to a key file, and a [Session.DeviceKey] like it verifies
// no response (token.ErrWeakKey, token.ErrUnsupportedKey).
//
// Received tokens are checked before use: the cnf key must be the client's
// own, the audience and the scope must be exactly those asked for, and the
// token must not have expired; with [TokenCheck.Anchors] (or
// [TokenClient.Anchors]) the signature is verified too. Without anchors
// the claims are read unverified, only to catch a token that is not the one
// asked for; the device verifies the signature in any case.
//
// Bearer credentials are sent only over https, or http to a loopback
// host. Token endpoint answers are read up to [MaxTokenResponseSize] bytes;
// error texts from the service are quoted when printed. Requests are
// checked against the endpoint's limits before anything is sent.
//
// Encrypted key files use scrypt (RFC 7914) and ChaCha20-Poly1305 with a fresh
// salt and nonce, the header authenticated as additional data. The scrypt
// work factor comes from the file and is checked against
// [MaxScryptWorkFactor] before any work, so a file cannot demand unbounded
// time or memory. An empty passphrase is refused. A wrong passphrase and a
// modified file are both [ErrWrongPassphrase].
//
// Everything is bounded: response sizes, stale messages discarded per
// operation, nonce attempts ([MaxAttempts]), and time (Session.Timeout
// and Session.NonceTimeout, on top of the caller's context). A Session
// starts one goroutine per exchange, to receive while it sends, and waits
// for it before returning.
//
// # Compatibility
//
// With a P-256 key and a v1 token the session speaks SDA v1 byte for byte:
// the requests are those of the deployed Pelion/Izuma technician SDK, and
// responses of deployed v1 devices (indefinite-length maps, keys 3 and 4
// before 1 and 2) are accepted. The token endpoint client uses the JSON
// request, response and error formats of the original cloud service.
//
// From v2 it uses, when the device offers them, the next nonce of an
// operation response (one round trip per operation instead of two) and
// device-signed responses. Ed25519 and P-384 PoP keys need v2 tokens and
// devices.
//
// Encrypted key files are this package's own format (PEM block "SDA
// ENCRYPTED PRIVATE KEY", described in keyfile.go). Unencrypted files are
// standard PKCS#8.
package client
