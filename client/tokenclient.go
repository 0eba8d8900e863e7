package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
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

// MaxTokenResponseSize bounds the body of a token endpoint answer (success
// or error) that the client reads.
const MaxTokenResponseSize = 16 << 10

// DefaultHTTPTimeout is the timeout of the HTTP client a [TokenClient] uses
// when its HTTPClient field is nil.
const DefaultHTTPTimeout = 30 * time.Second

// TokenClient fetches access tokens from the token endpoint of an
// authorization service (POST /ace-auth/token, docs/PROTOCOL.md section 9) with a bearer
// credential. Its fields must not change once it is in use; it is safe for
// concurrent use.
type TokenClient struct {
	// Endpoint is the URL of the token endpoint, for example
	// "https://auth.example.com/ace-auth/token". It must be https, except
	// for a loopback host (tests, a local agent), where http is allowed.
	Endpoint string
	// StatusEndpoint is the URL of the status update endpoint
	// ([TokenClient.StatusUpdate]); empty means StatusPath on Endpoint's
	// scheme and host. The rules of Endpoint apply.
	StatusEndpoint string
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
func (c *TokenClient) Fetch(ctx context.Context, req *token.AccessRequest) (*AccessToken, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
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
	tr := wire.TokenRequest{
		GrantType: "client_credentials",
		Aud:       req.Audience,
		Scope:     strings.Join(req.Scope, " "),
		Cnf:       string(cnf),
	}
	if req.CNonce != nil {
		// v2: the device nonce for the token as hex (docs/PROTOCOL.md
		// section 12); absent when there is none, so a v1 request is
		// unchanged.
		n := hex.EncodeToString(req.CNonce)
		tr.CNonce = &n
	}
	body, err := json.Marshal(tr)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, invalid("%v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	data, err := c.send(hreq, "token", MaxTokenResponseSize)
	if err != nil {
		return nil, err
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
	tok, err := CheckToken(raw, &TokenCheck{Key: req.Key, Audience: req.Audience, Scope: req.Scope, CNonce: req.CNonce, Anchors: c.Anchors, Now: checked})
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

// send sends hreq with the bearer credential, following redirects only to
// URLs the credential may go to, and returns the body of a 200 answer read
// up to limit+1 bytes; another answer is a [*ServiceError].
func (c *TokenClient) send(hreq *http.Request, what string, limit int64) ([]byte, error) {
	hreq.Header.Set("Authorization", "Bearer "+c.Credential)
	hreq.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := secureRedirects(hc).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("client: %s request: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("client: reading the %s response: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeServiceError(resp.StatusCode, data)
	}
	return data, nil
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
		if len(j.Fields) > token.MaxAudiences+token.MaxScopeItems+2 {
			j.Fields = j.Fields[:token.MaxAudiences+token.MaxScopeItems+2]
		}
		e.Fields = j.Fields
	}
	return e
}
