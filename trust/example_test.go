package trust_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"time"

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
