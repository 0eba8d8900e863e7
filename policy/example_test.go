package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
)

// Define a directory and two policies, then decide token requests.
func ExampleEngine_Decide() {
	var e policy.Engine
	err := e.Apply(
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"technicians"}}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1",
			Attributes: map[string]string{"site": "roof"}}),
		policy.PutPolicy(&policy.Policy{
			ID: "roof-maintenance", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Groups: []string{"technicians"}},
			Operations:    []policy.OperationRule{{Name: "read-data"}, {Name: "configure"}},
			Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}},
			TokenLifetime: 8 * time.Hour,
		}),
		policy.PutPolicy(&policy.Policy{
			ID: "no-reconfiguration", Status: policy.Active, Effect: policy.Deny,
			Subjects:   policy.Subjects{Users: []string{"alice"}},
			Operations: []policy.OperationRule{{Name: "configure"}},
			Devices:    policy.DeviceSelector{All: true},
		}),
	)
	if err != nil {
		panic(err)
	}
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)

	d, _ := e.Decide(&policy.Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"read-data"}, Time: now})
	fmt.Println(d.Allowed, d.Expiry.Format(time.RFC3339), d.Policies)

	d, _ = e.Decide(&policy.Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"read-data", "configure"}, Time: now})
	fmt.Println(d.Allowed, d.Denied.Operation, d.Denied.PolicyID, errors.Is(d.Err(), policy.ErrDenyPolicy))
	// Output:
	// true 2030-01-01T17:00:00Z [roof-maintenance]
	// false configure no-reconfiguration true
}

// Issue a token through the service's Go API and read it back as a device would.
func ExampleService_Issue() {
	ctx := context.Background()
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the trust anchor key
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)    // the technician's PoP key
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)

	svc := &policy.Service{
		Store:  policy.NewMemoryStore(),
		Signer: anchor,
		Now:    func() time.Time { return now },
	}
	err := svc.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1"}),
		policy.PutPolicy(&policy.Policy{
			ID: "p1", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Users: []string{"alice"}},
			Operations:    []policy.OperationRule{{Name: "read-data"}},
			Devices:       policy.DeviceSelector{All: true},
			TokenLifetime: 2 * time.Hour,
		}),
	)
	if err != nil {
		panic(err)
	}
	tok, err := svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: &pop.PublicKey})
	if err != nil {
		panic(err)
	}

	parsed, _ := token.Parse(tok.Token)
	claims, err := parsed.Verify(&anchor.PublicKey)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Audience, claims.Scope, claims.Expiry.Format(time.RFC3339))

	_, err = svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data", "reboot"}, Key: &pop.PublicKey})
	fmt.Println(errors.Is(err, policy.ErrDenied), errors.Is(err, policy.ErrNoAllowPolicy))
	// Output:
	// [ep:hvac-1] read-data 2030-01-01T11:00:00Z
	// true true
}

// Serve the token endpoint and the trust anchors on one listener, and the
// administration API on another, such as an internal interface.
func ExampleService_AdminHandler() {
	ctx := context.Background()
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: policy.NewMemoryStore(), Signer: anchor}
	secret, key, err := policy.NewAPIKey(nil, "admin-key", "admin", true, time.Now())
	if err != nil {
		panic(err)
	}
	err = svc.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "admin", Kind: policy.User}), policy.PutAPIKey(key))
	if err != nil {
		panic(err)
	}

	public := httptest.NewServer(svc.PublicHandler()) // where the technicians' apps reach it
	defer public.Close()
	admin := httptest.NewServer(svc.AdminHandler()) // on an internal address only
	defer admin.Close()

	for _, srv := range []struct{ name, url string }{{"public", public.URL}, {"admin", admin.URL}} {
		for _, path := range []string{policy.TrustAnchorsPath, policy.AdminPathPrefix + "policies"} {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				panic(err)
			}
			resp.Body.Close()
			fmt.Println(srv.name, path, resp.StatusCode)
		}
	}
	// Output:
	// public /v3/trust-anchors 200
	// public /admin/v1/policies 404
	// admin /v3/trust-anchors 404
	// admin /admin/v1/policies 200
}
