package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/securedeviceaccess/sda/policy"
)

// Groups exist only as the memberships of subjects: the administration
// API lists them and changes one membership at a time, atomically on the
// service (GET /admin/v1/groups, PUT and DELETE
// /admin/v1/groups/{name}/members/{subject}).

const groupsPath = policy.AdminPathPrefix + "groups"

// groupJSON is a group as the service shows it: Members is a count in a
// list and the sorted member ids in a group's own answer.
type groupJSON struct {
	Object   string          `json:"object"`
	Name     string          `json:"name"`
	Members  json.RawMessage `json:"members"`
	Policies []string        `json:"policies"`
}

func groupName(raw json.RawMessage) (string, error) {
	var g groupJSON
	if err := json.Unmarshal(raw, &g); err != nil || g.Name == "" {
		return "", inputErr(fmt.Errorf("a group without name: %s", shorten(raw)))
	}
	return g.Name, nil
}

func memberPath(group, subject string) string {
	return groupsPath + "/" + url.PathEscape(group) + "/members/" + url.PathEscape(subject)
}

var groupsListCmd = adminCommand("groups list", "", "list the groups: members and the policies naming them",
	`Lists GET /admin/v1/groups page by page, sorted by name: each group named
by a subject or a policy, its number of members and the policies that name
it. With -json, a JSON array of the service's records.
`, "  sdactl admin groups list "+exampleService+"\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		limit := fs.Int("limit", 0, "list at most `N` groups (0: all)")
		asJSON := fs.Bool("json", false, "print a JSON array of the groups")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *limit < 0 {
				return usageErrorf("-limit must not be negative")
			}
			row := func(raw json.RawMessage) (string, error) {
				var g groupJSON
				var n int
				if err := json.Unmarshal(raw, &g); err != nil || json.Unmarshal(g.Members, &n) != nil {
					return "", inputErr(fmt.Errorf("a group that is not the JSON expected: %s", shorten(raw)))
				}
				return fmt.Sprintf("%s\t%d\t%s", g.Name, n, cell(orDash(strings.Join(g.Policies, ",")))), nil
			}
			return printList(ctx, e, api, groupsPath, *limit, *asJSON, "GROUP\tMEMBERS\tPOLICIES", groupName, row, "no group is named by a subject or a policy")
		}
	})

var groupsShowCmd = adminCommand("groups show", "NAME", "show a group's members and the policies naming it",
	`Shows GET /admin/v1/groups/NAME: the group's members and the policies that
name it. A group that no subject and no policy names exits with 3.
`, "  sdactl admin groups show "+exampleService+" technicians\n",
	func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
		asJSON := fs.Bool("json", false, "print the service's record as JSON")
		return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
			if err := wantArgs(args, 1, 1, "NAME"); err != nil {
				return err
			}
			var raw json.RawMessage
			if err := api.call(ctx, "GET", groupsPath+"/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
				if notFound(err) {
					return withCode(exitInput, fmt.Errorf("no subject and no policy names group %q: %w", args[0], err))
				}
				return err
			}
			return printRecord(e.stdout, raw, *asJSON, showGroup)
		}
	})

func showGroup(w io.Writer, raw json.RawMessage) error {
	var g groupJSON
	var members []string
	if err := json.Unmarshal(raw, &g); err != nil || json.Unmarshal(g.Members, &members) != nil {
		return inputErr(fmt.Errorf("a group that is not the JSON expected: %s", shorten(raw)))
	}
	_, err := fmt.Fprintf(w, "group:    %s\nmembers:  %s\npolicies: %s\n", g.Name,
		orDash(strings.Join(members, ", ")), orDash(strings.Join(g.Policies, ", ")))
	return ioErr(err)
}

// membershipCommand is "groups add-member" or "groups remove-member".
func membershipCommand(add bool) *command {
	verb, method, summary := "remove-member", "DELETE", "remove a subject from a group"
	details := `Removes SUBJECT from group NAME with DELETE
/admin/v1/groups/NAME/members/SUBJECT, atomically on the service: another
administrator's change of the subject at the same time is not lost. A
subject that is not a member exits with 3.
`
	ex := "  sdactl admin groups remove-member " + exampleService + " technicians alice\n"
	if add {
		verb, method, summary = "add-member", "PUT", "add a subject to a group"
		details = `Adds SUBJECT to group NAME with PUT /admin/v1/groups/NAME/members/SUBJECT,
atomically on the service: another administrator's change of the subject at
the same time is not lost. Adding a member again changes nothing. Prints the
subject as written.
`
		ex = "  sdactl admin groups add-member " + exampleService + " technicians alice\n"
	}
	details += `With -what-if nothing is written: the grants that the change would add and
remove are printed instead.
`
	return adminCommand("groups "+verb, "NAME SUBJECT", summary, details, ex,
		func(fs *flag.FlagSet) func(context.Context, *env, *adminAPI, []string) error {
			asJSON := fs.Bool("json", false, "print the subject written as JSON")
			whatIf := addWhatIfFlags(fs)
			return func(ctx context.Context, e *env, api *adminAPI, args []string) error {
				if err := wantArgs(args, 2, 2, "NAME and SUBJECT"); err != nil {
					return err
				}
				group, subject := args[0], args[1]
				if whatIf.on() {
					// The change as a subject record: what the membership
					// endpoint would write.
					var raw json.RawMessage
					if err := api.call(ctx, "GET", subjectsCollection.recordPath(subject), nil, nil, &raw); err != nil {
						return subjectsCollection.notFoundErr(subject, err)
					}
					var s policy.Subject
					if err := decodeServiceRecord(raw, &s); err != nil {
						return err
					}
					i := slices.Index(s.Groups, group)
					switch {
					case add && i < 0:
						s.Groups = append(s.Groups, group)
					case !add && i >= 0:
						s.Groups = slices.Delete(s.Groups, i, i+1)
					case !add:
						return withCode(exitInput, fmt.Errorf("subject %q is not a member of group %q", subject, group))
					}
					return whatIf.run(ctx, e, api, []policy.Change{policy.PutSubject(&s)})
				}
				var out json.RawMessage
				var outp any
				if add {
					outp = &out
				}
				if err := api.call(ctx, method, memberPath(group, subject), nil, nil, outp); err != nil {
					if notFound(err) && !add {
						return withCode(exitInput, fmt.Errorf("subject %q is not a member of group %q (or there is no such subject): %w", subject, group, err))
					}
					return subjectsCollection.notFoundErr(subject, err)
				}
				if !add {
					e.status("removed %s from group %s", subject, group)
					return nil
				}
				e.status("%s is a member of group %s", subject, group)
				return printRecord(e.stdout, out, *asJSON, subjectsCollection.show)
			}
		})
}

var (
	groupsAddMemberCmd    = membershipCommand(true)
	groupsRemoveMemberCmd = membershipCommand(false)
)
