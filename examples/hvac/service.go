package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// The building owner's directory: its two rooftop controllers.
var (
	rooftop1 = token.Identity{Endpoint: "rooftop-1", DeviceID: "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
	rooftop2 = token.Identity{Endpoint: "rooftop-2", DeviceID: "f9e8d7c6b5a4938271605f4e3d2c1b0a"}
)

// ownerSubject is the building owner's administrator, whose API key may
// use the administration API.
const ownerSubject = "owner"

// v2Prefix is where the v2 token endpoint lives: the same service, the
// same store and key, issuing v2 tokens (structured scopes, kid).
const v2Prefix = "/v2"

// authService is the building owner's authorization service: policies in
// an embedded store, a trust anchor key, and the HTTP API on loopback.
type authService struct {
	anchor  *trust.Anchor // what the controllers trust
	url     string        // base URL, http://127.0.0.1:<port>
	server  *http.Server
	served  chan error
	secrets map[string]string // subject -> API key secret
}

// startService seeds the store with the story and serves the token
// endpoints: v1 tokens at /ace-auth/token, v2 tokens at /v2/ace-auth/token.
func startService(ctx context.Context) (*authService, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	anchor, err := trust.NewAnchor(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := token.Thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	store := policy.NewMemoryStore()
	v1 := &policy.Service{Store: store, Signer: key, AnchorDescription: "acme-buildings token signer"}
	v2 := &policy.Service{Store: store, Signer: key, Profile: token.ProfileV2, KeyID: kid}
	s := &authService{anchor: anchor, secrets: map[string]string{}, served: make(chan error, 1)}
	changes, err := s.story()
	if err != nil {
		return nil, err
	}
	if err := v1.Apply(ctx, changes...); err != nil {
		return nil, fmt.Errorf("seeding the policy store: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/", v1)
	mux.Handle(v2Prefix+"/", http.StripPrefix(v2Prefix, v2))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.served <- s.server.Serve(ln) }()
	return s, nil
}

// story returns the directory, the API keys and the policies of the demo.
func (s *authService) story() ([]policy.Change, error) {
	roof := map[string]string{"owner": "acme-buildings", "kind": "rooftop-hvac"}
	changes := []policy.Change{
		policy.PutDevice(&policy.Device{ID: rooftop1.DeviceID, EndpointName: rooftop1.Endpoint, Attributes: roof}),
		policy.PutDevice(&policy.Device{ID: rooftop2.DeviceID, EndpointName: rooftop2.Endpoint, Attributes: roof}),
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"service-co"}}),
		policy.PutSubject(&policy.Subject{ID: "jim", Kind: policy.User, Groups: []string{"service-co-junior"}}),
		policy.PutSubject(&policy.Subject{ID: "mona", Kind: policy.User, Groups: []string{"hvac-maker"}}),
		// The owner's administrator, in no group: no policy grants it
		// tokens; its admin API key may revoke them.
		policy.PutSubject(&policy.Subject{ID: ownerSubject, Kind: policy.User}),
	}
	rooftops := policy.DeviceSelector{Attributes: map[string][]string{"kind": {"rooftop-hvac"}}}
	comfort := [2]int64{16, 28}
	changes = append(changes,
		// The service company maintains the rooftop units: reading,
		// configuring, and setpoints between 16 and 28 C (v2 tokens only).
		// Its technicians may pass read-data on to a subcontractor, who
		// may not pass it further (v2 tokens only).
		policy.PutPolicy(&policy.Policy{
			ID: "service-co-maintenance", Status: policy.Active, Effect: policy.Allow,
			Subjects: policy.Subjects{Groups: []string{"service-co"}},
			Operations: []policy.OperationRule{{Name: "read-data"}, {Name: "configure"},
				{Name: "set-temperature", Constraints: []policy.ArgConstraint{{Arg: 0, Range: &comfort}}}},
			Devices: rooftops, TokenLifetime: 8 * time.Hour,
			Delegation: &policy.DelegationRule{MaxDepth: 1, Operations: []string{"read-data"}},
		}),
		// Its junior technicians may only read.
		policy.PutPolicy(&policy.Policy{
			ID: "service-co-juniors", Status: policy.Active, Effect: policy.Allow,
			Subjects:   policy.Subjects{Groups: []string{"service-co-junior"}},
			Operations: []policy.OperationRule{{Name: "read-data"}},
			Devices:    rooftops, TokenLifetime: 8 * time.Hour,
		}),
		// The manufacturer's technicians may also update the firmware.
		policy.PutPolicy(&policy.Policy{
			ID: "manufacturer-support", Status: policy.Active, Effect: policy.Allow,
			Subjects:   policy.Subjects{Groups: []string{"hvac-maker"}},
			Operations: []policy.OperationRule{{Name: "read-data"}, {Name: "configure"}, {Name: "update-firmware"}},
			Devices:    rooftops, TokenLifetime: 2 * time.Hour,
		}),
	)
	// The technicians' apps ask for tokens with their API keys; the
	// owner's administration app uses an admin key.
	for _, who := range []string{"alice", "jim", "mona", ownerSubject} {
		secret, k, err := policy.NewAPIKey(nil, "key-"+who, who, who == ownerSubject, time.Now())
		if err != nil {
			return nil, err
		}
		s.secrets[who] = secret
		changes = append(changes, policy.PutAPIKey(k))
	}
	return changes, nil
}

// tokenURL returns the token endpoint of the profile.
func (s *authService) tokenURL(p token.Profile) string {
	if p == token.ProfileV2 {
		return s.url + v2Prefix + policy.TokenPath
	}
	return s.url + policy.TokenPath
}

// statusURL returns the status update endpoint of the profile's service
// (the v2 service signs updates with its key id, as its tokens).
func (s *authService) statusURL(p token.Profile) string {
	if p == token.ProfileV2 {
		return s.url + v2Prefix + policy.StatusUpdatePath
	}
	return s.url + policy.StatusUpdatePath
}

// trustStore returns a new trust store holding the service's anchor, as a
// controller is provisioned with it.
func (s *authService) trustStore() (*trust.MemoryStore, error) {
	return trust.NewMemoryStore(*s.anchor)
}

// stop shuts the HTTP server down within the time ctx leaves.
func (s *authService) stop(ctx context.Context) error {
	err := s.server.Shutdown(ctx)
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
