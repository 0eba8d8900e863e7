package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// Generate a proof-of-possession key, save it encrypted with a passphrase,
// and load it again.
func ExampleWriteKeyFile() {
	dir, err := os.MkdirTemp("", "sda-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "technician.key")

	key, err := client.GenerateKey(client.KeyP256)
	if err != nil {
		log.Fatal(err)
	}
	// Work factor 12 (4 MiB) keeps this example quick; nil options select
	// the default, 18 (256 MiB), and client.OpenSSLKeyFileOptions() a file
	// that `openssl pkey` reads too.
	opts := &client.KeyFileOptions{WorkFactor: 12}
	if err := client.WriteKeyFile(path, key, []byte("correct horse battery staple"), opts); err != nil {
		log.Fatal(err)
	}

	loaded, err := client.ReadKeyFile(path, []byte("correct horse battery staple"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same key:", token.EqualKeys(loaded.Public(), key.Public()))

	_, err = client.ReadKeyFile(path, []byte("wrong"))
	fmt.Println("wrong passphrase:", errors.Is(err, client.ErrWrongPassphrase))
	// Output:
	// same key: true
	// wrong passphrase: true
}

// Perform an operation on a device agent running in the same process,
// connected by an in-memory pipe.
func ExampleSession_Do() {
	ctx := context.Background()

	// The trust anchor that signs tokens, and a device that trusts it.
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	ops := &device.Registry{}
	ops.RegisterFunc("read-temperature", func(context.Context, *device.Call) ([]byte, error) {
		return []byte("21.5"), nil
	})
	agent, err := device.New(device.Config{
		Identity:   token.Identity{Endpoint: "hvac-1"},
		Anchors:    anchors,
		Operations: ops,
	})
	if err != nil {
		log.Fatal(err)
	}
	techEnd, deviceEnd := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- agent.Serve(ctx, deviceEnd) }()

	// The technician's key and a token for it (normally from the
	// authorization service, see TokenClient).
	pop, _ := client.GenerateKey(client.KeyP256)
	scope, _ := token.ParseScope("read-temperature")
	raw, err := token.Issue(&token.Claims{
		Issuer:    anchor.Issuer,
		Audience:  []string{"ep:hvac-1"},
		Scope:     scope,
		Key:       pop.Public(),
		NotBefore: time.Now().Add(-time.Minute),
		Expiry:    time.Now().Add(time.Hour),
	}, anchorKey, nil)
	if err != nil {
		log.Fatal(err)
	}

	s := &client.Session{Conn: techEnd, Key: pop, Tokens: client.StaticToken(raw)}
	res, err := s.Do(ctx, token.Operation{Name: "read-temperature"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", res.Data)

	_, err = s.Do(ctx, token.Operation{Name: "reboot"})
	var se *client.StatusError
	if errors.As(err, &se) {
		fmt.Println("reboot:", se.Status)
	}

	techEnd.Close()
	<-served
	// Output:
	// 21.5
	// reboot: access denied
}

// Fetch a token from an authorization service. The service here is a
// minimal stand-in for the token endpoint of docs/PROTOCOL.md section 9.
func ExampleTokenClient_Fetch() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer, _ := token.AnchorName(anchorKey.Public())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.TokenPath || r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"object":"error","code":401,"type":"unauthorized","message":"bad credential","request_id":"r1"}`)
			return
		}
		var req struct {
			Aud   []string `json:"aud"`
			Scope string   `json:"scope"`
			Cnf   string   `json:"cnf"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		key, _ := token.ParsePublicKeyPEM([]byte(req.Cnf))
		scope, _ := token.ParseScope(req.Scope)
		exp := time.Now().Add(time.Hour).Truncate(time.Second)
		raw, _ := token.Issue(&token.Claims{Issuer: issuer, Audience: req.Aud, Scope: scope, Key: key, NotBefore: time.Now(), Expiry: exp}, anchorKey, nil)
		json.NewEncoder(w).Encode(map[string]string{
			"access_token":  base64.StdEncoding.EncodeToString(raw),
			"granted_until": exp.UTC().Format(time.RFC3339),
		})
	}))
	defer srv.Close()

	pop, _ := client.GenerateKey(client.KeyP256)
	// The anchors the app trusts verify the token's signature.
	anchors, err := trust.NewMemoryStore(trust.Anchor{Issuer: issuer, Key: anchorKey.Public()})
	if err != nil {
		log.Fatal(err)
	}
	c := &client.TokenClient{
		Endpoint:   srv.URL + client.TokenPath,
		Credential: "s3cret",
		Anchors:    anchors,
	}
	tok, err := c.Fetch(context.Background(), &token.AccessRequest{
		Audience: []string{"ep:hvac-1"},
		Scope:    []string{"read-temperature", "set-temperature"},
		Key:      pop.Public(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Audience, tok.Scope, tok.Verified)

	c.Credential = "wrong"
	_, err = c.Fetch(context.Background(), &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-temperature"}, Key: pop.Public()})
	var se *client.ServiceError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.Type)
	}
	// Output:
	// [ep:hvac-1] read-temperature set-temperature true
	// 401 unauthorized
}

// Cache the status update of a device along with its token, for sessions
// to carry to devices that never go online. The service here is a minimal
// stand-in for the token and status update endpoints of docs/PROTOCOL.md
// sections 9 and 12.
func ExampleTokenSource_StatusUpdate() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer, _ := token.AnchorName(anchorKey.Public())
	now := time.Now().Truncate(time.Second)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+client.TokenPath, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Aud   []string `json:"aud"`
			Scope string   `json:"scope"`
			Cnf   string   `json:"cnf"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		key, _ := token.ParsePublicKeyPEM([]byte(req.Cnf))
		scope, _ := token.ParseScope(req.Scope)
		exp := now.Add(time.Hour)
		raw, _ := token.Issue(&token.Claims{Issuer: issuer, Audience: req.Aud, Scope: scope, Key: key, NotBefore: now, Expiry: exp}, anchorKey, nil)
		json.NewEncoder(w).Encode(map[string]string{
			"access_token":  base64.StdEncoding.EncodeToString(raw),
			"granted_until": exp.UTC().Format(time.RFC3339),
		})
	})
	mux.HandleFunc("GET "+client.StatusPath, func(w http.ResponseWriter, r *http.Request) {
		aud := r.URL.Query().Get("aud")
		// One revoked token id, sequence number 42.
		raw, _ := token.SignStatus(&token.StatusUpdate{Issuer: issuer, Sequence: 42, Time: now, Audience: aud, TokenIDs: [][]byte{[]byte("stolen-phone")}}, anchorKey, nil)
		json.NewEncoder(w).Encode(map[string]any{
			"status_update": base64.StdEncoding.EncodeToString(raw),
			"aud":           aud,
			"seq":           42,
			"time":          now.UTC().Format(time.RFC3339),
		})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	anchors, _ := trust.NewMemoryStore(trust.Anchor{Issuer: issuer, Key: anchorKey.Public()})
	c := &client.TokenClient{Endpoint: srv.URL + client.TokenPath, Credential: "s3cret", Anchors: anchors}
	pop, _ := client.GenerateKey(client.KeyP256)
	tokens := &client.TokenSource{
		Fetcher: c,
		Status:  c, // fetch the updates of the request's devices with every token
		Request: token.AccessRequest{Audience: []string{"ep:rooftop-2"}, Scope: []string{"read-temperature"}, Key: pop.Public()},
	}
	if _, err := tokens.Token(context.Background()); err != nil {
		log.Fatal(err)
	}
	// A Session{Tokens: tokens, Status: tokens, ...} reads the cached update
	// and carries it to rooftop-2 if the device holds an older one.
	raw, _ := tokens.StatusUpdate(context.Background(), "ep:rooftop-2")
	signed, err := token.ParseStatus(raw)
	if err != nil {
		log.Fatal(err)
	}
	u := signed.UnverifiedUpdate()
	fmt.Println(u.Audience, u.Sequence, len(u.TokenIDs))
	// Output:
	// ep:rooftop-2 42 1
}

// Delegate part of a token, offline, to a colleague's key: the colleague
// checks the delegated token and runs the operation passed on, with their
// own key, on a device agent connected by an in-memory pipe.
func ExampleDelegate() {
	ctx := context.Background()

	// The trust anchor and a device that trusts it.
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, _ := trust.NewAnchor(anchorKey.Public())
	anchors, _ := trust.NewMemoryStore(*anchor)
	ops := &device.Registry{}
	ops.RegisterFunc("read-data", func(_ context.Context, call *device.Call) ([]byte, error) {
		return []byte("21.5 C"), nil
	})
	agent, err := device.New(device.Config{Identity: token.Identity{Endpoint: "hvac-1"}, Anchors: anchors, Operations: ops})
	if err != nil {
		log.Fatal(err)
	}
	techEnd, deviceEnd := transport.Pipe()
	served := make(chan error, 1)
	go func() { served <- agent.Serve(ctx, deviceEnd) }()

	// Alice's v2 token lets her pass on one link (normally the owner's
	// policy decides, and the authorization service issues it).
	alice, _ := client.GenerateKey(client.KeyP256)
	scope, _ := token.ParseScope("read-data configure")
	now := time.Now()
	raw, err := token.Issue(&token.Claims{
		Issuer: anchor.Issuer, Subject: "alice", Audience: []string{"ep:hvac-1"}, Scope: scope,
		Key: alice.Public(), NotBefore: now.Add(-time.Minute), Expiry: now.Add(8 * time.Hour),
		Delegation: &token.Delegation{Depth: 1},
	}, anchorKey, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		log.Fatal(err)
	}
	held, err := client.CheckToken(raw, &client.TokenCheck{Key: alice.Public(), Anchors: anchors})
	if err != nil {
		log.Fatal(err)
	}

	// Alice passes read-data on to a subcontractor's key for two hours.
	sub, _ := client.GenerateKey(client.KeyP256)
	readData, _ := token.ParseScope("read-data")
	delegated, err := client.Delegate(held, alice, &token.DelegationSpec{
		To: sub.Public(), Scope: readData, Expiry: now.Add(2 * time.Hour), Subject: "subcontractor",
	})
	if err != nil {
		log.Fatal(err)
	}
	file := delegated.Bytes() // what alice sends the subcontractor

	// The subcontractor checks what was received, and uses it.
	got, err := client.CheckToken(file, &client.TokenCheck{Key: sub.Public(), Anchors: anchors})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("links:", got.Chain.Len(), "scope:", got.Scope)
	s := &client.Session{Conn: techEnd, Key: sub, Tokens: client.StaticToken(file)}
	res, err := s.Do(ctx, token.Operation{Name: "read-data"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read-data: %s\n", res.Data)
	_, err = s.Do(ctx, token.Operation{Name: "configure"})
	fmt.Println("configure refused:", errors.Is(err, client.ErrAccessDenied))

	techEnd.Close()
	<-served
	// Output:
	// links: 1 scope: read-data
	// read-data: 21.5 C
	// configure refused: true
}
