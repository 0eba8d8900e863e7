package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SoftHSMModuleEnv names the environment variable that gives the SoftHSM2
// PKCS#11 module's file; .ci/run sets it. Unset, the usual places are
// tried (Debian's /usr/lib/softhsm/libsofthsm2.so first).
const SoftHSMModuleEnv = "SDA_TEST_SOFTHSM2_MODULE"

var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// SoftHSMToken is a throwaway SoftHSM2 token made by [SoftHSM].
type SoftHSMToken struct {
	// Module is the PKCS#11 module's file.
	Module string
	// Label is the token's label.
	Label string
	// PIN is the user PIN; PINFile holds it on one line.
	PIN     string
	PINFile string
}

// SoftHSM creates a SoftHSM2 token for the test in its own directory
// under t.TempDir(): it writes a SoftHSM2 configuration whose token
// directory is there, points SOFTHSM2_CONF at it for the test
// (t.Setenv: such a test cannot be parallel) and initialises a token with
// softhsm2-util in the first free slot. Two test runs at once use two
// directories and do not see each other's tokens. Without softhsm2-util or
// the module, the test ends through [Missing].
//
// A PKCS#11 module reads SOFTHSM2_CONF when it is initialised: a test
// must close everything it opened from the module before it ends, so that
// the next test's initialisation reads its own configuration.
func SoftHSM(t testing.TB, label string) *SoftHSMToken {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		Missing(t, "softhsm2-util not found: install SoftHSM2 (Debian: apt-get install softhsm2)")
	}
	module := os.Getenv(SoftHSMModuleEnv)
	if module == "" {
		for _, m := range softHSMModules {
			if _, err := os.Stat(m); err == nil {
				module = m
				break
			}
		}
	}
	if module == "" {
		Missing(t, "the SoftHSM2 PKCS#11 module was not found: install SoftHSM2 or set %s", SoftHSMModuleEnv)
	}
	if _, err := os.Stat(module); err != nil {
		Missing(t, "the SoftHSM2 PKCS#11 module: %v", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	cfg := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tok := &SoftHSMToken{Module: module, Label: label, PIN: "1234-user", PINFile: filepath.Join(dir, "pin")}
	if err := os.WriteFile(tok.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", "5678-so", "--pin", tok.PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return tok
}
