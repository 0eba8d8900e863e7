package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// A device agent answering a technician's request end to end, in memory:
// the authorization service's anchor key signs a token; the technician's
// session asks the device for a nonce and signs the operation request with
// the PoP key the token names; the device verifies everything before
// running the handler.
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
		OnOutcome: func(d device.Outcome) {
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

	// On site: the device serves a connection (here an in-memory pipe; TCP,
	// serial framing and BLE fragmentation work the same way).
	ctx := context.Background()
	techConn, devConn := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- agent.Serve(ctx, devConn) }()
	s := &client.Session{Conn: techConn, Key: popKey, Tokens: client.StaticToken(tok)}
	res, err := s.Do(ctx, token.Operation{Name: "read-temperature"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("result: %s\n", res.Data)
	techConn.Close()
	<-served
	// Output:
	// audit: nonce request, status success, check none
	// audit: operation request, status success, check none
	// result: 21.5 C for alice
}

// A device serving TCP drops connections that hold a slot without making
// progress, and says so in its audit trail: here a peer that begins a
// request and never finishes it.
func ExampleDrop() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	dropped := make(chan device.Drop, 1)
	agent, err := device.New(device.Config{
		Identity:     token.Identity{Endpoint: "hvac-1"},
		Anchors:      anchors,
		FrameTimeout: 100 * time.Millisecond, // a request must arrive whole this soon once begun
		IdleTimeout:  time.Minute,            // a connection may wait this long between requests
		OnDrop:       func(d device.Drop) { dropped <- d },
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	l, err := transport.Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- agent.ServeListener(ctx, l, 0) }()
	defer func() { stop(); <-served }()

	// The peer sends the first bytes of a frame, then nothing.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	conn.Write([]byte("mbeddbap"))

	d := <-dropped
	fmt.Printf("dropped (%v) after %d requests; frame timeout: %v\n", d.Reason, d.Requests, errors.Is(d.Err, transport.ErrFrameTimeout))
	// Output:
	// dropped (frame-timeout) after 0 requests; frame timeout: true
}
