// Package trusttest mints what tests of Secure Device Access code
// (technician apps, device integrations) need, in one line each: trust
// anchors with their private keys ([NewIssuer]), access tokens signed by
// them ([Issuer.Token]) and technicians' proof-of-possession keys
// ([NewPoPKey]).
//
// It is for tests only. Every helper takes a [testing.TB] and fails the test
// with t.Fatal when something cannot be built, so a test never has to check
// an error from its setup.
//
// A test of a technician app against an in-process device needs an issuer
// for the device to trust, a token and a key:
//
//	iss := trusttest.NewIssuer(t)
//	dev := devicetest.NewDevice(t, devicetest.Options{TrustAnchors: []trust.Anchor{iss.Anchor}, ...})
//	pop := trusttest.NewPoPKey(t)
//	tok := iss.Token(t, dev.Audience(), "read-data", pop.Public())
//
// Package policy/policytest runs a whole authorization service instead, for
// tests that fetch tokens over HTTP as a real app does.
//
// # Security considerations
//
// The keys are real keys from crypto/rand, held in memory, and the tokens
// are real tokens: a device that trusts an [Issuer]'s anchor accepts its
// tokens. Never let a test anchor reach a device that is not under test.
package trusttest
