package trust

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Test for them with [errors.Is]; the
// returned errors wrap them with detail.
var (
	// ErrUnknownAnchor: no anchor of the store matches the issuer (and key
	// id) a token names.
	ErrUnknownAnchor = errors.New("trust: unknown trust anchor")

	// ErrAnchorRevoked: the only anchors matching the issuer (and key id)
	// have been revoked. Tokens they signed are rejected, whenever issued.
	ErrAnchorRevoked = errors.New("trust: trust anchor revoked")

	// ErrConstraint: a token asks for more than its anchor may grant
	// (operations, audiences, lifetime), or was signed outside the anchor's
	// validity window or after its retirement. The error is a
	// [*ConstraintError].
	ErrConstraint = errors.New("trust: anchor constraint violated")

	// ErrInvalidAnchor: an anchor is not usable: no issuer, an unsupported
	// or degenerate key (the error then also matches
	// token.ErrUnsupportedKey, and token.ErrWeakKey for an Ed25519 point of
	// small order), an algorithm that does not match the key, an empty
	// validity window, invalid constraints, ...
	ErrInvalidAnchor = errors.New("trust: invalid anchor")

	// ErrDuplicate: the store already holds an anchor with the same issuer
	// and key id.
	ErrDuplicate = errors.New("trust: duplicate anchor")

	// ErrNotFound: no anchor has the issuer and key id given to a management
	// method (Retire, Revoke, Remove).
	ErrNotFound = errors.New("trust: anchor not found")

	// ErrStoreFull: adding the anchor would exceed [MaxAnchors] or
	// [MaxAnchorsPerIssuer].
	ErrStoreFull = errors.New("trust: store full")

	// ErrCorrupt: a file store's file cannot be read back: malformed JSON,
	// unknown fields, invalid anchors, or more than the limits allow.
	ErrCorrupt = errors.New("trust: corrupt store file")
)

// ConstraintError reports which constraint of an anchor a token violates.
// It matches [ErrConstraint] with errors.Is.
type ConstraintError struct {
	Constraint string // "operations", "audiences", "lifetime", "validity", "retired"
	Detail     string
}

// Error describes the violated constraint.
func (e *ConstraintError) Error() string {
	return fmt.Sprintf("trust: anchor constraint %q violated: %s", e.Constraint, e.Detail)
}

// Is reports whether target is ErrConstraint.
func (e *ConstraintError) Is(target error) bool { return target == ErrConstraint }

func constraintError(constraint, format string, args ...any) error {
	return &ConstraintError{Constraint: constraint, Detail: fmt.Sprintf(format, args...)}
}

func invalidAnchor(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidAnchor}, args...)...)
}
