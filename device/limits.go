package device

// Bounds of status updates and freshness (v2, docs/PROTOCOL.md section 12).
const (
	// MaxStatusIssuers is the most issuers a device holds a status update
	// from; an update from a further issuer is ignored
	// ([ErrStatusIssuers]). With token.MaxStatusUpdateSize bytes each, the
	// persisted updates take at most about 64 KiB.
	MaxStatusIssuers = 4
	// MaxFreshTokens is the most tokens a device remembers as proven fresh
	// by their cnonce ([Freshness].CNonce), in memory; beyond it the
	// oldest is forgotten.
	MaxFreshTokens = 64
	// statusEnvelopeOverhead is what a status update adds to an operation
	// request beyond its own bytes: the head of its byte string (3 bytes
	// for up to 65535 bytes; the array head keeps its length).
	statusEnvelopeOverhead = 3
)

// maxThumbprints is the most anchor keys whose thumbprint an agent
// remembers (thumbprints); beyond it the oldest is forgotten.
const maxThumbprints = 16
