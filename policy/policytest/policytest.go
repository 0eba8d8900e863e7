package policytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// Lifetime is the token lifetime of the policies that [Server.Allow] adds:
// one hour, long enough for a test that runs on real time.
const Lifetime = time.Hour

// Admin is the subject of [Server.AdminKey].
const Admin = "admin"

// GroupPrefix marks a group in the who argument of [Server.Allow] and
// [Server.Deny]: "group:technicians".
const GroupPrefix = "group:"

// applyTimeout bounds each write to the in-memory store.
const applyTimeout = 10 * time.Second

// Options configure a server started by [NewServer]. The zero value (and
// nil) issues SDA v1 tokens with the real clock.
type Options struct {
	// Profile is the token profile the service issues: token.ProfileV1
	// (the default) or token.ProfileV2, whose tokens carry structured
	// scopes when a policy constrains arguments.
	Profile token.Profile
	// Now is the service's clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's audit events; nil discards them.
	Logger *slog.Logger
}

// Server is an authorization service running in the test's process.
type Server struct {
	// URL is the base URL of the service, "http://127.0.0.1:<port>".
	URL string
	// Service is the service itself, for what the helpers do not cover
	// (Service.Apply with any change, Service.Issue without HTTP).
	Service *policy.Service
	// Issuer holds the trust anchor key the service signs tokens with, and
	// the anchor devices must trust ([Server.Anchor]). It can also mint
	// tokens without asking the service.
	Issuer *trusttest.Issuer
	// AdminKey is the bearer credential of an administrator (subject
	// [Admin]) for the administration API under /admin/v1/.
	AdminKey string

	srv *httptest.Server

	mu  sync.Mutex
	seq int
}

// NewServer starts an authorization service configured by opts (nil means
// the zero Options). The server stops when the test ends.
func NewServer(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	iss := trusttest.NewIssuer(t)
	svc := &policy.Service{
		Store:             policy.NewMemoryStore(),
		Signer:            iss.Key,
		Profile:           opts.Profile,
		Issuer:            iss.Anchor.Issuer,
		AnchorDescription: "policytest anchor",
		Logger:            opts.Logger,
		Now:               opts.Now,
	}
	if opts.Profile == token.ProfileV2 {
		kid, err := token.Thumbprint(iss.Anchor.Key)
		if err != nil {
			t.Fatalf("policytest: anchor key id: %v", err)
		}
		svc.KeyID = kid
	}
	s := &Server{Service: svc, Issuer: iss}
	s.AdminKey = s.addUser(t, Admin, true, nil)
	s.srv = httptest.NewServer(svc)
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// TokenURL returns the URL of the token endpoint, POST /ace-auth/token: the
// Endpoint of a client.TokenClient.
func (s *Server) TokenURL() string { return s.URL + policy.TokenPath }

// Anchor returns the trust anchor of the tokens the service issues: devices
// under test must trust it.
func (s *Server) Anchor() trust.Anchor { return s.Issuer.Anchor }

// Client returns an HTTP client for the server, with a timeout.
func (s *Server) Client() *http.Client {
	c := *s.srv.Client()
	c.Timeout = 30 * time.Second
	return &c
}

// Close stops the server. It is registered with t.Cleanup; calling it
// earlier is allowed.
func (s *Server) Close() { s.srv.Close() }

// Apply writes changes (policy.PutPolicy, policy.PutSubject, ...) to the
// service's store, for records the one-line helpers do not cover, such as
// policies with argument constraints or validity windows.
func (s *Server) Apply(t testing.TB, changes ...policy.Change) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	if err := s.Service.Apply(ctx, changes...); err != nil {
		t.Fatalf("policytest: %v", err)
	}
}

// AddUser adds a user to the directory, as a member of groups, and returns
// the bearer credential (API key) with which the user's technician app asks
// for tokens.
func (s *Server) AddUser(t testing.TB, id string, groups ...string) (credential string) {
	t.Helper()
	return s.addUser(t, id, false, groups)
}

func (s *Server) addUser(t testing.TB, id string, admin bool, groups []string) string {
	t.Helper()
	secret, key, err := policy.NewAPIKey(nil, "key-"+id, id, admin, time.Now())
	if err != nil {
		t.Fatalf("policytest: API key for %q: %v", id, err)
	}
	s.Apply(t,
		policy.PutSubject(&policy.Subject{ID: id, Kind: policy.User, Groups: groups}),
		policy.PutAPIKey(key))
	return secret
}

// AddDevice adds a device to the directory. A device without a DeviceID gets
// one derived from its endpoint name (the first 32 hex digits of its
// SHA-256), since the directory requires one.
func (s *Server) AddDevice(t testing.TB, id token.Identity) {
	t.Helper()
	d := &policy.Device{ID: id.DeviceID, EndpointName: id.Endpoint}
	if d.ID == "" {
		h := sha256.Sum256([]byte(id.Endpoint))
		d.ID = hex.EncodeToString(h[:16])
	}
	s.Apply(t, policy.PutDevice(d))
}

// Allow adds a policy allowing who to have tokens for operations (names
// separated by single spaces) on devices, and returns the policy's id.
// who is a user id or, with [GroupPrefix], a group ("group:technicians").
// devices are audience entries ("ep:<endpoint>" or "id:<device id>"); none
// means every device. Tokens live at most [Lifetime].
func (s *Server) Allow(t testing.TB, who, operations string, devices ...string) (id string) {
	t.Helper()
	return s.put(t, policy.Allow, who, operations, devices)
}

// Deny adds a policy denying who tokens for operations on devices, whatever
// other policies allow, and returns its id. The arguments are those of
// [Server.Allow].
func (s *Server) Deny(t testing.TB, who, operations string, devices ...string) (id string) {
	t.Helper()
	return s.put(t, policy.Deny, who, operations, devices)
}

// Remove deletes the policy with the given id.
func (s *Server) Remove(t testing.TB, id string) {
	t.Helper()
	s.Apply(t, policy.DeleteRecord(policy.KindPolicy, id))
}

func (s *Server) put(t testing.TB, effect policy.Effect, who, operations string, devices []string) string {
	t.Helper()
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("%s-%d", effect, s.seq)
	s.mu.Unlock()
	p := &policy.Policy{ID: id, Status: policy.Active, Effect: effect}
	if effect == policy.Allow {
		p.TokenLifetime = Lifetime
	}
	if g, ok := strings.CutPrefix(who, GroupPrefix); ok {
		p.Subjects.Groups = []string{g}
	} else {
		p.Subjects.Users = []string{who}
	}
	for _, op := range strings.Split(operations, " ") {
		p.Operations = append(p.Operations, policy.OperationRule{Name: op})
	}
	if len(devices) == 0 {
		p.Devices.All = true
	}
	for _, d := range devices {
		if v, ok := strings.CutPrefix(d, token.PrefixEndpoint); ok {
			p.Devices.EndpointNames = append(p.Devices.EndpointNames, v)
		} else if v, ok := strings.CutPrefix(d, token.PrefixDeviceID); ok {
			p.Devices.IDs = append(p.Devices.IDs, v)
		} else {
			t.Fatalf("policytest: device %q: want an audience entry, ep:<endpoint> or id:<device id>", d)
		}
	}
	s.Apply(t, policy.PutPolicy(p))
	return id
}
