package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// The issue-13 story end to end, through the HTTP service, the client and
// the device agent: a device that never goes online learns of a revocation
// from another technician's routine visit, and refuses the revoked
// technician's token; and a device that requires a fresh token accepts one
// carrying its own nonce.

var rooftop = token.Identity{Endpoint: "rooftop-2", DeviceID: "f9e8d7c6b5a4938271605f4e3d2c1b0a"}

type stack struct {
	svc     *policy.Service
	url     string
	secrets map[string]string // subject -> API key secret
	anchors *trust.MemoryStore

	agent *device.Agent
	mu    sync.Mutex
	seen  []device.Outcome
}

func newStack(t *testing.T) *stack {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{secrets: map[string]string{}}
	st.svc = &policy.Service{Store: policy.NewMemoryStore(), Signer: key, Profile: token.ProfileV2}
	changes := []policy.Change{
		policy.PutDevice(&policy.Device{ID: rooftop.DeviceID, EndpointName: rooftop.Endpoint}),
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"techs"}}),
		policy.PutSubject(&policy.Subject{ID: "jim", Kind: policy.User, Groups: []string{"techs"}}),
		policy.PutSubject(&policy.Subject{ID: "owner", Kind: policy.User}),
		policy.PutPolicy(&policy.Policy{
			ID: "techs", Status: policy.Active, Effect: policy.Allow,
			Subjects:   policy.Subjects{Groups: []string{"techs"}},
			Operations: []policy.OperationRule{{Name: "read-data"}, {Name: "configure"}},
			Devices:    policy.DeviceSelector{All: true}, TokenLifetime: 8 * time.Hour,
		}),
	}
	for _, who := range []string{"alice", "jim", "owner"} {
		secret, k, err := policy.NewAPIKey(nil, "key-"+who, who, who == "owner", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		st.secrets[who] = secret
		changes = append(changes, policy.PutAPIKey(k))
	}
	if err := st.svc.Apply(context.Background(), changes...); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.svc)
	t.Cleanup(srv.Close)
	st.url = srv.URL

	a, err := trust.NewAnchor(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if st.anchors, err = trust.NewMemoryStore(*a); err != nil {
		t.Fatal(err)
	}
	reg := &device.Registry{}
	read := func(context.Context, *device.Call) ([]byte, error) { return []byte("21C"), nil }
	if err := reg.RegisterFunc("read-data", read); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterFresh("configure", device.HandlerFunc(read), device.Freshness{CNonce: true}); err != nil {
		t.Fatal(err)
	}
	// A device without a clock that never goes online: it knows the time
	// only from what technicians bring.
	st.agent, err = device.New(device.Config{
		Identity: rooftop, Anchors: st.anchors, Operations: reg,
		ClockMode: device.ClockLowerBound, StatusUpdates: true, NextNonce: true,
		OnOutcome: func(o device.Outcome) {
			st.mu.Lock()
			st.seen = append(st.seen, o)
			st.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (st *stack) last(t *testing.T) device.Outcome {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.seen) == 0 {
		t.Fatal("no outcome")
	}
	return st.seen[len(st.seen)-1]
}

// technician returns a token client and a session of the subject on a new
// connection to the device; the session pushes what its token source
// caches.
func (st *stack) technician(t *testing.T, who string) (*client.TokenClient, *client.TokenSource, *client.Session) {
	t.Helper()
	pop, err := client.GenerateKey(client.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	tc := &client.TokenClient{Endpoint: st.url + policy.TokenPath, Credential: st.secrets[who], Anchors: st.anchors}
	src := &client.TokenSource{
		Fetcher: tc, Status: tc,
		Request: token.AccessRequest{Audience: []string{"ep:" + rooftop.Endpoint}, Scope: []string{"read-data"}, Key: pop.Public()},
	}
	tech, dev := transport.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = st.agent.Serve(ctx, dev) }()
	t.Cleanup(func() { cancel(); tech.Close(); <-done })
	return tc, src, &client.Session{Conn: tech, Key: pop, Tokens: src, Status: src, Device: rooftop}
}

func TestRevocationReachesAnOfflineDevice(t *testing.T) {
	ctx := context.Background()
	st := newStack(t)

	// jim reads the data; then his phone is stolen, token and key.
	_, _, jim := st.technician(t, "jim")
	if _, err := jim.Do(ctx, token.Operation{Name: "read-data"}); err != nil {
		t.Fatalf("jim before the theft: %v", err)
	}

	// The owner revokes everything of jim's, through the admin API.
	req, _ := http.NewRequest("POST", st.url+policy.AdminPathPrefix+"revocations", strings.NewReader(`{"kind":"subject","subject":"jim","reason":"phone stolen"}`))
	req.Header.Set("Authorization", "Bearer "+st.secrets["owner"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("revoke: HTTP %d", resp.StatusCode)
	}

	// The thief still gets in: rooftop-2 has not heard of it.
	if _, err := jim.Do(ctx, token.Operation{Name: "read-data"}); err != nil {
		t.Fatalf("thief before any visit: %v", err)
	}

	// alice's routine visit carries the update, fetched with her token.
	_, _, alice := st.technician(t, "alice")
	if _, err := alice.Do(ctx, token.Operation{Name: "read-data"}); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if o := st.last(t); !o.Update.Carried || !o.Update.Installed {
		t.Fatalf("alice's request did not install an update: %+v", o.Update)
	}

	// The thief is refused, and the device says why.
	_, err = jim.Do(ctx, token.Operation{Name: "read-data"})
	if !errors.Is(err, client.ErrVerification) {
		t.Fatalf("thief after alice's visit: %v, want ErrVerification", err)
	}
	o := st.last(t)
	var re *device.RevocationError
	if o.Check != device.CheckRevocation || !errors.As(o.Err, &re) || re.Entry != token.EntrySubjectCutoff || !errors.Is(o.Err, device.ErrRevoked) {
		t.Fatalf("device decided %v: %v", o.Check, o.Err)
	}
	// alice is not affected, and her next request carries nothing more.
	if _, err := alice.Do(ctx, token.Operation{Name: "read-data"}); err != nil {
		t.Fatalf("alice again: %v", err)
	}
	if o := st.last(t); o.Update.Carried {
		t.Fatalf("an up-to-date device was sent the update again: %+v", o.Update)
	}
}

func TestFreshTokenEndToEnd(t *testing.T) {
	ctx := context.Background()
	st := newStack(t)
	tc, src, alice := st.technician(t, "alice")
	op := token.Operation{Name: "configure"}

	// configure requires a token carrying the device's nonce.
	if _, err := alice.Do(ctx, op); !errors.Is(err, client.ErrVerification) {
		t.Fatalf("configure with a plain token: %v, want ErrVerification", err)
	}
	if o := st.last(t); o.Check != device.CheckFreshness || !errors.Is(o.Err, device.ErrNotFresh) {
		t.Fatalf("device decided %v: %v", o.Check, o.Err)
	}
	alice.Fresh = &client.FreshTokens{Fetcher: tc, Request: token.AccessRequest{Audience: src.Request.Audience, Scope: []string{"configure"}}}
	res, err := alice.DoFresh(ctx, op)
	if err != nil {
		t.Fatalf("configure with a fresh token: %v", err)
	}
	if o := st.last(t); !o.Allowed() || o.Nonce != res.Nonce {
		t.Fatalf("device decided %+v", o)
	}
}
