// Package devicetest runs an in-process SDA device for tests of technician
// apps, in the style of net/http/httptest: [NewDevice] starts a real
// [device.Agent] with the trust anchors and operations a test gives it, and
// [Device.Conn] hands out in-memory connections to it ([transport.Pipe]),
// each served by the agent until the test ends.
//
// The device records every [device.Outcome] it makes, so a test can check
// not only what the app saw but why the device answered as it did: the check
// that failed and the typed reason ([Device.Outcomes], [Device.LastOutcome]).
//
//	dev := devicetest.NewDevice(t, devicetest.Options{
//		Anchors:    []trust.Anchor{iss.Anchor},
//		Operations: map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
//	})
//	err := app.ReadData(ctx, dev.Conn())
//	if d := dev.LastOutcome(); !errors.Is(d.Err, token.ErrOutOfScope) { ... }
//
// Tokens for the device come from package trust/trusttest (minted in the
// test) or package policy/policytest (an in-process authorization service).
//
// Every helper takes a [testing.TB], fails the test with t.Fatal when the
// device cannot be built, and registers its cleanup with t.Cleanup: the
// device stops and every connection closes when the test ends.
//
// # Security considerations
//
// The agent is the real one with the configuration given: its defaults are
// the secure ones, including throttling (five verification failures in a
// minute refuse new nonces for a minute). A test that provokes many
// verification failures sets Options.Config.Throttle.
package devicetest
