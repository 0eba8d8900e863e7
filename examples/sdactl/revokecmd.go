package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// revokeBody is the body of POST /admin/v1/revocations.
type revokeBody struct {
	Kind    policy.RevocationKind `json:"kind"`
	TokenID string                `json:"cti,omitempty"`
	Hash    string                `json:"hash,omitempty"`
	Subject string                `json:"subject,omitempty"`
	Device  string                `json:"device,omitempty"`
	Anchor  string                `json:"anchor,omitempty"`
	Before  *time.Time            `json:"before,omitempty"`
	Reason  string                `json:"reason,omitempty"`
}

const revokeDetails = `Sends POST /admin/v1/revocations (docs/PROTOCOL.md section 12,
"Revocations") with an administrator's API key and prints the revocation
records that hold it (with -json: a JSON array of them). Revoking again
what is revoked writes nothing and prints the record held. Devices learn of
a revocation from the status update that technicians carry to them (see
"sdactl status show"); a status update holds at most 256 token hashes and 64
token ids per device, and a revocation beyond that is refused (exit 1) with
the advice to revoke by a subject or anchor cut-off instead.

`

// revokeCommand returns the command "revoke KIND", whose flags func
// declares the kind's own flags and returns the body to send.
func revokeCommand(kind policy.RevocationKind, summary, details, example string,
	flags func(fs *flag.FlagSet) func() (*revokeBody, error)) *command {
	return &command{
		name:    "revoke " + string(kind),
		summary: summary,
		details: details + "\n" + revokeDetails + serviceExitCodes + "\nExample:\n" + example,
		flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
			sf := addServiceFlags(fs, "administrator's")
			body := flags(fs)
			reason := fs.String("reason", "", "why, recorded with the revocation (at most 1024 bytes)")
			asJSON := fs.Bool("json", false, "print a JSON array of the revocation records")
			return func(ctx context.Context, e *env, args []string) error {
				if err := wantArgs(args, 0, 0, ""); err != nil {
					return err
				}
				b, err := body()
				if err != nil {
					return err
				}
				b.Kind, b.Reason = kind, *reason
				api, err := sf.open(e)
				if err != nil {
					return err
				}
				var page struct {
					Object string            `json:"object"`
					Data   []json.RawMessage `json:"data"`
				}
				cctx, cancel := context.WithTimeout(ctx, *sf.timeout)
				defer cancel()
				if err := api.call(cctx, "POST", revocationsPath, nil, b, &page); err != nil {
					return err
				}
				if page.Object != "list" {
					return inputErr(fmt.Errorf("the service's answer is not a list of revocations"))
				}
				if len(page.Data) == 0 {
					e.status("nothing to revoke: the ledger holds no unexpired token for that device")
				} else {
					e.status("%d revocation(s) held; devices learn of them from the next status update they are given", len(page.Data))
				}
				return printRevocations(e.stdout, page.Data, *asJSON, true)
			}
		},
	}
}

// printRevocations prints revocation records as a table (with a header
// line when header is set) or as JSON array elements.
func printRevocations(w io.Writer, recs []json.RawMessage, asJSON, header bool) error {
	if asJSON {
		arr := &jsonArray{w: w}
		for _, raw := range recs {
			if err := arr.add(raw); err != nil {
				return err
			}
		}
		return arr.close()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "KIND\tREVOKES\tBEFORE\tUNTIL\tCREATED\tBY\tREASON")
	}
	for _, raw := range recs {
		var r policy.Revocation
		if err := json.Unmarshal(raw, &r); err != nil {
			return inputErr(fmt.Errorf("a revocation record that is not the JSON expected: %w", err))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, revokes(&r), fmtTime(r.Before), fmtTime(r.Until),
			fmtTime(r.CreatedAt), orDash(r.CreatedBy), orDash(printable(r.Reason)))
	}
	return ioErr(tw.Flush())
}

// printable escapes the control and non-printable characters of text
// from the server, as %q does, without the quotes.
func printable(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// revokes describes what a revocation revokes.
func revokes(r *policy.Revocation) string {
	switch r.Kind {
	case policy.RevokeToken:
		var parts []string
		if r.TokenID != "" {
			parts = append(parts, "cti "+r.TokenID)
		}
		if r.Hash != "" {
			parts = append(parts, "hash "+r.Hash)
		}
		if len(r.Audience) > 0 {
			parts = append(parts, "on "+strings.Join(r.Audience, ","))
		} else {
			parts = append(parts, "on every device")
		}
		return strings.Join(parts, " ")
	case policy.RevokeSubject:
		return "subject " + printable(r.Subject)
	case policy.RevokeAnchor:
		return "anchor key id " + r.Anchor
	}
	return "-"
}

// hexFlag checks a hexadecimal flag value of min to max bytes.
func hexFlag(name, v string, min, max int) error {
	b, err := hex.DecodeString(v)
	switch {
	case err != nil:
		return usageErrorf("-%s: not hexadecimal", name)
	case len(b) < min || len(b) > max:
		if min == max {
			return usageErrorf("-%s: want %d bytes (%d hex digits), not %d", name, min, 2*min, len(b))
		}
		return usageErrorf("-%s: want %d to %d bytes, not %d", name, min, max, len(b))
	}
	return nil
}

// beforeFlag parses -before: empty means the service's current time.
func beforeFlag(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageErrorf("-before %q: want an RFC 3339 time such as 2026-05-01T12:00:00Z", v)
	}
	return &t, nil
}

var revokeTokenCmd = revokeCommand(policy.RevokeToken, "revoke one token, by its cti or its hash",
	`Revokes one token, named by -cti (its token id, hex) or -hash (the SHA-256
of the token as issued, or its revocation hash: 64 hex digits), as "sdactl
tokens list" and "sdactl token inspect" show them. A token the ledger knows
is revoked on the devices it names; one it does not know, on every device.
`,
	`  sdactl revoke token -url http://127.0.0.1:8080 -credential-file admin.apikey \
      -cti 31d4d137fdc9a3fc5583f19ed969a0f7 -reason "left the company"
`,
	func(fs *flag.FlagSet) func() (*revokeBody, error) {
		cti := fs.String("cti", "", "the token's id (cti), `hex`")
		hash := fs.String("hash", "", "the token's hash, 64 `hex` digits")
		return func() (*revokeBody, error) {
			switch {
			case (*cti == "") == (*hash == ""):
				return nil, usageErrorf("give exactly one of -cti and -hash")
			case *cti != "":
				if err := hexFlag("cti", *cti, 1, 64); err != nil {
					return nil, err
				}
			default:
				if err := hexFlag("hash", *hash, 32, 32); err != nil {
					return nil, err
				}
			}
			return &revokeBody{TokenID: strings.ToLower(*cti), Hash: strings.ToLower(*hash)}, nil
		}
	})

var revokeSubjectCmd = revokeCommand(policy.RevokeSubject, "revoke every token of a subject issued up to a time",
	`Revokes every token of -subject issued at or before -before (default: now,
the service's time): a subject cut-off, one entry in every device's status
update however many tokens it covers. Tokens issued later stay valid, so a
technician whose phone was stolen can be given a new token at once.
`,
	`  sdactl revoke subject -url http://127.0.0.1:8080 -credential-file admin.apikey \
      -subject alice -reason "phone stolen"
`,
	func(fs *flag.FlagSet) func() (*revokeBody, error) {
		subject := fs.String("subject", "", "the `subject` whose tokens to revoke (required)")
		before := fs.String("before", "", "revoke the tokens issued at or before this RFC 3339 `time` (default: now)")
		return func() (*revokeBody, error) {
			if *subject == "" {
				return nil, usageErrorf("-subject is required")
			}
			b, err := beforeFlag(*before)
			if err != nil {
				return nil, err
			}
			return &revokeBody{Subject: *subject, Before: b}, nil
		}
	})

var revokeDeviceCmd = revokeCommand(policy.RevokeDevice, "revoke every unexpired token naming a device",
	`Revokes every unexpired token of the ledger whose audience names -device
(its id, or its ep: or id: audience; a token naming it in any form counts),
each as a token revocation; prints one record per token. Tokens issued later
stay valid. When the ledger holds none, nothing is revoked (exit 0).
`,
	`  sdactl revoke device -url http://127.0.0.1:8080 -credential-file admin.apikey \
      -device ep:hvac-1 -reason "sold"
`,
	func(fs *flag.FlagSet) func() (*revokeBody, error) {
		device := fs.String("device", "", "the `device`: its id (32 hex digits), or ep:<name> / id:<hex> (required)")
		return func() (*revokeBody, error) {
			if *device == "" {
				return nil, usageErrorf("-device is required")
			}
			if err := checkDevice(*device); err != nil {
				return nil, usageErrorf("-device: %v", err)
			}
			return &revokeBody{Device: *device}, nil
		}
	})

var revokeAnchorCmd = revokeCommand(policy.RevokeAnchor, "revoke every token an anchor key signed up to a time",
	`Revokes every token verified with the anchor key named by -anchor (its key
id: the service's kid, else the key's RFC 9679 thumbprint as "sdactl keys
show" prints it; "sdactl tokens list -json" shows it as "anchor") issued at
or before -before (default: now): an anchor cut-off, for a compromised
service or tokens that are not individually known.
`,
	`  sdactl revoke anchor -url http://127.0.0.1:8080 -credential-file admin.apikey \
      -anchor 01aeac901a2abf2ed8c8d7b48cc5c7a6dd6d7a90e60fef7f3314315173f43f84 \
      -before 2026-06-01T00:00:00Z -reason "service compromised"
`,
	func(fs *flag.FlagSet) func() (*revokeBody, error) {
		anchor := fs.String("anchor", "", "the anchor key id, `hex` (required)")
		before := fs.String("before", "", "revoke the tokens issued at or before this RFC 3339 `time` (default: now)")
		return func() (*revokeBody, error) {
			if *anchor == "" {
				return nil, usageErrorf("-anchor is required")
			}
			if err := hexFlag("anchor", *anchor, 1, 64); err != nil {
				return nil, err
			}
			b, err := beforeFlag(*before)
			if err != nil {
				return nil, err
			}
			return &revokeBody{Anchor: strings.ToLower(*anchor), Before: b}, nil
		}
	})

var revocationsListCmd = &command{
	name:    "revocations list",
	summary: "list the revocations an authorization service holds",
	details: `Lists GET /admin/v1/revocations: the revocations still relevant (until the
last token each can revoke has expired), sorted by id, page by page. Needs
an administrator's API key. A table by default (kind, what it revokes,
before, until, created, by, reason), or with -json a JSON array of the
service's records.

` + serviceExitCodes + `
Example:
  sdactl revocations list -url http://127.0.0.1:8080 -credential-file admin.apikey
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		sf := addServiceFlags(fs, "administrator's")
		limit := fs.Int("limit", 0, "list at most `N` revocations (0: all)")
		asJSON := fs.Bool("json", false, "print a JSON array of the revocation records")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *limit < 0 {
				return usageErrorf("-limit must not be negative")
			}
			api, err := sf.open(e)
			if err != nil {
				return err
			}
			id := func(raw json.RawMessage) (string, error) {
				var r policy.Revocation
				if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
					return "", inputErr(fmt.Errorf("a revocation record without id: %s", shorten(raw)))
				}
				return r.ID, nil
			}
			arr := &jsonArray{w: e.stdout}
			n := 0
			err = api.listAll(ctx, revocationsPath, url.Values{}, *limit, *sf.timeout, id, func(page []json.RawMessage) error {
				if *asJSON {
					for _, raw := range page {
						if err := arr.add(raw); err != nil {
							return err
						}
					}
					return nil
				}
				err := printRevocations(e.stdout, page, false, n == 0)
				n += len(page)
				return err
			})
			if err != nil {
				return err
			}
			if *asJSON {
				return arr.close()
			}
			if n == 0 {
				e.status("no revocation is held")
			}
			return nil
		}
	},
}
