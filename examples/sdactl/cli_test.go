package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
)

func TestParseArg(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want token.Arg
	}{
		{"int:21", token.Int(21)},
		{"int:-9223372036854775808", token.Int(-9223372036854775808)},
		{"text:fan", token.Text("fan")},
		{"text:", token.Text("")},
		{"text:a:b c", token.Text("a:b c")},
		{"hex:00ff", token.Bytes([]byte{0, 0xff})},
		{"hex:", token.Bytes([]byte{})},
	} {
		got, err := parseArg(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseArg(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"21", "int:", "int:0x10", "int:9223372036854775808", "hex:0", "hex:zz",
		"float:1.5", "text:" + strings.Repeat("a", token.MaxArgBytes+1), "text:\xff"} {
		if _, err := parseArg(in); err == nil {
			t.Errorf("parseArg(%q) accepted", in)
		}
	}
	if _, err := parseOperation("read data", nil); err == nil {
		t.Error("parseOperation accepted an invalid name")
	}
	if _, err := parseOperation("x", slices.Repeat([]string{"int:1"}, token.MaxArgs+1)); err == nil {
		t.Error("parseOperation accepted too many arguments")
	}
}

func TestDecodeToken(t *testing.T) {
	// A token, and a delegated token [token, chain].
	for _, raw := range [][]byte{{0xd8, 0x3d, 0xd2, 0x84}, {0x82, 0x58, 0x20, 0xd8, 0x3d}} {
		for _, in := range [][]byte{
			raw,
			[]byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
			[]byte("  " + base64.RawURLEncoding.EncodeToString(raw) + "\r\n"),
		} {
			got, err := decodeToken(in)
			if err != nil || !bytes.Equal(got, raw) {
				t.Errorf("decodeToken(%q) = %x, %v", in, got, err)
			}
		}
	}
	for _, in := range []string{"", " \n", "not base64!"} {
		if _, err := decodeToken([]byte(in)); !errors.Is(err, token.ErrMalformed) {
			t.Errorf("decodeToken(%q): %v, want ErrMalformed", in, err)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	for in, want := range map[string]token.Identity{
		"ep:hvac-1":            {Endpoint: "hvac-1"},
		"endpoint-name:hvac-1": {Endpoint: "hvac-1"},
		"id:0123":              {DeviceID: "0123"},
		"device-id:0123":       {DeviceID: "0123"},
	} {
		if got, err := parseIdentity(in); err != nil || got != want {
			t.Errorf("parseIdentity(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"hvac-1", "ep:", "id:", "EP:x"} {
		if _, err := parseIdentity(in); err == nil {
			t.Errorf("parseIdentity(%q) accepted", in)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	got, err := parseInterspersed(fs, []string{"one", "-a", "v", "two", "-b", "-", "--", "-a", "three"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"one", "two", "-", "-a", "three"}; !slices.Equal(got, want) || *a != "v" || !*b {
		t.Fatalf("positional %q (want %q), a=%q b=%v", got, want, *a, *b)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errors.New("plain"), exitFailed},
		{usageErrorf("x"), exitUsage},
		{inputErr(errors.New("x")), exitInput},
		{ioErr(fs.ErrNotExist), exitIO},
		{fmt.Errorf("wrapped: %w", inputErr(errors.New("x"))), exitInput},
		{ioErr(inputErr(errors.New("x"))), exitInput}, // the inner code wins
		{fetchError(&client.ServiceError{StatusCode: 403, Type: "access_denied"}), exitFailed},
		{fetchError(&client.ServiceError{StatusCode: 401, Type: "unauthorized"}), exitInput},
		{fetchError(&client.ServiceError{StatusCode: 503}), exitIO},
		{fetchError(context.DeadlineExceeded), exitIO},
		{fetchError(fmt.Errorf("%w: x", client.ErrTokenMismatch)), exitInput},
		{apiFailure(&apiError{Status: 403, Type: "forbidden"}), exitFailed},
		{apiFailure(&apiError{Status: 409, Type: "conflict"}), exitFailed},
		{apiFailure(&apiError{Status: 400, Type: "validation_error"}), exitInput},
		{apiFailure(&apiError{Status: 401, Type: "unauthorized"}), exitInput},
		{apiFailure(&apiError{Status: 404, Type: "not_found"}), exitInput},
		{apiFailure(&apiError{Status: 503, Type: "outcome_unknown"}), exitIO},
		{apiFailure(&apiError{Status: 302}), exitIO},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	e := &env{stdout: &bytes.Buffer{}}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&client.StatusError{Status: token.StatusAccessDenied}, exitFailed},
		{&client.StatusError{Status: token.StatusVerificationError}, exitFailed},
		{fmt.Errorf("%w: %w", client.ErrOutcomeUnknown, context.DeadlineExceeded), exitIO},
		{fmt.Errorf("%w: cnf", client.ErrTokenMismatch), exitInput},
		{fmt.Errorf("client: waiting for a nonce: %w", context.DeadlineExceeded), exitIO},
	} {
		if got := exitCode(e.callError(tc.err)); got != tc.want {
			t.Errorf("callError(%v): exit %d, want %d", tc.err, got, tc.want)
		}
	}
}

// run, in process: usage errors never touch the file system.
func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nope"}, {"keys"}, {"keys", "generate"}, {"token", "issue", "-key", "k"},
		{"token", "verify", "t"}, {"call", "tcp://127.0.0.1:1"}, {"device"}, {"authserver"},
		{"token", "inspect", "a", "b"}, {"keys", "show", "-bogus", "k"},
		{"tokens", "list"}, {"tokens", "list", "-url", "ftp://x", "-credential-file", "c"},
		{"revoke", "token", "-url", "http://127.0.0.1:1", "-credential-file", "c"},
		{"revoke", "subject", "-url", "http://127.0.0.1:1", "-credential-file", "c", "-subject", "a", "-before", "now"},
		{"revocations", "list", "-url", "http://192.0.2.1", "-credential-file", "c"},
		{"status", "show", "-url", "http://127.0.0.1:1", "-credential-file", "c"}, {"revoke"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != exitUsage {
			t.Errorf("run %q: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("run %q printed on stdout: %s", args, stdout.String())
		}
	}
}

func TestShowData(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:  `{"a":1}`,
		"\x00\xff": "hex:00ff",
		"a\nb":     "hex:610a62",
		"\x1b[2J":  "hex:1b5b324a", // no terminal escapes
	} {
		if got := showData([]byte(in)); got != want {
			t.Errorf("showData(%q) = %q, want %q", in, got, want)
		}
	}
}

// helpText returns "sdactl help <c.name>".
func helpText(c *command) string {
	var b bytes.Buffer
	printCommandHelp(&b, c)
	return b.String()
}

// TestKeysGenerateHelp: the help names the format, the cipher and the
// scrypt parameters that package client writes, by default and with
// -openssl, and why the default is not readable by OpenSSL.
func TestKeysGenerateHelp(t *testing.T) {
	h := helpText(keysGenerateCmd)
	ossl := client.OpenSSLKeyFileOptions()
	for _, want := range []string{
		"ENCRYPTED PRIVATE KEY", "PKCS#8", "PBES2", "AES-256-CBC", "scrypt",
		fmt.Sprintf("N = 2^%d, r = 8, p = 1", client.DefaultScryptWorkFactor),
		"-openssl", fmt.Sprintf("N = 2^%d, r = %d, p = %d", ossl.WorkFactor, ossl.R, ossl.P),
		"32 MiB", "openssl pkey",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("sdactl keys generate -h does not say %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "ChaCha20") {
		t.Errorf("sdactl keys generate -h names ChaCha20, which the key files it writes do not use:\n%s", h)
	}
}

// TestKeyFileNames: the README, the package documentation and the help
// texts name key files alike: private keys NAME.key, public keys NAME.pem.
func TestKeyFileNames(t *testing.T) {
	texts := map[string]string{}
	for _, c := range commands() {
		texts["sdactl help "+c.name] = helpText(c)
	}
	for _, f := range []string{"doc.go", "../../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
	}
	private := regexp.MustCompile(`(?:keys generate(?: -\S+(?: [^-\s]\S*)?)*? -o|-key) ([\w.-]+\.\w+)\b`)
	public := regexp.MustCompile(`(?:-pub|-anchor|-pop|>) ([\w.-]+\.(?:pem|key))\b`)
	for name, text := range texts {
		for _, m := range private.FindAllStringSubmatch(text, -1) {
			if !strings.HasSuffix(m[1], ".key") {
				t.Errorf("%s: private key file %q in %q; name private keys NAME.key", name, m[1], m[0])
			}
		}
		for _, m := range public.FindAllStringSubmatch(text, -1) {
			if !strings.HasSuffix(m[1], ".pem") || strings.Contains(m[1], ".pub.") {
				t.Errorf("%s: public key file %q in %q; name public keys NAME.pem", name, m[1], m[0])
			}
		}
	}
}

// TestKeyFileOptions: the encryption flags of keys generate select the
// options package client encrypts with, and refuse what does not go
// together.
func TestKeyFileOptions(t *testing.T) {
	ossl := client.OpenSSLKeyFileOptions()
	for _, tc := range []struct {
		encrypted bool
		work      int
		openssl   bool
		want      *client.KeyFileOptions
	}{
		{false, 0, false, nil},
		{true, 0, false, nil}, // the default
		{true, 0, true, ossl},
		{true, 12, false, &client.KeyFileOptions{WorkFactor: 12}},
	} {
		got, err := keyFileOptions(tc.encrypted, tc.work, tc.openssl)
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("encrypted %v, -scrypt-work-factor %d, -openssl %v: options %+v, want %+v", tc.encrypted, tc.work, tc.openssl, got, tc.want)
		}
	}
	for _, tc := range []struct {
		encrypted bool
		work      int
		openssl   bool
	}{
		{false, 0, true},
		{false, 12, false},
		{true, 12, true},
		{true, client.MinScryptWorkFactor - 1, false},
		{true, client.MaxScryptWorkFactor + 1, false},
	} {
		if _, err := keyFileOptions(tc.encrypted, tc.work, tc.openssl); err == nil || exitCode(err) != exitUsage {
			t.Errorf("%+v: %v, want a usage error", tc, err)
		}
	}
}
