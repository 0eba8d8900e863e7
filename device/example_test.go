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

// Revoking a token on the device itself, offline: an administrator whose
// token permits the built-in RevokeOperation puts a technician's token id
// (cti) on the device's revocation list, and the device refuses that token
// from then on, as a verification error (client.ErrVerification) whose
// reason in its outcome is ErrRevoked.
func ExampleRevokeOperation() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	ops := &device.Registry{}
	ops.RegisterFunc("read-temperature", func(context.Context, *device.Call) ([]byte, error) {
		return []byte("21.5 C"), nil
	})
	var last device.Outcome
	agent, err := device.New(device.Config{
		Identity:   token.Identity{Endpoint: "hvac-1"},
		Anchors:    anchors,
		Operations: ops,
		OnOutcome:  func(d device.Outcome) { last = d },
	})
	if err != nil {
		panic(err)
	}

	// issue has the authorization service sign a token for subject,
	// bound to a fresh PoP key, and returns a session using it.
	issue := func(conn transport.Conn, subject string, cti []byte, scope string) *client.Session {
		popKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sc, _ := token.ParseScope(scope)
		now := time.Now()
		tok, _ := token.Issue(&token.Claims{
			Issuer: anchor.Issuer, Subject: subject, Audience: []string{"ep:hvac-1"}, ID: cti,
			Expiry: now.Add(time.Hour), NotBefore: now, IssuedAt: now, Scope: sc, Key: popKey.Public(),
		}, anchorKey, nil)
		return &client.Session{Conn: conn, Key: popKey, Tokens: client.StaticToken(tok)}
	}

	ctx := context.Background()
	techConn, devConn := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- agent.Serve(ctx, devConn) }()
	defer func() { techConn.Close(); <-served }()

	jim := issue(techConn, "jim", []byte{0xc7, 0x01}, "read-temperature")
	_, err = jim.Do(ctx, token.Operation{Name: "read-temperature"})
	fmt.Println("jim reads:", err)

	// The administrator revokes jim's token by its cti. A v1 token carries
	// text and integer arguments only, so the id goes as hex text; until,
	// the token's expiry, lets the device drop the entry once it is past.
	admin := issue(techConn, "admin", []byte{0xad}, device.RevokeOperation)
	_, err = admin.Do(ctx, token.Operation{Name: device.RevokeOperation, Args: []token.Arg{
		token.Text("cti"), token.Text("c701"), token.Int(time.Now().Add(time.Hour).Unix()),
	}})
	fmt.Println("admin revokes:", err)

	_, err = jim.Do(ctx, token.Operation{Name: "read-temperature"})
	fmt.Println("jim refused:", errors.Is(err, client.ErrVerification), errors.Is(last.Err, device.ErrRevoked), last.Check)
	// Output:
	// jim reads: <nil>
	// admin revokes: <nil>
	// jim refused: true true revocation
}

// A device that goes online fetches its status update and installs it:
// the authorization service revoked every token of subject "mallory"
// issued until now. The same update shown again is ignored, as is one made
// for another device. (Devices that never go online get updates from
// technicians' requests instead: Config.StatusUpdates.)
func ExampleAgent_InstallStatus() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the authorization service's
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	agent, err := device.New(device.Config{Identity: token.Identity{Endpoint: "hvac-1"}, Anchors: anchors, StatusUpdates: true})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	update := func(seq uint64, aud string) []byte {
		u, err := token.SignStatus(&token.StatusUpdate{
			Issuer: anchor.Issuer, Sequence: seq, Time: now, Audience: aud,
			Subjects: []token.SubjectCutoff{{Subject: "mallory", Before: now}},
		}, anchorKey, nil)
		if err != nil {
			panic(err)
		}
		return u
	}
	fmt.Println("installed:", agent.InstallStatus(update(42, "ep:hvac-1")) == nil)
	fmt.Println("again:", errors.Is(agent.InstallStatus(update(42, "ep:hvac-1")), device.ErrStatusOlder))
	fmt.Println("another device:", errors.Is(agent.InstallStatus(update(43, "ep:hvac-2")), device.ErrStatusWrongDevice))
	// Output:
	// installed: true
	// again: true
	// another device: true
}

// A delegated request: alice's token lets her pass read-temperature on,
// one link deep; offline, she delegates it to a subcontractor's key for two
// hours; the subcontractor signs the request with his own key and sends
// the token with its chain (the bundle's fourth element). The device
// verifies the chain, runs the handler with the effective scope, refuses
// what the link does not pass on, and names every link in the outcome.
func ExampleCall_Delegated() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the authorization service's
	aliceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)  // the technician's
	subKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)    // the subcontractor's

	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	ops := &device.Registry{}
	for _, name := range []string{"read-temperature", "configure"} {
		ops.RegisterFunc(name, func(_ context.Context, call *device.Call) ([]byte, error) {
			fmt.Printf("handler: %s of %s's token, delegated %v to %q, scope %q\n",
				call.Operation.Name, call.Subject, call.Delegated(), call.Chain[0].Subject, call.Scope.String())
			return nil, nil
		})
	}
	agent, err := device.New(device.Config{
		Identity: token.Identity{Endpoint: "hvac-1"}, Anchors: anchors, Operations: ops,
		OnOutcome: func(d device.Outcome) {
			if d.Request == device.RequestOperation {
				fmt.Printf("audit: status %v, check %v, %d link(s)\n", d.Status, d.Check, len(d.Chain))
			}
		},
	})
	if err != nil {
		panic(err)
	}

	// A v2 token the owner's policy made delegable, one link deep.
	scope, _ := token.ParseScope("read-temperature configure")
	now := time.Now()
	tok, err := token.Issue(&token.Claims{
		Issuer: anchor.Issuer, Subject: "alice", Audience: []string{"ep:hvac-1"},
		Expiry: now.Add(8 * time.Hour), NotBefore: now, IssuedAt: now, Scope: scope, Key: aliceKey.Public(),
		Delegation: &token.Delegation{Depth: 1},
	}, anchorKey, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		panic(err)
	}
	// Offline, alice passes read-temperature on to the subcontractor.
	read, _ := token.ParseScope("read-temperature")
	delegated, err := token.Delegate(tok, aliceKey, &token.DelegationSpec{
		To: subKey.Public(), Scope: read, Expiry: now.Add(2 * time.Hour), Subject: "subcontractor",
	})
	if err != nil {
		panic(err)
	}
	dt, _ := token.ParseDelegatedToken(delegated)

	// On site, the subcontractor signs with his own key and sends the
	// chain. (A client session builds these messages; here they are made
	// by hand: [1] asks for a nonce, [3, bundle] carries the request.)
	ctx := context.Background()
	for _, op := range []string{"read-temperature", "configure"} {
		_, n := agent.Handle(ctx, []byte{0x81, 0x01})
		signed, _ := token.SignRequest(&token.Request{
			Nonce: n.Nonce, Operation: token.Operation{Name: op}, Token: dt.Token, Chain: dt.Chain.Bytes(),
		}, subKey, nil)
		// [3, bstr]; the bundle, with its token and chain, takes a 2-byte length.
		envelope := append([]byte{0x82, 0x03, 0x59, byte(len(signed) >> 8), byte(len(signed))}, signed...)
		if _, d := agent.Handle(ctx, envelope); errors.Is(d.Err, token.ErrOutOfScope) {
			fmt.Println("refused: the link does not pass", op, "on")
		}
	}
	// Output:
	// handler: read-temperature of alice's token, delegated true to "subcontractor", scope "read-temperature"
	// audit: status success, check none, 1 link(s)
	// audit: status access denied, check scope, 1 link(s)
	// refused: the link does not pass configure on
}
