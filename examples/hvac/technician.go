package main

import (
	"context"
	"crypto"
	"net/http"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// Timeouts of the technicians' apps: everything is on loopback, so an
// answer that takes longer than this is a failure.
const (
	httpTimeout      = 5 * time.Second
	operationTimeout = 5 * time.Second
	nonceTimeout     = 2 * time.Second
)

// technician is a technician's app: an identity at the authorization
// service and a proof-of-possession key.
type technician struct {
	name, org  string
	credential string
	key        crypto.Signer
}

func newTechnician(name, org, credential string) (*technician, error) {
	key, err := client.GenerateKey(client.KeyP256)
	if err != nil {
		return nil, err
	}
	return &technician{name: name, org: org, credential: credential, key: key}, nil
}

// tokenSource returns the app's token source for scope on aud, at the
// token endpoint url. Its first Token call asks the service. With
// statusURL set, every token fetch also fetches the status update of each
// device of aud from statusURL, which the app's sessions carry to devices
// that hold an older one.
func (t *technician) tokenSource(url, statusURL string, aud []string, scope []string, anchors trust.Store) *client.TokenSource {
	tc := &client.TokenClient{
		Endpoint:       url,
		StatusEndpoint: statusURL,
		Credential:     t.credential,
		HTTPClient:     newHTTPClient(),
		Anchors:        anchors,
	}
	src := &client.TokenSource{
		Fetcher: tc,
		Request: token.AccessRequest{Audience: aud, Scope: scope, Key: t.key.Public()},
	}
	if statusURL != "" {
		src.Status = tc
	}
	return src
}

// newHTTPClient returns the apps' HTTP client. It keeps no idle
// connections, so that nothing outlives the demo.
func newHTTPClient() *http.Client {
	return &http.Client{Timeout: httpTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// connect dials a controller and returns a session over the connection,
// which records what the app sends (an attacker on the network sees the
// same bytes).
func (t *technician) connect(ctx context.Context, c *controller, tokens client.TokenProvider) (*client.Session, *recorder, error) {
	conn, err := transport.Dial(ctx, c.addr, nil)
	if err != nil {
		return nil, nil, err
	}
	rec := &recorder{Conn: conn}
	s := &client.Session{
		Conn: rec, Key: t.key, Tokens: tokens,
		Timeout: operationTimeout, NonceTimeout: nonceTimeout,
	}
	if c.signer != nil {
		s.DeviceKey, s.Device = c.signer.Public(), c.id
	}
	if src, ok := tokens.(*client.TokenSource); ok && src.Status != nil {
		s.Status = src // the updates it cached with its tokens
	}
	return s, rec, nil
}

// recorder is a transport.Conn that keeps a copy of the last operation
// request sent: what an eavesdropper on the link captures.
type recorder struct {
	transport.Conn
	mu   sync.Mutex
	last []byte
}

func (r *recorder) Send(ctx context.Context, msg []byte) error {
	if m, err := wire.DecodeMessage(msg); err == nil && m.Type == wire.TypeOperationRequest {
		r.mu.Lock()
		r.last = append([]byte(nil), msg...)
		r.mu.Unlock()
	}
	return r.Conn.Send(ctx, msg)
}

// captured returns the last operation request sent.
func (r *recorder) captured() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.last...)
}

// forgedTokens is an attacker's TokenProvider: a stolen token, claimed to be
// bound to the attacker's key. The session believes it; the device does
// not.
type forgedTokens struct {
	raw []byte
	key crypto.PublicKey
}

func (f forgedTokens) Token(context.Context) (*client.AccessToken, error) {
	return &client.AccessToken{Raw: f.raw, Key: f.key}, nil
}

var _ client.TokenProvider = forgedTokens{}

// unverifiedToken extracts the access token from a captured operation
// request, without verifying anything.
func unverifiedToken(captured []byte) ([]byte, error) {
	m, err := wire.DecodeMessage(captured)
	if err != nil {
		return nil, err
	}
	req, err := token.ParseRequest(m.Signed)
	if err != nil {
		return nil, err
	}
	return req.UnverifiedToken(), nil
}
