package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Groups exist only as memberships of subjects ([Subject].Groups) and as
// names in policies ([Subjects].Groups): there is no group record. The
// administration API lists them and changes memberships one subject at a
// time (docs/PROTOCOL.md section 9, "Groups").

// groupSummary is one group of the list: its member count and the
// policies naming it.
type groupSummary struct {
	name     string
	members  int
	policies []string
}

// groupList returns up to n groups whose names are greater than after,
// sorted by name, and the number of groups: those that a subject belongs
// to or a policy names.
func (e *Engine) groupList(after string, n int) ([]groupSummary, int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	st := e.state()
	count := map[string]int{}
	for _, s := range st.subjects {
		for _, g := range s.s.Groups {
			count[g]++
		}
	}
	for k := range st.keys {
		if g, ok := strings.CutPrefix(k, "g\x00"); ok {
			count[g] += 0
		}
	}
	var names []string
	for g := range count {
		if g > after {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	names = names[:min(len(names), n)]
	out := make([]groupSummary, len(names))
	for i, g := range names {
		out[i] = groupSummary{name: g, members: count[g], policies: st.policiesNaming(g)}
	}
	return out, len(count)
}

// policiesNaming returns the ids of the policies naming group, sorted.
func (st *state) policiesNaming(group string) []string {
	list := st.policiesByKey("g\x00" + group)
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.p.ID
	}
	slices.Sort(ids)
	return ids
}

// group returns the members of a group and the policies naming it, both
// sorted, or an error matching [ErrNotFound] when no subject belongs to it
// and no policy names it.
func (e *Engine) group(name string) (members, policies []string, err error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	st := e.state()
	members, policies = st.members(name), st.policiesNaming(name)
	if len(members) == 0 && len(policies) == 0 {
		return nil, nil, fmt.Errorf("%w: group %q: no subject belongs to it and no policy names it", ErrNotFound, name)
	}
	if members == nil {
		members = []string{}
	}
	return members, policies, nil
}

// AddGroupMember adds the subject with the given id to group and returns
// the subject as written, or as it is when it already belongs to the
// group (nothing is written then). It reads the subject, changes its
// groups and writes it on condition that it did not change meanwhile
// ([Change].IfMatch), reading it again when it did, up to
// maxMembershipAttempts times: two administrators changing one subject's
// groups at once, even through two instances sharing a database, both see
// their change kept. An unknown subject is an error matching
// [ErrNotFound], an invalid group name one matching [ErrInvalid], a
// subject that kept changing one matching [ErrConflict].
func (s *Service) AddGroupMember(ctx context.Context, group, subject string) (*Subject, error) {
	sub, _, err := s.changeMembership(ctx, group, subject, true)
	return sub, err
}

// RemoveGroupMember removes the subject with the given id from group, as
// [Service.AddGroupMember] adds it. A subject that does not belong to the
// group is an error matching [ErrNotFound].
func (s *Service) RemoveGroupMember(ctx context.Context, group, subject string) error {
	_, _, err := s.changeMembership(ctx, group, subject, false)
	return err
}

// changeMembership adds subject to group or removes it, and returns the
// subject as it is afterwards and whether it was written.
func (s *Service) changeMembership(ctx context.Context, group, subject string, add bool) (*Subject, bool, error) {
	var f fieldErrs
	checkID(&f, "name", group)
	if err := f.err(); err != nil {
		return nil, false, err
	}
	for attempt := 1; ; attempt++ {
		sync := s.sync
		if attempt > 1 {
			sync = s.Sync // the subject changed meanwhile: read the store now
		}
		if err := sync(ctx); err != nil {
			return nil, false, err
		}
		rec, err := s.engine.get(KindSubject, subject)
		if err != nil {
			return nil, false, err
		}
		old := rec.(*Subject)
		neu := old.clone()
		i := slices.Index(old.Groups, group)
		switch {
		case add && i >= 0:
			return old, false, nil
		case add:
			neu.Groups = append(neu.Groups, group)
		case i < 0:
			return nil, false, fmt.Errorf("%w: subject %q is not a member of group %q", ErrNotFound, subject, group)
		default:
			neu.Groups = slices.Delete(neu.Groups, i, i+1)
			if len(neu.Groups) == 0 {
				neu.Groups = nil
			}
		}
		c := PutSubject(neu)
		m := PutSubject(old)
		c.IfMatch = &m
		err = s.Apply(ctx, c)
		if err == nil {
			return neu, true, nil
		}
		if !errors.Is(err, ErrConflict) || attempt >= maxMembershipAttempts {
			return nil, false, err
		}
	}
}
