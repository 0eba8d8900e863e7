package main

import (
	"context"
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

// Paths of the administration API that the revocation commands call
// (docs/PROTOCOL.md section 9, "Administration API").
const (
	issuedTokensPath = policy.AdminPathPrefix + "issued-tokens"
	revocationsPath  = policy.AdminPathPrefix + "revocations"
)

// listPage is one page of a list of the administration API.
type listPage struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// listAll calls GET path page by page, following has_more with the id of
// the last record of each page as after, and hands every record to each
// until limit records (0: all). id returns the record's position in the
// list order (its id or cti).
func (a *serviceAPI) listAll(ctx context.Context, path string, q url.Values, limit int, timeout time.Duration,
	id func(json.RawMessage) (string, error), each func(page []json.RawMessage) error) error {
	after := ""
	seen := 0
	for {
		size := listPageSize
		if limit > 0 && limit-seen < size {
			size = limit - seen
		}
		q.Set("limit", strconv.Itoa(size))
		if after != "" {
			q.Set("after", after)
		}
		var page listPage
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := a.call(cctx, "GET", path, q, nil, &page)
		cancel()
		if err != nil {
			return err
		}
		if page.Object != "list" || len(page.Data) > size {
			return inputErr(fmt.Errorf("%s: the service's answer is not a list of at most %d records", path, size))
		}
		if err := each(page.Data); err != nil {
			return err
		}
		seen += len(page.Data)
		if !page.HasMore || len(page.Data) == 0 || (limit > 0 && seen >= limit) {
			return nil
		}
		next, err := id(page.Data[len(page.Data)-1])
		if err != nil {
			return err
		}
		if next == after {
			return inputErr(fmt.Errorf("%s: the service's list does not advance past %q", path, after))
		}
		after = next
	}
}

// jsonArray writes a JSON array element by element, so that a long list
// is never held in memory.
type jsonArray struct {
	w io.Writer
	n int
}

func (j *jsonArray) add(raw json.RawMessage) error {
	sep := ",\n"
	if j.n == 0 {
		sep = "[\n"
	}
	j.n++
	_, err := fmt.Fprintf(j.w, "%s%s", sep, raw)
	return ioErr(err)
}

func (j *jsonArray) close() error {
	s := "\n]\n"
	if j.n == 0 {
		s = "[]\n"
	}
	_, err := io.WriteString(j.w, s)
	return ioErr(err)
}

var tokensListCmd = &command{
	name:    "tokens list",
	summary: "list the tokens an authorization service issued (its ledger)",
	details: `Lists GET /admin/v1/issued-tokens (docs/PROTOCOL.md section 12, "Ledger"):
the unexpired tokens the service issued, sorted by cti, page by page until
the end or -limit. Needs an administrator's API key. -subject and -aud
select the tokens of a subject, or naming a device (by id or audience, in
any form). A table by default (cti, subject, audiences, scope, issued,
expires; times RFC 3339, UTC), or with -json a JSON array of the service's
records, which also hold the token hashes ("token_hash", for "sdactl revoke
token -hash") and the anchor key id ("anchor", for "sdactl revoke anchor").

` + serviceExitCodes + `
Example:
  sdactl tokens list -url http://127.0.0.1:8080 -credential-file admin.apikey -subject alice
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		sf := addServiceFlags(fs, "administrator's")
		subject := fs.String("subject", "", "only the tokens of this `subject`")
		aud := fs.String("aud", "", "only the tokens naming this `device`: its id, or ep:<name> / id:<hex>")
		limit := fs.Int("limit", 0, "list at most `N` tokens (0: all)")
		asJSON := fs.Bool("json", false, "print a JSON array of the ledger's records")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *limit < 0 {
				return usageErrorf("-limit must not be negative")
			}
			if *aud != "" {
				if err := checkDevice(*aud); err != nil {
					return usageErrorf("-aud: %v", err)
				}
			}
			api, err := sf.open(e)
			if err != nil {
				return err
			}
			q := url.Values{}
			if *subject != "" {
				q.Set("subject", *subject)
			}
			if *aud != "" {
				q.Set("aud", *aud)
			}
			cti := func(raw json.RawMessage) (string, error) {
				var r policy.IssuedRecord
				if err := json.Unmarshal(raw, &r); err != nil || r.TokenID == "" {
					return "", inputErr(fmt.Errorf("a ledger record without cti: %s", shorten(raw)))
				}
				return r.TokenID, nil
			}
			if *asJSON {
				arr := &jsonArray{w: e.stdout}
				err := api.listAll(ctx, issuedTokensPath, q, *limit, *sf.timeout, cti, func(page []json.RawMessage) error {
					for _, raw := range page {
						if err := arr.add(raw); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				return arr.close()
			}
			n := 0
			err = api.listAll(ctx, issuedTokensPath, q, *limit, *sf.timeout, cti, func(page []json.RawMessage) error {
				tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
				if n == 0 {
					fmt.Fprintln(tw, "CTI\tSUBJECT\tAUD\tSCOPE\tISSUED\tEXPIRES")
				}
				for _, raw := range page {
					var r policy.IssuedRecord
					if err := json.Unmarshal(raw, &r); err != nil {
						return inputErr(fmt.Errorf("a ledger record that is not the JSON expected: %w", err))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.TokenID, orDash(r.Subject), orDash(strings.Join(r.Audience, ",")),
						orDash(strings.Join(r.Scope, ",")), fmtTime(r.IssuedAt), fmtTime(r.Expiry))
					n++
				}
				return ioErr(tw.Flush())
			})
			if err != nil {
				return err
			}
			if n == 0 {
				e.status("no issued token matches")
			}
			return nil
		}
	},
}

// checkDevice checks a device named by its id (32 lower-case hex digits)
// or an audience; the service checks it in full.
func checkDevice(s string) error {
	if len(s) == 32 && strings.Trim(s, "0123456789abcdef") == "" {
		return nil
	}
	if _, err := parseIdentity(s); err != nil {
		return fmt.Errorf("%q: want a device id (32 lower-case hex digits), \"ep:<endpoint name>\" or \"id:<device id>\"", s)
	}
	return nil
}

// shorten returns at most 200 bytes of data from the server, for an error
// message.
func shorten(data []byte) string {
	const max = 200
	if len(data) > max {
		return fmt.Sprintf("%q...", data[:max])
	}
	return fmt.Sprintf("%q", data)
}
