package policy

import (
	"net/http"
)

// groupJSON is a group in the administration API: Members is a count in
// the list, the sorted member ids when one group is shown.
type groupJSON struct {
	Object   string   `json:"object"`
	Name     string   `json:"name"`
	Members  any      `json:"members"`
	Policies []string `json:"policies"`
}

// adminGroups answers GET /admin/v1/groups?limit=N&after=NAME: the
// groups that subjects belong to or policies name, sorted by name, with
// their member counts and the policies naming them, in the list format.
func (s *Service) adminGroups(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	var f fieldErrs
	limit, after := listParams(r, &f)
	if err := f.err(); err != nil {
		return err
	}
	groups, total := s.engine.groupList(after, limit+1)
	more := len(groups) > limit
	if more {
		groups = groups[:limit]
	}
	data := make([]groupJSON, len(groups))
	for i, g := range groups {
		data[i] = groupJSON{Object: "group", Name: g.name, Members: g.members, Policies: g.policies}
	}
	writeJSON(w, http.StatusOK, listJSON[groupJSON]{Object: "list", Data: data, HasMore: more, TotalCount: total, After: after, Limit: limit})
	return nil
}

// adminGroup answers GET /admin/v1/groups/{name}: its members and the
// policies naming it; 404 when it has neither.
func (s *Service) adminGroup(w http.ResponseWriter, r *http.Request, _ *adminRequest) error {
	name := r.PathValue("name")
	members, policies, err := s.engine.group(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, groupJSON{Object: "group", Name: name, Members: members, Policies: policies})
	return nil
}

// adminGroupMember answers PUT /admin/v1/groups/{name}/members/{subject}
// (200 with the subject as written; idempotent) and DELETE on the same
// path (204; 404 when the subject is not a member).
func (s *Service) adminGroupMember(w http.ResponseWriter, r *http.Request, a *adminRequest) error {
	name, subject := r.PathValue("name"), r.PathValue("subject")
	add := r.Method == http.MethodPut
	sub, written, err := s.changeMembership(r.Context(), name, subject, add)
	if err != nil {
		return err
	}
	if written {
		s.auditAdmin(r, a.principal, a.requestID, "put", KindSubject, subject)
	}
	if !add {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, sub)
	return nil
}
