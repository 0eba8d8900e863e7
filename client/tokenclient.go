package client

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// TokenPath is the path of the token endpoint on an authorization service
// (docs/PROTOCOL.md section 9, "Token endpoint").
const TokenPath = "/ace-auth/token"

// Limits of a token request (docs/PROTOCOL.md section 11): they are checked before anything is
// sent.
const (
	MaxRequestAudiences = 50 // aud entries
	MaxAudienceChars    = 60 // characters after the prefix of one aud entry
	MaxRequestScopes    = 20 // scope items; each is a valid operation name (token.ValidateName)
)

// MaxTokenResponseSize bounds the body of a token endpoint answer (success
// or error) that the client reads.
const MaxTokenResponseSize = 16 << 10

// DefaultHTTPTimeout is the timeout of the HTTP client a [TokenClient] uses
// when its HTTPClient field is nil.
const DefaultHTTPTimeout = 30 * time.Second

// audiencePrefixes are the prefixes an aud entry may start with.
var audiencePrefixes = []string{token.PrefixEndpoint, token.PrefixDeviceID, token.PrefixLegacyEndpoint, token.PrefixLegacyDeviceID}

// TokenRequest is what a technician asks the authorization service for.
type TokenRequest struct {
	// Audience names the devices: "ep:<endpoint name>" or "id:<device id>"
	// (or the legacy "endpoint-name:" and "device-id:"), 1 to 50 entries,
	// each with 1 to 60 characters of [A-Za-z0-9+/= -] after the prefix.
	Audience []string
	// Scope lists the operations, 1 to 20 names each matching
	// ^[A-Za-z][A-Za-z0-9-]*$ with at most 60 characters. A service in
	// the v1 profile refuses a scope that is a single one-character name
	// (deployed devices refuse such a token); Validate, which cannot know
	// the service's profile, accepts it.
	Scope []string
	// Key is the public half of the proof-of-possession key the token
	// will be bound to (cnf).
	Key crypto.PublicKey
}

// Validate checks the request against the limits of the token endpoint.
// Errors match [ErrInvalid]; a refused key's error also matches
// token.ErrUnsupportedKey (token.ErrWeakKey for a degenerate key).
func (r *TokenRequest) Validate() error {
	if r == nil {
		return invalid("nil token request")
	}
	if len(r.Audience) == 0 || len(r.Audience) > MaxRequestAudiences {
		return invalid("%d audience entries, want 1..%d", len(r.Audience), MaxRequestAudiences)
	}
	for i, a := range r.Audience {
		if err := validateAudience(a); err != nil {
			return invalid("audience entry %d: %v", i, err)
		}
		if i > 0 && contains(r.Audience[:i], a) {
			return invalid("audience entry %q repeated", a)
		}
	}
	if len(r.Scope) == 0 || len(r.Scope) > MaxRequestScopes {
		return invalid("%d scope items, want 1..%d", len(r.Scope), MaxRequestScopes)
	}
	for i, s := range r.Scope {
		if err := token.ValidateName(s); err != nil {
			return invalid("scope item %d: %v", i, err)
		}
		if i > 0 && contains(r.Scope[:i], s) {
			return invalid("scope item %q repeated", s)
		}
	}
	if r.Key == nil {
		return invalid("no proof-of-possession key")
	}
	if _, err := token.AlgorithmFor(r.Key); err != nil {
		// The cause stays matchable: token.ErrUnsupportedKey, and
		// token.ErrWeakKey for a degenerate key.
		return fmt.Errorf("%w: proof-of-possession key: %w", ErrInvalid, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func validateAudience(a string) error {
	for _, p := range audiencePrefixes {
		if !strings.HasPrefix(a, p) {
			continue
		}
		v := a[len(p):]
		if len(v) == 0 || len(v) > MaxAudienceChars {
			return fmt.Errorf("%d characters after %q, want 1..%d", len(v), p, MaxAudienceChars)
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("+/= -", c) >= 0) {
				return fmt.Errorf("invalid character %q at %d", c, len(p)+i)
			}
		}
		return nil
	}
	return fmt.Errorf("%q has no known prefix (%s)", a, strings.Join(audiencePrefixes, ", "))
}

// TokenClient fetches access tokens from the token endpoint of an
// authorization service (POST /ace-auth/token, docs/PROTOCOL.md section 9) with a bearer
// credential. Its fields must not change once it is in use; it is safe for
// concurrent use.
type TokenClient struct {
	// Endpoint is the URL of the token endpoint, for example
	// "https://auth.example.com/ace-auth/token". It must be https, except
	// for a loopback host (tests, a local agent), where http is allowed.
	Endpoint string
	// Credential is the bearer credential sent in the Authorization header.
	Credential string
	// HTTPClient makes the requests; nil means a client with
	// DefaultHTTPTimeout. Redirects are followed as its CheckRedirect says
	// (net/http drops the Authorization header when the host changes),
	// except that a redirect to a URL that Endpoint could not be (plain
	// http to a host other than loopback) is refused.
	HTTPClient *http.Client
	// Anchors, when set, are the trust anchors that verify the signature of every token received
	// (see [TokenCheck.Anchors]).
	Anchors trust.Store
	// Now is the clock used to check the expiry of received tokens; nil
	// means time.Now.
	Now func() time.Time
}

var defaultHTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}

type errorJSON struct {
	Object    string       `json:"object"`
	Code      int          `json:"code"`
	Type      string       `json:"type"`
	Message   string       `json:"message"`
	Fields    []FieldError `json:"fields"`
	RequestID string       `json:"request_id"`
}

// Fetch asks the service for a token, checks the answer with [CheckToken]
// against req (and c.Anchors) and returns it. The request is validated
// before anything is sent ([ErrInvalid]). An error answer of the service is
// a [*ServiceError]; a malformed success answer matches [ErrBadResponse]; a
// token that is not the one asked for matches [ErrTokenMismatch].
func (c *TokenClient) Fetch(ctx context.Context, req *TokenRequest) (*AccessToken, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	endpoint, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	if c.Credential == "" || strings.ContainsAny(c.Credential, "\r\n") {
		return nil, invalid("missing or invalid bearer credential")
	}
	cnf, err := token.MarshalPublicKeyPEM(req.Key)
	if err != nil {
		return nil, invalid("proof-of-possession key: %v", err)
	}
	body, err := json.Marshal(wire.TokenRequest{
		GrantType: "client_credentials",
		Aud:       req.Audience,
		Scope:     strings.Join(req.Scope, " "),
		Cnf:       string(cnf),
	})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, invalid("%v", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.Credential)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := secureRedirects(hc).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("client: reading the token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeServiceError(resp.StatusCode, data)
	}
	raw, grantedUntil, err := decodeTokenResponse(data)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	checked := now()
	tok, err := CheckToken(raw, &TokenCheck{Key: req.Key, Audience: req.Audience, Scope: req.Scope, Anchors: c.Anchors, Now: checked})
	if err != nil {
		return nil, err
	}
	if grantedUntil.Before(tok.Expiry) {
		tok.Expiry = grantedUntil
	}
	if !tok.Expiry.After(checked) {
		return nil, &TokenCheckError{Check: "expiry", Reason: fmt.Sprintf("granted until %v", grantedUntil.UTC().Format(time.RFC3339))}
	}
	return tok, nil
}

// endpoint checks the endpoint URL: https, or http on a loopback host.
func (c *TokenClient) endpoint() (string, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		return "", invalid("token endpoint %q is not an absolute URL", c.Endpoint)
	}
	if !secureURL(u) {
		return "", invalid("token endpoint %q must use https (http only on a loopback host)", c.Endpoint)
	}
	return u.String(), nil
}

// secureURL reports whether the bearer credential may be sent to u: https,
// or http on a loopback host.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || ip != nil && ip.IsLoopback()
	}
	return false
}

// secureRedirects returns a copy of hc that refuses to follow a redirect to
// a URL the credential may not go to: net/http keeps the Authorization
// header on a redirect to the same host (or a subdomain), even from https
// to plain http. hc's own CheckRedirect, or the default policy, applies
// after that.
func secureRedirects(hc *http.Client) *http.Client {
	c := *hc
	check := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !secureURL(req.URL) {
			return badResponse("token endpoint redirects to %q, which is not https (http only on a loopback host)", req.URL.Redacted())
		}
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// decodeTokenResponse decodes a 200 answer of the token endpoint:
// {"access_token": "<base64 token>", "granted_until": "<RFC 3339>"}.
// Unknown fields are ignored, so services may add some.
func decodeTokenResponse(data []byte) (raw []byte, grantedUntil time.Time, err error) {
	if len(data) > MaxTokenResponseSize {
		return nil, time.Time{}, badResponse("token response larger than %d bytes", MaxTokenResponseSize)
	}
	var r wire.TokenResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, time.Time{}, badResponse("token response is not the JSON object expected: %v", err)
	}
	if r.AccessToken == "" || len(r.AccessToken) > base64.StdEncoding.EncodedLen(token.MaxTokenSize) {
		return nil, time.Time{}, badResponse("access_token missing or longer than %d bytes", token.MaxTokenSize)
	}
	raw, err = base64.StdEncoding.Strict().DecodeString(r.AccessToken)
	if err != nil {
		return nil, time.Time{}, badResponse("access_token is not base64: %v", err)
	}
	grantedUntil, err = time.Parse(time.RFC3339, r.GrantedUntil)
	if err != nil {
		return nil, time.Time{}, badResponse("granted_until is not an RFC 3339 time: %v", err)
	}
	return raw, grantedUntil, nil
}

// decodeServiceError builds the error for a non-200 answer.
func decodeServiceError(status int, data []byte) error {
	e := &ServiceError{StatusCode: status}
	var j errorJSON
	if len(data) <= MaxTokenResponseSize && json.Unmarshal(data, &j) == nil && j.Object == "error" {
		e.Code, e.Type, e.Message, e.RequestID = j.Code, j.Type, j.Message, j.RequestID
		if len(j.Fields) > MaxRequestAudiences+MaxRequestScopes+2 {
			j.Fields = j.Fields[:MaxRequestAudiences+MaxRequestScopes+2]
		}
		e.Fields = j.Fields
	}
	return e
}
