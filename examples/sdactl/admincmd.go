package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/securedeviceaccess/sda/policy"
)

// The "admin" commands: the device owner's tools on the administration API
// of an authorization service (docs/PROTOCOL.md section 9).

const adminSummary = "manage policies, subjects, groups, devices and API keys (sdactl help admin)"

const adminIntro = `sdactl admin manages the access to a fleet through the administration API
of an authorization service ("sdactl authserver", docs/PROTOCOL.md section 9):
policies, subjects, groups, devices and API keys, without writing JSON by
hand. Every command needs an administrator's API key.

The service is named by -url, or the environment variable SDA_URL; the API
key is read from the file named by -api-key-file, or SDA_API_KEY_FILE (a
file, never the key itself: a command line is visible to other users). The
key goes only over https (plain http only to a loopback host); -ca names
the CA certificates of a service whose certificate the system does not
trust.

Per collection (policies, subjects, devices, api-keys):
  list           a table (-json: a JSON array of the service's records)
  show ID        the record, readable (-json: as the service holds it)
  create         from flags, or -f FILE (JSON or YAML, strict: an unknown
                 field is refused), with flags overriding the file's fields
  update ID      flags change the fields they name, the rest is kept
                 (-f FILE replaces the record)
  delete ID
api-keys have no update; "api-keys create" prints the new secret once, on
stdout. -what-if on create, update and delete prints the grants that the
change would add and remove instead of writing it. Groups exist as the
memberships of subjects: groups list, show NAME, add-member NAME SUBJECT,
remove-member NAME SUBJECT.

Issued tokens and revocations have commands of their own, which take the
service's -url and the administrator's key file as -credential-file:
"sdactl tokens list", "sdactl revoke token|subject|device|anchor",
"sdactl revocations list".
`

// adminServiceDetails ends the help of every admin command.
const adminServiceDetails = `The service is named by -url or SDA_URL, the administrator's API key file
by -api-key-file or SDA_API_KEY_FILE ("sdactl help admin").

The service's answers map to exit codes: 1 for a key that is not an
administrator's (HTTP 403), a write the service refuses as a conflict
(409, such as a second device with one endpoint name) and a record changed
or created by someone else meanwhile (412); 3 for a rejected
credential (401) or request (400, 413, 415: the service's message names
the fields), a record that is not there (404) and a diff from before the
service's history (410), an answer that is not what was expected or a
redirect to plain http; 4 for a service that cannot be reached, times out
or is unavailable (5xx).
`

// adminCollection is one collection of the administration API.
type adminCollection struct {
	name string      // "policies": the command word and the path below /admin/v1/
	one  string      // "policy", in messages
	many string      // "policies", "API keys", in messages
	kind policy.Kind // the kind of a what-if change ("" for none)
	// header is the list table's header, and row a record's line.
	header string
	row    func(raw json.RawMessage) (string, error)
	// show prints one record for an owner.
	show func(w io.Writer, raw json.RawMessage) error
	// editor creates and changes records from flags and files; nil for a
	// collection without create and update commands of this kind.
	editor *recordEditor
	// examples are the help examples of each verb: command lines, each
	// indented by two spaces, that the tests run as printed.
	examples map[string]string
}

func (c *adminCollection) path() string { return policy.AdminPathPrefix + c.name }

func (c *adminCollection) recordPath(id string) string {
	return c.path() + "/" + url.PathEscape(id)
}

// recordEditor builds a record from flags or a file.
type recordEditor struct {
	// blank returns the record that "create" starts from without -f.
	blank func() any
	// decode decodes one record strictly.
	decode func(data []byte) (any, error)
	// id returns the record's id.
	id func(rec any) string
	// flags declares the record's flags on fs and returns the function
	// that applies the flags set (named in set) to rec; create tells a
	// creation from an update.
	flags func(fs *flag.FlagSet) func(rec any, set map[string]bool, create bool) error
}

// adminCmds are the admin commands, in the order help lists them.
var adminCmds = buildAdminCommands()

func buildAdminCommands() []*command {
	var cmds []*command
	for _, c := range adminCollections {
		cmds = append(cmds, c.listCmd(), c.showCmd())
		if c.editor != nil {
			cmds = append(cmds, c.createCmd(), c.updateCmd())
		}
		if c.name == "api-keys" {
			cmds = append(cmds, apiKeysCreateCmd)
		}
		cmds = append(cmds, c.deleteCmd())
	}
	cmds = append(cmds, groupsListCmd, groupsShowCmd, groupsAddMemberCmd, groupsRemoveMemberCmd)
	return append(cmds, adminAnalysisCmds...)
}

// adminCommand builds an admin command whose run function gets the
// administration API, opened at its first call.
func adminCommand(name, args, summary, details, example string,
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, api *adminAPI, args []string) error) *command {
	if example != "" {
		example = "\nExample:\n" + example
	}
	return &command{
		name:    "admin " + name,
		args:    args,
		summary: summary,
		details: details + "\n" + adminServiceDetails + example,
		flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
			sf := addAdminServiceFlags(fs)
			run := flags(fs)
			return func(ctx context.Context, e *env, args []string) error {
				// Usage errors of the command's own flags and arguments
				// come before the service flags are checked.
				api := &adminAPI{sf: sf, e: e}
				return run(ctx, e, api, args)
			}
		},
	}
}

// adminAPI opens the service lazily, so that a command checks its own
// flags and arguments first.
type adminAPI struct {
	sf  serviceFlags
	e   *env
	api *serviceAPI
}

// call calls the administration API with the -timeout bound.
func (a *adminAPI) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if a.api == nil {
		api, err := a.sf.open(a.e)
		if err != nil {
			return err
		}
		a.api = api
	}
	ctx, cancel := context.WithTimeout(ctx, *a.sf.timeout)
	defer cancel()
	return a.api.call(ctx, method, path, q, in, out)
}

// callHeader is call with request headers, returning the answer's
// headers (serviceAPI.callHeader).
func (a *adminAPI) callHeader(ctx context.Context, method, path string, hdr http.Header, in, out any) (http.Header, error) {
	if a.api == nil {
		api, err := a.sf.open(a.e)
		if err != nil {
			return nil, err
		}
		a.api = api
	}
	ctx, cancel := context.WithTimeout(ctx, *a.sf.timeout)
	defer cancel()
	return a.api.callHeader(ctx, method, path, nil, hdr, in, out)
}

// listAll lists a collection page by page (serviceAPI.listAll).
func (a *adminAPI) listAll(ctx context.Context, path string, q url.Values, limit int,
	id func(json.RawMessage) (string, error), each func(page []json.RawMessage) error) error {
	if a.api == nil {
		api, err := a.sf.open(a.e)
		if err != nil {
			return err
		}
		a.api = api
	}
	return a.api.listAll(ctx, path, q, limit, *a.sf.timeout, id, each)
}

// notFound reports whether err is the service's 404.
func notFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// preconditionFailed reports whether err is the service's 412: the record
// changed, or was created, since it was read.
func preconditionFailed(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed
}

// recordID returns the "id" member of a record.
func recordID(raw json.RawMessage) (string, error) {
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		return "", inputErr(fmt.Errorf("a record without id: %s", shorten(raw)))
	}
	return r.ID, nil
}

func (c *adminCollection) listCmd() *command {
	return adminCommand(c.name+" list", "", "list the "+c.many+" of an authorization service",
		`Lists GET /admin/v1/`+c.name+` page by page, sorted by id: a table, or with
-json a JSON array of the service's records.
`, c.examples["list"],
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			limit := fs.Int("limit", 0, "list at most `N` records (0: all)")
			asJSON := fs.Bool("json", false, "print a JSON array of the records")
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 0, 0, ""); err != nil {
					return err
				}
				if *limit < 0 {
					return usageErrorf("-limit must not be negative")
				}
				return printList(ctx, e, api, c.path(), *limit, *asJSON, c.header, recordID, c.row, "no "+c.one+" is held")
			}
		})
}

// printList lists path as a table of header and rows, or a JSON array.
func printList(ctx context.Context, e *env, api *adminAPI, path string, limit int, asJSON bool, header string,
	id func(json.RawMessage) (string, error), row func(json.RawMessage) (string, error), none string) error {
	arr := &jsonArray{w: e.stdout}
	n := 0
	err := api.listAll(ctx, path, url.Values{}, limit, id, func(page []json.RawMessage) error {
		if asJSON {
			for _, raw := range page {
				if err := arr.add(raw); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		if n == 0 {
			fmt.Fprintln(tw, header)
		}
		for _, raw := range page {
			line, err := row(raw)
			if err != nil {
				return err
			}
			fmt.Fprintln(tw, line)
			n++
		}
		return ioErr(tw.Flush())
	})
	if err != nil {
		return err
	}
	if asJSON {
		return arr.close()
	}
	if n == 0 {
		e.status("%s", none)
	}
	return nil
}

func (c *adminCollection) showCmd() *command {
	return adminCommand(c.name+" show", "ID", "show one of the "+c.many+" of an authorization service",
		`Shows GET /admin/v1/`+c.name+`/ID: readable, or with -json the record as the
service holds it.
`, c.examples["show"],
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			asJSON := fs.Bool("json", false, "print the record as JSON")
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 1, 1, "ID"); err != nil {
					return err
				}
				var raw json.RawMessage
				if err := api.call(ctx, "GET", c.recordPath(args[0]), nil, nil, &raw); err != nil {
					return c.notFoundErr(args[0], err)
				}
				return printRecord(e.stdout, raw, *asJSON, c.show)
			}
		})
}

// notFoundErr says which record a 404 is about.
func (c *adminCollection) notFoundErr(id string, err error) error {
	if notFound(err) {
		return withCode(exitInput, fmt.Errorf("no %s %q: %w", c.one, id, err))
	}
	return err
}

// printRecord prints a record with show, or as indented JSON.
func printRecord(w io.Writer, raw json.RawMessage, asJSON bool, show func(io.Writer, json.RawMessage) error) error {
	if asJSON {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return inputErr(fmt.Errorf("the service's answer is not JSON: %w", err))
		}
		b.WriteByte('\n')
		_, err := w.Write(b.Bytes())
		return ioErr(err)
	}
	return show(w, raw)
}

// flagsSet returns the names of the flags set on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// commandFlags are the flags of the create and update commands that are
// not record fields.
var commandFlags = map[string]bool{"url": true, "api-key-file": true, "ca": true, "timeout": true,
	"f": true, "json": true, "what-if": true, "details": true}

func (c *adminCollection) createCmd() *command {
	return adminCommand(c.name+" create", "", "create "+article(c.one)+" from flags or a JSON or YAML file",
		`Creates a `+c.one+` with PUT /admin/v1/`+c.name+`/ID, from the flags, or from
-f FILE (JSON or YAML; "-": stdin) with the flags given overriding the
file's fields. The file is decoded strictly: a field the service does not
know is refused, naming it. An existing `+c.one+` is not replaced (exit 1; use
update), even one created by someone else a moment before: the write is
conditional on no `+c.one+` having the id (If-None-Match: *). Prints the
`+c.one+` as written.
With -what-if nothing is written: the grants that the creation would add
and remove are printed instead.
`, c.examples["create"],
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			file := fs.String("f", "", "read the record from this JSON or YAML `file` (\"-\": stdin)")
			asJSON := fs.Bool("json", false, "print the record written as JSON")
			whatIf := addWhatIfFlags(fs)
			apply := c.editor.flags(fs)
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 0, 0, ""); err != nil {
					return err
				}
				rec := c.editor.blank()
				if *file != "" {
					var err error
					if rec, err = c.readRecord(e, *file); err != nil {
						return err
					}
				}
				if err := apply(rec, flagsSet(fs), *file == ""); err != nil {
					return err
				}
				id := c.editor.id(rec)
				if id == "" {
					return usageErrorf("-id is required (or an id in -f)")
				}
				if whatIf.on() {
					return whatIf.run(ctx, e, api, []policy.Change{putChange(c.kind, id, rec)})
				}
				err := c.put(ctx, e, api, id, rec, *asJSON, "created", http.Header{"If-None-Match": {"*"}})
				if preconditionFailed(err) {
					return failedErr(fmt.Errorf("%s %q exists; change it with \"sdactl admin %s update\"", c.one, id, c.name))
				}
				return err
			}
		})
}

// put writes rec with PUT, on the preconditions in hdr, and prints the
// record as written.
func (c *adminCollection) put(ctx context.Context, e *env, api *adminAPI, id string, rec any, asJSON bool, done string, hdr http.Header) error {
	var out json.RawMessage
	if _, err := api.callHeader(ctx, "PUT", c.recordPath(id), hdr, rec, &out); err != nil {
		return err
	}
	e.status("%s %s %s", done, c.one, id)
	return printRecord(e.stdout, out, asJSON, c.show)
}

// readRecord reads one record from a JSON or YAML file.
func (c *adminCollection) readRecord(e *env, path string) (any, error) {
	data, err := e.readJSONOrYAML(path)
	if err != nil {
		return nil, err
	}
	rec, err := c.editor.decode(data)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: not a %s record: %w", path, c.one, err))
	}
	return rec, nil
}

func (c *adminCollection) updateCmd() *command {
	return adminCommand(c.name+" update", "ID", "change "+article(c.one)+": the fields named by flags, or all from a file",
		`Reads the `+c.one+` (GET /admin/v1/`+c.name+`/ID), changes the fields that the
flags name and writes it back (PUT): the other fields are kept. With -f FILE
(JSON or YAML, "-": stdin) the file's record replaces the `+c.one+`, with the
flags given overriding its fields. The write is conditional on the `+c.one+`
being the one read (If-Match with its ETag): when someone else changed it
in between, nothing is written and the command exits with 1 ("changed
meanwhile; run again"), so that no update is lost. Prints the `+c.one+` as
written. With -what-if
nothing is written: the grants that the change would add and remove are
printed instead.
`, c.examples["update"],
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			file := fs.String("f", "", "replace the record with the one in this JSON or YAML `file` (\"-\": stdin)")
			asJSON := fs.Bool("json", false, "print the record written as JSON")
			whatIf := addWhatIfFlags(fs)
			apply := c.editor.flags(fs)
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 1, 1, "ID"); err != nil {
					return err
				}
				id := args[0]
				set := flagsSet(fs)
				changes := 0
				for name := range set {
					if !commandFlags[name] {
						changes++
					}
				}
				if changes == 0 && *file == "" {
					return usageErrorf("nothing to change: give the flags of the fields to change, or -f FILE")
				}
				var rec any
				if *file != "" {
					var err error
					if rec, err = c.readRecord(e, *file); err != nil {
						return err
					}
				}
				var cur json.RawMessage
				got, err := api.callHeader(ctx, "GET", c.recordPath(id), nil, nil, &cur)
				if err != nil {
					return c.notFoundErr(id, err)
				}
				etag := got.Get("ETag")
				if etag == "" {
					return inputErr(fmt.Errorf("the service sent %s %q without an ETag, so the update could not be made conditional on it", c.one, id))
				}
				if rec == nil {
					var err error
					if rec, err = c.editor.decode(cur); err != nil {
						return inputErr(fmt.Errorf("the service's %s %q is not the record expected: %w", c.one, id, err))
					}
				}
				if err := apply(rec, set, false); err != nil {
					return err
				}
				if got := c.editor.id(rec); got != id {
					return usageErrorf("the record's id %q is not %q: an update does not rename (create the new one, delete the old)", got, id)
				}
				if whatIf.on() {
					return whatIf.run(ctx, e, api, []policy.Change{putChange(c.kind, id, rec)})
				}
				err = c.put(ctx, e, api, id, rec, *asJSON, "updated", http.Header{"If-Match": {etag}})
				if preconditionFailed(err) {
					return failedErr(fmt.Errorf("%s %q changed meanwhile; run again: nothing was written", c.one, id))
				}
				return err
			}
		})
}

func (c *adminCollection) deleteCmd() *command {
	extra := ""
	if c.name == "subjects" {
		extra = "The subject's API keys are deleted with it.\n"
	}
	var whatIfText string
	if c.kind != "" {
		whatIfText = "With -what-if nothing is deleted: the grants that the deletion would\nremove are printed instead.\n"
	}
	return adminCommand(c.name+" delete", "ID", "delete "+article(c.one),
		`Deletes the `+c.one+` with DELETE /admin/v1/`+c.name+`/ID; one that is not
there exits with 3. `+extra+whatIfText, c.examples["delete"],
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			var whatIf *whatIfFlags
			if c.kind != "" {
				whatIf = addWhatIfFlags(fs)
			}
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 1, 1, "ID"); err != nil {
					return err
				}
				id := args[0]
				if whatIf.on() {
					return whatIf.run(ctx, e, api, []policy.Change{policy.DeleteRecord(c.kind, id)})
				}
				if err := api.call(ctx, "DELETE", c.recordPath(id), nil, nil, nil); err != nil {
					return c.notFoundErr(id, err)
				}
				e.status("deleted %s %s", c.one, id)
				return nil
			}
		})
}

// putChange is the change that writes rec, a record of kind.
func putChange(kind policy.Kind, id string, rec any) policy.Change {
	c := policy.Change{Kind: kind, ID: id}
	switch r := rec.(type) {
	case *policy.Policy:
		c.Policy = r
	case *policy.Subject:
		c.Subject = r
	case *policy.Device:
		c.Device = r
	}
	return c
}

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if strings.IndexByte("aeiouAEIOU", noun[0]) >= 0 {
		return "an " + noun
	}
	return "a " + noun
}
