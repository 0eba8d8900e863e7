package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package. Callers test for them with [errors.Is];
// the struct errors below carry the detail and match the sentinel they wrap.
var (
	// ErrInvalid reports a record or request that fails validation. Errors
	// that match it are usually a *[ValidationError] naming the fields.
	ErrInvalid = errors.New("policy: invalid input")

	// ErrNotFound reports that a record with the given kind and id does not exist.
	ErrNotFound = errors.New("policy: not found")

	// ErrConflict reports a write that would break a uniqueness rule: two
	// devices with one endpoint name, or two API keys with one hash.
	ErrConflict = errors.New("policy: conflict")

	// ErrDenied reports a token request that the policies do not permit.
	// Errors that match it are a *[DeniedError] carrying the [Decision].
	ErrDenied = errors.New("policy: access denied")

	// ErrUnauthenticated reports a caller whose credential is missing or unknown.
	ErrUnauthenticated = errors.New("policy: unauthenticated")

	// ErrForbidden reports an authenticated caller that may not use the
	// administration API.
	ErrForbidden = errors.New("policy: forbidden")

	// ErrConfig reports a Service that is not configured to do what was
	// asked, such as a Store that keeps no [Ledger]: the request fails
	// until the configuration changes.
	ErrConfig = errors.New("policy: service misconfigured")

	// ErrOutcomeUnknown reports a write whose outcome the store could not
	// learn: the connection to the database failed while the commit was in
	// flight, and the database could not be asked afterwards whether it
	// committed. The write may or may not have been applied: read the
	// records back before retrying it. Unlike [ErrUnavailable], which
	// promises that nothing was written, it does not match ErrUnavailable.
	ErrOutcomeUnknown = errors.New("policy: write outcome unknown")

	// ErrRateLimited reports a request refused by the Service's
	// [RateLimit]. Errors that match it are a *[RateLimitError] saying
	// when to retry.
	ErrRateLimited = errors.New("policy: rate limited")
)

// Reasons for a denial, found in [Denial].Reason and matched by [errors.Is]
// on a *[DeniedError].
var (
	// ErrUnknownSubject: the subject is not in the directory.
	ErrUnknownSubject = errors.New("policy: unknown subject")
	// ErrUnknownDevice: an audience names no device in the directory.
	ErrUnknownDevice = errors.New("policy: unknown device")
	// ErrNoAllowPolicy: no active, valid allow policy permits the pair.
	ErrNoAllowPolicy = errors.New("policy: no policy allows the operation on the device")
	// ErrDenyPolicy: an active, valid deny policy matches the pair.
	ErrDenyPolicy = errors.New("policy: a deny policy matches")
	// ErrStructuredScopeRequired: the pair is allowed only with argument
	// constraints, which a v1 (text scope) token cannot carry.
	ErrStructuredScopeRequired = errors.New("policy: operation allowed only with argument constraints, which need the v2 profile")
	// ErrConstraintsDiffer: the devices of one request allow an operation under
	// argument constraints that no single scope entry satisfies on all of them.
	ErrConstraintsDiffer = errors.New("policy: argument constraints differ between the requested devices")
)

// FieldError names one invalid field and says what is wrong with it.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// ValidationError lists the invalid fields of a record or request. It
// matches [ErrInvalid].
type ValidationError struct {
	Fields []FieldError
}

// maxFieldErrors bounds how many field errors one validation collects.
const maxFieldErrors = 20

// Error lists the fields that failed validation.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("policy: invalid input")
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Unwrap returns [ErrInvalid].
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// fieldErrs collects field errors up to a bound.
type fieldErrs struct{ list []FieldError }

func (f *fieldErrs) add(name, format string, args ...any) {
	if len(f.list) < maxFieldErrors {
		f.list = append(f.list, FieldError{Name: name, Message: fmt.Sprintf(format, args...)})
	}
}

func (f *fieldErrs) prefixed(prefix string, err error) {
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Fields {
			f.add(prefix+fe.Name, "%s", fe.Message)
		}
	} else if err != nil {
		f.add(strings.TrimSuffix(prefix, "."), "%v", err)
	}
}

func (f *fieldErrs) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: f.list}
}

// DeniedError reports a denied token request. It matches [ErrDenied] and
// the reason of its first denied pair (for example [ErrDenyPolicy]).
type DeniedError struct {
	Decision *Decision
}

// Error names the first (device, operation) pair denied and why.
func (e *DeniedError) Error() string {
	d := e.Decision.Denied
	if d == nil {
		return ErrDenied.Error()
	}
	s := fmt.Sprintf("policy: access denied: %v (audience %q, operation %q", d.Reason, d.Audience, d.Operation)
	if d.PolicyID != "" {
		s += ", policy " + d.PolicyID
	}
	return s + ")"
}

// Unwrap returns [ErrDenied] and the reason of the first denied pair.
func (e *DeniedError) Unwrap() []error {
	if e.Decision.Denied == nil || e.Decision.Denied.Reason == nil {
		return []error{ErrDenied}
	}
	return []error{ErrDenied, e.Decision.Denied.Reason}
}

// ErrFormatTooNew reports a store file or an export written in a newer
// format than this version knows. Errors that match it are a
// *[FormatVersionError]. The data is left untouched: read it with the
// newer version.
var ErrFormatTooNew = errors.New("policy: format newer than this version knows")

// FormatVersionError names a store file or export document whose format
// version is newer than this version knows. It matches [ErrFormatTooNew].
type FormatVersionError struct {
	Format string // the format's name: "sda-policy-store" or "sda-policy-export"
	Found  int    // the version of the data
	Known  int    // the latest version this package reads
}

func (e *FormatVersionError) Error() string {
	return fmt.Sprintf("policy: %s format version %d; this version reads versions up to %d", e.Format, e.Found, e.Known)
}

// Is reports whether target is [ErrFormatTooNew].
func (e *FormatVersionError) Is(target error) bool { return target == ErrFormatTooNew }
