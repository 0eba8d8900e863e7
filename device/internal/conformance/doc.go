// Package conformance generates the device conformance vectors in
// device/testdata/conformance: the attack catalogue and the happy paths of
// the device's verification order as files of requests and the responses a
// device must send, for other implementations (a C device library, a
// mobile client) to run. docs/CONFORMANCE.md documents the format.
//
// [Files] makes every file in memory, deterministically: keys derived from
// fixed labels, ECDSA signatures as RFC 6979 makes them, Ed25519 device
// signatures, fixed times and nonces. The command genvectors writes them
// (go generate ./device); the device package's tests check that the
// committed files are exactly what Files makes and run each of them
// against a real agent built from the file alone.
//
// Adding a case is a few lines in the file of its group: start it with
// group.add (the default setup changed by edits), then add its steps with
// builder.once, builder.call, builder.delegatedOnce (a delegated request),
// builder.raw or builder.nonceRequest, each
// with the outcome the device must reach (ok, or rejected with the status,
// the check and the SDK's sentinel). The expected response bytes follow
// from the outcome and the setup.
//
// The package is internal: its API may change at any time.
package conformance
