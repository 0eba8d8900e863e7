package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Delegation offline: alice's token lets her pass read-data on (depth 1);
// she delegates it for two hours to a subcontractor's key, who signs a
// request with the chain; the device verifies the token, then the chain,
// then the request with the chain's last key.
func ExampleDelegate() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	aliceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()

	// Authorization service: a v2 token with the delegation claim.
	scope, _ := token.ParseScope("read-data configure")
	tok, err := token.Issue(&token.Claims{
		Issuer: "sda.example", Subject: "alice", Audience: []string{"ep:rooftop-2"},
		Expiry: now.Add(8 * time.Hour), NotBefore: now, Scope: scope, Key: aliceKey.Public(),
		Delegation: &token.Delegation{Depth: 1, Operations: []string{"read-data"}},
	}, anchorKey, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		panic(err)
	}

	// Alice, offline: delegate read-data for two hours.
	readOnly, _ := token.ParseScope("read-data")
	delegated, err := token.Delegate(tok, aliceKey, &token.DelegationSpec{
		To: subKey.Public(), Scope: readOnly, Expiry: now.Add(2 * time.Hour), Subject: "subcontractor",
	})
	if err != nil {
		panic(err)
	}
	// She may not pass configure on: the token does not list it.
	configure, _ := token.ParseScope("configure")
	_, err = token.Delegate(tok, aliceKey, &token.DelegationSpec{To: subKey.Public(), Scope: configure, Expiry: now.Add(time.Hour)})
	fmt.Println("configure:", errors.Is(err, token.ErrNotDelegable))

	// The subcontractor: a request carrying the chain, signed with her key.
	d, _ := token.ParseDelegatedToken(delegated)
	req, _ := token.SignRequest(&token.Request{Nonce: 42, Operation: token.Operation{Name: "read-data"}, Token: d.Token, Chain: d.Chain.Bytes()}, subKey, nil)

	// Device: the token, then the chain below it, then the request with the
	// chain's last key, then the scope of the token and every link.
	sr, _ := token.ParseRequest(req)
	t, _ := token.Parse(sr.UnverifiedToken())
	claims, err := t.Verify(anchorKey.Public())
	if err != nil {
		panic(err)
	}
	chain, err := token.ParseChain(sr.UnverifiedChain())
	if err != nil {
		panic(err)
	}
	v, err := chain.Verify(claims, t.RevocationHash())
	if err != nil {
		panic(err)
	}
	if err := v.Claims.Validate(token.Validation{Identity: token.Identity{Endpoint: "rooftop-2"}, Now: now}); err != nil {
		panic(err)
	}
	r, err := sr.Verify(v.Claims.Key)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Operation.Name, v.Check(r.Operation) == nil, v.Links[0].Subject)
	fmt.Println("configure permitted:", v.Check(token.Operation{Name: "configure"}) == nil)
	// Output:
	// configure: true
	// read-data true subcontractor
	// configure permitted: false
}
