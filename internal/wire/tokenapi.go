package wire

// TokenRequest is the JSON body of POST /ace-auth/token (docs/PROTOCOL.md
// section 9, the token endpoint of the original cloud service): what the technician client sends
// and the authorization service decodes.
type TokenRequest struct {
	GrantType string   `json:"grant_type"` // "client_credentials"
	Aud       []string `json:"aud"`
	Scope     string   `json:"scope"` // operation names separated by spaces
	Cnf       string   `json:"cnf"`   // the PoP public key, PEM
	// CNonce (v2) is a device's nonce in hex, for the token's cnonce
	// claim (docs/PROTOCOL.md section 12); nil means none.
	CNonce *string `json:"cnonce,omitempty"`
}

// TokenResponse is the JSON body of a successful token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`  // base64 of the token bytes
	GrantedUntil string `json:"granted_until"` // RFC 3339
}

// StatusUpdateResponse is the JSON body of a successful GET
// /v1/status-update (docs/PROTOCOL.md section 12).
type StatusUpdateResponse struct {
	StatusUpdate string `json:"status_update"` // base64 of the signed update
	Aud          string `json:"aud"`
	Seq          uint64 `json:"seq"`
	Time         string `json:"time"` // RFC 3339
}
