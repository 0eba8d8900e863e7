package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// The commands that explain and compare the access that the policies give:
// explain, what-if, diff, test, changes. The answers are decoded from the
// service's JSON (docs/PROTOCOL.md section 9), and the offline diff and
// test go through the same JSON, so that both print alike.

// adminAnalysisCmds are the commands that explain and compare the access
// the policies give, in help order.
var adminAnalysisCmds = []*command{adminExplainCmd, adminWhatIfCmd, adminDiffCmd, adminTestCmd, adminChangesCmd}

// Paths of the administration API that these commands call.
const (
	diffPath    = policy.AdminPathPrefix + "diff"
	changesPath = policy.AdminPathPrefix + "changes"
)

// timeProfileFlags are -time and -profile: the time of a decision (default:
// the service's now) and the token profile (default: the service's).
type timeProfileFlags struct {
	at, profile *string
}

func addTimeProfileFlags(fs *flag.FlagSet) timeProfileFlags {
	return timeProfileFlags{
		at:      fs.String("time", "", "decide at this RFC 3339 `time` (default: now)"),
		profile: fs.String("profile", "", "token `profile`: v1 (operation names only) or v2 (structured scopes) (default: the service's)"),
	}
}

// parse checks the flags; a nil time or "" profile is the default.
func (f timeProfileFlags) parse() (*time.Time, string, error) {
	var at *time.Time
	if *f.at != "" {
		t, err := parseOptionalTime("time", *f.at)
		if err != nil {
			return nil, "", err
		}
		at = &t
	}
	if *f.profile != "" {
		if _, err := parseProfile(*f.profile); err != nil {
			return nil, "", err
		}
	}
	return at, *f.profile, nil
}

var adminWhatIfCmd = adminCommand("what-if", "", "show what changes of policies, subjects and devices would grant and revoke",
	`Sends the changes of -f FILE (JSON or YAML, "-": stdin) to POST
/admin/v1/what-if and prints the grants, (subject, device, operation)
triples, that they would add and remove at -time (default: now), grouped
by operation and by the classes of subjects and devices that the policies
treat alike; nothing is written. The file holds a list of changes, or an
object with "changes" (and optionally "time", "profile", "limit", which the
flags override): each
change is {"kind": "policy"|"subject"|"device", "id": ID, and the record
under its kind ("policy": {...}) or "delete": true}. -details N also lists
up to N of the grants. With -json, the service's answer.

For example, changes.yaml:
    - kind: subject
      id: bob
      subject: {id: bob, kind: user, groups: [technicians]}
    - kind: policy
      id: roof
      delete: true
`, "  sdactl admin what-if "+exampleService+" -f changes.yaml\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		file := fs.String("f", "", "the changes, a JSON or YAML `file` (\"-\": stdin) (required)")
		tp := addTimeProfileFlags(fs)
		details := fs.Int("details", 0, "also list up to `N` of the grants gained and lost")
		asJSON := fs.Bool("json", false, "print the service's answer as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *file == "" {
				return usageErrorf("-f is required")
			}
			if *details < 0 || *details > maxImpactDetails {
				return usageErrorf("-details: want 0 to %d", maxImpactDetails)
			}
			at, profile, err := tp.parse()
			if err != nil {
				return err
			}
			data, err := e.readJSONOrYAML(*file)
			if err != nil {
				return err
			}
			// The service decodes the changes strictly and names the
			// field that fails ("changes[0].policy.subjects"): the file
			// goes as it is, with the flags' time, profile and limit.
			body := map[string]json.RawMessage{}
			if data[0] == '[' {
				body["changes"] = data
			} else if err := json.Unmarshal(data, &body); err != nil {
				return inputErr(fmt.Errorf("%s: neither a list of changes nor an object with \"changes\": %w", *file, err))
			}
			if at != nil {
				body["time"], _ = json.Marshal(at)
			}
			if profile != "" {
				body["profile"], _ = json.Marshal(profile)
			}
			if *details > 0 {
				body["limit"], _ = json.Marshal(*details)
			}
			return whatIf(ctx, e, api, body, *details, *asJSON)
		}
	})

var adminDiffCmd = adminCommand("diff", "[A B]", "show the grants gained and lost between two points of the change log, or two stores",
	`Live, with -from SEQ: the grants gained and lost between the service's state
after change SEQ and after -to SEQ (default: now), from GET /admin/v1/diff;
"sdactl admin changes" lists the sequence numbers. The service keeps a
bounded history of the changes it applied: a -from older than that (or from
before it started) is refused (HTTP 410, exit 3) with the oldest SEQ it can
diff from.

Offline, with two files A and B: the grants gained and lost going from A to
B, each a store file ("sdactl authserver -store") or a document of "sdactl
store export"; no service is called. Stop the service that owns a store
file first, or diff an export of it.

Both print as "sdactl admin what-if" does, at -time (default: now), for
-profile (default: the service's; offline, v2, which counts the operations
allowed only under argument constraints too).
`, "  sdactl admin diff "+exampleService+" -from 2\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		fromFlag := fs.String("from", "", "live: the `SEQ` to diff from")
		toFlag := fs.String("to", "", "live: the `SEQ` to diff to (default: the current)")
		tp := addTimeProfileFlags(fs)
		details := fs.Int("details", 0, "also list up to `N` of the grants gained and lost")
		asJSON := fs.Bool("json", false, "print the impact as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 2, ""); err != nil {
				return err
			}
			if *details < 0 || *details > maxImpactDetails {
				return usageErrorf("-details: want 0 to %d", maxImpactDetails)
			}
			at, profile, err := tp.parse()
			if err != nil {
				return err
			}
			from, err := seqFlag("from", *fromFlag)
			if err != nil {
				return err
			}
			to, err := seqFlag("to", *toFlag)
			if err != nil {
				return err
			}
			switch {
			case len(args) == 1:
				return usageErrorf("give two files A B, or -from SEQ")
			case len(args) == 2 && (from >= 0 || to >= 0):
				return usageErrorf("-from and -to are for the live diff, not for two files")
			case len(args) == 2:
				return offlineDiff(e, args[0], args[1], at, profile, *details, *asJSON)
			case from < 0:
				return usageErrorf("-from is required (or two files A B)")
			}
			q := url.Values{"from": {strconv.FormatInt(from, 10)}}
			if to >= 0 {
				q.Set("to", strconv.FormatInt(to, 10))
			}
			if at != nil {
				q.Set("time", at.Format(time.RFC3339))
			}
			if profile != "" {
				q.Set("profile", profile)
			}
			if *details > 0 {
				q.Set("limit", strconv.Itoa(*details))
			}
			var raw jsonRaw
			if err := api.call(ctx, "GET", diffPath, q, nil, &raw); err != nil {
				return err
			}
			return printImpactAnswer(e.stdout, raw.b, *details, *asJSON)
		}
	})

// printImpactAnswer prints an impact from its JSON.
func printImpactAnswer(w io.Writer, raw []byte, details int, asJSON bool) error {
	var imp impactJSON
	if err := json.Unmarshal(raw, &imp); err != nil || imp.Object != "impact" {
		return inputErr(fmt.Errorf("the answer is not an impact: %s", shorten(raw)))
	}
	if asJSON {
		return printRecord(w, raw, true, nil)
	}
	return printImpact(w, &imp, details)
}

// changeJSON is one entry of the change log.
type changeJSON struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Delete bool   `json:"delete"`
}

// changesPage is one page of GET /admin/v1/changes.
type changesPage struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
	Seq     int64             `json:"seq"`
}

var adminChangesCmd = adminCommand("changes", "", "list the change log: which records were written and deleted, by sequence number",
	`Lists GET /admin/v1/changes: the changes the service knows after -since SEQ,
oldest first, page by page: the sequence number, the kind and id of the
record and whether it was written or deleted (no record content, never an
API key's hash). The sequence numbers are those of "sdactl admin diff
-from". With -json, a JSON array of the service's entries.
`, "  sdactl admin changes "+exampleService+"\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		sinceFlag := fs.String("since", "", "list the changes after this `SEQ` (default: from the oldest the service keeps)")
		limit := fs.Int("limit", 0, "list at most `N` changes (0: all)")
		asJSON := fs.Bool("json", false, "print a JSON array of the changes")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *limit < 0 {
				return usageErrorf("-limit must not be negative")
			}
			since, err := seqFlag("since", *sinceFlag)
			if err != nil {
				return err
			}
			arr := &jsonArray{w: e.stdout}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			if !*asJSON {
				fmt.Fprintln(tw, "SEQ\tCHANGE\tKIND\tID")
			}
			after, n := since, 0
			var current int64
			for {
				size := listPageSize
				if *limit > 0 {
					size = min(size, *limit-n)
				}
				q := url.Values{"limit": {strconv.Itoa(size)}}
				if after >= 0 {
					q.Set("since", strconv.FormatInt(after, 10))
				}
				var page changesPage
				if err := api.call(ctx, "GET", changesPath, q, nil, &page); err != nil {
					return err
				}
				if page.Object != "list" || len(page.Data) > size {
					return inputErr(fmt.Errorf("%s: the service's answer is not a list of at most %d changes", changesPath, size))
				}
				current = page.Seq
				last := after
				for _, raw := range page.Data {
					var c changeJSON
					// The changes of one batch share its seq.
					if err := json.Unmarshal(raw, &c); err != nil || c.Seq < last || c.Seq <= after {
						return inputErr(fmt.Errorf("%s: a change that is not the JSON expected, or out of order: %s", changesPath, shorten(raw)))
					}
					last = c.Seq
					if *asJSON {
						if err := arr.add(raw); err != nil {
							return err
						}
						continue
					}
					what := "put"
					if c.Delete {
						what = "delete"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", c.Seq, what, clean(c.Kind), clean(c.ID))
				}
				n += len(page.Data)
				after = last
				if !page.HasMore || len(page.Data) == 0 || (*limit > 0 && n >= *limit) {
					break
				}
			}
			if *asJSON {
				return arr.close()
			}
			if err := tw.Flush(); err != nil {
				return ioErr(err)
			}
			e.status("%d change(s) listed; the service is at seq %d", n, current)
			return nil
		}
	})

// seqFlag parses a sequence number flag: -1 when not given.
func seqFlag(name, v string) (int64, error) {
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, usageErrorf("-%s %q: want a sequence number (0 or more)", name, v)
	}
	return n, nil
}
