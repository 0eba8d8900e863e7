package policy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// Paths of the HTTP API: [Service.PublicHandler] serves TokenPath,
// TrustAnchorsPath and [StatusUpdatePath], [Service.AdminHandler] the paths
// under AdminPathPrefix.
const (
	TokenPath        = "/ace-auth/token"
	TrustAnchorsPath = "/v3/trust-anchors"
	AdminPathPrefix  = "/admin/v1/"
)

// Error types of the JSON error body, by HTTP status.
const (
	errTypeBadRequest         = "bad_request"            // 400: body is not the expected JSON
	errTypeValidation         = "validation_error"       // 400: fields listed in "fields"
	errTypeUnauthorized       = "unauthorized"           // 401
	errTypeAccessDenied       = "access_denied"          // 403: the policies deny the token request
	errTypeForbidden          = "forbidden"              // 403: not an administrator
	errTypeNotFound           = "not_found"              // 404
	errTypeMethodNotAllowed   = "method_not_allowed"     // 405
	errTypeConflict           = "conflict"               // 409
	errTypePreconditionFailed = "precondition_failed"    // 412: If-Match or If-None-Match
	errTypeGone               = "gone"                   // 410: older than the change history
	errTypeTooLarge           = "payload_too_large"      // 413
	errTypeMediaType          = "unsupported_media_type" // 415
	errTypeTooManyRequests    = "too_many_requests"      // 429: see RateLimit
	errTypeInternal           = "internal_server_error"  // 500
	errTypeUnavailable        = "service_unavailable"    // 503
	errTypeOutcomeUnknown     = "outcome_unknown"        // 503: a write may or may not have been applied
)

// errorBody is the original service's JSON error format.
type errorBody struct {
	Object    string       `json:"object"`
	Code      int          `json:"code"`
	Type      string       `json:"type"`
	Message   string       `json:"message"`
	Fields    []FieldError `json:"fields"`
	RequestID string       `json:"request_id"`
}

// httpError is an error with its HTTP status and type.
type httpError struct {
	status int
	typ    string
	msg    string
	fields []FieldError
}

func (e *httpError) Error() string { return e.msg }

var (
	errBadJSON        = &httpError{http.StatusBadRequest, errTypeBadRequest, "the request body is not valid JSON of the expected shape", nil}
	errTooLarge       = &httpError{http.StatusRequestEntityTooLarge, errTypeTooLarge, "the request body is too large", nil}
	errMediaType      = &httpError{http.StatusUnsupportedMediaType, errTypeMediaType, "the request body must be application/json", nil}
	errPathNotFound   = &httpError{http.StatusNotFound, errTypeNotFound, "no such resource", nil}
	errMethodNotAllow = &httpError{http.StatusMethodNotAllowed, errTypeMethodNotAllowed, "method not allowed", nil}
)

// badJSON maps an error of strictUnmarshal to the answer to a request body
// it refused: a *JSONError naming the failing field, a *ValidationError
// of a record's own decoder, else errBadJSON.
func badJSON(err error) error {
	var je *JSONError
	var ve *ValidationError
	switch {
	case errors.As(err, &je):
		return je
	case errors.As(err, &ve):
		return ve
	}
	return errBadJSON
}

// jsonHTTPError is the answer to a request body refused by a strict
// decoder: 400 bad_request, naming in fields the JSON path of an unknown
// member or of a value of the wrong type.
func jsonHTTPError(je *JSONError) *httpError {
	he := &httpError{http.StatusBadRequest, errTypeBadRequest, errBadJSON.msg, nil}
	switch {
	case je.Problem == JSONSyntax:
		he.msg = fmt.Sprintf("the request body is not valid JSON (at byte %d)", je.Offset)
	case je.Problem == JSONTrailingData:
		he.msg = "the request body has data after the JSON value"
	case je.Path == "" && je.Problem == JSONWrongType:
		he.msg = "the request body " + je.FieldMessage()
	case je.Problem == JSONUnknownField:
		he.msg = fmt.Sprintf("the request body has an unknown field %q", je.Path)
		he.fields = []FieldError{{Name: je.Path, Message: je.FieldMessage()}}
	default:
		he.msg = fmt.Sprintf("field %q of the request body %s", je.Path, je.FieldMessage())
		he.fields = []FieldError{{Name: je.Path, Message: je.FieldMessage()}}
	}
	return he
}

// toHTTPError maps an error to its status, type and public message. Internal
// details (store errors, denial reasons naming policies) stay in the log.
func toHTTPError(err error) *httpError {
	var he *httpError
	var ve *ValidationError
	var de *DeniedError
	var be *RevocationBoundError
	var rl *RateLimitError
	var je *JSONError
	var hg *HistoryGoneError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &je):
		return jsonHTTPError(je)
	case errors.As(err, &rl):
		return &httpError{http.StatusTooManyRequests, errTypeTooManyRequests, "too many token requests; retry after the time in the Retry-After header", nil}
	case errors.As(err, &ve):
		return &httpError{http.StatusBadRequest, errTypeValidation, "the request has invalid fields", ve.Fields}
	case errors.Is(err, ErrInvalid):
		return &httpError{http.StatusBadRequest, errTypeValidation, "the request is invalid", nil}
	case errors.Is(err, ErrUnauthenticated):
		return &httpError{http.StatusUnauthorized, errTypeUnauthorized, "a valid bearer credential is required", nil}
	case errors.As(err, &de):
		msg := "the policies do not permit the request"
		if d := de.Decision.Denied; d != nil {
			msg = fmt.Sprintf("the policies do not permit operation %q on %q", d.Operation, d.Audience)
		}
		return &httpError{http.StatusForbidden, errTypeAccessDenied, msg, nil}
	case errors.Is(err, ErrForbidden):
		return &httpError{http.StatusForbidden, errTypeForbidden, "an administrator credential is required", nil}
	case errors.Is(err, ErrNotFound):
		return &httpError{http.StatusNotFound, errTypeNotFound, "not found", nil}
	case errors.As(err, &hg):
		msg := fmt.Sprintf("seq %d is older than the service's change history, which starts at seq %d", hg.Seq, hg.Oldest)
		return &httpError{http.StatusGone, errTypeGone, msg, []FieldError{{Name: hg.param, Message: fmt.Sprintf("the oldest seq available is %d", hg.Oldest)}}}
	case errors.Is(err, ErrPreconditionFailed):
		return &httpError{http.StatusPreconditionFailed, errTypePreconditionFailed, "the record changed since the entity tag in If-Match was read, or If-None-Match: * names a record that exists; nothing was written", nil}
	case errors.As(err, &be):
		return &httpError{http.StatusConflict, errTypeConflict, strings.TrimPrefix(be.Error(), "policy: conflict: "), nil}
	case errors.Is(err, ErrConflict):
		return &httpError{http.StatusConflict, errTypeConflict, "the change conflicts with an existing record", nil}
	case errors.Is(err, ErrOutcomeUnknown):
		return &httpError{http.StatusServiceUnavailable, errTypeOutcomeUnknown, "the store failed while committing the write, which may or may not have been applied; read the record back before retrying", nil}
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &httpError{http.StatusServiceUnavailable, errTypeUnavailable, "the service is temporarily unavailable", nil}
	}
	return &httpError{http.StatusInternalServerError, errTypeInternal, "internal error", nil}
}

func newRequestID() string {
	var b [16]byte
	if readRand(nil, b[:]) != nil {
		return "0"
	}
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"object":"error","code":500,"type":"internal_server_error","message":"internal error","fields":[],"request_id":""}`, http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, status, b)
}

// writeJSONBytes answers with status and the JSON document b.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	w.Write(b)
}

// setJSONHeaders sets the headers of a JSON answer in h, by their
// canonical names (textproto.CanonicalMIMEHeaderKey), with the three
// values in one array: each value is a slice of its own of length and
// capacity 1, so that changing or adding to one header reaches no other.
func setJSONHeaders(h http.Header) {
	v := &[3]string{"application/json", "no-store", "nosniff"}
	h["Content-Type"] = v[0:1:1]
	h["Cache-Control"] = v[1:2:2]
	h["X-Content-Type-Options"] = v[2:3:3]
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	he := toHTTPError(err)
	if he.status >= 500 {
		s.logger().LogAttrs(r.Context(), slog.LevelError, "sda.http.error",
			slog.String("request_id", requestID), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sda"`)
	}
	if rl := (*RateLimitError)(nil); errors.As(err, &rl) {
		w.Header().Set("Retry-After", rl.retryAfterSeconds())
	}
	fields := he.fields
	if fields == nil {
		fields = []FieldError{}
	}
	writeJSON(w, he.status, errorBody{Object: "error", Code: he.status, Type: he.typ, Message: he.msg, Fields: fields, RequestID: requestID})
}

func (s *Service) authenticate(r *http.Request) (Principal, error) {
	a := s.Authenticator
	if a == nil {
		a = apiKeyAuth{s}
	}
	p, err := a.Authenticate(r.Context(), r)
	if err != nil {
		return Principal{}, err
	}
	if p.Subject == "" {
		return Principal{}, fmt.Errorf("%w: no subject", ErrUnauthenticated)
	}
	return p, nil
}

// readBody reads a JSON request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errMediaType
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(unwrapRecorder(w), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, errBadJSON
	}
	return b, nil
}

// decodeTokenRequest decodes the JSON body of a token request strictly
// (unknown fields, trailing data and wrong types are rejected) and parses
// the cnf key. Audience and scope limits are checked by [Service.Issue].
func decodeTokenRequest(body []byte) (*token.AccessRequest, error) {
	return decodeTokenRequestKeys(body, nil)
}

// decodeTokenRequestKeys is decodeTokenRequest with the cnf key parsed
// through keys (nil: parsed every time).
func decodeTokenRequestKeys(body []byte, keys *cnfKeyCache) (*token.AccessRequest, error) {
	req, _, err := decodeTokenRequestAlgorithm(body, keys)
	return req, err
}

// decodeTokenRequestAlgorithm is decodeTokenRequestKeys that also returns
// the algorithm of the cnf key as the cache found it (0: unknown).
func decodeTokenRequestAlgorithm(body []byte, keys *cnfKeyCache) (*token.AccessRequest, token.Algorithm, error) {
	var j wire.TokenRequest
	if len(body) > maxTokenBodyBytes {
		return nil, 0, errTooLarge
	}
	if err := decodeTokenRequestJSON(body, &j); err != nil {
		return nil, 0, badJSON(err)
	}
	var f fieldErrs
	var cnfAlg token.Algorithm
	if j.GrantType != "client_credentials" {
		f.add("grant_type", "must be %q", "client_credentials")
	}
	req := &token.AccessRequest{Audience: j.Aud, Scope: strings.Split(j.Scope, " ")}
	if j.CNonce != nil {
		// A device nonce in hex, 1 to MaxCNonceLength bytes.
		n, err := hex.DecodeString(*j.CNonce)
		if err != nil || len(n) == 0 || len(n) > token.MaxCNonceLength {
			f.add("cnonce", "1 to %d bytes in hex", token.MaxCNonceLength)
		}
		req.CNonce = n
	}
	switch {
	case j.Cnf == "":
		f.add("cnf", "a PEM public key is required")
	case len(j.Cnf) > maxCnfPEMBytes:
		f.add("cnf", "longer than %d bytes", maxCnfPEMBytes)
	default:
		key, alg, err := keys.parsePEMAlgorithm(j.Cnf)
		switch {
		case errors.Is(err, token.ErrWeakKey):
			f.add("cnf", "%v", cnfKeyError(err))
		case err != nil:
			f.add("cnf", "not exactly one PEM public key of a supported type")
		}
		req.Key, cnfAlg = key, alg
	}
	return req, cnfAlg, f.err()
}

// serveToken answers POST /ace-auth/token.
func (s *Service) serveToken(w http.ResponseWriter, r *http.Request, requestID string) error {
	req, alg, p, err := s.readTokenRequest(w, r)
	if err != nil {
		s.tokenOutcome(err) // Issue reports the others
		return err
	}
	tok, err := s.issue(r.Context(), p.Subject, req, alg, requestID)
	if err != nil {
		return err
	}
	writeJSONBytes(w, http.StatusOK, appendTokenResponse(nil, tok.Token, tok.Claims.Expiry))
	return nil
}

// appendTokenResponse appends to dst the JSON of wire.TokenResponse for
// the token tok granted until until, as encoding/json writes it, in one
// buffer: the base64 alphabet and RFC 3339 times need no escaping.
func appendTokenResponse(dst, tok []byte, until time.Time) []byte {
	const (
		head = `{"access_token":"`
		mid  = `","granted_until":"`
		tail = `"}`
	)
	dst = slices.Grow(dst, len(head)+base64.StdEncoding.EncodedLen(len(tok))+len(mid)+len(time.RFC3339)+len(tail))
	dst = append(dst, head...)
	dst = base64.StdEncoding.AppendEncode(dst, tok)
	dst = append(dst, mid...)
	dst = until.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, tail...)
}

// readTokenRequest authenticates the caller of the token endpoint and
// reads its request, with the algorithm of its cnf key when the cache of
// cnf keys knows it (else 0).
func (s *Service) readTokenRequest(w http.ResponseWriter, r *http.Request) (*token.AccessRequest, token.Algorithm, Principal, error) {
	if err := s.limitAddress(r); err != nil { // RateLimit, ratelimit.go
		return nil, 0, Principal{}, err
	}
	p, err := s.authenticate(r)
	if err != nil {
		return nil, 0, Principal{}, err
	}
	if err := s.limitKey(r, p); err != nil {
		return nil, 0, Principal{}, err
	}
	body, err := readBody(w, r, maxTokenBodyBytes)
	if err != nil {
		return nil, 0, Principal{}, err
	}
	req, alg, err := decodeTokenRequestAlgorithm(body, &s.cnfKeys)
	if err != nil {
		return nil, 0, Principal{}, err
	}
	return req, alg, p, nil
}

// trustAnchorJSON is one entry of GET /v3/trust-anchors.
type trustAnchorJSON struct {
	Object       string `json:"object"`
	ID           string `json:"id"`
	Description  string `json:"description"`
	PublicKey    string `json:"public_key"`
	PublicKeyDER string `json:"public_key_der"`
	Fingerprint  string `json:"fingerprint"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at"`
	Etag         string `json:"etag"`
}

type listJSON[T any] struct {
	Object     string `json:"object"`
	Data       []T    `json:"data"`
	HasMore    bool   `json:"has_more"`
	TotalCount int    `json:"total_count"`
	After      string `json:"after,omitempty"`
	Limit      int    `json:"limit"`
}

// serveTrustAnchors answers GET (and HEAD) /v3/trust-anchors.
func (s *Service) serveTrustAnchors(w http.ResponseWriter, r *http.Request, _ string) error {
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	a, err := s.trustAnchor()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listJSON[trustAnchorJSON]{Object: "list", Data: []trustAnchorJSON{*a}, TotalCount: 1, Limit: 1})
	return nil
}

// trustAnchor describes the service's signing key: id is the first 16 bytes
// of the SHA-256 of its DER SubjectPublicKeyInfo in hex, fingerprint the
// whole hash in upper-case hex (the suffix of its "mbed.ta." name).
func (s *Service) trustAnchor() (*trustAnchorJSON, error) {
	if s.Signer == nil {
		return nil, fmt.Errorf("%w: no signing key configured", ErrUnavailable)
	}
	pub := s.Signer.Public()
	der, err := token.MarshalPublicKeyDER(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: anchor key: %v", ErrUnavailable, err)
	}
	pemBytes, err := token.MarshalPublicKeyPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: anchor key: %v", ErrUnavailable, err)
	}
	sum := sha256.Sum256(der)
	created := s.AnchorCreatedAt.UTC().Format(time.RFC3339)
	return &trustAnchorJSON{
		Object:       "trust-anchor",
		ID:           hex.EncodeToString(sum[:16]),
		Description:  s.AnchorDescription,
		PublicKey:    string(pemBytes),
		PublicKeyDER: base64.StdEncoding.EncodeToString(der),
		Fingerprint:  strings.ToUpper(hex.EncodeToString(sum[:])),
		CreatedAt:    created,
		UpdatedAt:    created,
		Etag:         hex.EncodeToString(sum[:8]),
	}, nil
}
