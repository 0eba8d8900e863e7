// Package pkcs11 holds a trust anchor's private key in a PKCS#11 token (a
// hardware security module, a smart card, or SoftHSM2) and signs with it
// there: [Open] returns a [Key], a crypto.Signer that policy.Service.Signer,
// token.Issue and token.SignStatus use like a key in memory, and
// [Generate] makes a new key pair in the token.
//
// A key is named by a PKCS#11 URI (RFC 7512), which [ParseURI] reads
// strictly:
//
//	pkcs11:token=sda;object=anchor;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sda/pin
//
// The module (module-path), the token (token label, serial or slot-id:
// exactly one) and the key (object label, id or both) are required; every
// attribute the package does not act on is refused rather than ignored,
// so that a URI never selects another key than it says.
//
// Keys are ECDSA on P-256 (ES256, the only algorithm of SDA v1 devices) or
// P-384 (ES384). Ed25519 is not supported: the PKCS#11 library used,
// github.com/ThalesGroup/crypto11, has no EdDSA mechanism (CKM_EDDSA). The
// token returns ASN.1 DER ECDSA signatures; package token converts them to
// the COSE encoding and checks them, as it does for crypto/ecdsa's.
//
// # cgo
//
// Loading a PKCS#11 module needs cgo; this is the one package of the
// module that uses it, and no core package (token, trust, policy, device,
// client) imports it. Built without cgo, the package compiles, parses URIs,
// and [Open] and [Generate] fail with [ErrNoCgo].
//
// # Security considerations
//
//   - The PIN is never taken from the URI: a pin-value attribute is refused
//     with [ErrPINInURI], because URIs end up in command lines, process
//     listings, logs and shell histories. It comes from the file the
//     pin-source attribute names (a "file:" URI or a file name; the
//     first line is the PIN) or from [Options].PIN, a reader (a terminal,
//     a pipe, a secret manager), never both.
//   - [Generate] makes the private key in the token with CKA_SENSITIVE set
//     and CKA_EXTRACTABLE clear: it never leaves the token, and the
//     package never sees it. A key pair with the same label or id is
//     refused ([ErrKeyExists]) rather than added beside it; the check and
//     the generation are two steps, so two programs generating the same
//     label at the same moment could both succeed.
//   - PKCS#11 logs in per application, not per session: while a Key of a
//     token is open in a process, [Open] of another key in that token in
//     the same process succeeds whatever PIN it is given (the token
//     answers CKR_USER_ALREADY_LOGGED_IN, which crypto11 accepts). The PIN
//     guards the token against other processes, not against the process
//     that holds it open.
//   - Anyone who can run the service's process with the PIN can sign with
//     the key, though not copy it: protect the PIN file (mode 0600, owned
//     by the service's user) and the token as the root of trust of the
//     fleet that it is. Revoking the key is rotating the anchor.
//   - A Key holds a pool of sessions with the token; Sign is safe for
//     concurrent use and Close waits for signatures in progress.
package pkcs11
