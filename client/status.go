package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// StatusPath is the path of the status update endpoint of an
// authorization service (docs/PROTOCOL.md section 12, "Status update").
const StatusPath = "/v1/status-update"

// MaxStatusResponseSize bounds the body of a status update endpoint
// answer that the client reads: the base64 of the largest update
// ([token.MaxStatusUpdateSize]) and the other fields.
const MaxStatusResponseSize = 24 << 10

// StatusProvider supplies the newest status update (v2, docs/PROTOCOL.md
// section 12) the technician holds for a device, named by its audience
// ("ep:<name>" or "id:<device id>"), as the signed bytes. nil with no
// error means that it holds none. A [*TokenSource] answers from its cache,
// without network; a [*TokenClient] asks the service each time.
type StatusProvider interface {
	StatusUpdate(ctx context.Context, aud string) ([]byte, error)
}

// statusResponse is the JSON body of a 200 answer of the status update
// endpoint.
type statusResponse struct {
	StatusUpdate string `json:"status_update"` // base64 of the signed update
	Aud          string `json:"aud"`
	Seq          uint64 `json:"seq"`
	Time         string `json:"time"` // RFC 3339
}

// StatusUpdate fetches the current status update for the device named by
// aud (GET StatusPath?aud=..., docs/PROTOCOL.md section 12) with the bearer
// credential, under the rules of [TokenClient.Fetch]: https only (http on
// loopback), answers read up to [MaxStatusResponseSize] bytes, an error
// answer is a [*ServiceError] (404 for a device the service does not
// know). The update is parsed strictly ([token.ParseStatus]) and must be
// for aud; with c.Anchors set, its signature must verify with an anchor
// of its issuer, found by iss and kid as a device finds it. A refused
// update is a [*StatusCheckError]; a malformed answer matches
// [ErrBadResponse]. It returns the signed update as received.
func (c *TokenClient) StatusUpdate(ctx context.Context, aud string) ([]byte, error) {
	if !validAudience(aud) {
		return nil, invalid("status update audience %q: want ep:, id:, endpoint-name: or device-id: and 1..%d characters", aud, token.MaxAudienceValueLength)
	}
	endpoint, err := c.statusEndpoint()
	if err != nil {
		return nil, err
	}
	if c.Credential == "" || strings.ContainsAny(c.Credential, "\r\n") {
		return nil, invalid("missing or invalid bearer credential")
	}
	u, _ := url.Parse(endpoint) // checked by statusEndpoint
	q := u.Query()
	q.Set("aud", aud)
	u.RawQuery = q.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, invalid("%v", err)
	}
	data, err := c.send(hreq, "status update", MaxStatusResponseSize)
	if err != nil {
		return nil, err
	}
	raw, r, err := decodeStatusResponse(data)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(raw, r, aud, c.Anchors); err != nil {
		return nil, err
	}
	return raw, nil
}

// StatusFetcher returns a function that fetches the current status update
// for aud with [TokenClient.StatusUpdate]: for a device that goes online
// and fetches its own updates.
func (c *TokenClient) StatusFetcher(aud string) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) { return c.StatusUpdate(ctx, aud) }
}

// statusEndpoint is StatusEndpoint, or StatusPath on Endpoint's host,
// checked as the token endpoint is.
func (c *TokenClient) statusEndpoint() (string, error) {
	raw := c.StatusEndpoint
	if raw == "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" {
			return "", invalid("token endpoint %q is not an absolute URL", c.Endpoint)
		}
		raw = (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: StatusPath}).String()
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", invalid("status update endpoint %q is not an absolute URL", raw)
	}
	if !secureURL(u) {
		return "", invalid("status update endpoint %q must use https (http only on a loopback host)", raw)
	}
	return u.String(), nil
}

// validAudience reports whether aud names a device as the token endpoint
// accepts it: a known prefix and 1 to MaxAudienceValueLength characters of
// [A-Za-z0-9+/= -].
func validAudience(aud string) bool {
	for _, p := range []string{token.PrefixEndpoint, token.PrefixDeviceID, token.PrefixLegacyEndpoint, token.PrefixLegacyDeviceID} {
		v, ok := strings.CutPrefix(aud, p)
		if !ok {
			continue
		}
		if len(v) == 0 || len(v) > token.MaxAudienceValueLength {
			return false
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("+/= -", c) >= 0) {
				return false
			}
		}
		return true
	}
	return false
}

// decodeStatusResponse decodes a 200 answer of the status update endpoint.
// Unknown fields are ignored, so services may add some.
func decodeStatusResponse(data []byte) ([]byte, *statusResponse, error) {
	if len(data) > MaxStatusResponseSize {
		return nil, nil, badResponse("status update response larger than %d bytes", MaxStatusResponseSize)
	}
	var r statusResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, nil, badResponse("status update response is not the JSON object expected: %v", err)
	}
	if r.StatusUpdate == "" || len(r.StatusUpdate) > base64.StdEncoding.EncodedLen(token.MaxStatusUpdateSize) {
		return nil, nil, badResponse("status_update missing or longer than %d bytes", token.MaxStatusUpdateSize)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(r.StatusUpdate)
	if err != nil {
		return nil, nil, badResponse("status_update is not base64: %v", err)
	}
	return raw, &r, nil
}

// checkStatus checks a received update: strict parse, for aud, the
// answer's other fields agree with it, and with anchors its signature.
func checkStatus(raw []byte, r *statusResponse, aud string, anchors trust.Store) error {
	p, u, err := parseStatusFor(raw, aud)
	if err != nil {
		return &StatusCheckError{Check: "parse", Reason: "not a well-formed status update", Err: err}
	}
	if u == nil {
		return &StatusCheckError{Check: "aud", Reason: fmt.Sprintf("update for %q, asked for %q", p.UnverifiedUpdate().Audience, aud)}
	}
	if r.Aud != u.Audience || r.Seq != u.Sequence {
		return &StatusCheckError{Check: "seq", Reason: fmt.Sprintf("the answer says %q seq %d, the update %q seq %d", r.Aud, r.Seq, u.Audience, u.Sequence)}
	}
	if r.Time != "" {
		if at, err := time.Parse(time.RFC3339, r.Time); err != nil || at.Unix() != u.Time.Unix() {
			return &StatusCheckError{Check: "time", Reason: fmt.Sprintf("the answer says %q, the update %v", r.Time, u.Time.UTC().Format(time.RFC3339))}
		}
	}
	if anchors == nil {
		return nil
	}
	found, err := anchors.Lookup(p.UnverifiedIssuer(), p.UnverifiedKeyID())
	if err != nil {
		return &StatusCheckError{Check: "signature", Reason: fmt.Sprintf("no trust anchor for issuer %q", p.UnverifiedIssuer()), Err: err}
	}
	for _, a := range found {
		if _, err = p.Verify(a.Key); err == nil {
			return nil
		}
	}
	return &StatusCheckError{Check: "signature", Reason: "does not verify with the trust anchor", Err: err}
}

// parseStatusFor parses raw strictly and returns it with its update, read
// unverified; u is nil when the update is not for aud.
func parseStatusFor(raw []byte, aud string) (p *token.SignedStatus, u *token.StatusUpdate, err error) {
	if p, err = token.ParseStatus(raw); err != nil {
		return nil, nil, err
	}
	if u = p.UnverifiedUpdate(); u.Audience != aud {
		u = nil
	}
	return p, u, nil
}
