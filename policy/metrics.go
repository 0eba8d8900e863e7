package policy

import (
	"context"
	"net/http"
	"time"
)

// Metrics receives the measurements of a [Service]: tokens issued and
// denied, the latency of decisions, of signing and of the Store, the
// changes the service takes from its Store, its snapshot loads and its
// HTTP requests. Set Service.Metrics to receive them; nil (the default)
// reports nothing and costs nothing: no clock is read and nothing is
// allocated for it. Package policyprom implements it for Prometheus.
//
// The Service calls the methods from the goroutines that serve requests,
// concurrently: they must be safe for concurrent use, return quickly and
// not block. The policy package itself depends on no metrics library.
type Metrics interface {
	// TokenIssued is called once for every token issued, after its
	// ledger record committed.
	TokenIssued()
	// TokenDenied is called once for every token request refused
	// ([Service.Issue] or POST [TokenPath]), with the reason.
	TokenDenied(reason DenyReason)
	// Decision reports how long one policy decision took.
	Decision(d time.Duration)
	// Signing reports how long signing one token (COSE_Sign1 by
	// Service.Signer) took, whether it succeeded or not.
	Signing(d time.Duration)
	// StoreOperation reports one call of the Store or the Ledger: which
	// operation, how long it took and the error it returned (nil on
	// success). [ErrChangesTruncated] from [Store.Changes] is an answer,
	// not a failure, and is reported as nil (the snapshot load that
	// follows is reported with [SnapshotTruncated]).
	StoreOperation(op StoreOp, d time.Duration, err error)
	// ChangesApplied reports n changes of the Store taken into the
	// service's in-memory view ([Store.Changes]): its own writes and those
	// of other instances sharing the Store.
	ChangesApplied(n int)
	// SnapshotLoaded reports that the service loaded its whole view from
	// a [Store.Snapshot], and why.
	SnapshotLoaded(reason SnapshotReason)
	// HTTPRequest reports one request answered by the Service's HTTP
	// handlers: the route pattern it matched (such as "POST
	// /ace-auth/token" or "PUT /admin/v1/policies/{id}", never the raw
	// path, so the label values are bounded), or [RouteUnmatched], the
	// status code and how long the answer took.
	HTTPRequest(route string, status int, d time.Duration)
}

// RouteUnmatched is the route reported to [Metrics].HTTPRequest for a
// request that no route matched (answered 404 or 405).
const RouteUnmatched = "unmatched"

// DenyReason says why a token request was refused, for [Metrics]. Its
// values are a few fixed strings, fit for a metric label.
type DenyReason string

// Reasons of refused token requests.
const (
	// DenyPolicy: the policies do not permit the request (HTTP 403, [ErrDenied]).
	DenyPolicy DenyReason = "policy"
	// DenyInvalid: a malformed request (HTTP 400, 413, 415; [ErrInvalid]).
	DenyInvalid DenyReason = "invalid"
	// DenyUnauthenticated: no valid credential (HTTP 401, [ErrUnauthenticated]).
	DenyUnauthenticated DenyReason = "unauthenticated"
	// DenyUnavailable: the store, the ledger or the signer failed, or the
	// request was cancelled (HTTP 503, [ErrUnavailable]).
	DenyUnavailable DenyReason = "unavailable"
	// DenyRateLimited: the caller exceeded its rate (HTTP 429).
	DenyRateLimited DenyReason = "rate_limited"
	// DenyInternal: any other error (HTTP 500).
	DenyInternal DenyReason = "internal"
)

// DenyReasonOf returns the reason for which err refuses a token request,
// as the HTTP status the service answers it with says.
func DenyReasonOf(err error) DenyReason {
	switch toHTTPError(err).status {
	case http.StatusForbidden:
		return DenyPolicy
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return DenyInvalid
	case http.StatusUnauthorized:
		return DenyUnauthenticated
	case http.StatusServiceUnavailable:
		return DenyUnavailable
	case http.StatusTooManyRequests:
		return DenyRateLimited
	}
	return DenyInternal
}

// StoreOp names an operation of the [Store] or the [Ledger], for [Metrics].
type StoreOp string

// Operations of the Store and the Ledger.
const (
	StoreApply        StoreOp = "apply"         // [Store.Apply]
	StoreSnapshot     StoreOp = "snapshot"      // [Store.Snapshot]
	StoreChanges      StoreOp = "changes"       // [Store.Changes]
	StoreRecordIssued StoreOp = "record_issued" // [Ledger.RecordIssued]
	StoreIssued       StoreOp = "issued"        // [Ledger.Issued]
)

// SnapshotReason says why the service loaded a snapshot of its Store, for
// [Metrics].
type SnapshotReason string

// Reasons of snapshot loads.
const (
	// SnapshotInitial: the first load, or a load after a failed one.
	SnapshotInitial SnapshotReason = "initial"
	// SnapshotTruncated: the Store no longer had the changes asked for
	// ([ErrChangesTruncated]).
	SnapshotTruncated SnapshotReason = "truncated"
	// SnapshotRejected: the engine refused the changes one by one (a
	// batch that moved a unique name, or a collapsed change log).
	SnapshotRejected SnapshotReason = "rejected"
)

// metricsStart returns the time an operation measured for Metrics starts:
// the zero time, without reading the clock, when there is no Metrics.
func (s *Service) metricsStart() time.Time {
	if s.Metrics == nil {
		return time.Time{}
	}
	return time.Now()
}

// storeOp reports a Store or Ledger operation begun at start.
func (s *Service) storeOp(op StoreOp, start time.Time, err error) {
	if s.Metrics != nil {
		s.Metrics.StoreOperation(op, time.Since(start), err)
	}
}

// tokenOutcome reports a token request's outcome: issued when err is nil.
func (s *Service) tokenOutcome(err error) {
	switch {
	case s.Metrics == nil:
	case err == nil:
		s.Metrics.TokenIssued()
	default:
		s.Metrics.TokenDenied(DenyReasonOf(err))
	}
}

// statusRecorder is the ResponseWriter of a request measured for Metrics:
// it keeps the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the underlying ResponseWriter, for [http.ResponseController].
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// unwrapRecorder returns the server's ResponseWriter under a
// statusRecorder, which [http.MaxBytesReader] needs to tell the server
// that a body was too large.
func unwrapRecorder(w http.ResponseWriter) http.ResponseWriter {
	if r, ok := w.(*statusRecorder); ok {
		return r.ResponseWriter
	}
	return w
}

// serveMeasured serves r with next and reports it to Metrics.
func (rt *router) serveMeasured(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter)) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	next(rec)
	route := r.Pattern
	if route == "" {
		route = RouteUnmatched
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	rt.s.Metrics.HTTPRequest(route, status, time.Since(start))
}

// ledgerIssued queries the Ledger's records, reported to Metrics.
func (s *Service) ledgerIssued(ctx context.Context, l Ledger, f *IssuedFilter) (*IssuedList, error) {
	start := s.metricsStart()
	list, err := l.Issued(ctx, f)
	s.storeOp(StoreIssued, start, err)
	return list, err
}
