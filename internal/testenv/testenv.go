package testenv

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI: the environment variable CI is
// "true", as .ci/run and most CI systems set it.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test because a component it needs is missing: the test
// fails in CI and is skipped elsewhere. The message says what is missing
// and how to provide it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: a test whose component is missing fails instead of skipping)", msg)
	}
	t.Skip(msg)
}
