package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSigStructureAllocatesOnce: the ToBeSigned of every verification is
// built in one buffer sized for it up front (at most one allocation, none
// when the compiler keeps it on the stack), whatever the sizes of its
// parts (heads of one, two and three bytes).
func TestSigStructureAllocatesOnce(t *testing.T) {
	for _, n := range [][3]int{{3, 0, 10}, {3, 0, 300}, {40, 30, 200}, {300, 300, 3000}, {0, 0, 0}} {
		prot, aad, payload := make([]byte, n[0]), make([]byte, n[1]), make([]byte, n[2])
		want := append([]byte{0x84, 0x6a}, "Signature1"...)
		for _, part := range [][]byte{prot, aad, payload} {
			want = appendBstr(want, part)
		}
		if got := sigStructure(prot, aad, payload); !bytes.Equal(got, want) {
			t.Fatalf("sigStructure%v = %x, want %x", n, got, want)
		}
		if a := testing.AllocsPerRun(20, func() { sigStructure(prot, aad, payload) }); a > 1 {
			t.Errorf("sigStructure with parts of %v bytes allocates %v times, want at most 1", n, a)
		}
	}
}

// TestSignedMessageSizedOnce: the messages the package signs are built in
// one buffer of exactly their size, computed before signing.
func TestSignedMessageSizedOnce(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	thumb, err := Thumbprint(p256.Public())
	if err != nil {
		t.Fatal(err)
	}
	scope, _ := ParseScope("read-data configure")
	now := time.Unix(1800000000, 0)
	claims := func(aud int) *Claims {
		c := &Claims{Issuer: "mbed.ta.X", Expiry: now, NotBefore: now, Scope: scope, Key: p256.Public()}
		for i := 0; i < aud; i++ {
			c.Audience = append(c.Audience, fmt.Sprintf("ep:device-%d", i))
		}
		return c
	}
	check := func(name string, msg []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cap(msg) != len(msg) {
			t.Errorf("%s: %d bytes with a capacity of %d: regrown, or sized wrong", name, len(msg), cap(msg))
		}
	}
	for _, tc := range []struct {
		name string
		aud  int
		key  *ecdsa.PrivateKey
		opts *IssueOptions
	}{
		{"v1, short", 1, p256, nil},
		{"v1, over 255 bytes of claims", 20, p256, nil},
		{"v2 with a 32-byte kid", 1, p256, &IssueOptions{Profile: ProfileV2, KeyID: thumb}},
		{"v2 with a 32-byte kid, over 255 bytes of claims", 20, p256, &IssueOptions{Profile: ProfileV2, KeyID: thumb}},
		{"v2 ES384 with a kid of 300 bytes", 20, p384, &IssueOptions{Profile: ProfileV2, KeyID: make([]byte, 300)}},
	} {
		tok, err := Issue(claims(tc.aud), tc.key, tc.opts)
		check("Issue, "+tc.name, tok, err)
	}
	tok, _ := Issue(claims(1), p256, nil)
	for _, args := range [][]Arg{nil, {Text(strings.Repeat("a", 300))}} {
		req, err := SignRequest(&Request{Nonce: 1, Operation: Operation{Name: "configure", Args: args}, Token: tok}, ed, nil)
		check(fmt.Sprintf("SignRequest with %d arguments", len(args)), req, err)
	}
	for _, data := range [][]byte{nil, make([]byte, 10), make([]byte, 300)} {
		resp, err := SignResponse(&DeviceResponse{Data: data, Device: Identity{Endpoint: "hvac-1"}}, p256, nil)
		check(fmt.Sprintf("SignResponse with %d bytes of data", len(data)), resp, err)
	}
}
