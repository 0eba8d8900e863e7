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

	// ErrPreconditionFailed reports a conditional write of the
	// administration API (If-Match, If-None-Match; RFC 9110 section 13)
	// whose condition does not hold: the record changed, was created or
	// was deleted since the caller read it. Nothing was written.
	ErrPreconditionFailed = errors.New("policy: precondition failed")

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

// JSONProblem says what is wrong with JSON that a strict decoder refused.
type JSONProblem int

// JSON problems, in [JSONError].Problem.
const (
	// JSONSyntax: the input is not JSON (or is empty).
	JSONSyntax JSONProblem = iota + 1
	// JSONUnknownField: an object has a member the expected shape lacks.
	JSONUnknownField
	// JSONWrongType: a value is not of the expected JSON type (or not an
	// RFC 3339 time, base64 or an integer in range where one is expected).
	JSONWrongType
	// JSONTrailingData: something follows the JSON value.
	JSONTrailingData
)

// String names the problem as the HTTP API's error bodies do.
func (p JSONProblem) String() string {
	switch p {
	case JSONSyntax:
		return "not valid JSON"
	case JSONUnknownField:
		return "unknown field"
	case JSONWrongType:
		return "wrong type"
	case JSONTrailingData:
		return "data after the JSON value"
	}
	return "invalid JSON"
}

// JSONError reports JSON refused by a strict decoder of this package (the
// HTTP API's request bodies, records, store files, export documents): a
// syntax error, an unknown field, a value of the wrong type or data after
// the value. Path names the failing value as a JSON path relative to the
// document: members by name, separated by dots, and list entries by
// 0-based index in brackets ("subjects.userz", "operations[0].name",
// "aud[2]"); it is empty for the document itself and for syntax errors.
// It matches [ErrInvalid].
type JSONError struct {
	Problem JSONProblem
	Path    string
	// Expected, for JSONWrongType, names what was expected: "string",
	// "integer", "number", "boolean", "array", "object", "base64" or
	// "RFC 3339 time".
	Expected string
	// Offset, for JSONSyntax, is the byte offset where the input stopped
	// being JSON.
	Offset int64
}

// Error describes the problem and where it is.
func (e *JSONError) Error() string {
	switch {
	case e.Problem == JSONSyntax:
		return fmt.Sprintf("policy: invalid input: not valid JSON (at byte %d)", e.Offset)
	case e.Problem == JSONUnknownField:
		return fmt.Sprintf("policy: invalid input: unknown field %q", e.Path)
	case e.Problem == JSONWrongType && e.Path == "":
		return "policy: invalid input: the document " + e.FieldMessage()
	case e.Problem == JSONWrongType:
		return fmt.Sprintf("policy: invalid input: field %q %s", e.Path, e.FieldMessage())
	}
	return "policy: invalid input: " + e.Problem.String()
}

// FieldMessage is the message the HTTP API gives with the field's path:
// "unknown field", or for a wrong type "must be " and what was expected
// ("must be an array").
func (e *JSONError) FieldMessage() string {
	if e.Problem != JSONWrongType {
		return e.Problem.String()
	}
	switch e.Expected {
	case "integer", "array", "object", "RFC 3339 time":
		return "must be an " + e.Expected
	case "base64":
		return "must be a base64 string"
	}
	return "must be a " + e.Expected
}

// Unwrap returns [ErrInvalid].
func (e *JSONError) Unwrap() error { return ErrInvalid }
