package trust_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// Building an anchor store on disk: an SDA-named anchor from a PEM key,
// then a key rotation with an overlap under one issuer name.
func ExampleFileStore() {
	dir, _ := os.MkdirTemp("", "anchors")
	defer os.RemoveAll(dir)
	store, err := trust.OpenFileStore(dir)
	if err != nil {
		panic(err)
	}

	// The anchor published by an SDA cloud, as PEM.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sda, _ := trust.NewAnchor(key.Public())
	fmt.Println(strings.HasPrefix(sda.Issuer, "mbed.ta."), len(sda.Fingerprint()))
	if err := store.Add(*sda); err != nil {
		panic(err)
	}

	// An issuer rotating its key: both keys are trusted during the overlap,
	// told apart by kid; then the old key is retired.
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	store.Add(trust.Anchor{Issuer: "acme-auth", KeyID: []byte("2025"), Key: oldKey.Public(),
		Constraints: trust.Constraints{Operations: []string{"read-data"}, MaxLifetime: 24 * time.Hour}})
	store.Add(trust.Anchor{Issuer: "acme-auth", KeyID: []byte("2026"), Key: newKey.Public()})
	anchors, _ := store.Lookup("acme-auth", nil)
	fmt.Println("acme-auth keys:", len(anchors))
	store.Retire("acme-auth", []byte("2025"), time.Now())

	// The store survives a restart.
	reopened, _ := trust.OpenFileStore(dir)
	fmt.Println("anchors after reopening:", reopened.Len())
	// Output:
	// true 64
	// acme-auth keys: 2
	// anchors after reopening: 3
}

// Rotating an issuer's key, as a device sees it. Both keys are trusted
// during the overlap, told apart by the kid of v2 tokens; retiring the old
// key refuses the tokens it signs afterwards while those it signed before
// stay valid until they expire; removing it ends the rotation.
func ExampleMemoryStore_Retire() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the device's clock
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	store, _ := trust.NewMemoryStore(trust.Anchor{Issuer: "acme-auth", KeyID: []byte("2025"), Key: oldKey.Public()})

	// issue signs a v2 token for hvac-1 with key, issued at iat.
	issue := func(key *ecdsa.PrivateKey, kid string, iat time.Time) []byte {
		scope, _ := token.ParseScope("read-data")
		tok, _ := token.Issue(&token.Claims{
			Issuer: "acme-auth", Audience: []string{"ep:hvac-1"}, Scope: scope, Key: key.Public(),
			IssuedAt: iat, NotBefore: iat, Expiry: iat.Add(8 * time.Hour),
		}, key, &token.IssueOptions{Profile: token.ProfileV2, KeyID: []byte(kid)})
		return tok
	}
	// accept checks a token as a device does: the unverified iss and kid
	// choose the anchors, an anchor's key verifies the signature, and
	// only then are the claims and the anchor's constraints checked.
	accept := func(raw []byte, now time.Time) error {
		tok, err := token.Parse(raw)
		if err != nil {
			return err
		}
		anchors, err := trust.LookupToken(store, tok)
		if err != nil {
			return err
		}
		for _, a := range anchors {
			claims, err := tok.Verify(a.Key)
			if err != nil {
				continue
			}
			if err := claims.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: now}); err != nil {
				return err
			}
			return a.Check(claims, now)
		}
		return token.ErrSignature
	}

	// The overlap: the new key is added, tokens of both keys verify.
	store.Add(trust.Anchor{Issuer: "acme-auth", KeyID: []byte("2026"), Key: newKey.Public()})
	before := issue(oldKey, "2025", now.Add(-time.Hour))
	fmt.Println("overlap:", accept(before, now), accept(issue(newKey, "2026", now), now))

	// The end of the overlap: the old key is retired now.
	store.Retire("acme-auth", []byte("2025"), now)
	later := now.Add(time.Hour)
	err := accept(issue(oldKey, "2025", later), later)
	var ce *trust.ConstraintError
	fmt.Println("retired:", accept(before, later), errors.As(err, &ce) && ce.Constraint == "retired")

	// The old key is removed once its last tokens have expired.
	store.Remove("acme-auth", []byte("2025"))
	fmt.Println("removed:", errors.Is(accept(before, later), trust.ErrUnknownAnchor), accept(issue(newKey, "2026", later), later))
	// Output:
	// overlap: <nil> <nil>
	// retired: <nil> true
	// removed: true <nil>
}

// Revoking a compromised anchor: every token it signed is refused at once,
// whenever it was issued, and the revoked anchor stays in the store so that
// it cannot be added again by mistake.
func ExampleMemoryStore_Revoke() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the device's clock
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, _ := trust.NewAnchor(key.Public()) // named as SDA names anchors
	store, _ := trust.NewMemoryStore(*anchor)

	scope, _ := token.ParseScope("read-data")
	raw, _ := token.Issue(&token.Claims{
		Issuer: anchor.Issuer, Audience: []string{"ep:hvac-1"}, Scope: scope, Key: key.Public(),
		IssuedAt: now.Add(-time.Hour), NotBefore: now.Add(-time.Hour), Expiry: now.Add(time.Hour),
	}, key, nil)
	tok, _ := token.Parse(raw)

	anchors, err := trust.LookupToken(store, tok)
	fmt.Println("before:", len(anchors), err)

	store.Revoke(anchor.Issuer, nil)
	_, err = trust.LookupToken(store, tok)
	fmt.Println("after:", errors.Is(err, trust.ErrAnchorRevoked))
	fmt.Println("added again:", errors.Is(store.Add(*anchor), trust.ErrDuplicate))
	// Output:
	// before: 1 <nil>
	// after: true
	// added again: true
}
