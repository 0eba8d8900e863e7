package device

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/securedeviceaccess/sda/token"
)

// RequestKind says what a request asked for.
type RequestKind uint8

// Request kinds.
const (
	RequestUnknown   RequestKind = iota // oversize or unparseable envelope
	RequestNonce                        // [1]
	RequestOperation                    // [3, signed bundle]
)

// String names the kind of request.
func (k RequestKind) String() string {
	switch k {
	case RequestNonce:
		return "nonce"
	case RequestOperation:
		return "operation"
	}
	return "unknown"
}

// Check names a step of the verification pipeline, in the order the agent
// runs them (docs/PROTOCOL.md section 8). A [Outcome] names the step that
// rejected a request.
type Check uint8

// Checks, in pipeline order.
const (
	CheckNone              Check = iota // no check failed
	CheckSize                           // message size limit
	CheckEnvelope                       // envelope decoding
	CheckNonceIssue                     // nonce request: throttling, outstanding nonces, randomness
	CheckParse                          // strict parse of the signed bundle and the token
	CheckAnchor                         // anchor lookup by issuer and key id
	CheckTokenSignature                 // token signature with the anchor's key
	CheckProfile                        // token profile accepted (Config.RejectV1)
	CheckAnchorConstraints              // anchor validity, retirement and constraints
	CheckDelegation                     // delegation chain: every link signed by its parent's key and narrowing it
	CheckAudience                       // the token names this device
	CheckTime                           // exp and nbf, with the clock policy
	CheckProofOfPossession              // request signature with the token's cnf key (a delegated request's: the last link's key)
	CheckNonce                          // nonce outstanding and unexpired; consumed here
	CheckRevocation                     // token id and hash (and link hashes) not revoked, by the list or a status update
	CheckFreshness                      // freshness requirements (v2)
	CheckScope                          // scope permits the operation and its arguments
	CheckOperation                      // handler found, ran and succeeded
	CheckResponse                       // response fits and could be signed
	CheckInternal                       // recovered panic
)

var checkNames = [...]string{
	CheckNone: "none", CheckSize: "size", CheckEnvelope: "envelope", CheckNonceIssue: "nonce-issue",
	CheckParse: "parse", CheckAnchor: "anchor", CheckTokenSignature: "token-signature",
	CheckProfile: "profile", CheckAnchorConstraints: "anchor-constraints", CheckDelegation: "delegation", CheckAudience: "audience",
	CheckTime: "time", CheckProofOfPossession: "proof-of-possession", CheckNonce: "nonce",
	CheckRevocation: "revocation", CheckFreshness: "freshness", CheckScope: "scope", CheckOperation: "operation",
	CheckResponse: "response", CheckInternal: "internal",
}

// String names the check as the audit log does.
func (c Check) String() string {
	if int(c) < len(checkNames) {
		return checkNames[c]
	}
	return fmt.Sprintf("Check(%d)", uint8(c))
}

// Outcome is the audit record of one request: what was asked, what the
// device answered, and, for a rejection, which check failed and why. The
// wire carries only Status; Err carries the precise reason.
//
// Issuer, Subject and TokenID come from the token. They are verified when
// Check is later than CheckTokenSignature (or zero), and otherwise what the
// request claimed, recorded for the audit trail only. For a delegated
// request they are the token's, that is the delegator's at the head of the
// chain; Chain names the delegates.
type Outcome struct {
	Request RequestKind
	Status  token.Status
	Check   Check // the failed check, or CheckNone
	Err     error // nil when Status is token.StatusSuccess

	// Nonce is the nonce issued (nonce requests) or the nonce the request
	// carried (operation requests).
	Nonce uint64
	// NextNonce is the fresh nonce offered in the response (v2).
	NextNonce uint64

	Issuer    string
	Subject   string
	TokenID   []byte
	Operation string // set once the proof-of-possession signature verified

	// Chain names the links of a delegated request's verified delegation
	// chain (docs/PROTOCOL.md section 13), in order; nil for a request
	// that is not delegated, or whose chain was refused (then Err says
	// why). Set from [CheckDelegation] on, so a request refused later (by
	// its proof of possession, say) names the chain it presented.
	Chain []ChainLink
	// tokenKey is the token's cnf key, the first key of the chain, set
	// with Chain. It may be the verified-token cache's: read only.
	tokenKey crypto.PublicKey

	// Remote is the peer's address on a connection served by
	// [Agent.Serve] or [Agent.ServeListener] whose transport tells it
	// (transport.RemoteAddresser), and nil otherwise ([Agent.Process]).
	Remote net.Addr

	// CachedToken reports that the token's verification was taken from the
	// verified-token cache (v2).
	CachedToken bool
	// TimeUnknown reports a token accepted while a clockless device in
	// ClockLowerBound mode had no lower bound of time yet.
	TimeUnknown bool

	// Update says what became of the status update the request carried
	// (v2, Config.StatusUpdates). It is handled before the request's
	// token, and an ignored update does not fail the request.
	Update UpdateOutcome
}

// KeyThumbprint returns the thumbprint (RFC 9679, token.Thumbprint) of
// the token's cnf key, the first key of a delegated request's chain, or
// nil when Chain is nil. The audit log names it first in "chain".
func (d Outcome) KeyThumbprint() []byte {
	if d.Chain == nil {
		return nil
	}
	tp, _ := token.Thumbprint(d.tokenKey)
	return tp
}

// Allowed reports whether the request succeeded. The zero Outcome (no
// request) is not allowed.
func (d Outcome) Allowed() bool {
	return d.Request != RequestUnknown && d.Err == nil && d.Status == token.StatusSuccess
}

// record sends d to the hook and the audit log.
func (a *Agent) record(ctx context.Context, d *Outcome) {
	if a.onOutcome != nil {
		func() {
			defer func() { _ = recover() }()
			c := *d
			c.TokenID = bytes.Clone(d.TokenID) // the hook must not reach cached claims
			c.Chain = slices.Clone(d.Chain)
			a.onOutcome(c)
		}()
	}
	level := slog.LevelInfo
	if d.Err != nil {
		level = slog.LevelWarn
	}
	if a.log == nil || !a.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request", d.Request.String()),
		slog.Uint64("status", uint64(d.Status)),
	)
	if d.Err != nil {
		attrs = append(attrs, slog.String("check", d.Check.String()), slog.String("reason", d.Err.Error()))
	}
	if d.Nonce != 0 {
		attrs = append(attrs, slog.Uint64("nonce", d.Nonce))
	}
	if d.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", d.Issuer))
	}
	if d.Subject != "" {
		attrs = append(attrs, slog.String("subject", d.Subject))
	}
	if d.TokenID != nil {
		attrs = append(attrs, slog.String("token_id", hex.EncodeToString(d.TokenID)))
	}
	if d.Operation != "" {
		attrs = append(attrs, slog.String("operation", d.Operation))
	}
	if d.Chain != nil {
		attrs = chainAttrs(attrs, d)
	}
	if d.Remote != nil {
		attrs = append(attrs, slog.String("remote", d.Remote.String()))
	}
	if d.CachedToken {
		attrs = append(attrs, slog.Bool("cached_token", true))
	}
	if d.TimeUnknown {
		attrs = append(attrs, slog.Bool("time_unknown", true))
	}
	attrs = updateAttrs(attrs, &d.Update)
	msg := "sda: request allowed"
	if d.Err != nil {
		msg = "sda: request rejected"
	}
	a.log.LogAttrs(ctx, level, msg, attrs...)
}

// chainAttrs appends the audit attributes of a delegated request: chain,
// the thumbprints of every key of the chain in hex, the token's first,
// and chain_subjects, the delegates' names (when one has a name).
func chainAttrs(attrs []slog.Attr, d *Outcome) []slog.Attr {
	keys := make([]string, 0, len(d.Chain)+1)
	keys = append(keys, hex.EncodeToString(d.KeyThumbprint()))
	subjects := make([]string, len(d.Chain))
	named := false
	for i := range d.Chain {
		keys = append(keys, hex.EncodeToString(d.Chain[i].Thumbprint()))
		subjects[i] = d.Chain[i].Subject
		named = named || subjects[i] != ""
	}
	attrs = append(attrs, slog.Any("chain", keys))
	if named {
		attrs = append(attrs, slog.Any("chain_subjects", subjects))
	}
	return attrs
}
