package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// What-if: the grants a change would add and remove, printed for an owner
// (POST /admin/v1/what-if; also the answer of GET /admin/v1/diff).

const whatIfPath = policy.AdminPathPrefix + "what-if"

// maxImpactDetails is the largest number of detail lines the service lists.
const maxImpactDetails = 10000

// impactJSON is the service's answer to a what-if or a diff.
type impactJSON struct {
	Object           string              `json:"object"`
	Time             time.Time           `json:"time"`
	From             *int64              `json:"from,omitempty"`
	To               *int64              `json:"to,omitempty"`
	Gained           int64               `json:"gained"`
	Lost             int64               `json:"lost"`
	Summary          []impactSummaryJSON `json:"summary"`
	SummaryTruncated bool                `json:"summary_truncated"`
	Details          []impactDetailJSON  `json:"details"`
	DetailsTruncated bool                `json:"details_truncated"`
}

type impactSummaryJSON struct {
	Change      string                 `json:"change"`
	Operation   string                 `json:"operation"`
	Constraints []policy.ArgConstraint `json:"constraints"`
	Subjects    impactClassJSON        `json:"subjects"`
	Devices     impactClassJSON        `json:"devices"`
	Grants      int64                  `json:"grants"`
}

type impactClassJSON struct {
	Description string   `json:"description"`
	Count       int      `json:"count"`
	Sample      []string `json:"sample"`
}

type impactDetailJSON struct {
	Change       string                 `json:"change"`
	Subject      string                 `json:"subject"`
	Device       string                 `json:"device"`
	EndpointName string                 `json:"endpoint_name"`
	Operation    string                 `json:"operation"`
	Constraints  []policy.ArgConstraint `json:"constraints"`
}

// whatIfBody is the body of POST /admin/v1/what-if.
type whatIfBody struct {
	Changes []policy.Change `json:"changes"`
	Time    *time.Time      `json:"time,omitempty"`
	Profile string          `json:"profile,omitempty"`
	Limit   int             `json:"limit,omitempty"`
}

// whatIfFlags are the -what-if flags of a command that writes.
type whatIfFlags struct {
	enabled *bool
	details *int
}

func addWhatIfFlags(fs *flag.FlagSet) *whatIfFlags {
	return &whatIfFlags{
		enabled: fs.Bool("what-if", false, "write nothing: print the grants the change would add and remove"),
		details: fs.Int("details", 0, "with -what-if, also list up to `N` of the grants, one per line"),
	}
}

// on reports whether -what-if is given; w may be nil.
func (w *whatIfFlags) on() bool { return w != nil && *w.enabled }

// run asks the service for the impact of changes and prints it.
func (w *whatIfFlags) run(ctx context.Context, e *env, api *adminAPI, changes []policy.Change) error {
	if *w.details < 0 || *w.details > maxImpactDetails {
		return usageErrorf("-details: want 0 to %d", maxImpactDetails)
	}
	body := &whatIfBody{Changes: changes}
	if *w.details > 0 {
		body.Limit = *w.details
	}
	return whatIf(ctx, e, api, body, *w.details, false)
}

// whatIf posts a what-if request (body: a whatIfBody, or its JSON) and
// prints the impact: for an owner with up to details grants, or the
// service's JSON answer.
func whatIf(ctx context.Context, e *env, api *adminAPI, body any, details int, asJSON bool) error {
	if asJSON {
		var raw jsonRaw
		if err := api.call(ctx, "POST", whatIfPath, nil, body, &raw); err != nil {
			return err
		}
		return printRecord(e.stdout, raw.b, true, nil)
	}
	var imp impactJSON
	if err := api.call(ctx, "POST", whatIfPath, nil, body, &imp); err != nil {
		return err
	}
	if imp.Object != "impact" {
		return inputErr(fmt.Errorf("the service's answer is not an impact"))
	}
	e.status("nothing was written: this is what the change would do")
	return printImpact(e.stdout, &imp, details)
}

// jsonRaw holds an answer as it came.
type jsonRaw struct{ b []byte }

func (j *jsonRaw) UnmarshalJSON(b []byte) error {
	j.b = append([]byte(nil), b...)
	return nil
}

// printImpact prints the summary of an impact and up to details of its
// grants.
func printImpact(w io.Writer, imp *impactJSON, details int) error {
	span := ""
	if imp.From != nil && imp.To != nil {
		span = fmt.Sprintf("from seq %d to seq %d, ", *imp.From, *imp.To)
	}
	fmt.Fprintf(w, "%sat %s: %s gained, %s lost\n", span, fmtTime(imp.Time), plural(imp.Gained, "grant"), plural(imp.Lost, "grant"))
	if len(imp.Summary) == 0 {
		fmt.Fprintln(w, "no subject gains or loses an operation on a device")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tOPERATION\tSUBJECTS\tDEVICES\tGRANTS")
	for _, s := range imp.Summary {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.Change, clean(ruleText(s.Operation, s.Constraints)),
			classText(&s.Subjects), classText(&s.Devices), s.Grants)
	}
	if err := tw.Flush(); err != nil {
		return ioErr(err)
	}
	if imp.SummaryTruncated {
		fmt.Fprintln(w, "(the service listed only the first rows of the summary)")
	}
	if details <= 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tSUBJECT\tDEVICE\tOPERATION")
	for i, d := range imp.Details {
		if i == details {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Change, d.Subject, deviceText(d.Device, d.EndpointName), clean(ruleText(d.Operation, d.Constraints)))
	}
	if err := tw.Flush(); err != nil {
		return ioErr(err)
	}
	if listed := min(details, len(imp.Details)); imp.DetailsTruncated || int64(listed) < imp.Gained+imp.Lost {
		fmt.Fprintf(w, "(%d of %d grants listed)\n", listed, imp.Gained+imp.Lost)
	}
	return nil
}

// classText describes a class of subjects or devices: the service's
// description, the count and a sample of members.
func classText(c *impactClassJSON) string {
	s := fmt.Sprintf("%s (%d", clean(c.Description), c.Count)
	if len(c.Sample) > 0 {
		s += ": " + clean(strings.Join(c.Sample, ", "))
		if len(c.Sample) < c.Count {
			s += ", ..."
		}
	}
	return s + ")"
}

// deviceText names a device by its endpoint name and id.
func deviceText(id, ep string) string {
	if ep == "" {
		return id
	}
	return clean(ep) + " (" + id + ")"
}

// plural is "1 grant", "2 grants".
func plural[N int | int64](n N, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
