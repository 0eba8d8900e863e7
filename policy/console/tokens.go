package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// issuedToken is an entry of GET /admin/v1/issued-tokens.
type issuedToken struct {
	TokenID   string    `json:"cti"`
	Subject   string    `json:"subject"`
	Audience  []string  `json:"aud"`
	Scope     []string  `json:"scope"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// revocation is an entry of GET /admin/v1/revocations.
type revocation struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	TokenID   string    `json:"cti"`
	Subject   string    `json:"subject"`
	Anchor    string    `json:"anchor"`
	Before    time.Time `json:"before"`
	Until     time.Time `json:"until"`
	Audience  []string  `json:"aud"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Reason    string    `json:"reason"`
}

type tokensData struct {
	Tokens  []issuedToken
	Subject string
	Aud     string
	Next    string
	Total   int
}

type revocationsData struct {
	Revocations []revocation
	Next        string
	Total       int
}

func (c *Console) tokenRoutes() {
	p := c.prefix
	c.mux.HandleFunc("GET "+p+"tokens", c.auth(c.listTokens))
	c.mux.HandleFunc("POST "+p+"tokens/{cti}/revoke", c.auth(c.revokeToken))
	c.mux.HandleFunc("GET "+p+"revocations", c.auth(c.listRevocations))
}

// listTokens answers GET tokens?subject=&aud=&after=: the ledger of
// issued tokens, with a revoke button for each.
func (c *Console) listTokens(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &tokensData{Subject: strings.TrimSpace(q.Get("subject")), Aud: strings.TrimSpace(q.Get("aud"))}
	params := url.Values{"limit": {strconv.Itoa(pageSize)}, "after": {q.Get("after")}}
	if d.Subject != "" {
		params.Set("subject", d.Subject)
	}
	if d.Aud != "" {
		params.Set("aud", d.Aud)
	}
	var lp listPage[issuedToken]
	if err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath("issued-tokens"), params, nil, &lp); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	d.Tokens, d.Total = lp.Data, lp.TotalCount
	if lp.HasMore && len(lp.Data) > 0 {
		d.Next = lp.Data[len(lp.Data)-1].TokenID
	}
	c.render(w, r, http.StatusOK, "tokens", &page{Title: "Issued tokens", Nav: "tokens", CSRF: s.csrf, Notice: notice(r), Data: d})
}

// revokeToken answers POST tokens/{cti}/revoke.
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{"kind": "token", "cti": r.PathValue("cti")}
	if reason := strings.TrimSpace(r.PostForm.Get("reason")); reason != "" {
		body["reason"] = reason
	}
	var out json.RawMessage
	if err := c.call(r.Context(), r, s.apiKey, http.MethodPost, adminPath("revocations"), nil, body, &out); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	http.Redirect(w, r, c.prefix+"revocations?msg=revoked", http.StatusSeeOther)
}

// listRevocations answers GET revocations?after=.
func (c *Console) listRevocations(w http.ResponseWriter, r *http.Request, s *session) {
	var lp listPage[revocation]
	params := url.Values{"limit": {strconv.Itoa(pageSize)}, "after": {r.URL.Query().Get("after")}}
	if err := c.call(r.Context(), r, s.apiKey, http.MethodGet, adminPath("revocations"), params, nil, &lp); err != nil {
		c.apiFailure(w, r, s, err)
		return
	}
	d := &revocationsData{Revocations: lp.Data, Total: lp.TotalCount}
	if lp.HasMore && len(lp.Data) > 0 {
		d.Next = lp.Data[len(lp.Data)-1].ID
	}
	c.render(w, r, http.StatusOK, "revocations", &page{Title: "Revocations", Nav: "revocations", CSRF: s.csrf, Notice: notice(r), Data: d})
}
