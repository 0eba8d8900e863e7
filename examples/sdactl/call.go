package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/transport/serial"
)

var callCmd = &command{
	name:    "call",
	args:    "TARGET OPERATION [ARG...]",
	summary: "run an operation on a device with a token and its proof-of-possession key",
	details: `TARGET is tcp://host:port, or the path of a serial device (a character device
or any file that reads and writes a byte stream), opened read-write and framed
with the SDA serial framing ("mbeddbap", length, message, SHA-256). A serial
port (/dev/ttyUSB0 on Linux, /dev/cu.usbserial-1410 on macOS, COM3 on
Windows) is set to raw mode, 8N1, no flow control, at -baud bits per second;
other files are used as they are. A TCP
address needs its tcp:// prefix: a TARGET such as 127.0.0.1:7301 that names
no file is refused with a usage error (exit 2) suggesting tcp://127.0.0.1:7301,
since a bare host:port could also be a file name.

ARGs are typed: int:<decimal int64>, text:<string>, hex:<bytes in hex> (byte
strings are v2 only).

The session asks the device for a nonce, signs the request (nonce, operation,
token) with -key and prints the device's answer on stdout:
  status: success
  data: <the data, as text when it is printable UTF-8, else hex:...>
A failure status is printed the same way and exits with 1. A request sent
without an answer exits with 4: the operation may or may not have run.

-token may hold a delegated token ("sdactl token delegate"): -key is then the
key of its last link, and the request carries the chain.

Before connecting, the token's claims are read (not verified): a token that
has expired, or is not yet valid, by this computer's clock is reported on
stderr as a warning, and the call is still made, since the device's clock and
leeway decide (it answers "verification error" when it refuses the token).

Example:
  sdactl call -token alice.token -key tech.key -passphrase-file pass.txt \
      tcp://127.0.0.1:7301 configure int:21 text:fan
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error { return callFlags(fs, false) },
}

var statusPushCmd = &command{
	name:    "status push",
	args:    "TARGET OPERATION [ARG...]",
	summary: "run an operation on a device, carrying a status update to it",
	details: `As "sdactl call" (same TARGET, OPERATION, ARGs, flags and output), with the
signed status update of -update (written by "sdactl status show -o", base64 or
raw) carried in the operation request when the device reports, in its nonce
response, an older update of the update's issuer (docs/PROTOCOL.md section
12): a device can only be sent an update with a request it authorizes. The
update must be for the device (its aud). On stderr it then says whether the
update was carried and which sequence number the device holds afterwards:
  sdactl: status update seq 12 carried; the device now holds seq 12
A device that does not take status updates is never sent one. The operation's
outcome decides the exit code, as for "sdactl call".

Example:
  sdactl status push -update hvac-1.status -token alice.token -key tech.key \
      -passphrase-file pass.txt tcp://127.0.0.1:7301 read-data
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error { return callFlags(fs, true) },
}

// callFlags declares the flags of call (push false) or status push and
// returns the function that runs it.
func callFlags(fs *flag.FlagSet, push bool) func(context.Context, *env, []string) error {
	tokFile := fs.String("token", "", "access token `file`, base64 or raw (\"-\": stdin) (required)")
	keyFile := fs.String("key", "", "proof-of-possession private key `file` (required)")
	passFile := fs.String("passphrase-file", "", "passphrase of an encrypted -key, first line of this `file` (\"-\": stdin)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on connecting and on the operation")
	dataOut := fs.String("data-out", "", "also write the raw response data to this new `file`")
	baud := fs.Int("baud", serial.DefaultBaudRate, "line speed of a serial port TARGET, in bits per second")
	var updateFile *string
	if push {
		updateFile = fs.String("update", "", "signed status update `file`, base64 or raw, as \"sdactl status show -o\" writes it (required)")
	}
	return func(ctx context.Context, e *env, args []string) error {
		if err := wantArgs(args, 2, -1, "TARGET and OPERATION"); err != nil {
			return err
		}
		switch {
		case *tokFile == "":
			return usageErrorf("-token is required")
		case *keyFile == "":
			return usageErrorf("-key is required")
		case *timeout <= 0:
			return usageErrorf("-timeout must be positive")
		case *tokFile == "-" && *passFile == "-":
			return usageErrorf("-token and -passphrase-file cannot both read stdin")
		case push && *updateFile == "":
			return usageErrorf("-update is required")
		case push && *updateFile == "-" && (*tokFile == "-" || *passFile == "-"):
			return usageErrorf("only one of -update, -token and -passphrase-file can read stdin")
		}
		if err := checkTarget(args[0]); err != nil {
			return err
		}
		if err := checkTargetExists(args[0]); err != nil {
			return err
		}
		op, err := parseOperation(args[1], args[2:])
		if err != nil {
			return usageErrorf("%v", err)
		}
		raw, err := e.readToken(*tokFile)
		if err != nil {
			return err
		}
		var update *pushedUpdate
		if push {
			if update, err = e.readUpdate(*updateFile); err != nil {
				return err
			}
		}
		key, err := e.loadPrivateKey(*keyFile, *passFile)
		if err != nil {
			return err
		}
		e.warnTokenTime(raw)
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		conn, err := e.connect(ctx, args[0], *baud)
		if err != nil {
			return err
		}
		defer conn.Close()
		s := &client.Session{Conn: conn, Key: key, Tokens: client.StaticToken(raw), Timeout: *timeout}
		if update != nil {
			update.conn = conn
			s.Conn, s.Status, s.Device = update, update, update.device
		}
		e.status("calling %s on %s", op.Name, args[0])
		res, err := s.Do(ctx, op)
		if update != nil {
			update.report(e)
		}
		if err != nil {
			return e.callError(err)
		}
		fmt.Fprintf(e.stdout, "status: %s\n", token.StatusSuccess)
		if len(res.Data) > 0 {
			fmt.Fprintf(e.stdout, "data: %s\n", showData(res.Data))
		}
		if *dataOut != "" {
			return e.writeNewFile(*dataOut, res.Data)
		}
		return nil
	}
}

// checkTarget checks the syntax of a TARGET argument.
func checkTarget(target string) error {
	if addr, ok := strings.CutPrefix(target, "tcp://"); ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usageErrorf("TARGET %q: want tcp://host:port", target)
		}
		return nil
	}
	if target == "" || strings.Contains(target, "://") {
		return usageErrorf("TARGET %q: want tcp://host:port or a serial device path", target)
	}
	return nil
}

// checkTargetExists refuses a TARGET that names no file but looks like a
// TCP address (host:port, without the tcp:// prefix), with a usage error
// that suggests tcp://.
func checkTargetExists(target string) error {
	if strings.HasPrefix(target, "tcp://") {
		return nil
	}
	if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
		return nil // it exists, or connect reports why it cannot be used
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" || strings.Contains(host, "/") {
		return nil
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return nil
	}
	return usageErrorf("TARGET %q is not a file; for a TCP address write tcp://%s", target, target)
}

// warnTokenTime warns on stderr, from the token's unverified claims, when
// by the local clock it has expired or is not yet valid (allowing the
// device's default leeway): the device would then refuse it. The call is
// made anyway; the device's clock decides.
func (e *env) warnTokenTime(raw []byte) {
	raw, chain, err := splitHeld(raw)
	if err != nil {
		return // the device reports a malformed token
	}
	t, err := token.Parse(raw)
	if err != nil {
		return
	}
	c := t.UnverifiedClaims()
	if chain != nil {
		// The last link's window: a link without nbf keeps its parent's.
		for _, l := range chain.UnverifiedLinks() {
			c.Expiry = l.Expiry
			if !l.NotBefore.IsZero() {
				c.NotBefore = l.NotBefore
			}
		}
	}
	now := e.now()
	switch {
	case !c.Expiry.IsZero() && now.After(c.Expiry.Add(device.DefaultLeeway)):
		e.status("warning: the token expired at %s (%v ago); the device will refuse it unless its clock is behind",
			fmtTime(c.Expiry), now.Sub(c.Expiry).Truncate(time.Second))
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-device.DefaultLeeway)):
		e.status("warning: the token is not valid before %s (in %v); the device will refuse it unless its clock is ahead",
			fmtTime(c.NotBefore), c.NotBefore.Sub(now).Truncate(time.Second))
	}
}

// connect opens a message connection to target; a serial port is set to
// raw mode at baud bits per second, and another file that is not a regular
// file or a directory is used as a byte stream.
func (e *env) connect(ctx context.Context, target string, baud int) (transport.Conn, error) {
	if addr, ok := strings.CutPrefix(target, "tcp://"); ok {
		e.status("connecting to %s", addr)
		conn, err := transport.Dial(ctx, addr, nil)
		if err != nil {
			return nil, ioErr(fmt.Errorf("device unreachable: %w", err))
		}
		return conn, nil
	}
	// A port such as COM3 on Windows need not be visible to Stat: only
	// what Stat sees as a file or directory is refused here.
	if fi, err := os.Stat(target); err == nil && (fi.Mode().IsRegular() || fi.IsDir()) {
		return nil, usageErrorf("TARGET %s: not a serial device (a %v)", target, fi.Mode().Type())
	}
	conn, err := serial.Dial(ctx, target, &serial.Config{BaudRate: baud}, nil)
	switch {
	case err == nil:
		return conn, nil
	case errors.Is(err, transport.ErrInvalidOptions):
		return nil, usageErrorf("-baud: %v", err)
	case errors.Is(err, serial.ErrPortBusy):
		return nil, ioErr(fmt.Errorf("%w; close the program that holds it", err))
	case !errors.Is(err, serial.ErrNotSerialPort):
		return nil, ioErr(err)
	}
	// Not a serial port: a byte stream as it is.
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		return nil, ioErr(err)
	}
	conn, err = transport.NewStreamConn(f, nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	return conn, nil
}

// callError maps an error of Session.Do to its exit code, with a
// description of what it means for the operation.
func (e *env) callError(err error) error {
	var se *client.StatusError
	switch {
	case errors.As(err, &se):
		fmt.Fprintf(e.stdout, "status: %s\n", se.Status)
		if len(se.Data) > 0 {
			fmt.Fprintf(e.stdout, "data: %s\n", showData(se.Data))
		}
		return failedErr(fmt.Errorf("device answered %q (status %d): %w", se.Status.String(), uint32(se.Status), err))
	case errors.Is(err, client.ErrOutcomeUnknown):
		return ioErr(fmt.Errorf("no answer to the signed request; the operation may have run: %w", err))
	case errors.Is(err, client.ErrTokenMismatch):
		return inputErr(fmt.Errorf("the token does not fit -key: %w", err))
	case errors.Is(err, client.ErrInvalid):
		return usageErrorf("%v", err)
	case errors.Is(err, client.ErrBadResponse):
		return ioErr(err)
	default: // transport failures and timeouts before the request was sent
		return ioErr(fmt.Errorf("the operation did not run: %w", err))
	}
}

// parseOperation builds an operation from its name and typed arguments.
func parseOperation(name string, args []string) (token.Operation, error) {
	if err := token.ValidateName(name); err != nil {
		return token.Operation{}, fmt.Errorf("operation %q: %v", name, err)
	}
	if len(args) > token.MaxArgs {
		return token.Operation{}, fmt.Errorf("%d arguments, at most %d", len(args), token.MaxArgs)
	}
	op := token.Operation{Name: name}
	for i, a := range args {
		arg, err := parseArg(a)
		if err != nil {
			return token.Operation{}, fmt.Errorf("argument %d: %v", i+1, err)
		}
		op.Args = append(op.Args, arg)
	}
	return op, nil
}

// parseArg parses int:<int64>, text:<string> or hex:<bytes>.
func parseArg(s string) (token.Arg, error) {
	kind, v, ok := strings.Cut(s, ":")
	if !ok {
		return token.Arg{}, fmt.Errorf("%q: want int:<n>, text:<s> or hex:<bytes>", s)
	}
	switch kind {
	case "int":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return token.Arg{}, fmt.Errorf("%q: not a decimal 64-bit integer", s)
		}
		return token.Int(n), nil
	case "text":
		if !utf8.ValidString(v) {
			return token.Arg{}, fmt.Errorf("%q: not UTF-8", s)
		}
		if len(v) > token.MaxArgBytes {
			return token.Arg{}, fmt.Errorf("text longer than %d bytes", token.MaxArgBytes)
		}
		return token.Text(v), nil
	case "hex":
		b, err := hex.DecodeString(v)
		if err != nil {
			return token.Arg{}, fmt.Errorf("%q: not hex", s)
		}
		if len(b) > token.MaxArgBytes {
			return token.Arg{}, fmt.Errorf("bytes longer than %d", token.MaxArgBytes)
		}
		return token.Bytes(b), nil
	}
	return token.Arg{}, fmt.Errorf("%q: unknown type %q; want int, text or hex", s, kind)
}

// showData renders response data for a terminal: as text when it is
// printable UTF-8 on one line, else as hex.
func showData(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) }) {
		return string(b)
	}
	return "hex:" + hex.EncodeToString(b)
}
