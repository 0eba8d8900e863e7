package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/securedeviceaccess/sda/policy"
)

// collection is one collection of the administration API as the console
// shows it.
type collection struct {
	Name     string // path segment: "policies"
	Title    string // "Policies"
	Singular string // "policy"
	Kind     string // kind in a what-if change: "policy"; empty when what-if does not take it
	Put      bool   // written with PUT (else created with POST, never edited)
	Columns  []column
	// Search lists the fields a search matches besides the id.
	Search  []string
	newForm func() recordForm
}

// column is a column of a list: its heading and the record's JSON field.
type column struct {
	Label, Key string
}

var collections = []*collection{
	{Name: "policies", Title: "Policies", Singular: "policy", Kind: "policy", Put: true,
		Columns: []column{{"Name", "name"}, {"Effect", "effect"}, {"Status", "status"}, {"Valid until", "valid_until"}},
		Search:  []string{"name"}, newForm: func() recordForm { return &policyForm{Status: "active", Effect: "allow", Lifetime: "3600"} }},
	{Name: "subjects", Title: "Subjects", Singular: "subject", Kind: "subject", Put: true,
		Columns: []column{{"Kind", "kind"}, {"Groups", "groups"}},
		newForm: func() recordForm { return &subjectForm{Kind: "user"} }},
	{Name: "devices", Title: "Devices", Singular: "device", Kind: "device", Put: true,
		Columns: []column{{"Endpoint name", "endpoint_name"}, {"Attributes", "attributes"}},
		Search:  []string{"endpoint_name"}, newForm: func() recordForm { return &deviceForm{} }},
	{Name: "api-keys", Title: "API keys", Singular: "API key",
		Columns: []column{{"Subject", "subject"}, {"Administrator", "admin"}, {"Created", "created_at"}},
		Search:  []string{"subject"}, newForm: func() recordForm { return &apiKeyForm{} }},
}

func adminPath(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return policy.AdminPathPrefix + strings.Join(parts, "/")
}

// routes registers the console's pages.
func (c *Console) routes() {
	p := c.prefix
	m := c.mux
	m.HandleFunc("GET "+p+"{$}", c.auth(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, p+"policies", http.StatusSeeOther)
	}))
	m.HandleFunc("GET "+p+"sign-in", c.signInPage)
	m.HandleFunc("POST "+p+"sign-in", c.signIn)
	m.HandleFunc("POST "+p+"sign-out", c.auth(c.signOut))
	m.Handle("GET "+p+"static/", c.static)
	for _, col := range collections {
		base := p + col.Name
		m.HandleFunc("GET "+base, c.auth(c.list(col)))
		m.HandleFunc("GET "+p+"new/"+col.Name, c.auth(c.newRecord(col)))
		m.HandleFunc("POST "+p+"new/"+col.Name, c.auth(c.createRecord(col)))
		m.HandleFunc("GET "+base+"/{id}", c.auth(c.show(col)))
		m.HandleFunc("GET "+base+"/{id}/delete", c.auth(c.confirmDelete(col)))
		m.HandleFunc("POST "+base+"/{id}/delete", c.auth(c.deleteRecord(col)))
		if col.Put {
			m.HandleFunc("GET "+base+"/{id}/edit", c.auth(c.editRecord(col)))
			m.HandleFunc("POST "+base+"/{id}/edit", c.auth(c.saveRecord(col)))
		}
	}
	c.groupRoutes()
	c.tokenRoutes()
	c.explainRoutes()
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusNotFound, "There is no such page.")
	})
}

// record is a record of the API as a JSON object.
type record map[string]any

func (rec record) id() string {
	s, _ := rec["id"].(string)
	return s
}

// row is a row of a list page.
type row struct {
	ID    string
	Cells []string
}

type listData struct {
	Col       *collection
	Rows      []row
	Query     string
	Next      string
	Total     int
	Scanned   int
	Truncated bool
}

// list answers GET {collection}?q=&after=: a page of records sorted by id;
// with q, the records whose id (or name) contains q, ignoring case,
// among the first maxSearchScanned records.
func (c *Console) list(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		after := r.URL.Query().Get("after")
		d := &listData{Col: col, Query: q}
		recs, next, err := c.fetchList(r, s, col.Name, q, after, func(rec record) bool { return matches(rec, q, col.Search) }, d)
		if err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		for _, rec := range recs {
			rw := row{ID: rec.id()}
			for _, col := range col.Columns {
				rw.Cells = append(rw.Cells, formatValue(rec[col.Key]))
			}
			d.Rows = append(d.Rows, rw)
		}
		d.Next = next
		c.render(w, r, http.StatusOK, "list", &page{Title: col.Title, Nav: col.Name, CSRF: s.csrf, Notice: notice(r), Data: d})
	}
}

// fetchList reads one page of a list of the API, filtered by keep when q
// is not empty, and returns it with the cursor of the next page ("" at
// the end).
func (c *Console) fetchList(r *http.Request, s *session, coll, q, after string, keep func(record) bool, d *listData) ([]record, string, error) {
	if q == "" {
		var lp listPage[record]
		err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath(coll),
			url.Values{"limit": {strconv.Itoa(pageSize)}, "after": {after}}, nil, &lp)
		if err != nil {
			return nil, "", err
		}
		d.Total = lp.TotalCount
		next := ""
		if lp.HasMore && len(lp.Data) > 0 {
			next = lp.Data[len(lp.Data)-1].id()
		}
		return lp.Data, next, nil
	}
	var out []record
	cursor := after
	for {
		var lp listPage[record]
		err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath(coll),
			url.Values{"limit": {strconv.Itoa(searchPageSize)}, "after": {cursor}}, nil, &lp)
		if err != nil {
			return nil, "", err
		}
		d.Total = lp.TotalCount
		for _, rec := range lp.Data {
			d.Scanned++
			if keep(rec) {
				out = append(out, rec)
				if len(out) > pageSize {
					return out[:pageSize], out[pageSize-1].id(), nil
				}
			}
		}
		if !lp.HasMore || len(lp.Data) == 0 {
			return out, "", nil
		}
		cursor = lp.Data[len(lp.Data)-1].id()
		if d.Scanned >= maxSearchScanned {
			d.Truncated = true
			return out, cursor, nil
		}
	}
}

// matches reports whether the record's id or one of the fields contains
// q, ignoring case.
func matches(rec record, q string, fields []string) bool {
	q = strings.ToLower(q)
	if strings.Contains(strings.ToLower(rec.id()), q) {
		return true
	}
	for _, f := range fields {
		if s, ok := rec[f].(string); ok && strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// formatValue writes a JSON value for a table cell.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if s, ok := v[k].(string); ok {
				parts = append(parts, k+"="+s)
				continue
			}
			parts = append(parts, k+": "+formatValue(v[k]))
		}
		return strings.Join(parts, "; ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type showData struct {
	Col    *collection
	ID     string
	Fields []field
	JSON   string
}

type field struct {
	Label, Value string
}

// getRecord reads one record of the API.
func (c *Console) getRecord(r *http.Request, s *session, coll, id string) (json.RawMessage, error) {
	raw, _, err := c.getRecordETag(r, s, coll, id)
	return raw, err
}

// getRecordETag reads one record of the API and its entity tag.
func (c *Console) getRecordETag(r *http.Request, s *session, coll, id string) (json.RawMessage, string, error) {
	var raw json.RawMessage
	h, err := c.callHeader(r.Context(), r, s.apiKey, http.MethodGet, adminPath(coll, id), nil, nil, nil, &raw)
	if err != nil {
		return nil, "", err
	}
	return raw, h.Get("ETag"), nil
}

// show answers GET {collection}/{id}.
func (c *Console) show(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		raw, err := c.getRecord(r, s, col.Name, id)
		if err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		d := &showData{Col: col, ID: id}
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			d.Fields = append(d.Fields, field{Label: k, Value: formatValue(rec[k])})
		}
		d.JSON = indentJSON(rec)
		c.render(w, r, http.StatusOK, "show", &page{Title: col.Singular + " " + id, Nav: col.Name, CSRF: s.csrf, Notice: notice(r), Data: d})
	}
}

// formData is what a record's form page gets.
type formData struct {
	Col    *collection
	New    bool
	Form   recordForm
	Errors fieldErrors
	Impact *policy.Impact
	// ImpactError says why the preview could not be made.
	ImpactError string
	// Secret is a created API key's secret, shown once.
	Secret string
	// ETag is the entity tag of the record when its edit form was opened,
	// carried in a hidden field: the save is conditional on it (If-Match),
	// so that it never overwrites a change made meanwhile.
	ETag string
	// Stale says that the record changed since the form was opened: the
	// save wrote nothing (412).
	Stale bool
}

// newRecord answers GET new/{collection}: an empty form.
func (c *Console) newRecord(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		f := col.newForm()
		if pf, ok := f.(*policyForm); ok && r.URL.Query().Get("as") == "json" {
			pf.AsJSON = true
			pf.JSON = "{\n  \"id\": \"\",\n  \"status\": \"active\",\n  \"effect\": \"allow\",\n  \"subjects\": {\"users\": []},\n  \"operations\": [{\"name\": \"read-data\"}],\n  \"devices\": {\"ids\": []},\n  \"token_lifetime_seconds\": 3600\n}"
		}
		c.renderForm(w, r, s, http.StatusOK, &formData{Col: col, New: true, Form: f})
	}
}

// editRecord answers GET {collection}/{id}/edit: the form with the record.
func (c *Console) editRecord(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		raw, etag, err := c.getRecordETag(r, s, col.Name, r.PathValue("id"))
		if err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		f := col.newForm()
		if err := f.fill(raw); err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		if pf, ok := f.(*policyForm); ok {
			pf.AsJSON = r.URL.Query().Get("as") == "json"
		}
		c.renderForm(w, r, s, http.StatusOK, &formData{Col: col, Form: f, ETag: etag})
	}
}

func (c *Console) renderForm(w http.ResponseWriter, r *http.Request, s *session, status int, d *formData) {
	title := "Edit " + d.Col.Singular + " " + d.Form.recordID()
	if d.New {
		title = "New " + d.Col.Singular
	}
	c.render(w, r, status, "form-"+d.Col.Name, &page{Title: title, Nav: d.Col.Name, CSRF: s.csrf, Data: d})
}

// createRecord answers POST new/{collection}.
func (c *Console) createRecord(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		f := col.newForm()
		f.parse(r.PostForm)
		d := &formData{Col: col, New: true, Form: f}
		if !col.Put {
			c.createAPIKey(w, r, s, d)
			return
		}
		// The write is conditional on no record having the id
		// (If-None-Match: *): a new record never replaces one, even one
		// created a moment before.
		c.writeRecord(w, r, s, d)
	}
}

// saveRecord answers POST {collection}/{id}/edit.
func (c *Console) saveRecord(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		f := col.newForm()
		f.parse(r.PostForm)
		if f.recordID() != r.PathValue("id") {
			d := &formData{Col: col, Form: f}
			d.Errors = fieldErrors{byInput: map[string][]string{"id": {"must stay " + r.PathValue("id") + ": create a new record to change the id"}}}
			c.renderForm(w, r, s, http.StatusBadRequest, d)
			return
		}
		c.writeRecord(w, r, s, &formData{Col: col, Form: f, ETag: r.PostForm.Get("etag")})
	}
}

// writeRecord previews (action "preview") or writes the form's record.
func (c *Console) writeRecord(w http.ResponseWriter, r *http.Request, s *session, d *formData) {
	rec, errs := d.Form.record()
	if errs != nil {
		d.Errors = sortErrors(errs, d.Form)
		c.renderForm(w, r, s, http.StatusBadRequest, d)
		return
	}
	id := d.Form.recordID()
	if r.PostForm.Get("action") == "preview" {
		imp, err := c.whatIf(r, s, []change{{Kind: d.Col.Kind, ID: id, Record: d.Col.Kind, Value: rec}})
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
				d.Errors = sortAPIErrors(ae, d.Form, "changes[0]."+d.Col.Kind+".", "changes[0].")
				c.renderForm(w, r, s, http.StatusBadRequest, d)
				return
			}
			d.ImpactError = apiMessage(err)
		}
		d.Impact = imp
		c.renderForm(w, r, s, http.StatusOK, d)
		return
	}
	if id == "" {
		d.Errors = fieldErrors{byInput: map[string][]string{"id": {"required"}}}
		c.renderForm(w, r, s, http.StatusBadRequest, d)
		return
	}
	// A new record is written if no record has the id, an edited one if
	// it is still the one the form was opened with. A form without the
	// tag cannot tell, and is treated as changed meanwhile.
	hdr := http.Header{"If-Match": {d.ETag}}
	if d.New {
		hdr = http.Header{"If-None-Match": {"*"}}
	}
	var err error
	if d.New || d.ETag != "" {
		_, err = c.callHeader(r.Context(), r, s.apiKey, http.MethodPut, adminPath(d.Col.Name, id), nil, hdr, rec, nil)
	} else {
		err = &apiError{Status: http.StatusPreconditionFailed}
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed {
			if d.New {
				d.Errors = fieldErrors{byInput: map[string][]string{"id": {"a " + d.Col.Singular + " with this id exists"}}}
				c.renderForm(w, r, s, http.StatusConflict, d)
				return
			}
			d.Stale = true
			c.renderForm(w, r, s, http.StatusPreconditionFailed, d)
			return
		}
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden {
			d.Errors = sortAPIErrors(ae, d.Form, d.Col.Kind+".")
			c.renderForm(w, r, s, ae.Status, d)
			return
		}
		c.apiFailure(w, r, s, err)
		return
	}
	http.Redirect(w, r, c.prefix+d.Col.Name+"/"+url.PathEscape(id)+"?msg=saved", http.StatusSeeOther)
}

// createAPIKey creates an API key and shows its secret, once.
func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request, s *session, d *formData) {
	rec, _ := d.Form.record()
	var out struct {
		Secret string `json:"secret"`
	}
	if err := c.call(r.Context(), r, s.apiKey, http.MethodPost, adminPath(d.Col.Name), nil, rec, &out); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden {
			d.Errors = sortAPIErrors(ae, d.Form)
			c.renderForm(w, r, s, ae.Status, d)
			return
		}
		c.apiFailure(w, r, s, err)
		return
	}
	d.Secret = out.Secret
	c.render(w, r, http.StatusCreated, "api-key-created", &page{Title: "API key created", Nav: d.Col.Name, CSRF: s.csrf, Data: d})
}

type deleteData struct {
	Col         *collection
	ID          string
	Impact      *policy.Impact
	ImpactError string
}

// confirmDelete answers GET {collection}/{id}/delete: the confirmation,
// with what the deletion would change when what-if takes the kind.
func (c *Console) confirmDelete(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		if _, err := c.getRecord(r, s, col.Name, id); err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		d := &deleteData{Col: col, ID: id}
		if col.Kind != "" {
			imp, err := c.whatIf(r, s, []change{{Kind: col.Kind, ID: id, Delete: true}})
			if err != nil {
				d.ImpactError = apiMessage(err)
			}
			d.Impact = imp
		}
		c.render(w, r, http.StatusOK, "delete", &page{Title: "Delete " + col.Singular + " " + id, Nav: col.Name, CSRF: s.csrf, Data: d})
	}
}

// deleteRecord answers POST {collection}/{id}/delete.
func (c *Console) deleteRecord(col *collection) signedIn {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		if err := c.call(r.Context(), r, s.apiKey, http.MethodDelete, adminPath(col.Name, id), nil, nil, nil); err != nil {
			c.apiFailure(w, r, s, err)
			return
		}
		http.Redirect(w, r, c.prefix+col.Name+"?msg=deleted", http.StatusSeeOther)
	}
}

// notices are the messages a redirect can ask for (msg=...): only these,
// so that a link cannot make the console show text of its choosing.
var notices = map[string]string{
	"saved":   "Saved.",
	"deleted": "Deleted.",
	"added":   "Member added.",
	"removed": "Member removed.",
	"revoked": "Revoked.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("msg")] }

// apiFailure answers a failed call of the API with an error page; a 401
// (the key was deleted meanwhile) ends the session.
func (c *Console) apiFailure(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		status := ae.Status
		if status == http.StatusUnauthorized {
			if ck, err := r.Cookie(cookieName); err == nil {
				c.sessions.end(ck.Value)
			}
			c.clearCookie(w, r)
		}
		csrf := s.csrf
		if status == http.StatusUnauthorized {
			csrf = ""
		}
		c.render(w, r, status, "error", &page{Title: http.StatusText(status), CSRF: csrf, Problem: apiMessage(err)})
		return
	}
	c.logger().Error("sda.console.error", "path", r.URL.Path, "error", err.Error())
	c.render(w, r, http.StatusInternalServerError, "error", &page{Title: "Error", CSRF: s.csrf, Problem: "internal error"})
}

// apiMessage is the message of an error of the API to show.
func apiMessage(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		msg := ae.Message
		if len(ae.Fields) > 0 {
			var parts []string
			for _, f := range ae.Fields {
				parts = append(parts, f.Name+": "+f.Message)
			}
			msg += " (" + strings.Join(parts, "; ") + ")"
		}
		if ae.RequestID != "" {
			msg += fmt.Sprintf(" [request %s]", ae.RequestID)
		}
		return msg
	}
	return err.Error()
}

// indentJSON writes v as indented JSON, without escaping HTML characters
// (the template escapes what it shows).
func indentJSON(v any) string {
	// A record's MarshalJSON escapes < > &: decode it to plain values first.
	raw, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var plain any
	if dec.Decode(&plain) != nil {
		return ""
	}
	v = plain
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
