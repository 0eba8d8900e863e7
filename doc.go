// Package sda is the root of the Secure Device Access SDK: offline,
// policy-based, proof-of-possession access to IoT devices. It holds no code;
// this comment is the map.
//
// # Roles
//
// Three roles take part, and one process may play all three (test harnesses
// do):
//
//   - The authorization service (package policy) holds the device owner's
//     policies: who may do what to which devices. On request it decides and
//     mints a short-lived access token, signed by a trust anchor key, naming
//     the devices (audience), the permitted operations (scope), a lifetime
//     and the technician's proof-of-possession public key (cnf).
//   - The technician client (package client) holds a proof-of-possession
//     key, fetches and caches tokens, connects to a device over any
//     transport, asks it for a nonce and sends an operation request: the
//     nonce, the operation and the token, signed with its key.
//   - The device agent (package device) verifies everything offline, with
//     no network: the token's signature against its trust anchors (package
//     trust), audience, time, the proof-of-possession signature, nonce
//     freshness and scope, and only then runs the operation and answers.
//
// # Flow
//
//	technician app                 authorization service            device
//	    | POST /ace-auth/token (aud, scope, cnf) |                       |
//	    |--------------------------------------->| decide, sign          |
//	    |<---------------- access token ---------|                       |
//	    |                      [1] nonce request                         |
//	    |--------------------------------------------------------------->|
//	    |<------------------------------- nonce ------------------------|
//	    |    [3, COSE_Sign1(nonce, operation, token) signed with PoP key]|
//	    |--------------------------------------------------------------->| verify, run
//	    |<------------------------ status, data ------------------------|
//
// # Packages
//
// Arrows point down only:
//
//	examples/          runnable programs: the hvac demo, the sdactl CLI
//	client/ device/    the two protocol roles
//	policy/            policies, decisions, the token issuance service
//	trust/             trust anchors and their stores
//	token/             tokens, scopes, COSE signing and verification, keys
//	transport/         moving opaque messages: framing, fragmentation, pipes
//	internal/          strict CBOR (internal/codec), the envelope (internal/wire)
//
// # Conventions
//
// Constructors follow one rule. New* builds a value in memory and does no
// I/O (device.New, trust.NewMemoryStore, policy.NewMemoryStore). Open*
// opens a local resource that answers at once, a file, a directory or a
// serial port, and takes no context (trust.OpenFileStore,
// policy.OpenFileStore, device.OpenFileState, serial.Open). Whatever may wait
// on a peer, a network or a database takes a context.Context first
// (transport.Dial, transport.Listen, serial.Dial, sqlstore.Open,
// client.TokenClient.Fetch, client.Session.Do). Optional settings are a
// pointer to an Options struct whose nil value means the defaults.
//
// Errors are typed: every package has sentinel errors to test with
// errors.Is and error structs to read with errors.As, and bad input never
// panics.
//
// The wire formats are specified in docs/PROTOCOL.md: SDA v1, byte-compatible
// with the deployed Pelion/Izuma Secure Device Access protocol, and the v2
// extensions.
package sda
