package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit codes. They are documented in the package comment and by "sdactl help".
const (
	exitOK     = 0 // success
	exitFailed = 1 // the operation ran and failed or was denied (device status, token request denied)
	exitUsage  = 2 // bad command line
	exitInput  = 3 // bad input or failed verification (malformed key or token, wrong passphrase, bad signature, unknown anchor, wrong audience, expired)
	exitIO     = 4 // I/O or network error (file missing or exists, device unreachable, timeout, outcome unknown)
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the operation failed or was denied: the device answered with a failure
     status (verification error, access denied, operation failed, busy, ...),
     or the authorization service denied the request (a token request its
     policies deny, an API key that is not an administrator's, a revocation
     beyond a device's status update bound, a conflicting write), a record
     to create exists, an explained request is denied, a policy test fails
  2  usage error: unknown command, bad flag or argument
  3  input or verification error: a key, token or store that cannot be
     read back, a wrong passphrase, a token or status update that does not
     verify (signature, unknown anchor, audience, time, anchor constraints),
     a credential, request or device the authorization service rejects
  4  I/O or network error: a file that is missing or already exists, a
     device or service that cannot be reached or is unavailable, a timeout,
     an operation whose outcome is unknown (the request was sent but no
     answer arrived)
`

// cliError is an error with the exit code it maps to.
type cliError struct {
	code int
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// withCode wraps err with an exit code, keeping an inner code if err already
// carries one.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	return &cliError{code: code, err: err}
}

func usageErrorf(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}
func inputErr(err error) error  { return withCode(exitInput, err) }
func ioErr(err error) error     { return withCode(exitIO, err) }
func failedErr(err error) error { return withCode(exitFailed, err) }

// exitCode returns the exit code of err: the one it carries, or exitFailed.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitFailed
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// status prints a progress line for a long operation on stderr.
func (e *env) status(format string, a ...any) {
	fmt.Fprintf(e.stderr, "sdactl: "+format+"\n", a...)
}

// command is one (sub)command of sdactl.
type command struct {
	name    string // "keys generate"
	args    string // synopsis of the positional arguments
	summary string
	details string // extra help text after the flags
	// flags declares the command's flags on fs and returns the function
	// that runs it with the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

// commands returns every command, in the order help lists them.
func commands() []*command {
	return append([]*command{
		keysGenerateCmd, keysShowCmd,
		tokenIssueCmd, tokenDelegateCmd, tokenInspectCmd, tokenVerifyCmd, tokenFetchCmd,
		tokensListCmd, revokeTokenCmd, revokeSubjectCmd, revokeDeviceCmd, revokeAnchorCmd,
		revocationsListCmd, statusShowCmd, statusPushCmd,
		callCmd, deviceCmd, authserverCmd, storeExportCmd, storeImportCmd, versionCmd,
	}, adminCmds...)
}

// run is sdactl: it runs the command in args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	return e.run(ctx, args)
}

func (e *env) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		e.printHelp(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, _ := findCommand(args[1:]); c != nil {
				printCommandHelp(e.stdout, c)
				return exitOK
			}
			if g := groupOf(args[1:]); g == strings.Join(args[1:], " ") {
				printGroupHelp(e.stdout, g)
				return exitOK
			}
			fmt.Fprintf(e.stderr, "sdactl help: unknown command %q\n", strings.Join(args[1:], " "))
			return exitUsage
		}
		e.printHelp(e.stdout)
		return exitOK
	}
	c, rest := findCommand(args)
	if c == nil {
		if group := groupOf(args); group != "" {
			fmt.Fprintf(e.stderr, "sdactl %s: expected a subcommand:\n", group)
			printSubcommands(e.stderr, group)
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "sdactl: unknown command %q; run \"sdactl help\"\n", args[0])
		return exitUsage
	}
	fs := flag.NewFlagSet("sdactl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runFn := c.flags(fs)
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(e.stdout, c)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "sdactl %s: %v\n", c.name, err)
		fmt.Fprintf(e.stderr, "usage: %s (\"sdactl %s -h\" for help)\n", synopsis(c), c.name)
		return exitUsage
	}
	err = runFn(ctx, e, positional)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(e.stderr, "sdactl %s: %v\n", c.name, err)
	if code == exitUsage {
		fmt.Fprintf(e.stderr, "usage: %s (\"sdactl %s -h\" for help)\n", synopsis(c), c.name)
	}
	return code
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args() // fs.Parse stops at the first non-flag argument
		if len(args) == 0 {
			return append(positional, tail...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// findCommand finds the command named by the first one or two words of
// args and returns it with the remaining arguments.
func findCommand(args []string) (*command, []string) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// groupOf returns the longest run of the first words of args that names a
// group of subcommands ("keys", "token", "admin", "admin policies"), or "".
func groupOf(args []string) string {
	for n := len(args); n > 0; n-- {
		prefix := strings.Join(args[:n], " ")
		for _, c := range commands() {
			if strings.HasPrefix(c.name, prefix+" ") {
				return prefix
			}
		}
	}
	return ""
}

// printSubcommands lists the commands of a group.
func printSubcommands(w io.Writer, group string) {
	width := 17
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			width = max(width, len(c.name))
		}
	}
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  sdactl %-*s %s\n", width, c.name, c.summary)
		}
	}
}

// printGroupHelp prints the help of a group of subcommands: its
// introduction, when it has one, and its commands.
func printGroupHelp(w io.Writer, group string) {
	if intro := groupIntro[group]; intro != "" {
		fmt.Fprint(w, intro, "\n")
	}
	fmt.Fprintf(w, "Commands of sdactl %s (\"sdactl help <command>\" for each):\n", group)
	printSubcommands(w, group)
	fmt.Fprintf(w, "\n%s", exitCodesHelp)
}

// groupIntro introduces the groups that "sdactl help" lists as one line.
var groupIntro = map[string]string{"admin": adminIntro}

func (e *env) printHelp(w io.Writer) {
	fmt.Fprint(w, `sdactl is a command-line tool for Secure Device Access (SDA): keys, access
tokens, operations on devices, a simulated device and an authorization service.

Usage:
  sdactl <command> [flags] [arguments]
  sdactl help <command>     (or: sdactl <command> -h)

Commands:
`)
	for _, c := range commands() {
		if g, _, _ := strings.Cut(c.name, " "); groupIntro[g] != "" {
			if strings.HasPrefix(c.name, g+" ") && c == firstOfGroup(g) {
				fmt.Fprintf(w, "  %-17s %s\n", g+" ...", groupSummary[g])
			}
			continue
		}
		fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Private keys are never printed. Passphrases are read from a file given with
-passphrase-file ("-" for standard input), never from the command line.
Files sdactl writes are created with mode 0600 and never overwritten.
Results go to standard output; errors and progress lines to standard error.

`, exitCodesHelp)
}

// groupSummary is the line "sdactl help" prints for a group of groupIntro.
var groupSummary = map[string]string{"admin": adminSummary}

// firstOfGroup returns the first command of a group.
func firstOfGroup(group string) *command {
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			return c
		}
	}
	return nil
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: %s\n\n%s.\n", synopsis(c), c.summary)
	fs := flag.NewFlagSet("sdactl "+c.name, flag.ContinueOnError)
	c.flags(fs)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.details != "" {
		fmt.Fprintf(w, "\n%s", c.details)
	}
	fmt.Fprintf(w, "\n%s", exitCodesHelp)
}

func synopsis(c *command) string {
	s := "sdactl " + c.name + " [flags]"
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, min, max int, what string) error {
	if len(args) < min {
		return usageErrorf("missing %s", what)
	}
	if max >= 0 && len(args) > max {
		return usageErrorf("unexpected arguments %q", args[max:])
	}
	return nil
}
