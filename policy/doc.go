// Package policy is the authorization side of Secure Device Access: who may
// do what to which devices, and the service that turns that into signed
// access tokens. A device owner's authorization server uses it: start with
// a [Service], given a [Store] ([OpenFileStore], [NewMemoryStore], or
// package sqlstore for PostgreSQL) and the trust anchor's private key, fill
// it with [Service.Apply] and serve it over HTTP ([Service.PublicHandler]
// for technicians, [Service.AdminHandler] for the owner's tools, or both
// with [Service.ServeHTTP]) or call [Service.Issue]. [Engine] decides token
// requests without a service.
//
// A [Policy] names subjects (users, groups, applications), operations (by
// name, or [AllOperations]; in the v2 profile with [ArgConstraint] values that bound
// their arguments), devices (a [DeviceSelector]: all, by device id, by
// endpoint name, or by custom attribute values), a token lifetime, a
// validity window, a status, an [Effect] and, for an allow policy,
// optionally a [DelegationRule]. The directories map each
// [Subject] to its groups and each [Device] to its identity and attributes.
// An [Engine] holds all of them in memory, indexed, and decides token
// requests ([Engine.Decide]); a [Store] keeps them durably ([MemoryStore],
// [FileStore] for a JSON file, or package sqlstore for PostgreSQL); a
// [Service] authenticates callers, decides with the Engine, mints tokens
// with package token and serves the HTTP API ([Service.PublicHandler],
// [Service.AdminHandler]).
//
// # Decision rules
//
// A request names a subject, audiences (devices) and operations, and is
// decided at a given time. It is all or nothing: it is allowed only if
// every (device, operation) pair is allowed. For one pair:
//
//   - only policies that are [Active] with ValidFrom <= t < ValidUntil
//     take part (a zero bound is open);
//   - a policy matches when it names the subject (by id under the
//     subject's kind, or one of its groups), selects the device and names
//     the operation or [AllOperations];
//   - a matching [Deny] policy denies the pair, whatever allows it (deny wins);
//   - otherwise a matching [Allow] policy allows it; none means denied.
//
// Unknown subjects and audiences naming no device of the directory are
// denied. A device selector with attributes matches a device whose value
// of every listed attribute is one of the listed values.
//
// Token lifetime: each pair uses, among the allow policies that permit it,
// the one allowing the latest expiry, min(now + TokenLifetime, ValidUntil).
// The token expires at the earliest of these over all pairs, and never
// after the start (ValidFrom) of an active deny policy that matches one of
// the pairs and is not yet valid. [Decision].Policies lists the policies
// used.
//
// Argument constraints: a v1 token carries a text scope only, so a pair
// allowed only by rules with argument constraints is denied in v1
// ([ErrStructuredScopeRequired]). In v2 ([Request].Structured) the
// operation is granted under the constraint sets that every requested
// device allows (unconstrained, or with exactly those constraints); when
// there is none the request is denied ([ErrConstraintsDiffer]), naming the
// first device that lacks one of the constraint sets of the first device
// allowed only under constraints. An unconstrained allow wins over
// constrained ones. Deny rules cannot carry constraints. A scope holds at
// most 20 permissions; surplus alternatives are dropped, which grants
// less, never more.
//
// Delegation: a granted operation is delegable ([Decision].Delegation)
// when, on every requested device, each permission the token carries for
// it is granted by an allow policy that applies, whose [DelegationRule]
// lets the operation be passed on, and that allows a token until the
// token's expiry; the depth is the least, over the delegable operations
// and devices, of the greatest MaxDepth of such policies. Delegation
// changes nothing else in a decision, and a [Service] puts it into v2
// tokens only (the delegation claim): a v1 token is never delegable.
//
// A denial carries its reason: the first denied pair in request order
// (devices outer, operations inner), an error such as [ErrDenyPolicy] and
// the deny policy's id ([Denial]). [Decision.Err] returns a
// *[DeniedError] matching [ErrDenied] and the reason.
//
// # Indexing
//
// Policies are indexed by (subject key, device key), where subject keys are
// the subject's id and groups and device keys the device's id, endpoint
// name, attribute values and "all devices"; a policy whose subjects x
// devices would exceed 64 entries is indexed by the smaller dimension and
// checked against the other. All indexes are under one map of keys, each
// key held once and shared by the policies, subjects and devices naming
// it. A decision looks up a handful of keys per device and never scans
// all policies: its cost grows with the policies that match the request,
// not with the store's size, and at 1,000,000 policies it costs what it
// does at 100,000 (see BenchmarkDecideScaling and BenchmarkMillion). Its working
// memory is reused across decisions, so that it allocates little more
// than the [Decision] it returns: with many policies the heap is large
// and the collector runs seldom, so that fresh memory is out of cache.
//
// # What-if and diff
//
// [Engine.WhatIf] previews changes without applying them and [Compare]
// compares two snapshots; both answer an [Impact]: the (subject, device,
// operation) grants gained and lost at a time, counted, summarised by the
// classes of subjects and devices that the policies involved treat alike
// (a group, an attribute selector), and listed up to a limit. They work
// by classes, evaluating each pair of a subject class and a device class
// that the change touches once, so that a change over 10,000 subjects and
// 10,000 devices takes tens of milliseconds (see BenchmarkWhatIf). A
// policy's delegation is not part of a grant: a change of it alone gains
// and loses nothing. A [Service] keeps the previous records of the last
// [MaxHistory] changes it applied since it last loaded a snapshot (at most
// [MaxHistoryBytes] of them), so that [Service.Diff] can compare the
// states at two sequence numbers; older ones are a
// [HistoryGoneError].
//
// # Explain, policy tests and groups
//
// [Engine.Explain] decides a request as Decide does and says why: per
// (device, operation) pair, the policy rules that matched and apply, the
// deny policies that applied, the allow policy that bounds the lifetime
// and, for a denied pair, up to three near misses, allow policies failing
// one or two conditions (subject, device, operation, status, valid_from,
// valid_until; profile and constraints for constrained allows), each
// failed condition described. Near misses are found through every policy
// listed under each of its subject keys and device keys (about 50 bytes
// per policy), and at most 64 policies are examined per pair, so
// an explanation does not grow with the number of policies: about two to
// five decisions, denied requests costing most (see BenchmarkExplain and
// BenchmarkEngineMemory); a store where more than 64 policies share one
// key may hide some near misses. Each policy records its position in
// every index list, so that deleting or replacing it does not scan lists
// that many policies share (BenchmarkDeleteSharedKey). A [TestSuite] of
// expectations ("no junior may update-firmware anywhere") runs with
// [Engine.RunTests], each (subject, device, operation) triple decided
// alone, failures explained. Groups have no record: they are memberships of
// subjects, which [Service.AddGroupMember] and [Service.RemoveGroupMember]
// change with a write conditional on the subject read ([Change].IfMatch),
// retried when it changed meanwhile, so that concurrent changes are not
// lost.
//
// # Sharing a store
//
// A [Service] applies the [Store]'s numbered changes ([Store.Changes]) to
// its Engine before each decision (or at most every MaxStaleness), so
// instances sharing one database see each other's writes without
// restarting; when a store no longer has the changes asked for, or they
// cannot be applied one by one (a batch that moved a unique name), the
// service reloads a snapshot. Decisions that arrive while the Store is
// being read share the next read, which sees everything committed before
// they arrived, so concurrent requests cost at most two reads rather than
// one each.
//
// # HTTP API
//
// [Service.PublicHandler] serves the endpoints that technicians'
// applications call, POST [TokenPath], GET [TrustAnchorsPath] and GET
// [StatusUpdatePath];
// [Service.AdminHandler] serves the administration API under
// [AdminPathPrefix]. Serve them on separate listeners to keep the
// administration API off the network the applications use (on an
// internal interface or loopback), or both on one listener with the
// Service itself ([Service.ServeHTTP]). Every handler also serves the
// probes, GET [HealthzPath] (the process serves HTTP) and GET [ReadyzPath]
// ([Service.Ready]: the Store answers and the Signer signs), without a
// credential, for Kubernetes-style liveness and readiness probes.
//
// A [RateLimit] (off unless set) limits the token endpoint per client
// address and per API key with token buckets, answering HTTP 429 with
// Retry-After; the number of buckets is bounded.
//
// Requests are routed by an [net/http.ServeMux] with method and wildcard
// patterns ("PUT /admin/v1/policies/{id}"). Before any authentication, a
// path that the handler does not serve is answered 404, and a method that
// the path does not take 405 with an Allow header (in the order GET, POST,
// PUT, DELETE; HEAD is answered wherever GET is). Paths are taken as they
// are: one with "//", "." or ".." segments, with a trailing slash or with
// an escaped slash (%2F) is answered 404, never redirected. Every answer
// carries an X-Request-Id, and every error is in the original service's
// JSON error format (docs/PROTOCOL.md section 9).
//
// GET of one record of the administration API and the answer to its PUT
// carry a strong ETag, a hash of the record's JSON as written that every
// instance sharing a store computes alike. PUT and DELETE honour If-Match
// and If-None-Match (RFC 9110 section 13.1): the service evaluates them
// and writes on condition that the record is still the one it evaluated
// ([Change].IfMatch, or [Change].Create when there was none), so a change
// made meanwhile through any instance fails the write with
// [ErrPreconditionFailed], answered 412, instead of being overwritten.
//
// # Metrics
//
// Service.Metrics, a [Metrics] hook, is told of tokens issued and denied
// (by [DenyReason]), the duration of decisions, of signing and of each
// Store and Ledger operation ([StoreOp]) with its error, the changes taken
// from the Store, snapshot loads ([SnapshotReason]) and HTTP requests by
// route pattern and status. The package depends on no metrics library:
// package policyprom adapts the hook to Prometheus. A nil hook costs
// nothing.
//
// # Security considerations
//
// The service fails closed: store errors make it unavailable
// ([ErrUnavailable], HTTP 503), never permissive. A write that fails is
// not applied and is answered with ErrUnavailable, except one whose
// commit the store saw fail in flight and could not confirm either way
// ([ErrOutcomeUnknown], HTTP 503 of type outcome_unknown). Every write is validated
// in full before it is applied, and a batch is applied entirely or not at
// all. API keys are 256-bit random secrets ([NewAPIKey]) of which only the
// SHA-256 hash is stored; an admin flag on the key guards the
// administration API, which [Service.AdminHandler] can keep on a listener
// of its own. A key authenticates only while its subject is in the
// directory. The requested cnf key must be a valid public key of a
// supported type (ECDSA P-256 in v1); the service keeps up to 1,024 keys
// it accepted, by their exact PEM bytes (at most 512), so that a client's key is not
// parsed again, and parses and checks any other bytes in full (whether a
// key was used lately shows in the time a request takes; the keys are
// public). Request bodies are capped (64 KiB for
// tokens, 1 MiB for administration), JSON is decoded strictly (unknown
// fields, wrong types and trailing data are rejected, with a [JSONError]
// naming the JSON path of the failing value, which the HTTP API returns in
// the error body's fields), and every list and string in a
// record is bounded (limits.go). With a [RateLimit], one address or one
// API key cannot take more than its share of the token endpoint, and failed
// logins count against the address. Denial reasons naming policies go to the
// audit log, not to the caller. Audit events are logged through
// Service.Logger: sda.token.issued, sda.token.denied, sda.token.revoked,
// sda.admin.put, sda.admin.create, sda.admin.delete. The audiences of a
// token event are a value of kind Any that slog's text and JSON handlers
// write as they write a []string (it holds one, with MarshalText,
// MarshalJSON and String methods).
//
// A delegable token lets its holder hand part of it on, offline, to keys
// the service never sees: the [Ledger] records the token, not its links,
// and the audit event of its issue names the delegation it allows.
// Revoking the token revokes every link below it on the devices. Only a
// policy that grants what the token carries, for the token's whole
// lifetime, makes an operation delegable, so that a delegation never
// outlasts or outgrows the owner's grant of it.
//
// # Ledger and revocation
//
// Every token is recorded in a [Ledger] (cti, token hash, revocation
// hash, subject, audience, scope, anchor, issue and expiry times) before
// [Service.Issue] returns it: a token whose record was not committed is
// never handed out (HTTP 503). The Store is the Ledger unless
// Service.Ledger names another; a Service with neither issues nothing
// ([ErrConfig]). Records are pruned [IssuedRetention] after their token
// expired, and at most Service.MaxIssued (default 1,000,000) are held: at
// the bound, once pruned, issuance fails with [ErrLedgerFull] (503).
// [FileStore] keeps its ledger in an append-only file beside its own
// (group-committed: concurrent issuers share one fsync), sqlstore in a
// table.
//
// [Service.Revoke] takes tokens back: one token (by cti or hash), a
// subject's tokens up to a time, the tokens sent to a device (expanded
// from the ledger), or an anchor key's tokens up to a time. A
// [Revocation] is a record of the Store, replicated to other instances
// like any record, relevant until the last token it can revoke expires;
// it is then left out of [Service.Revocations] and deleted by the next
// revocation's batch. A revocation after which the status update of a
// device would exceed its bounds (256 hashes, 64 token ids, 64 subject
// and 16 anchor cut-offs, 16 KiB) is refused with a
// *[RevocationBoundError] (HTTP 409). Devices learn of revocations from
// the status updates made from them (docs/PROTOCOL.md section 12);
// deleting a policy stops new tokens only.
//
// # Compatibility
//
// POST /ace-auth/token and GET /v3/trust-anchors follow the original
// Pelion/Izuma service (docs/PROTOCOL.md section 9): the same request
// and response JSON, the same limits (1 to 50 audiences, 1 to 20
// operations of at most 60 characters), all-or-nothing decisions and the
// same JSON error format. Service.Profile selects v1 tokens (the default,
// accepted by deployed devices) or v2 tokens. The administration API
// under /admin/v1/ is new; docs/PROTOCOL.md describes all of it.
package policy
