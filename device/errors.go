package device

import (
	"errors"
	"fmt"

	"github.com/securedeviceaccess/sda/trust"
)

// Errors carried by an [Outcome] (Outcome.Err) and returned by [New].
// Test for them with [errors.Is]. An Outcome's Err may also match the
// sentinels of the token package: token.ErrMalformed for everything that
// fails strict parsing (envelope included; token.ErrUnsupportedForm too
// for a MACed, encrypted or nested token, token.ErrWeakKey for a token
// whose cnf is a degenerate key), token.ErrSignature,
// token.ErrAlgorithmMismatch, token.ErrCritical, token.ErrWrongAudience,
// token.ErrExpired, token.ErrNotYetValid and token.ErrOutOfScope; and, for
// a refused delegation chain ([CheckDelegation]), token.ErrDelegation with
// one of token.ErrNotDelegable, token.ErrDelegationDepth,
// token.ErrLinkSignature, token.ErrNotNarrower and token.ErrDelegationLoop
// (a *token.DelegationError names the link and the field).
var (
	// ErrMessageTooLarge: the request exceeds Config.MaxMessageSize. Nothing
	// of it was parsed.
	ErrMessageTooLarge = errors.New("device: message too large")

	// ErrUnknownAnchor: no trust anchor matches the token's issuer (and
	// key id). It is trust.ErrUnknownAnchor.
	ErrUnknownAnchor = trust.ErrUnknownAnchor

	// ErrAnchorRevoked: the anchors matching the token's issuer are
	// revoked. It is trust.ErrAnchorRevoked.
	ErrAnchorRevoked = trust.ErrAnchorRevoked

	// ErrAnchorConstraint: the token asks for more than its anchor may
	// grant, or was issued outside the anchor's validity or after its
	// retirement. It is trust.ErrConstraint; the error is a
	// *trust.ConstraintError.
	ErrAnchorConstraint = trust.ErrConstraint

	// ErrProfile: the token's profile is not accepted (Config.RejectV1).
	ErrProfile = errors.New("device: token profile not accepted")

	// ErrTimeUnknown: the device has no trustworthy clock, has never seen
	// a verified time, and is in [ClockStrict] mode.
	ErrTimeUnknown = errors.New("device: time unknown")

	// ErrNonce is matched by every nonce failure below.
	ErrNonce = errors.New("device: nonce not acceptable")
	// ErrNonceUnknown: the nonce was never issued by this device (another
	// device's nonce, a guess), or was forgotten long ago.
	ErrNonceUnknown = fmt.Errorf("%w: unknown", ErrNonce)
	// ErrNonceReplayed: the nonce was issued by this device and already
	// consumed by an earlier request.
	ErrNonceReplayed = fmt.Errorf("%w: already used", ErrNonce)
	// ErrNonceExpired: the nonce was issued by this device but is older
	// than Config.NonceLifetime.
	ErrNonceExpired = fmt.Errorf("%w: expired", ErrNonce)
	// ErrNonceReleased: the nonce was issued on a connection that released
	// it before it was used: the connection closed, or asked for another
	// nonce while holding its quota (Config.NonceQuota), which gives up its
	// oldest.
	ErrNonceReleased = fmt.Errorf("%w: released by its connection", ErrNonce)

	// ErrRevoked: the token's id (cti) or hash, or the hash of a link of
	// the request's delegation chain, is on the device's revocation list
	// (or a status update revokes the token or the link: [RevocationError]).
	ErrRevoked = errors.New("device: token revoked")

	// ErrStatusUpdate is matched by every reason a status update (v2) was
	// ignored ([UpdateOutcome].Err, [Agent.InstallStatus]): the errors
	// below and, when it could not be persisted, [ErrState]. An ignored
	// update changes nothing and never fails the request that carried it.
	ErrStatusUpdate = errors.New("device: status update ignored")
	// ErrStatusMalformed: the update does not parse strictly
	// (token.ParseStatus; the error matches token.ErrMalformed too).
	ErrStatusMalformed = fmt.Errorf("%w: malformed", ErrStatusUpdate)
	// ErrStatusOlder: the update is not newer than the one held from its
	// issuer (an older update, or a replay of the same): skipped before any
	// signature check.
	ErrStatusOlder = fmt.Errorf("%w: not newer than the one installed", ErrStatusUpdate)
	// ErrStatusIssuers: the update is from a further issuer while the
	// device holds updates from MaxStatusIssuers issuers.
	ErrStatusIssuers = fmt.Errorf("%w: updates of too many issuers", ErrStatusUpdate)
	// ErrStatusUnknownIssuer: no anchor of the update's issuer (and key
	// id), or only revoked ones; the error matches trust.ErrUnknownAnchor
	// or trust.ErrAnchorRevoked too.
	ErrStatusUnknownIssuer = fmt.Errorf("%w: no anchor of its issuer", ErrStatusUpdate)
	// ErrStatusForged: the signature does not verify with any anchor of
	// the issuer that pins its algorithm (the error matches
	// token.ErrSignature, or token.ErrAlgorithmMismatch when no anchor
	// pins it). A forged update counts toward throttling as a forged token
	// does.
	ErrStatusForged = fmt.Errorf("%w: signature does not verify", ErrStatusUpdate)
	// ErrStatusAnchor: the anchor that verified the update is outside its
	// validity window, or its audience constraints do not allow the
	// update's audience, or the update was made after the anchor's window
	// or retirement (the error matches [ErrAnchorConstraint] too).
	ErrStatusAnchor = fmt.Errorf("%w: anchor constraints", ErrStatusUpdate)
	// ErrStatusWrongDevice: the update's audience does not name this
	// device.
	ErrStatusWrongDevice = fmt.Errorf("%w: for another device", ErrStatusUpdate)

	// ErrNotFresh: the token is not proven fresh as a freshness
	// requirement ([Freshness]) demands. The error is a [*FreshnessError],
	// which says why each way failed: [ErrStatusTooOld], [ErrCNonce].
	ErrNotFresh = errors.New("device: token not proven fresh")
	// ErrStatusTooOld: no status update of the token's issuer was
	// installed within Freshness.MaxStatusAge since the agent started.
	ErrStatusTooOld = errors.New("device: no recent status update of the issuer")
	// ErrCNonce: the token's cnonce is absent (a v1 token, or none asked
	// for) or not the nonce of the request, and the token was not proven
	// fresh by its cnonce earlier; or the request is delegated, which a
	// cnonce never proves fresh.
	ErrCNonce = errors.New("device: token cnonce is not the request's nonce")

	// ErrThrottled: a nonce request refused because of repeated
	// verification failures from the request's source (Config.Throttle).
	ErrThrottled = errors.New("device: throttled after repeated verification failures")

	// ErrNoncesExhausted: a nonce request refused because the maximum
	// number of unexpired nonces is outstanding (Config.MaxNonces). The
	// device never evicts an unexpired nonce to make room.
	ErrNoncesExhausted = errors.New("device: all nonces outstanding")

	// ErrIdleTimeout: the agent closed a connection that stayed idle
	// longer than Config.IdleTimeout ([Drop] events).
	ErrIdleTimeout = errors.New("device: connection idle too long")

	// ErrEvicted: the agent closed an idle connection to serve a new one
	// at its connection limit ([Drop] events).
	ErrEvicted = errors.New("device: connection evicted for a new one")

	// ErrUnknownOperation: the scope permits the operation but no handler
	// is registered for it.
	ErrUnknownOperation = errors.New("device: no handler for operation")

	// ErrOperationFailed: the handler ran and returned an error, which the
	// decision's error wraps.
	ErrOperationFailed = errors.New("device: operation failed")

	// ErrHandlerPanic: the handler panicked; the agent recovered.
	ErrHandlerPanic = errors.New("device: operation handler panicked")

	// ErrResponseTooLarge: the response would exceed
	// Config.MaxResponseSize; its data was dropped.
	ErrResponseTooLarge = errors.New("device: response too large")

	// ErrRevocationListFull: the revocation operation cannot add an entry
	// because the list holds Config.MaxRevocations entries that have not
	// expired. Entries are never evicted to make room.
	ErrRevocationListFull = errors.New("device: revocation list full")

	// ErrInternal: an unexpected failure inside the agent (a recovered
	// panic, a failing random source or signer, ...).
	ErrInternal = errors.New("device: internal error")

	// ErrConfig: [New] was given an unusable configuration.
	ErrConfig = errors.New("device: invalid configuration")

	// ErrState: persistent state could not be read or written, or holds
	// data that does not decode.
	ErrState = errors.New("device: persistent state")
)

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}
