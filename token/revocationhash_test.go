package token_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// revocationClaims returns an anchor key and claims without a cti that it
// may sign.
func revocationClaims(t testing.TB) (crypto.Signer, *token.Claims) {
	anchor, pop := newKey(t, "P-256"), newKey(t, "P-256")
	return anchor, &token.Claims{
		Issuer: "coap://as.example.com", Audience: []string{"ep:hvac-1"},
		Expiry: testNow.Add(time.Hour), NotBefore: testNow,
		Scope: mustScope(t, "read-data"), Key: pop.Public(),
	}
}

// The revocation hash is the SHA-256 of the COSE ToBeSigned (RFC 9052
// section 4.4): the same for every encoding of one signed token, and for
// ES256 the digest the issuer signed.
func TestRevocationHash(t *testing.T) {
	anchor, claims := revocationClaims(t)
	tok, err := token.Issue(claims, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	// By hand: 61(18([h'A10126', {}, payload, r||s])).
	items, err := codec.ReadArray(tok[3:], nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := codec.ReadBytes(items[2])
	sig, _ := codec.ReadBytes(items[3])
	tbs := append([]byte{0x84, 0x6a}, "Signature1"...)
	tbs = append(tbs, 0x43, 0xa1, 0x01, 0x26, 0x40)
	tbs = codec.AppendBytes(tbs, payload)
	want := sha256.Sum256(tbs)

	got, err := token.RevocationHash(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("RevocationHash %x, want the ToBeSigned hash %x", got, want)
	}
	if !ecdsa.Verify(anchor.Public().(*ecdsa.PublicKey), got[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the revocation hash of an ES256 token is not the digest its issuer signed")
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.RevocationHash() != want {
		t.Fatal("Token.RevocationHash differs from RevocationHash")
	}

	// Every re-encoding of the same signed token has the same hash.
	highS := bytes.Clone(tok)
	s := highS[len(highS)-32:]
	new(big.Int).Sub(elliptic.P256().Params().N, new(big.Int).SetBytes(s)).FillBytes(s)
	withKid := append(bytes.Clone(tok[:8]), 0xa2, 0x04, 0x42, 'k', '1', 0x18, 0x63, 0x00)
	withKid = append(withKid, tok[9:]...)
	for name, v := range map[string][]byte{"tag 61 stripped": tok[2:], "high s": highS, "kid and a label unprotected": withKid} {
		if _, err := token.Parse(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h, err := token.RevocationHash(v); err != nil || h != want {
			t.Errorf("%s: %x %v, want %x", name, h, err, want)
		}
	}
	// The same claims signed again: the same hash (it names the grant,
	// not one signature of it).
	again, _ := token.Issue(claims, anchor, nil)
	if bytes.Equal(again, tok) {
		t.Fatal("ECDSA signatures are randomized; the test needs two")
	}
	if h, _ := token.RevocationHash(again); h != want {
		t.Errorf("re-signed token: %x, want %x", h, want)
	}
	// Other claims: another hash.
	claims.Subject = "mallory"
	other, _ := token.Issue(claims, anchor, nil)
	if h, _ := token.RevocationHash(other); h == want {
		t.Error("tokens with different claims share a revocation hash")
	}
	// What Parse refuses has no revocation hash.
	for name, bad := range map[string][]byte{"untagged": tok[3:], "truncated": tok[:len(tok)-1], "empty": nil} {
		if _, err := token.RevocationHash(bad); !errors.Is(err, token.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// TestRevocationHashAllocatesNothing: a device computes the revocation
// hash of every token it is shown, before any signature check, so it does
// not allocate, even for the token whose ToBeSigned is the longest: one of
// MaxTokenSize bytes under tag 18 alone with an empty signature, whose
// ToBeSigned is 9 bytes longer than the token.
func TestRevocationHashAllocatesNothing(t *testing.T) {
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	m := claimsMap(t, pop)
	var tok, payload []byte
	for n := 0; n < token.MaxTokenSize && len(tok) < token.MaxTokenSize; n++ {
		m[2] = strings.Repeat("s", n)
		payload = enc(t, m)
		tok = append([]byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}, enc(t, payload)...)
		tok = append(tok, 0x40) // h'': parses, never verifies
	}
	if len(tok) != token.MaxTokenSize {
		t.Fatalf("no token of exactly %d bytes (got %d)", token.MaxTokenSize, len(tok))
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	tbs := append([]byte{0x84, 0x6a}, "Signature1"...)
	tbs = append(tbs, 0x43, 0xa1, 0x01, 0x26, 0x40)
	tbs = codec.AppendBytes(tbs, payload)
	if len(tbs) != token.MaxTokenSize+9 {
		t.Fatalf("ToBeSigned of %d bytes, want %d", len(tbs), token.MaxTokenSize+9)
	}
	if got := parsed.RevocationHash(); got != sha256.Sum256(tbs) {
		t.Fatalf("RevocationHash %x, want the ToBeSigned hash", got)
	}
	if n := testing.AllocsPerRun(20, func() { parsed.RevocationHash() }); n != 0 {
		t.Fatalf("Token.RevocationHash allocates %v times, want 0", n)
	}
}

// FuzzRevocationHash: RevocationHash fails only as Parse does, and the
// token stripped to 18([protected, {}, payload, signature]) has the same
// hash.
func FuzzRevocationHash(f *testing.F) {
	anchor, claims := revocationClaims(f)
	for _, opts := range []*token.IssueOptions{nil, {Profile: token.ProfileV2, KeyID: []byte("k1")}} {
		tok, err := token.Issue(claims, anchor, opts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
		// kid and a label in the unprotected header.
		if opts == nil {
			v := append(bytes.Clone(tok[:8]), 0xa2, 0x04, 0x42, 'k', '1', 0x18, 0x63, 0x00)
			f.Add(append(v, tok[9:]...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := token.RevocationHash(data)
		if err != nil {
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		body := data[1:] // 18(
		if data[0] != 0xd2 {
			body = data[3:] // 61(18(
		}
		items, err := codec.ReadArray(body, nil)
		if err != nil {
			t.Fatalf("a parsed token's COSE_Sign1 does not read back: %v", err)
		}
		stripped := append([]byte{0xd2, 0x84}, items[0]...)
		stripped = append(stripped, 0xa0)
		stripped = append(append(stripped, items[2]...), items[3]...)
		if h2, err := token.RevocationHash(stripped); err != nil || h2 != h {
			t.Fatalf("stripped token: %x %v, want %x", h2, err, h)
		}
	})
}

// A revoker computes the hash to send in "sda-revoke"("hash", ...) from the
// token it wants revoked; the token's holder cannot escape the revocation
// by re-encoding the token (here: stripping tag 61).
func ExampleRevocationHash() {
	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	popKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	scope, _ := token.ParseScope("read-data")
	tok, err := token.Issue(&token.Claims{
		Issuer: "sda.example", Audience: []string{"ep:hvac-17"},
		Expiry: time.Now().Add(time.Hour), NotBefore: time.Now(),
		Scope: scope, Key: popKey.Public(),
	}, anchorKey, nil)
	if err != nil {
		panic(err)
	}
	revoked, err := token.RevocationHash(tok)
	if err != nil {
		panic(err)
	}
	fmt.Println("id:", len(hex.EncodeToString(revoked[:])), "hex digits")

	// The holder sends 18(COSE_Sign1) instead of 61(18(COSE_Sign1)).
	reencoded, _ := token.RevocationHash(tok[2:])
	fmt.Println("same hash:", reencoded == revoked)
	// Output:
	// id: 64 hex digits
	// same hash: true
}

// IssueWithRevocationHash returns the token Issue would and, with it, the
// hash RevocationHash computes from it, for every algorithm and profile,
// with and without a kid; an error is Issue's.
func TestIssueWithRevocationHash(t *testing.T) {
	for _, tc := range []struct {
		name    string
		curve   string
		profile token.Profile
		kid     []byte
	}{
		{"v1 ES256", "P-256", token.ProfileV1, nil},
		{"v2 ES256 kid", "P-256", token.ProfileV2, []byte("k1")},
		{"v2 ES384", "P-384", token.ProfileV2, nil},
		{"v2 EdDSA kid", "Ed25519", token.ProfileV2, []byte("k2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, claims := revocationClaims(t)
			anchor := newKey(t, tc.curve)
			claims.ID = []byte{1, 2, 3, 4}
			opts := &token.IssueOptions{Profile: tc.profile, KeyID: tc.kid}
			tok, hash, err := token.IssueWithRevocationHash(claims, anchor, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := token.RevocationHash(tok)
			if err != nil {
				t.Fatal(err)
			}
			if hash != want {
				t.Fatalf("hash %x, want RevocationHash of the token %x", hash, want)
			}
			if _, err := token.Parse(tok); err != nil {
				t.Fatalf("the token does not parse: %v", err)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		anchor, claims := revocationClaims(t)
		opts := &token.IssueOptions{Profile: token.ProfileV1, KeyID: []byte("k")}
		_, errIssue := token.Issue(claims, anchor, opts)
		tok, hash, err := token.IssueWithRevocationHash(claims, anchor, opts)
		if !errors.Is(err, token.ErrInvalid) || !errors.Is(errIssue, token.ErrInvalid) || tok != nil || hash != [32]byte{} {
			t.Fatalf("got %x %x %v, want nothing and ErrInvalid as Issue (%v)", tok, hash, err, errIssue)
		}
	})
}
