package console

import (
	"encoding/json"
	"net/http"
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

// impact is the answer of POST /admin/v1/what-if.
type impact struct {
	Time             string          `json:"time"`
	Gained           int             `json:"gained"`
	Lost             int             `json:"lost"`
	Summary          []impactSummary `json:"summary"`
	SummaryTruncated bool            `json:"summary_truncated"`
	Details          []impactDetail  `json:"details"`
	DetailsTruncated bool            `json:"details_truncated"`
}

type impactSummary struct {
	Change      string          `json:"change"`
	Operation   string          `json:"operation"`
	Constraints json.RawMessage `json:"constraints"`
	Subjects    impactClass     `json:"subjects"`
	Devices     impactClass     `json:"devices"`
	Grants      int             `json:"grants"`
}

type impactClass struct {
	Description string   `json:"description"`
	Count       int      `json:"count"`
	Sample      []string `json:"sample"`
}

type impactDetail struct {
	Change       string          `json:"change"`
	Subject      string          `json:"subject"`
	Device       string          `json:"device"`
	EndpointName string          `json:"endpoint_name"`
	Operation    string          `json:"operation"`
	Constraints  json.RawMessage `json:"constraints"`
}

// whatIf asks the API what the changes would change, writing nothing.
func (c *Console) whatIf(r *http.Request, s *session, changes []change) (*impact, error) {
	var imp impact
	err := c.call(r.Context(), r, s.apiKey, http.MethodPost, adminPath("what-if"), nil,
		map[string]any{"changes": changes, "limit": 100}, &imp)
	if err != nil {
		return nil, err
	}
	return &imp, nil
}
