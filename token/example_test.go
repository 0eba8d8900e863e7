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

// The whole flow in one process: an authorization service issues a token,
// a technician signs a request with the key the token names, and a device
// verifies both.
func Example() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the trust anchor (authorization service)
	popKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)    // the technician's proof-of-possession key
	anchorName, _ := token.AnchorName(anchorKey.Public())
	now := time.Now()

	// Authorization service: mint an SDA v1 token.
	scope, _ := token.ParseScope("read-data configure")
	tok, err := token.Issue(&token.Claims{
		Issuer:    anchorName,
		Subject:   "alice@service-co.example",
		Audience:  []string{"ep:hvac-17"},
		Expiry:    now.Add(time.Hour),
		NotBefore: now,
		Scope:     scope,
		Key:       popKey.Public(),
	}, anchorKey, nil)
	if err != nil {
		panic(err)
	}

	// Technician: sign an operation request with the device's nonce.
	req, err := token.SignRequest(&token.Request{
		Nonce:     0x5eed,
		Operation: token.Operation{Name: "configure", Args: []token.Arg{token.Int(21)}},
		Token:     tok,
	}, popKey, nil)
	if err != nil {
		panic(err)
	}

	// Device: strict parsing first, then the token's signature with the
	// anchor chosen by the (unverified) issuer, then the claims, then the
	// proof of possession with the key the token names, then the scope.
	sr, err := token.ParseRequest(req)
	if err != nil {
		panic(err)
	}
	t, err := token.Parse(sr.UnverifiedToken())
	if err != nil {
		panic(err)
	}
	if t.UnverifiedIssuer() != anchorName {
		panic("unknown anchor")
	}
	claims, err := t.Verify(anchorKey.Public())
	if err != nil {
		panic(err)
	}
	err = claims.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-17"}, Now: now, Leeway: 300 * time.Second})
	if err != nil {
		panic(err)
	}
	r, err := sr.Verify(claims.Key)
	if err != nil {
		panic(err)
	}
	fmt.Println("subject:", claims.Subject)
	fmt.Println("operation:", r.Operation.Name, r.Operation.Args)
	fmt.Println("permitted:", claims.Scope.Check(r.Operation) == nil)
	fmt.Println("firmware update permitted:", claims.Scope.Check(token.Operation{Name: "update-firmware"}) == nil)
	// Output:
	// subject: alice@service-co.example
	// operation: configure [21]
	// permitted: true
	// firmware update permitted: false
}

// A v2 structured scope constrains arguments; names match exactly.
func ExampleScope_Check() {
	scope, _ := token.NewScope(
		token.Permission{Operation: "read-data"},
		token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}},
	)
	for _, op := range []token.Operation{
		{Name: "set-temperature", Args: []token.Arg{token.Int(21)}},
		{Name: "set-temperature", Args: []token.Arg{token.Int(35)}},
		{Name: "read"},
	} {
		err := scope.Check(op)
		var se *token.ScopeError
		switch {
		case err == nil:
			fmt.Println(op.Name, op.Args, "permitted")
		case errors.As(err, &se):
			fmt.Println(op.Name, op.Args, "denied:", se.Reason)
		}
	}
	fmt.Println(scope)
	// Output:
	// set-temperature [21] permitted
	// set-temperature [35] denied: 35 outside 16..28
	// read [] denied: not in scope
	// read-data set-temperature(arg0 in 16..28)
}

// Verification failures are typed: match them with errors.Is.
func ExampleToken_Verify() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	scope, _ := token.ParseScope("read-data")
	tok, _ := token.Issue(&token.Claims{
		Issuer: "mbed.ta.EXAMPLE", Audience: []string{"ep:hvac-17"},
		Expiry: time.Now().Add(time.Hour), NotBefore: time.Now(),
		Scope: scope, Key: otherKey.Public(),
	}, anchorKey, nil)

	t, _ := token.Parse(tok)
	_, err := t.Verify(otherKey.Public())
	fmt.Println(errors.Is(err, token.ErrSignature))

	_, err = token.Parse(tok[:len(tok)-1])
	var pe *token.ParseError
	fmt.Println(errors.Is(err, token.ErrMalformed), errors.As(err, &pe))
	// Output:
	// true
	// true true
}
