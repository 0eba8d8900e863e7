// Package client is the technician's side of Secure Device Access: the
// proof-of-possession (PoP) key, access tokens fetched from an authorization
// service, and sessions that perform operations on devices. A technician
// app makes a key once ([GenerateKey], kept with [WriteKeyFile]), gets tokens
// through a [TokenSource] that asks a [TokenClient], and performs each
// operation with [Session.Do] over a transport.Conn to the device.
//
// # Keys
//
// [GenerateKey] makes a PoP key (P-256 by default, as SDA v1 requires;
// Ed25519 or P-384 for v2 devices). [MarshalPrivateKeyPEM] and
// [ParsePrivateKeyPEM] store it as PKCS#8 PEM; [EncryptPrivateKeyPEM] and
// [DecryptPrivateKeyPEM] protect it with a passphrase, as a standard
// encrypted PKCS#8 file (scrypt and AES-256-CBC) that other tools read;
// [WriteKeyFile] and [ReadKeyFile] do both with a file. Everything else
// takes any [crypto.Signer], so keys held in hardware keystores work
// unchanged.
//
// The default scrypt parameters (N = 2^18, r = 8, p = 1: 256 MiB of memory)
// are more than OpenSSL 3 accepts: its scrypt is limited to 32 MiB, and
// `openssl pkey` fails on such a file with "memory limit exceeded". A file
// written with [OpenSSLKeyFileOptions] (N = 2^14, r = 8, p = 16) opens in
// OpenSSL; it takes the same time to derive but 16 MiB of memory, so it is
// 16 times less memory-hard: an attacker guessing passphrases with
// parallel hardware that is short of memory (GPUs, ASICs) gains up to that
// factor. Choose it only for keys that OpenSSL must read, with a strong
// passphrase.
//
// # Tokens
//
// A [TokenClient] asks the authorization service's token endpoint
// (POST /ace-auth/token, docs/PROTOCOL.md section 9) for a token naming the devices (audience),
// the operations (scope) and the PoP key (cnf). A [TokenSource] caches the
// token and fetches a new one before it expires. Every token received is
// checked by [CheckToken] before use.
//
// # Revocation and freshness (v2)
//
// [TokenClient.StatusUpdate] fetches the signed status update an
// authorization service makes for a device (docs/PROTOCOL.md section 12):
// its revocations and its time. A [TokenSource] with Status set fetches the
// updates of its audiences with every token and caches the newest; a
// [Session] with Status set carries the cached update to a device whose
// last response shows it holds an older one, inside the operation request,
// at no extra round trip (see [Session], "Status updates"). So a device
// that never goes online learns of revocations from any technician's
// visit. [TokenClient.StatusFetcher] is the same fetch for a device that
// goes online itself.
//
// [Session.DoFresh] performs an operation with a token bound to the
// device's own nonce (cnonce), for devices that require proof that a token
// is fresh: the session gets the nonce, fetches a token carrying it through
// [FreshTokens], and signs the request with the same nonce.
//
// # Delegation (v2)
//
// A technician whose token allows it (the owner's policy puts a delegation
// claim in v2 tokens; v1 tokens never have one) passes on, offline, a
// narrower part of the access to a colleague's key with [Delegate]: a
// link signed with the technician's own key names the token by its hash,
// the colleague's key, a scope within the token's, a time window and
// audiences within the token's, and how many further links may follow
// (docs/PROTOCOL.md section 13). The colleague receives the delegated
// token ([AccessToken.Bytes]: the token and its chain), checks it with
// [CheckToken], which verifies the chain and reports its effective scope,
// audience and expiry, and uses it with [StaticToken] in a [Session]
// signing with their own key: the session sends the chain in every
// request, and refuses, before sending, a delegated token whose last key
// is not the session's. Proof of possession is never weakened: the
// device accepts a request only when it is signed by the last key of the
// chain.
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
// or an ECDSA point off its curve is refused by [token.AccessRequest.Validate] and
// never written to a key file, and a [Session.DeviceKey] like it verifies
// no response (token.ErrWeakKey, token.ErrUnsupportedKey).
//
// Received tokens are checked before use: the cnf key (for a delegated
// token, the chain's last key, after the chain verifies) must be the client's
// own, the audience and the scope must be exactly those asked for, a
// cnonce asked for must be carried, and the token must not have expired;
// with [TokenCheck.Anchors] (or [TokenClient.Anchors]) the signature is
// verified too. Without anchors
// the claims are read unverified, only to catch a token that is not the one
// asked for; the device verifies the signature in any case.
//
// A delegated token carries no secret: the chain names the delegate's
// public key, and a device runs a delegated request only when it is
// signed by the chain's last key, so a copied delegated token is as
// useless as a copied token. [Delegate] signs with the holder's key
// without verifying the holder's token; a delegate checks what it
// receives with [CheckToken] (with anchors, to authenticate the token and
// so the chain). A link's sub is the delegator's word only. A delegated
// token cannot satisfy a device that requires freshness by cnonce: its
// cnonce is the delegator's.
//
// Status updates are read strictly and must name the device asked for;
// with [TokenClient.Anchors] their signature is verified with an anchor of
// their issuer, and without it they are read unverified. The session
// decides whether to push an update from values it has not verified (its
// sequence number, and the device's key 7, which no signature covers):
// the device verifies every update before installing it and ignores
// others, so someone who forges or suppresses these values can at worst
// make the session carry an update the device does not need, or not carry
// one, which delays a revocation until another visit, as a technician who
// stays away would.
//
// Bearer credentials are sent only over https, or http to a loopback
// host. Token endpoint answers are read up to [MaxTokenResponseSize] bytes;
// error texts from the service are quoted when printed. Requests are
// checked against the endpoint's limits before anything is sent.
//
// Encrypted key files are PBES2 (RFC 8018) with scrypt (RFC 7914) and
// AES-256-CBC, with a fresh salt and IV for every file. The scrypt
// parameters come from the file and are checked before any work (N from
// 2^10 to 2^20, N * r * p at most 2^23, so at most 1 GiB of memory and the
// time of N = 2^20, r = 8, p = 1), so a file cannot demand unbounded time
// or memory; other key derivation functions and ciphers are refused
// ([ErrUnsupportedKeyEncryption]). An empty passphrase is refused.
//
// The standard format has no MAC, unlike this package's first format: a
// wrong passphrase is recognised by the padding and the structure of the
// decrypted key, and is [ErrWrongPassphrase] (a random key passes the
// padding check about once in 256 times and the structure check
// practically never). Someone who can modify the file, but does not know
// the passphrase, can neither read the key nor make the file decrypt to a
// key of their choice. They can make it fail to decrypt, or (CBC is
// malleable) decrypt to a different key that they do not know either. Such
// a key gains them nothing, since tokens name the public key they are
// issued for and devices accept only requests signed with it. For ECDSA
// keys the reader notices: the file carries the public key next to the
// private one (SEC1's publicKey, which this package and OpenSSL write),
// and a private key that does not match it is ErrWrongPassphrase. An
// Ed25519 file (RFC 8410) holds only the private seed, so a changed seed
// shows only where the original public key is known (a key registered
// with a service, a token issued for it). Keep key files where others
// cannot write, as any file whose loss would stop work.
//
// Everything is bounded: response sizes, stale messages discarded per
// operation, nonce attempts ([MaxAttempts]), and time (Session.Timeout
// and Session.NonceTimeout, on top of the caller's context). A Session
// starts one goroutine per exchange, to receive while it sends, and waits
// for it before returning; on a Conn that takes a message at once
// (transport.TrySender, as transport.Pipe does) it starts none.
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
// operation response (one round trip per operation instead of two),
// device-signed responses and status updates (only to a device that sent
// response key 7; to others, requests are unchanged). A token request
// carries "cnonce" only for [Session.DoFresh]. Ed25519 and P-384 PoP keys need v2 tokens and
// devices.
//
// Key files are standard: PKCS#8 (PEM "PRIVATE KEY") in clear, encrypted
// PKCS#8 (PEM "ENCRYPTED PRIVATE KEY", RFC 5958) with a passphrase, as
// docs/PROTOCOL.md section 11 describes. Files in this package's first
// encrypted format (PEM "SDA ENCRYPTED PRIVATE KEY", docs/PROTOCOL.md
// section 11) are still read, and no longer written. Encrypted files that
// `openssl pkcs8 -topk8 -scrypt` writes are read; those it writes without
// -scrypt (PBKDF2) are not.
package client
