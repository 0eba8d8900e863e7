package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// A device agent answering a technician's request end to end, in memory:
// the authorization service's anchor key signs a token, the technician asks
// the device for a nonce and signs the operation request with the PoP key
// the token names, and the device verifies everything before running the
// handler.
func Example() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the authorization service's
	popKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)    // the technician's

	// The device trusts the anchor.
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	ops := &device.Registry{}
	ops.RegisterFunc("read-temperature", func(_ context.Context, call *device.Call) ([]byte, error) {
		return []byte("21.5 C for " + call.Subject), nil
	})
	agent, err := device.New(device.Config{
		Identity:   token.Identity{Endpoint: "hvac-1"},
		Anchors:    anchors,
		Operations: ops,
		OnDecision: func(d device.Decision) {
			fmt.Printf("audit: %v request, status %v, check %v\n", d.Request, d.Status, d.Check)
		},
	})
	if err != nil {
		panic(err)
	}

	// The authorization service issues a token for the technician.
	scope, _ := token.ParseScope("read-temperature")
	now := time.Now()
	tok, _ := token.Issue(&token.Claims{
		Issuer: anchor.Issuer, Subject: "alice", Audience: []string{"ep:hvac-1"},
		Expiry: now.Add(time.Hour), NotBefore: now, IssuedAt: now, Scope: scope, Key: popKey.Public(),
	}, anchorKey, nil)

	// On site: a nonce, then the signed request.
	ctx := context.Background()
	nonceResp, _ := wire.DecodeResponse(agent.Process(ctx, wire.NonceRequest))
	signed, _ := token.SignRequest(&token.Request{
		Nonce: nonceResp.Nonce, Operation: token.Operation{Name: "read-temperature"}, Token: tok,
	}, popKey, nil)
	resp, _ := wire.DecodeResponse(agent.Process(ctx, wire.EncodeOperationRequest(signed)))
	fmt.Printf("status %v: %s\n", resp.Status, resp.Data)

	// The same request again is a replay.
	_, d := agent.Handle(ctx, wire.EncodeOperationRequest(signed))
	fmt.Println("replay rejected:", d.Err)
	// Output:
	// audit: nonce request, status success, check none
	// audit: operation request, status success, check none
	// status success: 21.5 C for alice
	// audit: operation request, status verification error, check nonce
	// replay rejected: device: nonce not acceptable: already used
}
