package policy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

func (s *Service) serveAdmin(w http.ResponseWriter, r *http.Request, requestID string) error {
	rest := strings.TrimPrefix(r.URL.Path, AdminPathPrefix)
	coll, id, hasID := strings.Cut(rest, "/")
	kind, ok := adminKinds[coll]
	if !ok || (hasID && (id == "" || strings.Contains(id, "/"))) {
		return errPathNotFound
	}
	// Check the method before authenticating, so that 405 does not depend
	// on the credential; then require an administrator.
	switch {
	case !hasID && r.Method == http.MethodGet,
		!hasID && kind == KindAPIKey && r.Method == http.MethodPost,
		hasID && (r.Method == http.MethodGet || r.Method == http.MethodDelete),
		hasID && kind != KindAPIKey && r.Method == http.MethodPut:
	default:
		return errMethodNotAllow
	}
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if !p.Admin {
		return fmt.Errorf("%w: subject %q is not an administrator", ErrForbidden, p.Subject)
	}
	ctx := r.Context()
	if err := s.sync(ctx); err != nil {
		return err
	}
	switch {
	case !hasID && r.Method == http.MethodGet:
		return s.adminList(w, r, kind)
	case !hasID: // POST api-keys
		body, err := readBody(w, r, maxAdminBodyBytes)
		if err != nil {
			return err
		}
		var in apiKeyCreateJSON
		if err := strictUnmarshal(body, &in); err != nil {
			return errBadJSON
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
		if err := s.Apply(ctx, CreateAPIKey(key)); err != nil {
			return err
		}
		s.auditAdmin(r, p, requestID, "create", kind, in.ID)
		out := showAPIKey(key)
		out.Secret = secret
		writeJSON(w, http.StatusCreated, out)
		return nil
	case r.Method == http.MethodGet:
		rec, err := s.engine.get(kind, id)
		if err != nil {
			return err
		}
		if k, ok := rec.(*APIKey); ok {
			rec = showAPIKey(k)
		}
		writeJSON(w, http.StatusOK, rec)
		return nil
	case r.Method == http.MethodDelete:
		if _, err := s.engine.get(kind, id); err != nil {
			return err
		}
		// A subject goes with its API keys, in one batch: a key left behind
		// would not authenticate, but would again if the id were reused.
		changes := []Change{DeleteRecord(kind, id)}
		var keys []string
		if kind == KindSubject {
			keys = s.engine.apiKeysOf(id)
			for _, k := range keys {
				changes = append(changes, DeleteRecord(KindAPIKey, k))
			}
		}
		if err := s.Apply(ctx, changes...); err != nil {
			return err
		}
		s.auditAdmin(r, p, requestID, "delete", kind, id)
		for _, k := range keys {
			s.auditAdmin(r, p, requestID, "delete", KindAPIKey, k)
		}
		w.Header().Set("X-Request-Id", requestID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	default: // PUT
		body, err := readBody(w, r, maxAdminBodyBytes)
		if err != nil {
			return err
		}
		c, err := DecodeChange(kind, body)
		if err != nil {
			return errBadJSON
		}
		if c.ID != id {
			return &ValidationError{Fields: []FieldError{{Name: "id", Message: "must equal the id in the path"}}}
		}
		if err := s.Apply(ctx, c); err != nil {
			return err
		}
		s.auditAdmin(r, p, requestID, "put", kind, id)
		// Answer with the record as written, which does not depend on
		// reading the store back.
		rec, err := c.record()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, json.RawMessage(rec))
		return nil
	}
}

func (s *Service) auditAdmin(r *http.Request, p Principal, requestID, op string, kind Kind, id string) {
	s.logger().LogAttrs(r.Context(), slog.LevelInfo, "sda.admin."+op,
		slog.String("subject", p.Subject), slog.String("kind", string(kind)), slog.String("id", id),
		slog.String("request_id", requestID))
}

// adminList answers GET /admin/v1/{kind}?limit=N&after=ID: records sorted
// by id, at most limit of them, starting after the given id.
func (s *Service) adminList(w http.ResponseWriter, r *http.Request, kind Kind) error {
	q := r.URL.Query()
	var f fieldErrs
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			f.add("limit", "an integer from 1 to %d", maxListLimit)
		}
		limit = n
	}
	after := q.Get("after")
	if len(after) > maxIDLen {
		f.add("after", "longer than %d bytes", maxIDLen)
	}
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
	}
	slices.Sort(all)
	return all[:min(len(all), n)], total
}
