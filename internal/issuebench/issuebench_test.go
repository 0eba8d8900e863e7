package issuebench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/loadgen"
	"github.com/securedeviceaccess/sda/policy"
)

// TestTokenRequest: the Service answers the token request with a token
// once the store holds a policy granting it.
func TestTokenRequest(t *testing.T) {
	ctx := context.Background()
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := policy.NewMemoryStore()
	svc, err := Service(st, anchor, 0)
	if err != nil {
		t.Fatal(err)
	}
	secret, key, err := policy.NewAPIKey(nil, "k", "u0", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "u0", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "ep-0"}),
		policy.PutAPIKey(key)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc}
	go srv.Serve(ln)
	defer srv.Close()
	raw, err := TokenRequest(ln.Addr().String(), secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadgen.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, body, err := c.RoundTrip(raw); err != nil || status != http.StatusForbidden {
		t.Fatalf("without a policy: %d %s %v; want 403", status, body, err)
	}
	if err := svc.Apply(ctx, policy.PutPolicy(&policy.Policy{
		ID: "p", Status: policy.Active, Effect: policy.Allow, Subjects: policy.Subjects{Users: []string{"u0"}}, Devices: policy.DeviceSelector{All: true},
		Operations: []policy.OperationRule{{Name: "read"}, {Name: "op1"}}, TokenLifetime: time.Hour,
	})); err != nil {
		t.Fatal(err)
	}
	if status, body, err := c.RoundTrip(raw); err != nil || status != http.StatusOK {
		t.Fatalf("with a policy: %d %s %v; want 200", status, body, err)
	}
}
