package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// recordETag returns the strong entity tag (RFC 9110 section 8.8.3) of a
// record of the administration API: the quoted hex of the first 16 bytes
// of the SHA-256 of its JSON encoding as written, which every instance
// sharing a store computes alike. An API key's tag covers the fields the
// API shows, never its hash. A deletion has no tag.
func recordETag(c *Change) string {
	var b []byte
	var err error
	if c.APIKey != nil {
		b, err = json.Marshal(showAPIKey(c.APIKey))
	} else {
		b, err = c.record()
	}
	if err != nil || c.Delete {
		return ""
	}
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// preconditions are the If-Match and If-None-Match headers of a write
// (RFC 9110 sections 13.1.1 and 13.1.2): nil lists when absent; a list
// holding "*" matches any present record.
type preconditions struct {
	ifMatch, ifNoneMatch []string
}

// readPreconditions parses the precondition headers of r. A malformed
// header is a *ValidationError naming it.
func readPreconditions(r *http.Request) (*preconditions, error) {
	var p preconditions
	var f fieldErrs
	for _, h := range []struct {
		name string
		dst  *[]string
	}{{"If-Match", &p.ifMatch}, {"If-None-Match", &p.ifNoneMatch}} {
		tags, ok := parseETagList(strings.Join(r.Header.Values(h.name), ","))
		if !ok {
			f.add(h.name, `"*" or a comma-separated list of entity tags ("<tag>" or W/"<tag>")`)
		}
		*h.dst = tags
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	if p.ifMatch == nil && p.ifNoneMatch == nil {
		return nil, nil
	}
	return &p, nil
}

// parseETagList parses the value of If-Match or If-None-Match: "*" or
// #entity-tag (RFC 9110 sections 8.8.3 and 13.1.1). Empty list elements
// are skipped; an empty value is an absent header (nil, true).
func parseETagList(v string) ([]string, bool) {
	if strings.TrimSpace(v) == "*" {
		return []string{"*"}, true
	}
	var tags []string
	for {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			return tags, true
		}
		tag := v
		weak := strings.HasPrefix(v, "W/")
		if weak {
			v = v[2:]
		}
		if v == "" || v[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return nil, false
		}
		for _, ch := range v[1 : 1+end] {
			// etagc = %x21 / %x23-7E / obs-text
			if ch < 0x21 || ch == 0x7f {
				return nil, false
			}
		}
		n := len(tag) - len(v) + end + 2
		tags = append(tags, tag[:n])
		v = strings.TrimLeft(v[end+2:], " \t")
		if v != "" && v[0] != ',' {
			return nil, false
		}
	}
}

// matches reports whether a precondition's list matches the current
// record's tag (empty when there is no record), comparing strongly: a
// weak tag never matches.
func matches(list []string, etag string) bool {
	if etag == "" {
		return false
	}
	return slices.Contains(list, "*") || slices.Contains(list, etag)
}

// condition evaluates p against cur, the present value of the record
// (a deletion when there is none), and returns the changes' condition:
// a write with preconditions commits only if the record is still cur, so
// that what was evaluated here still holds at commit (the store checks
// Create and IfMatch in the write's transaction).
func (p *preconditions) condition(cur Change) (create bool, ifMatch *Change, err error) {
	etag := ""
	if !cur.Delete {
		etag = recordETag(&cur)
	}
	if p.ifMatch != nil && !matches(p.ifMatch, etag) {
		return false, nil, fmt.Errorf("%w: %s %q does not match If-Match", ErrPreconditionFailed, cur.Kind, cur.ID)
	}
	if p.ifNoneMatch != nil && matches(p.ifNoneMatch, etag) {
		return false, nil, fmt.Errorf("%w: %s %q matches If-None-Match", ErrPreconditionFailed, cur.Kind, cur.ID)
	}
	if cur.Delete {
		return true, nil, nil
	}
	return false, &cur, nil
}

// evaluate evaluates p against the present record of kind and id, and
// returns it with the write's condition. A failed precondition is checked
// again after reading the store, so that an instance whose view lags
// (MaxStaleness) does not refuse a tag that another instance sent for a
// newer record.
func (s *Service) evaluate(ctx context.Context, p *preconditions, kind Kind, id string) (cur Change, create bool, ifMatch *Change, err error) {
	cur = s.engine.current(kind, id)
	create, ifMatch, err = p.condition(cur)
	if errors.Is(err, ErrPreconditionFailed) {
		if serr := s.Sync(ctx); serr != nil {
			return cur, false, nil, serr
		}
		cur = s.engine.current(kind, id)
		create, ifMatch, err = p.condition(cur)
	}
	return cur, create, ifMatch, err
}

// conditionFailed reports whether a conflict of a conditional write came
// from its condition: whether the record, read again, is no longer the
// one the condition named (the conflict may also be a uniqueness rule,
// which stays ErrConflict). Any Store refuses a failed condition with
// ErrConflict; reading back tells the two apart without relying on its
// message.
func (s *Service) conditionFailed(ctx context.Context, err error, kind Kind, id string, create bool, ifMatch *Change) error {
	if !errors.Is(err, ErrConflict) {
		return err
	}
	if s.Sync(ctx) != nil {
		return err
	}
	now := s.engine.current(kind, id)
	if create && !now.Delete || ifMatch != nil && !sameRecord(&now, ifMatch) {
		return fmt.Errorf("%w: %s %q changed meanwhile: %w", ErrPreconditionFailed, kind, id, err)
	}
	return err
}

// setETag sets the ETag header of an answer carrying the record of c.
func setETag(w http.ResponseWriter, c *Change) {
	if et := recordETag(c); et != "" {
		w.Header().Set("ETag", et)
	}
}
