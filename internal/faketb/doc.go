// Package faketb runs a test body with a stand-in testing.TB, for the
// runnable examples of the *test packages (examples get no *testing.T) and
// for tests that check a helper fails its test on bad setup.
//
// The package is internal and only for tests.
package faketb
