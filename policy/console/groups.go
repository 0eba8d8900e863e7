package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// group is a group as the API shows it: in a list, members is a count;
// alone, the list of members.
type groupSummary struct {
	Name     string   `json:"name"`
	Members  int      `json:"members"`
	Policies []string `json:"policies"`
}

type groupDetail struct {
	Name     string   `json:"name"`
	Members  []string `json:"members"`
	Policies []string `json:"policies"`
}

type groupsData struct {
	Errors    fieldErrors
	Group     string // the new group form's values
	Member    string
	Groups    []groupSummary
	Query     string
	Next      string
	Scanned   int
	Truncated bool
}

type groupData struct {
	Group  groupDetail
	Errors fieldErrors
	Member string
}

func (c *Console) groupRoutes() {
	p := c.prefix + "groups"
	c.mux.HandleFunc("GET "+p, c.auth(c.listGroups))
	c.mux.HandleFunc("GET "+p+"/{name}", c.auth(c.showGroup))
	c.mux.HandleFunc("POST "+p+"/{name}/members", c.auth(c.addMember))
	c.mux.HandleFunc("POST "+p, c.auth(c.createGroup))
	c.mux.HandleFunc("POST "+p+"/{name}/members/{subject}/remove", c.auth(c.removeMember))
}

// listGroups answers GET groups?q=&after=.
func (c *Console) listGroups(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderGroups(w, r, s, http.StatusOK, &groupsData{})
}

// createGroup answers POST groups: a group exists through its members, so
// creating one adds its first member.
func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, s *session) {
	d := &groupsData{Group: strings.TrimSpace(r.PostForm.Get("group")), Member: strings.TrimSpace(r.PostForm.Get("subject"))}
	d.Errors = fieldErrors{byInput: map[string][]string{}}
	if d.Group == "" {
		d.Errors.byInput["group"] = []string{"required"}
	}
	if d.Member == "" {
		d.Errors.byInput["subject"] = []string{"required"}
	}
	if d.Errors.Any() {
		c.renderGroups(w, r, s, http.StatusBadRequest, d)
		return
	}
	err := c.call(r.Context(), r, s.apiKey, http.MethodPut, adminPath("groups", d.Group, "members", d.Member), nil, nil, nil)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound || ae.Status == http.StatusConflict) {
			d.Errors.General = []string{ae.Message}
			for _, f := range ae.Fields {
				in := inputFor(f.Name, []string{"name", "subject"})
				if in == "name" {
					in = "group"
				}
				if in == "" {
					in = "subject"
				}
				d.Errors.byInput[in] = append(d.Errors.byInput[in], f.Name+": "+f.Message)
			}
			if len(ae.Fields) == 0 {
				d.Errors.byInput["subject"] = []string{ae.Message}
			}
			c.renderGroups(w, r, s, ae.Status, d)
			return
		}
		c.apiFailure(w, r, s, err)
		return
	}
	http.Redirect(w, r, c.prefix+"groups/"+url.PathEscape(d.Group)+"?msg=added", http.StatusSeeOther)
}

func (c *Console) renderGroups(w http.ResponseWriter, r *http.Request, s *session, status int, d *groupsData) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	cursor := r.URL.Query().Get("after")
	d.Query = q
	limit := pageSize
	if q != "" {
		limit = searchPageSize
	}
	for {
		var lp listPage[groupSummary]
		err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath("groups"),
			url.Values{"limit": {strconv.Itoa(limit)}, "after": {cursor}}, nil, &lp)
		if err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		for _, g := range lp.Data {
			d.Scanned++
			if q == "" || strings.Contains(strings.ToLower(g.Name), strings.ToLower(q)) {
				d.Groups = append(d.Groups, g)
			}
		}
		if len(lp.Data) > 0 {
			cursor = lp.Data[len(lp.Data)-1].Name
		}
		if !lp.HasMore || len(lp.Data) == 0 {
			break
		}
		if q == "" || len(d.Groups) >= pageSize {
			d.Next = cursor
			break
		}
		if d.Scanned >= maxSearchScanned {
			d.Truncated, d.Next = true, cursor
			break
		}
	}
	if len(d.Groups) > pageSize {
		d.Next = d.Groups[pageSize-1].Name
		d.Groups = d.Groups[:pageSize]
	}
	c.render(w, r, status, "groups", &page{Title: "Groups", Nav: "groups", CSRF: s.csrf, Notice: notice(r), Data: d})
}

// showGroup answers GET groups/{name}.
func (c *Console) showGroup(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderGroup(w, r, s, http.StatusOK, &groupData{})
}

func (c *Console) renderGroup(w http.ResponseWriter, r *http.Request, s *session, status int, d *groupData) {
	name := r.PathValue("name")
	if err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath("groups", name), nil, nil, &d.Group); err != nil {
		var ae *apiError
		if !(errors.As(err, &ae) && ae.Status == http.StatusNotFound && d.Errors.Any()) {
			c.apiFailure(w, r, s, err)
			return
		}
		d.Group = groupDetail{Name: name}
	}
	c.render(w, r, status, "group", &page{Title: "Group " + name, Nav: "groups", CSRF: s.csrf, Notice: notice(r), Data: d})
}

// addMember answers POST groups/{name}/members: the subject named by the
// form joins the group.
func (c *Console) addMember(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	subject := strings.TrimSpace(r.PostForm.Get("subject"))
	if subject == "" {
		c.renderGroup(w, r, s, http.StatusBadRequest, &groupData{Errors: fieldErrors{byInput: map[string][]string{"subject": {"required"}}}})
		return
	}
	err := c.call(r.Context(), r, s.apiKey, http.MethodPut, adminPath("groups", name, "members", subject), nil, nil, nil)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound || ae.Status == http.StatusConflict) {
			msgs := []string{ae.Message}
			for _, f := range ae.Fields {
				msgs = append(msgs, f.Name+": "+f.Message)
			}
			c.renderGroup(w, r, s, ae.Status, &groupData{Member: subject, Errors: fieldErrors{byInput: map[string][]string{"subject": msgs}}})
			return
		}
		c.apiFailure(w, r, s, err)
		return
	}
	http.Redirect(w, r, c.prefix+"groups/"+url.PathEscape(name)+"?msg=added", http.StatusSeeOther)
}

// removeMember answers POST groups/{name}/members/{subject}/remove.
func (c *Console) removeMember(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	err := c.call(r.Context(), r, s.apiKey, http.MethodDelete, adminPath("groups", name, "members", r.PathValue("subject")), nil, nil, nil)
	if err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	http.Redirect(w, r, c.prefix+"groups/"+url.PathEscape(name)+"?msg=removed", http.StatusSeeOther)
}
