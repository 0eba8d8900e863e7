// Package apispec holds the tests that keep docs/openapi.yaml, the OpenAPI
// 3.0.3 document of the authorization service's HTTP API, true to the
// service. It has no code of its own.
//
// The tests start a real [policy.Service] behind an httptest server on
// loopback and drive every route it serves (from [policy.Service.Routes]),
// in success and in its main errors (400, 401, 403, 404, 405, 409, 410,
// 413, 415, 429, 503), validating each request and each response against the
// document with getkin/kin-openapi's openapi3filter, the bearer security
// scheme included. A request the tests mean to be malformed must fail the
// document's validation too, and a well-formed one pass it, so that the
// document's schemas neither allow what the service refuses for its shape
// nor refuse what it accepts. They fail when a route of the service is
// missing from the document, when the document has an operation the
// service does not serve, when an answer's status is not documented for
// its operation, and when a body has a member the document does not name.
package apispec
