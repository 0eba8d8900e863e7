package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// ChromiumEnv names the environment variable that gives the Chromium (or
// Chrome) binary the browser tests drive; unset, Debian's chromium is
// looked for on PATH, then chromium-browser and google-chrome.
const ChromiumEnv = "SDA_TEST_CHROMIUM"

var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// Chromium returns the path of a headless-capable Chromium for the test.
// Without one, the test ends through [Missing].
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "%s=%s: %v", ChromiumEnv, p, err)
		}
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, "chromium not found: install Debian's chromium (apt-get install chromium) or set %s", ChromiumEnv)
	return ""
}
