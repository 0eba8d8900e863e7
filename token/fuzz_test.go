package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds returns valid tokens and requests of both profiles plus the
// COSE_Sign1 messages of testdata/cose-wg, and fails if the testdata glob
// finds nothing.
func fuzzSeeds(f *testing.F) (tokens, requests [][]byte) {
	f.Helper()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	structured, err := NewScope(Permission{Operation: "read-data"},
		Permission{Operation: "set", Constraints: []Constraint{InRange(0, 1, 9), OneOf(1, Text("a"), Bytes([]byte{1}))}})
	if err != nil {
		f.Fatal(err)
	}
	text, _ := ParseScope("read-data configure")
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		p      Profile
		anchor crypto.Signer
		pop    crypto.Signer
		scope  Scope
	}{{ProfileV1, p256, p256, text}, {ProfileV2, ed, p256, structured}, {ProfileV2, p256, ed, text}} {
		c := &Claims{Issuer: "mbed.ta.X", Subject: "s", Audience: []string{"ep:a", "id:0123"}, Expiry: now,
			NotBefore: now, IssuedAt: now, ID: []byte{1, 2}, Scope: tc.scope, Key: tc.pop.Public()}
		tok, err := Issue(c, tc.anchor, &IssueOptions{Profile: tc.p})
		if err != nil {
			f.Fatal(err)
		}
		req, err := SignRequest(&Request{Nonce: 7, Operation: Operation{Name: "set", Args: []Arg{Int(-3), Text("a"), Bytes([]byte{1})}}, Token: tok}, tc.pop, nil)
		if err != nil {
			f.Fatal(err)
		}
		tokens, requests = append(tokens, tok), append(requests, req)
	}
	files, _ := filepath.Glob("testdata/cose-wg/*/*.json")
	if len(files) == 0 {
		f.Fatal("no seeds: testdata/cose-wg/*/*.json matched nothing")
	}
	for _, name := range files {
		var v struct {
			Output struct {
				CBOR string `json:"cbor"`
			} `json:"output"`
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if json.Unmarshal(b, &v) != nil {
			continue
		}
		if msg, err := hex.DecodeString(v.Output.CBOR); err == nil {
			tokens = append(tokens, msg, append([]byte{0xd8, 0x3d}, msg...))
			requests = append(requests, msg)
		}
	}
	vectors, _ := filepath.Glob("testdata/rfc8392/a[3-6]-*.hex")
	if len(vectors) == 0 {
		f.Fatal("no seeds: testdata/rfc8392/a[3-6]-*.hex matched nothing")
	}
	for _, name := range vectors {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		msg, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			f.Fatal(err)
		}
		tokens = append(tokens, msg) // signed (A.3), MACed, encrypted and nested CWTs
	}
	return tokens, requests
}

// FuzzParseToken: Parse never panics; whatever it accepts has claims that
// survive an encode -> decode round trip, and the encoding is a fixed point.
func FuzzParseToken(f *testing.F) {
	tokens, _ := fuzzSeeds(f)
	for _, s := range append(tokens, newDelegationSeeds(f).toks...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not match ErrMalformed", err)
			}
			return
		}
		c := tok.claims
		if c.Profile == ProfileV1 && c.NotBefore.IsZero() {
			return // v1 encoding requires nbf; nothing to round-trip
		}
		enc1, err := encodeClaims(c, c.Profile)
		if err != nil {
			t.Fatalf("accepted claims do not encode: %v", err)
		}
		c2, err := decodeClaims(enc1)
		if err != nil {
			t.Fatalf("re-encoded claims do not decode: %v\n%x", err, enc1)
		}
		enc2, err := encodeClaims(c2, c2.Profile)
		if err != nil || !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding is not a fixed point: %v\n%x\n%x", err, enc1, enc2)
		}
		if !c2.Scope.Equal(c.Scope) || !EqualKeys(c2.Key, c.Key) || c2.Issuer != c.Issuer || !c2.Expiry.Equal(c.Expiry) ||
			(c2.Delegation == nil) != (c.Delegation == nil) || c.Delegation != nil && (c2.Delegation.Depth != c.Delegation.Depth || !slices.Equal(c2.Delegation.Operations, c.Delegation.Operations)) {
			t.Fatalf("round trip changed the claims: %+v -> %+v", c, c2)
		}
	})
}

// FuzzParseRequest: ParseRequest never panics; an accepted operation
// survives a round trip through SignRequest.
func FuzzParseRequest(f *testing.F) {
	_, requests := fuzzSeeds(f)
	for _, s := range append(requests, newDelegationSeeds(f).reqs...) {
		f.Add(s)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Fuzz(func(t *testing.T, data []byte) {
		sr, err := ParseRequest(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not match ErrMalformed", err)
			}
			return
		}
		signed, err := SignRequest(&sr.req, key, nil)
		if err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
		sr2, err := ParseRequest(signed)
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		r2, err := sr2.Verify(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r2.Nonce != sr.req.Nonce || r2.Operation.Name != sr.req.Operation.Name || len(r2.Operation.Args) != len(sr.req.Operation.Args) || !bytes.Equal(r2.Token, sr.req.Token) || !bytes.Equal(r2.Chain, sr.req.Chain) || (r2.Chain == nil) != (sr.req.Chain == nil) {
			t.Fatalf("round trip changed the request")
		}
		for i, a := range r2.Operation.Args {
			if a != sr.req.Operation.Args[i] {
				t.Fatalf("argument %d changed: %v -> %v", i, sr.req.Operation.Args[i], a)
			}
		}
	})
}

// FuzzUnmarshalScope: Scope.UnmarshalCBOR never panics; an accepted scope
// survives an encode -> decode round trip.
func FuzzUnmarshalScope(f *testing.F) {
	for _, s := range []string{"7272656164", "6f726561642d6461746120636f6e666967", "8263726561648263736574818300011009", "81826361626381830002816161"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	sc, _ := NewScope(Permission{Operation: "*", Constraints: []Constraint{InRange(0, -9, 9), OneOf(1, Int(1), Text("x"), Bytes([]byte("y"))), Equals(2, Text("z"))}})
	b, _ := sc.MarshalCBOR()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Scope
		if err := s.UnmarshalCBOR(data); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not match ErrMalformed", err)
			}
			return
		}
		enc, err := s.MarshalCBOR()
		if err != nil {
			t.Fatalf("accepted scope does not encode: %v", err)
		}
		var s2 Scope
		if err := s2.UnmarshalCBOR(enc); err != nil || !s2.Equal(s) {
			t.Fatalf("round trip: %v, %v -> %v", err, s, s2)
		}
	})
}

// FuzzParseCOSEKey: ParseCOSEKey never panics; an accepted key survives a
// round trip.
func FuzzParseCOSEKey(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, s := range []crypto.Signer{p256, p384, ed} {
		b, _ := MarshalCOSEKey(s.Public())
		f.Add(b)
		b, _ = appendCOSEKey(nil, s.Public(), true)
		f.Add(b)
	}
	for _, weak := range ed25519SmallOrder { // refused with ErrWeakKey
		f.Add(append([]byte{0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20}, weak[:]...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseCOSEKey(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		b, err := MarshalCOSEKey(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseCOSEKey(b)
		if err != nil || !EqualKeys(k, k2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParsePublicKeyPEM: ParsePublicKeyPEM never panics, fails with
// ErrMalformed or ErrUnsupportedKey, and accepts only data that is one
// PEM block of a key whose own PEM encoding parses to the same key.
func FuzzParsePublicKeyPEM(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	var blocks [][]byte
	for _, s := range []crypto.Signer{p256, p384, ed} {
		b, _ := MarshalPublicKeyPEM(s.Public())
		blocks = append(blocks, b)
		f.Add(b)
	}
	f.Add(append(append([]byte{}, blocks[0]...), blocks[1]...)) // two keys
	f.Add(append([]byte("text\n"), blocks[2]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePublicKeyPEM(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("error %v matches neither ErrMalformed nor ErrUnsupportedKey", err)
			}
			return
		}
		if n := bytes.Count(data, []byte("-----BEGIN")); n != 1 {
			t.Fatalf("accepted %d PEM blocks", n)
		}
		b, err := MarshalPublicKeyPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParsePublicKeyPEM(b)
		if err != nil || !EqualKeys(k, k2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzSignVerifyTamper signs a token built from fuzzed claims, checks that
// it verifies, then changes one byte and checks that it no longer does.
func FuzzSignVerifyTamper(f *testing.F) {
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add("mbed.ta.X", "ep:hvac-1", "read-data configure", uint64(1800000000), uint16(17), byte(1))
	f.Add("i", "id:00", "xy", uint64(0), uint16(0), byte(0x80))
	f.Fuzz(func(t *testing.T, iss, aud, scope string, exp uint64, at uint16, flip byte) {
		sc, err := ParseScope(scope)
		if err != nil || iss == "" || exp == 0 || exp > 1<<40 || flip == 0 {
			return
		}
		c := &Claims{Issuer: iss, Audience: []string{aud}, Expiry: time.Unix(int64(exp), 0), NotBefore: time.Unix(int64(exp), 0), Scope: sc, Key: pop.Public()}
		tok, err := Issue(c, anchor, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("issue error %v does not match ErrInvalid", err)
			}
			return
		}
		p, err := Parse(tok)
		if err != nil {
			t.Fatalf("own token does not parse: %v", err)
		}
		if _, err := p.Verify(anchor.Public()); err != nil {
			t.Fatalf("own token does not verify: %v", err)
		}
		tampered := bytes.Clone(tok)
		tampered[int(at)%len(tampered)] ^= flip
		if p, err := Parse(tampered); err == nil {
			if _, err := p.Verify(anchor.Public()); err == nil {
				t.Fatalf("tampered token (byte %d ^ %#x) verified", int(at)%len(tampered), flip)
			}
		}
	})
}

// FuzzParseStatus: ParseStatus never panics and refuses with ErrMalformed;
// an accepted update's payload is the one encodeStatus makes of it (the
// encoding is unique), and Verify with an unrelated key fails cleanly.
func FuzzParseStatus(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	seed := &StatusUpdate{
		Issuer: "sda.example", Sequence: 3, Time: time.Unix(1700000000, 0), Audience: "ep:x",
		Hashes: [][32]byte{{1}}, TokenIDs: [][]byte{{2}},
		Subjects: []SubjectCutoff{{Subject: "s", Before: time.Unix(5, 0)}},
		Anchors:  []AnchorCutoff{{KeyID: []byte{3}, Before: time.Unix(6, 0)}},
	}
	for _, u := range []*StatusUpdate{seed, {Issuer: "i", Time: time.Unix(1, 0), Audience: "id:00112233445566778899aabbccddeeff"}} {
		b, err := SignStatus(u, key, &StatusOptions{KeyID: []byte("k")})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatus(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not match ErrMalformed", err)
			}
			return
		}
		enc, err := encodeStatus(s.update)
		if err != nil {
			t.Fatalf("accepted update does not encode: %v", err)
		}
		if !bytes.Equal(enc, s.msg.payload) {
			t.Fatalf("accepted payload is not the unique encoding:\n%x\n%x", s.msg.payload, enc)
		}
		if _, err := s.Verify(key.Public()); err == nil {
			return // a seed
		} else if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrAlgorithmMismatch) {
			t.Fatalf("Verify: %v", err)
		}
	})
}
