package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/securedeviceaccess/sda/policy"
)

// reasons says in words what each reason code of the API means.
var reasons = map[string]string{
	"unknown_subject":           "the subject is not in the directory",
	"unknown_device":            "the audience names no device of the directory",
	"deny_policy":               "a deny policy applies",
	"no_allow_policy":           "no allow policy grants it",
	"structured_scope_required": "only allowed with argument constraints, which v1 tokens cannot carry",
	"constraints_differ":        "the devices allow it under different constraints",
}

type explainForm struct {
	Subject, Aud, Operations, Time, Profile string
}

type explainData struct {
	Form   explainForm
	Errors fieldErrors
	Result *policy.Explanation
}

func (c *Console) explainRoutes() {
	c.mux.HandleFunc("GET "+c.prefix+"explain", c.auth(c.explain))
}

// explain answers GET explain?subject=&aud=&operations=&time=&profile=:
// the form, and when it is filled in, the explanation. It changes
// nothing, so it is a GET (and can be bookmarked).
func (c *Console) explain(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &explainData{Form: explainForm{Subject: strings.TrimSpace(q.Get("subject")), Aud: q.Get("aud"),
		Operations: q.Get("operations"), Time: strings.TrimSpace(q.Get("time")), Profile: q.Get("profile")}}
	p := &page{Title: "Explain a decision", Nav: "explain", CSRF: s.csrf, Data: d}
	if d.Form.Subject == "" && d.Form.Aud == "" && d.Form.Operations == "" {
		c.render(w, r, http.StatusOK, "explain", p)
		return
	}
	req := map[string]any{"subject": d.Form.Subject, "aud": nonNil(splitList(d.Form.Aud)), "operations": nonNil(splitList(d.Form.Operations))}
	if d.Form.Time != "" {
		req["time"] = d.Form.Time
	}
	if d.Form.Profile != "" {
		req["profile"] = d.Form.Profile
	}
	var out policy.Explanation
	if err := c.call(r.Context(), r, s.apiKey, http.MethodPost, adminPath("explain"), nil, req, &out); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			d.Errors = explainErrors(ae)
			c.render(w, r, http.StatusBadRequest, "explain", p)
			return
		}
		c.apiFailure(w, r, s, err)
		return
	}
	d.Result = &out
	c.render(w, r, http.StatusOK, "explain", p)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func explainErrors(ae *apiError) fieldErrors {
	out := fieldErrors{byInput: map[string][]string{}, General: []string{ae.Message}}
	for _, fe := range ae.Fields {
		in := inputFor(fe.Name, []string{"subject", "aud", "operations", "time", "profile"})
		if in == "" {
			out.General = append(out.General, fe.Name+": "+fe.Message)
			continue
		}
		out.byInput[in] = append(out.byInput[in], fe.Name+": "+fe.Message)
		out.General = append(out.General, fe.Name+": "+fe.Message)
	}
	return out
}
