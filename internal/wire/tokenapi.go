package wire

// TokenRequest is the JSON body of POST /ace-auth/token (docs/PROTOCOL.md
// section 9, the token endpoint of the original cloud service): what the technician client sends
// and the authorization service decodes.
type TokenRequest struct {
	GrantType string   `json:"grant_type"` // "client_credentials"
	Aud       []string `json:"aud"`
	Scope     string   `json:"scope"` // operation names separated by spaces
	Cnf       string   `json:"cnf"`   // the PoP public key, PEM
}

// TokenResponse is the JSON body of a successful token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`  // base64 of the token bytes
	GrantedUntil string `json:"granted_until"` // RFC 3339
}
