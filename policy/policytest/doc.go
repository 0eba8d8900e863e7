// Package policytest runs an in-process authorization service for tests, in
// the style of net/http/httptest: [NewServer] starts a real [policy.Service]
// with an in-memory store, behind an [httptest.Server] on loopback, signing
// tokens with a fresh trust anchor key.
//
// A test adds what it needs in one line each — a user and the API key a
// technician app authenticates with ([Server.AddUser]), a device
// ([Server.AddDevice]), a policy ([Server.Allow], [Server.Deny]) — and gives
// the app [Server.TokenURL] and the devices [Server.Anchor]:
//
//	srv := policytest.NewServer(t, nil)
//	alice := srv.AddUser(t, "alice", "technicians")
//	srv.AddDevice(t, dev.Identity())
//	srv.Allow(t, "group:technicians", "read-data configure", dev.Audience())
//	app := &client.TokenClient{Endpoint: srv.TokenURL(), Credential: alice}
//
// Package device/devicetest runs the device, and trust/trusttest mints keys
// and tokens directly when a test does not need the service.
//
// Every helper takes a [testing.TB], fails the test with t.Fatal on a setup
// error and registers its cleanup with t.Cleanup: the server stops when the
// test ends.
//
// # Security considerations
//
// The service is the real one, with its strict request decoding, its
// all-or-nothing decisions and its audit log ([Options].Logger). It serves
// plain HTTP on 127.0.0.1, which the client package accepts for loopback
// hosts only.
package policytest
