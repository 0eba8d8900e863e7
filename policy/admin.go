package policy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"
)

// adminKinds maps the administration API's collection names to kinds.
var adminKinds = map[string]Kind{
	"policies": KindPolicy,
	"subjects": KindSubject,
	"devices":  KindDevice,
	"api-keys": KindAPIKey,
}

const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// apiKeyJSON is how the administration API shows an API key: never its hash.
type apiKeyJSON struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Secret is set only in the response that creates the key.
	Secret string `json:"secret,omitempty"`
}

// apiKeyCreateJSON is the body of POST /admin/v1/api-keys.
type apiKeyCreateJSON struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Admin   bool   `json:"admin"`
}

func showAPIKey(k *APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Subject: k.Subject, Admin: k.Admin, CreatedAt: k.CreatedAt}
}

// adminRoutes maps the [http.ServeMux] patterns of the administration API
// to their handlers: per collection, GET lists it and GET, PUT (not for
// API keys) and DELETE act on one record by id; POST on api-keys creates
// a key. A GET pattern also matches HEAD.
func (s *Service) adminRoutes() map[string]apiHandler {
	routes := map[string]apiHandler{}
	for coll, kind := range adminKinds {
		base := AdminPathPrefix + coll
		routes["GET "+base] = s.admin(kind, s.adminList)
		routes["GET "+base+"/{id}"] = s.admin(kind, s.adminGet)
		routes["DELETE "+base+"/{id}"] = s.admin(kind, s.adminDelete)
		if kind == KindAPIKey {
			routes["POST "+base] = s.admin(kind, s.adminCreateAPIKey)
		} else {
			routes["PUT "+base+"/{id}"] = s.admin(kind, s.adminPut)
		}
	}
	maps.Copy(routes, s.revocationRoutes())
	maps.Copy(routes, s.impactRoutes())
	maps.Copy(routes, s.ownerToolRoutes())
	return routes
}

// adminRequest is a request of the administration API from an administrator.
type adminRequest struct {
	kind      Kind
	id        string // the path's {id}; empty for the collection
	principal Principal
	requestID string
}

// admin returns the handler of one route of the administration API: it
// requires an administrator and brings the engine up to date before op.
// The mux has checked the method, so that 405 does not depend on the
// credential.
func (s *Service) admin(kind Kind, op func(http.ResponseWriter, *http.Request, *adminRequest) error) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, requestID string) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if !p.Admin {
			return fmt.Errorf("%w: subject %q is not an administrator", ErrForbidden, p.Subject)
		}
		if err := s.sync(r.Context()); err != nil {
			return err
		}
		return op(w, r, &adminRequest{kind: kind, id: r.PathValue("id"), principal: p, requestID: requestID})
	}
}

// adminCreateAPIKey answers POST /admin/v1/api-keys.
func (s *Service) adminCreateAPIKey(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	var in apiKeyCreateJSON
	if err := strictUnmarshal(body, &in); err != nil {
		return badJSON(err)
	}
	secret, key, err := NewAPIKey(nil, in.ID, in.Subject, in.Admin, s.now())
	if err != nil {
		return err
	}
	// The store refuses the creation if the id exists (CreateAPIKey),
	// even if another instance created it a moment ago; checking here
	// first only gives the common case a clear message early.
	if _, err := s.engine.get(KindAPIKey, in.ID); err == nil {
		return fmt.Errorf("%w: API key %q exists", ErrConflict, in.ID)
	}
	if _, err := s.engine.get(KindSubject, in.Subject); err != nil {
		return &ValidationError{Fields: []FieldError{{Name: "subject", Message: "must name a subject of the directory"}}}
	}
	if err := s.Apply(r.Context(), CreateAPIKey(key)); err != nil {
		return err
	}
	s.auditAdmin(r, a.principal, a.requestID, "create", a.kind, in.ID)
	out := showAPIKey(key)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// adminGet answers GET /admin/v1/{kind}/{id}, with the record's ETag.
func (s *Service) adminGet(w http.ResponseWriter, _ *http.Request, a *adminRequest) error {
	// One read gives the record and its tag, so that they agree.
	cur := s.engine.current(a.kind, a.id)
	if cur.Delete {
		return fmt.Errorf("%w: %s %q", ErrNotFound, a.kind, a.id)
	}
	var rec any
	switch {
	case cur.APIKey != nil:
		rec = showAPIKey(cur.APIKey)
	default:
		b, err := cur.record()
		if err != nil {
			return err
		}
		rec = json.RawMessage(b)
	}
	setETag(w, &cur)
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// adminDelete answers DELETE /admin/v1/{kind}/{id}. With If-Match or
// If-None-Match, the deletion commits only if the record is still the
// one the headers were evaluated against.
func (s *Service) adminDelete(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	pre, err := readPreconditions(r)
	if err != nil {
		return err
	}
	cur := s.engine.current(a.kind, a.id)
	del := DeleteRecord(a.kind, a.id)
	if pre != nil {
		if cur, _, del.IfMatch, err = s.evaluate(r.Context(), pre, a.kind, a.id); err != nil {
			return err
		}
	}
	if cur.Delete {
		return fmt.Errorf("%w: %s %q", ErrNotFound, a.kind, a.id)
	}
	// A subject goes with its API keys, in one batch: a key left behind
	// would not authenticate, but would again if the id were reused.
	changes := []Change{del}
	var keys []string
	if a.kind == KindSubject {
		keys = s.engine.apiKeysOf(a.id)
		for _, k := range keys {
			changes = append(changes, DeleteRecord(KindAPIKey, k))
		}
	}
	if err := s.Apply(r.Context(), changes...); err != nil {
		if pre != nil {
			return s.conditionFailed(r.Context(), err, a.kind, a.id, false, del.IfMatch)
		}
		return err
	}
	s.auditAdmin(r, a.principal, a.requestID, "delete", a.kind, a.id)
	for _, k := range keys {
		s.auditAdmin(r, a.principal, a.requestID, "delete", KindAPIKey, k)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminPut answers PUT /admin/v1/{kind}/{id}, with the ETag of the
// record written. With If-Match or If-None-Match (RFC 9110 section
// 13.1), the headers are evaluated against the present record and the
// write commits only if the record is still that one (Change.IfMatch,
// or Change.Create when there was none): a change made meanwhile, by
// this instance or another sharing the store, fails the write with
// ErrPreconditionFailed instead of being lost.
func (s *Service) adminPut(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	pre, err := readPreconditions(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, maxAdminBodyBytes)
	if err != nil {
		return err
	}
	c, err := DecodeChange(a.kind, body)
	if err != nil {
		return badJSON(err)
	}
	if c.ID != a.id {
		return &ValidationError{Fields: []FieldError{{Name: "id", Message: "must equal the id in the path"}}}
	}
	if pre != nil {
		if _, c.Create, c.IfMatch, err = s.evaluate(r.Context(), pre, a.kind, a.id); err != nil {
			return err
		}
	}
	if err := s.Apply(r.Context(), c); err != nil {
		if pre != nil {
			return s.conditionFailed(r.Context(), err, a.kind, a.id, c.Create, c.IfMatch)
		}
		return err
	}
	s.auditAdmin(r, a.principal, a.requestID, "put", a.kind, a.id)
	// Answer with the record as written, which does not depend on
	// reading the store back.
	rec, err := c.record()
	if err != nil {
		return err
	}
	setETag(w, &c)
	writeJSON(w, http.StatusOK, json.RawMessage(rec))
	return nil
}

func (s *Service) auditAdmin(r *http.Request, p Principal, requestID, op string, kind Kind, id string) {
	s.logger().LogAttrs(r.Context(), slog.LevelInfo, "sda.admin."+op,
		slog.String("subject", p.Subject), slog.String("kind", string(kind)), slog.String("id", id),
		slog.String("request_id", requestID))
}

// adminList answers GET /admin/v1/{kind}?limit=N&after=ID: records sorted
// by id, at most limit of them, starting after the given id.
func (s *Service) adminList(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	kind := a.kind
	var f fieldErrs
	limit, after := listParams(r, &f)
	if err := f.err(); err != nil {
		return err
	}
	ids, total := s.engine.ids(kind, after, limit+1)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	data := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		rec, err := s.engine.get(kind, id)
		if err != nil {
			continue // deleted meanwhile
		}
		if k, ok := rec.(*APIKey); ok {
			rec = showAPIKey(k)
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		data = append(data, b)
	}
	writeJSON(w, http.StatusOK, listJSON[json.RawMessage]{Object: "list", Data: data, HasMore: more, TotalCount: total, After: after, Limit: limit})
	return nil
}

// ids returns up to n ids of the given kind greater than after, sorted,
// and the number of records of that kind.
func (e *Engine) ids(kind Kind, after string, n int) ([]string, int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	st := e.st
	if st == nil {
		st = emptyState
	}
	var all []string
	collect := func(id string) {
		if id > after {
			all = append(all, id)
		}
	}
	total := 0
	switch kind {
	case KindPolicy:
		total = len(st.policies)
		for id := range st.policies {
			collect(id)
		}
	case KindSubject:
		total = len(st.subjects)
		for id := range st.subjects {
			collect(id)
		}
	case KindDevice:
		total = len(st.devices)
		for id := range st.devices {
			collect(id)
		}
	case KindAPIKey:
		total = len(st.apiKeys)
		for id := range st.apiKeys {
			collect(id)
		}
	case KindRevocation:
		total = len(st.revs)
		for id := range st.revs {
			collect(id)
		}
	}
	slices.Sort(all)
	return all[:min(len(all), n)], total
}
