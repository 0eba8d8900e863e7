// Package testenv holds the one rule for tests that need a real component
// of the machine (a PostgreSQL server, pseudo-terminals, loopback TCP, a
// second loopback address): without it such a test is skipped on a
// developer's machine, and fails in CI (CI=true), where everything the tests
// need is installed by .ci/run and a skip would hide a test that never ran.
package testenv
