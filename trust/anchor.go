package trust

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Limits of anchors and stores.
const (
	MaxAnchors          = 256 // anchors in one store
	MaxAnchorsPerIssuer = 8   // anchors sharing one issuer name (rotation overlap)
	MaxIssuerLength     = 256 // bytes of an issuer name
	MaxKeyIDLength      = 64  // bytes of a key id
	MaxConstraintValues = 64  // entries in Constraints.Operations or Constraints.Audiences
)

// Anchor is a trust anchor: a public key a device trusts to sign access
// tokens, with what the device knows about it.
//
// An Anchor is a plain value; stores copy it on [MemoryStore.Add] and hand
// out copies whose slices must be treated as read-only.
type Anchor struct {
	// Issuer is the name tokens carry in their iss claim. SDA v1 names an
	// anchor after its key: see [NewAnchor] and [token.AnchorName].
	Issuer string
	// KeyID optionally names the key (v2 tokens carry it as kid). When it
	// is empty the anchor's key id is the key's COSE Key Thumbprint
	// (RFC 9679, [token.Thumbprint]).
	KeyID []byte
	// Key is the public key: *ecdsa.PublicKey on P-256 or P-384, or
	// ed25519.PublicKey.
	Key crypto.PublicKey
	// Algorithm is the algorithm the anchor's tokens must use. Zero means
	// the one the key pins ([token.AlgorithmFor]); a different non-zero
	// value makes the anchor invalid. The key decides, never the token.
	Algorithm token.Algorithm
	// NotBefore and NotAfter bound the anchor's validity: tokens are
	// accepted only while the device's time is inside the window and only
	// if they were issued inside it. Zero means unbounded.
	NotBefore, NotAfter time.Time
	// Constraints limit what tokens signed by the anchor may grant.
	Constraints Constraints

	// RetiredAt, when set, retires the anchor: tokens issued (iat, or nbf
	// when there is no iat) after it are rejected; tokens issued before it
	// stay valid until they expire. Set it with [MemoryStore.Retire] when a
	// rotated key takes over.
	RetiredAt time.Time
	// Revoked marks a compromised anchor: every token it signed is
	// rejected. Set it with [MemoryStore.Revoke].
	Revoked bool
}

// Constraints limit what an anchor may grant. The zero value limits nothing.
type Constraints struct {
	// Operations, if not nil, lists the operation names the anchor's tokens
	// may name in their scope. A scope permission covering every operation
	// ([token.AllOperations]) is allowed only when Operations contains it.
	Operations []string
	// Audiences, if not nil, lists the audience entries ("ep:...",
	// "id:...") the anchor's tokens may name. An entry ending in "*" allows
	// every audience entry that starts with the text before the "*", so
	// "ep:hvac-*" allows "ep:hvac-17".
	Audiences []string
	// MaxLifetime, if positive, is the longest validity (exp minus nbf, or
	// minus iat when there is no nbf) the anchor's tokens may have.
	MaxLifetime time.Duration
}

// NewAnchor returns an anchor for key named as SDA names anchors: "mbed.ta."
// followed by the upper-case hex SHA-256 of the key's DER
// SubjectPublicKeyInfo ([token.AnchorName]).
func NewAnchor(key crypto.PublicKey) (*Anchor, error) {
	name, err := token.AnchorName(key)
	if err != nil {
		return nil, invalidAnchor("%w", err)
	}
	a := &Anchor{Issuer: name, Key: key}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// ParsePEM returns an SDA-named anchor ([NewAnchor]) for the public key in
// data, exactly one PEM "PUBLIC KEY" block ([token.ParsePublicKeyPEM]: a
// second block or other text around it is refused).
func ParsePEM(data []byte) (*Anchor, error) {
	key, err := token.ParsePublicKeyPEM(data)
	if err != nil {
		return nil, invalidAnchor("%w", err)
	}
	return NewAnchor(key)
}

// ParseDER returns an SDA-named anchor ([NewAnchor]) for a DER
// SubjectPublicKeyInfo.
func ParseDER(der []byte) (*Anchor, error) {
	key, err := token.ParsePublicKeyDER(der)
	if err != nil {
		return nil, invalidAnchor("%w", err)
	}
	return NewAnchor(key)
}

// ParseCOSEKey returns an SDA-named anchor ([NewAnchor]) for a public
// COSE_Key (RFC 9052 section 7).
func ParseCOSEKey(data []byte) (*Anchor, error) {
	key, err := token.ParseCOSEKey(data)
	if err != nil {
		return nil, invalidAnchor("%w", err)
	}
	return NewAnchor(key)
}

// Validate reports whether the anchor is usable; the error matches
// [ErrInvalidAnchor].
func (a *Anchor) Validate() error {
	if a.Issuer == "" || len(a.Issuer) > MaxIssuerLength {
		return invalidAnchor("issuer of %d bytes, want 1..%d", len(a.Issuer), MaxIssuerLength)
	}
	if len(a.KeyID) > MaxKeyIDLength {
		return invalidAnchor("key id of %d bytes, more than %d", len(a.KeyID), MaxKeyIDLength)
	}
	alg, err := token.AlgorithmFor(a.Key)
	if err != nil {
		return invalidAnchor("%w", err)
	}
	if a.Algorithm != 0 && a.Algorithm != alg {
		return invalidAnchor("algorithm %v for a %v key", a.Algorithm, alg)
	}
	if !a.NotBefore.IsZero() && !a.NotAfter.IsZero() && !a.NotBefore.Before(a.NotAfter) {
		return invalidAnchor("empty validity window")
	}
	c := a.Constraints
	if len(c.Operations) > MaxConstraintValues || len(c.Audiences) > MaxConstraintValues {
		return invalidAnchor("more than %d constraint values", MaxConstraintValues)
	}
	for _, op := range c.Operations {
		if op == token.AllOperations {
			continue
		}
		if err := token.ValidateName(op); err != nil {
			return invalidAnchor("constraint operation: %v", err)
		}
	}
	for _, aud := range c.Audiences {
		if aud == "" || len(aud) > token.MaxAudienceLength {
			return invalidAnchor("constraint audience of %d bytes", len(aud))
		}
	}
	if c.MaxLifetime < 0 {
		return invalidAnchor("negative maximum lifetime")
	}
	return nil
}

// PinnedAlgorithm returns the algorithm the anchor's tokens must use: the
// one its key pins.
func (a *Anchor) PinnedAlgorithm() token.Algorithm {
	alg, _ := token.AlgorithmFor(a.Key)
	return alg
}

// Fingerprint returns the upper-case hex SHA-256 of the key's DER
// SubjectPublicKeyInfo, the fingerprint the SDA cloud publishes for its
// anchors; "" for an unsupported key.
func (a *Anchor) Fingerprint() string {
	der, err := token.MarshalPublicKeyDER(a.Key)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// keyID returns KeyID, or the key's thumbprint when KeyID is empty.
func (a *Anchor) keyID() ([]byte, error) {
	if len(a.KeyID) > 0 {
		return a.KeyID, nil
	}
	return token.Thumbprint(a.Key)
}

// Check reports whether verified claims stay within what the anchor may
// grant, at device time now (the zero time skips the check of now against
// the validity window, for devices that do not know the time). The error
// is a [*ConstraintError]; [ErrAnchorRevoked] for a revoked anchor.
//
// Check does not verify signatures, audience or the token's own validity
// period: callers verify the token with the anchor's key first and check
// audience and time with [token.Claims.Validate] or their own clock policy.
func (a *Anchor) Check(c *token.Claims, now time.Time) error {
	if err := a.ValidAt(now); err != nil {
		return err
	}
	issued := c.IssuedAt
	if issued.IsZero() {
		issued = c.NotBefore
	}
	if !a.NotBefore.IsZero() || !a.NotAfter.IsZero() || !a.RetiredAt.IsZero() {
		if issued.IsZero() {
			return constraintError("validity", "token has neither iat nor nbf")
		}
		if !a.NotBefore.IsZero() && issued.Before(a.NotBefore) {
			return constraintError("validity", "token issued %v, before the anchor's window", issued)
		}
		if !a.NotAfter.IsZero() && issued.After(a.NotAfter) {
			return constraintError("validity", "token issued %v, after the anchor's window", issued)
		}
		if !a.RetiredAt.IsZero() && issued.After(a.RetiredAt) {
			return constraintError("retired", "token issued %v, after the anchor retired at %v", issued, a.RetiredAt.UTC())
		}
	}
	k := a.Constraints
	if k.Operations != nil {
		for _, name := range c.Scope.Names() {
			if !slices.Contains(k.Operations, name) {
				return constraintError("operations", "scope names %q", name)
			}
		}
	}
	if k.Audiences != nil {
		for _, aud := range c.Audience {
			if !audienceAllowed(k.Audiences, aud) {
				return constraintError("audiences", "audience %q", aud)
			}
		}
	}
	if k.MaxLifetime > 0 {
		start := c.NotBefore
		if start.IsZero() {
			start = c.IssuedAt
		}
		if start.IsZero() {
			return constraintError("lifetime", "token has neither nbf nor iat")
		}
		if life := c.Expiry.Sub(start); life > k.MaxLifetime {
			return constraintError("lifetime", "%v, longer than %v", life, k.MaxLifetime)
		}
	}
	return nil
}

func audienceAllowed(allowed []string, aud string) bool {
	for _, p := range allowed {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(aud, prefix) {
				return true
			}
		} else if p == aud {
			return true
		}
	}
	return false
}

// ValidAt reports whether the anchor may be used at device time now: it is
// not revoked ([ErrAnchorRevoked]) and now is inside its validity window (a
// [*ConstraintError]). The zero now skips the window check.
func (a *Anchor) ValidAt(now time.Time) error {
	if a.Revoked {
		return ErrAnchorRevoked
	}
	if !now.IsZero() {
		if !a.NotBefore.IsZero() && now.Before(a.NotBefore) {
			return constraintError("validity", "anchor not valid before %v", a.NotBefore.UTC())
		}
		if !a.NotAfter.IsZero() && now.After(a.NotAfter) {
			return constraintError("validity", "anchor expired at %v", a.NotAfter.UTC())
		}
	}
	return nil
}

// clone returns a deep copy of a.
func (a *Anchor) clone() Anchor {
	c := *a
	c.KeyID = bytes.Clone(a.KeyID)
	c.Constraints.Operations = slices.Clone(a.Constraints.Operations)
	c.Constraints.Audiences = slices.Clone(a.Constraints.Audiences)
	return c
}
