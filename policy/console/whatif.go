package console

import (
	"encoding/json"
	"net/http"

	"github.com/securedeviceaccess/sda/policy"
)

// change is one change of a what-if request, in the JSON shape of
// policy.Change: {"kind":"policy","id":"p1","policy":{...}} or
// {"kind":"subject","id":"bob","delete":true}.
type change struct {
	Kind   string
	ID     string
	Delete bool
	Record string // the field holding the record: the kind
	Value  any
}

// MarshalJSON writes the change in the API's shape.
func (ch change) MarshalJSON() ([]byte, error) {
	m := map[string]any{"kind": ch.Kind, "id": ch.ID}
	if ch.Delete {
		m["delete"] = true
	} else {
		m[ch.Record] = ch.Value
	}
	return json.Marshal(m)
}

// whatIf asks the API what the changes would change, writing nothing.
func (c *Console) whatIf(r *http.Request, s *session, changes []change) (*policy.Impact, error) {
	var imp policy.Impact
	err := c.call(r.Context(), r, s.apiKey, http.MethodPost, adminPath("what-if"), nil,
		map[string]any{"changes": changes, "limit": 100}, &imp)
	if err != nil {
		return nil, err
	}
	return &imp, nil
}
