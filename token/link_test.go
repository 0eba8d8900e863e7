package token_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/token"
)

// orderedMap encodes the key-value pairs kv as a CBOR map in the order
// given (fxamacker's encoder does not keep it), values encoded by enc
// unless they are cbor.RawMessage.
func orderedMap(t testing.TB, kv ...any) []byte {
	t.Helper()
	b := []byte{0xa0 | byte(len(kv)/2)}
	for _, v := range kv {
		if raw, ok := v.(cbor.RawMessage); ok {
			b = append(b, raw...)
			continue
		}
		b = append(b, enc(t, v)...)
	}
	return b
}

func compressed(t testing.TB, pub any) []byte {
	t.Helper()
	k := pub.(*ecdsa.PublicKey)
	//lint:ignore SA1019 the tests build keys the package would not write
	return elliptic.MarshalCompressed(k.Curve, k.X, k.Y)
}

// TestParseLinkStrict: every departure from the link format is malformed,
// refused before any cryptography, with the precise sentinel where there
// is one.
func TestParseLinkStrict(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 2})
	k1 := newKey(t, "P-256")
	key := compressed(t, k1.Public())
	exp := uint64(testNow.Add(time.Hour).Unix())
	payload := func(kv ...any) []byte { return orderedMap(t, kv...) }
	good := payload(1, key, 2, 1, 3, exp)
	link := func(protected, unprotected, payload []byte) []byte {
		b, err := token.ExportSignLinkRaw(protected, unprotected, payload, f.hash, f.pop)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := f.chainOf(t, link(protES256, emptyMap, good)); err != nil {
		t.Fatalf("the good link: %v", err)
	}
	weak := make([]byte, 32) // the Ed25519 point y = 0, of order 4
	for _, tc := range []struct {
		name string
		link []byte
		want error
	}{
		{"tagged", append([]byte{0xd2}, link(protES256, emptyMap, good)...), token.ErrMalformed},
		{"non-empty unprotected header", link(protES256, []byte{0xa1, 0x04, 0x41, 0x01}, good), token.ErrMalformed},
		{"kid in the protected header", link(enc(t, map[int]any{1: -7, 4: []byte{1}}), emptyMap, good), token.ErrMalformed},
		{"alg in a longer encoding", link([]byte{0xa1, 0x01, 0x38, 0x06}, emptyMap, good), token.ErrMalformed},
		{"empty protected header", link(nil, emptyMap, good), token.ErrMalformed},
		{"weak Ed25519 key", link(protES256, emptyMap, payload(1, weak, 2, 1, 3, exp)), token.ErrWeakKey},
		{"uncompressed point", link(protES256, emptyMap, payload(1, append([]byte{4}, make([]byte, 64)...), 2, 1, 3, exp)), token.ErrUnsupportedKey},
		{"unknown key length", link(protES256, emptyMap, payload(1, key[:20], 2, 1, 3, exp)), token.ErrUnsupportedKey},
		{"compressed point with prefix 04", link(protES256, emptyMap, payload(1, append([]byte{4}, key[1:]...), 2, 1, 3, exp)), token.ErrUnsupportedKey},
		{"point not on the curve", link(protES256, emptyMap, payload(1, append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...), 2, 1, 3, exp)), token.ErrUnsupportedKey},
		{"key as COSE_Key", link(protES256, emptyMap, payload(1, map[int]any{1: 2}, 2, 1, 3, exp)), token.ErrMalformed},
		{"unknown payload key", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 8, 1)), token.ErrMalformed},
		{"text payload key", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, "sub", "x")), token.ErrMalformed},
		{"repeated key", link(protES256, emptyMap, payload(1, key, 2, 1, 2, 1, 3, exp)), token.ErrMalformed},
		{"keys out of order", link(protES256, emptyMap, payload(2, 1, 1, key, 3, exp)), token.ErrMalformed},
		{"exp missing", link(protES256, emptyMap, payload(1, key, 2, 1)), token.ErrMalformed},
		{"scope missing", link(protES256, emptyMap, payload(1, key, 3, exp)), token.ErrMalformed},
		{"negative exp", link(protES256, emptyMap, payload(1, key, 2, 1, 3, -1)), token.ErrMalformed},
		{"selection 0", link(protES256, emptyMap, payload(1, key, 2, 0, 3, exp)), token.ErrMalformed},
		{"selection beyond 20 permissions", link(protES256, emptyMap, payload(1, key, 2, 1<<20, 3, exp)), token.ErrMalformed},
		{"negative selection", link(protES256, emptyMap, payload(1, key, 2, -1, 3, exp)), token.ErrMalformed},
		{"empty scope array", link(protES256, emptyMap, payload(1, key, 2, []any{}, 3, exp)), token.ErrMalformed},
		{"scope with a bad name", link(protES256, emptyMap, payload(1, key, 2, "9x", 3, exp)), token.ErrMalformed},
		{"aud as one string", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 5, "ep:a")), token.ErrMalformed},
		{"empty aud", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 5, []string{})), token.ErrMalformed},
		{"empty aud entry", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 5, []string{""})), token.ErrMalformed},
		{"depth 0 written out", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 6, 0)), token.ErrMalformed},
		{"depth 5", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 6, 5)), token.ErrMalformed},
		{"empty sub", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 7, "")), token.ErrMalformed},
		{"sub too long", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 7, strings.Repeat("x", token.MaxLinkSubjectLength+1))), token.ErrMalformed},
		{"sub as bytes", link(protES256, emptyMap, payload(1, key, 2, 1, 3, exp, 7, []byte("x"))), token.ErrMalformed},
		{"payload not a map", link(protES256, emptyMap, enc(t, []any{key, 1, exp})), token.ErrMalformed},
		{"indefinite-length payload map", link(protES256, emptyMap, append(append([]byte{0xbf}, good[1:]...), 0xff)), token.ErrMalformed},
		{"short signature", shortSig(link(protES256, emptyMap, good)), token.ErrMalformed},
		{"3 elements", enc(t, []any{protES256, map[int]any{}, good}), token.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := append([]byte{0x81}, tc.link...)
			c, err := token.ParseChain(chain)
			if !errors.Is(err, tc.want) || !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseChain: chain %v, error %v; want %v (and ErrMalformed)", c, err, tc.want)
			}
			if _, err := token.NewChain(tc.link); !errors.Is(err, tc.want) {
				t.Fatalf("NewChain: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestParseChainStrict: the chain's array and the delegated token's.
func TestParseChainStrict(t *testing.T) {
	f := newDelegFixture(t, "Ed25519", &token.Delegation{Depth: 4})
	l := signLink(t, &token.Link{Key: newKey(t, "P-256").Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, f.hash, f.pop)
	chainOf := func(n int) []byte {
		b := []byte{0x80 | byte(n)}
		for range n {
			b = append(b, l...)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		chain []byte
	}{
		{"no link", chainOf(0)},
		{"5 links", chainOf(token.MaxDelegationDepth + 1)},
		{"trailing bytes", append(chainOf(1), 0)},
		{"indefinite-length array", append(append([]byte{0x9f}, l...), 0xff)},
		{"a map", []byte{0xa0}},
		{"a bare link", l},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := token.ParseChain(tc.chain); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseChain: %v, want ErrMalformed", err)
			}
			dt := append(append([]byte{0x82}, enc(t, f.tok)...), tc.chain...)
			if _, err := token.ParseDelegatedToken(dt); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseDelegatedToken: %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := token.NewChain(); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("NewChain(): %v, want ErrMalformed", err)
	}
	good := append(append([]byte{0x82}, enc(t, f.tok)...), chainOf(1)...)
	if _, err := token.ParseDelegatedToken(good); err != nil {
		t.Fatalf("the good delegated token: %v", err)
	}
	for _, tc := range []struct {
		name string
		dt   []byte
	}{
		{"3 elements", append(append([]byte{0x83}, good[1:]...), 0x00)},
		{"token not a bstr", append(append([]byte{0x82}, f.tok...), chainOf(1)...)},
		{"token malformed", append(append([]byte{0x82}, enc(t, f.tok[1:])...), chainOf(1)...)},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"chain then token", append(append([]byte{0x82}, chainOf(1)...), enc(t, f.tok)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := token.ParseDelegatedToken(tc.dt); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseDelegatedToken: %v, want ErrMalformed", err)
			}
		})
	}
}

// TestRequestBundleChain: a 4th bundle element must be a well-formed
// chain; the 3-element bundle is unchanged.
func TestRequestBundleChain(t *testing.T) {
	f := newDelegFixture(t, "P-256", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256").(*ecdsa.PrivateKey)
	l := signLink(t, &token.Link{Key: k1.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, f.hash, f.pop)
	op := []any{1, "read-data", []any{}}
	bundle := func(items ...any) []byte {
		return rawSign1(t, k1, []byte{0xd2}, protES256, emptyMap, enc(t, items))
	}
	sr, err := token.ParseRequest(bundle(uint64(1), op, f.tok, cbor.RawMessage(append([]byte{0x81}, l...))))
	if err != nil {
		t.Fatalf("4 elements: %v", err)
	}
	if got := sr.Chain().Bytes(); !bytes.Equal(got, append([]byte{0x81}, l...)) {
		t.Fatalf("Chain().Bytes() %x", got)
	}
	// The chain as parsed with the request: the same links, verifiable.
	if c := sr.Chain(); c.Len() != 1 || !bytes.Equal(c.Bytes(), append([]byte{0x81}, l...)) {
		t.Fatalf("Chain: %d links, %x", c.Len(), c.Bytes())
	}
	if v, err := sr.Chain().Verify(f.claims, f.hash); err != nil || !token.EqualKeys(v.Claims.Key, k1.Public()) {
		t.Fatalf("Chain().Verify: %v", err)
	}
	sr, err = token.ParseRequest(bundle(uint64(1), op, f.tok))
	if err != nil || sr.Chain() != nil {
		t.Fatalf("3 elements: %v, chain %x", err, sr.Chain().Bytes())
	}
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"5 elements", bundle(uint64(1), op, f.tok, cbor.RawMessage(append([]byte{0x81}, l...)), 0)},
		{"chain a bstr", bundle(uint64(1), op, f.tok, append([]byte{0x81}, l...))},
		{"empty chain", bundle(uint64(1), op, f.tok, []any{})},
		{"chain with a bad link", bundle(uint64(1), op, f.tok, []any{[]any{protES256, map[int]any{}, []byte{0xa0}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := token.ParseRequest(tc.req); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseRequest: %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := token.SignRequest(&token.Request{Operation: readData(), Token: f.tok, Chain: []byte{0x80}}, k1, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("SignRequest with an empty chain: %v, want ErrInvalid", err)
	}
}

// TestDelegationClaimStrict: the claim's decoding.
func TestDelegationClaimStrict(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	v2 := func(d any) map[int]any {
		m := claimsMap(t, pop)
		m[9], m[8] = m[12], m[25]
		delete(m, 12)
		delete(m, 25)
		m[-65537] = d
		return m
	}
	if c, err := parseClaimsMap(t, anchor, v2(cbor.RawMessage(orderedMap(t, 1, 2, 2, []string{"configure"})))); err != nil || c.Delegation == nil || c.Delegation.Depth != 2 {
		t.Fatalf("the good claim: %+v, %v", c, err)
	}
	m := claimsMap(t, pop)
	m[-65537] = map[int]any{1: 1}
	if _, err := parseClaimsMap(t, anchor, m); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("a v1 token with the claim: %v, want ErrMalformed", err)
	}
	for _, tc := range []struct {
		name string
		d    any
	}{
		{"not a map", []any{1}},
		{"empty map", map[int]any{}},
		{"depth 0", map[int]any{1: 0}},
		{"depth 5", map[int]any{1: 5}},
		{"depth negative", map[int]any{1: -1}},
		{"unknown key", cbor.RawMessage(orderedMap(t, 1, 1, 3, 1))},
		{"keys out of order", cbor.RawMessage(orderedMap(t, 2, []string{"configure"}, 1, 1))},
		{"repeated key", cbor.RawMessage(orderedMap(t, 1, 1, 1, 1))},
		{"empty operations", cbor.RawMessage(orderedMap(t, 1, 1, 2, []string{}))},
		{"operation not in the scope", cbor.RawMessage(orderedMap(t, 1, 1, 2, []string{"firmware"}))},
		{"repeated operation", cbor.RawMessage(orderedMap(t, 1, 1, 2, []string{"configure", "configure"}))},
		{"operation as one string", cbor.RawMessage(orderedMap(t, 1, 1, 2, "configure"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseClaimsMap(t, anchor, v2(tc.d)); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("%v, want ErrMalformed", err)
			}
		})
	}
}

// shortSig drops the last byte of an ES256 link's 64-byte signature.
func shortSig(l []byte) []byte {
	out := append([]byte{}, l[:len(l)-66]...)
	return append(append(out, 0x58, 0x3f), l[len(l)-64:len(l)-1]...)
}

// TestLinkLimits: each bound of a link at exactly N (accepted) and N+1
// (refused).
func TestLinkLimits(t *testing.T) {
	f := newDelegFixture(t, "Ed25519", &token.Delegation{Depth: 1})
	k1 := newKey(t, "P-256")
	key := compressed(t, k1.Public())
	exp := uint64(testNow.Add(time.Hour).Unix())
	parse := func(payload []byte) error {
		l, err := token.ExportSignLinkRaw([]byte{0xa1, 0x01, 0x27}, emptyMap, payload, f.hash, f.pop)
		if err != nil {
			t.Fatal(err)
		}
		_, err = token.ParseChain(append([]byte{0x81}, l...))
		return err
	}
	for _, tc := range []struct {
		name      string
		ok, wrong []byte
	}{
		{"selection of 20 permissions", orderedMap(t, 1, key, 2, 1<<20-1, 3, exp), orderedMap(t, 1, key, 2, 1<<20, 3, exp)},
		{"sub", orderedMap(t, 1, key, 2, 1, 3, exp, 7, strings.Repeat("s", token.MaxLinkSubjectLength)), orderedMap(t, 1, key, 2, 1, 3, exp, 7, strings.Repeat("s", token.MaxLinkSubjectLength+1))},
		{"depth", orderedMap(t, 1, key, 2, 1, 3, exp, 6, token.MaxDelegationDepth), orderedMap(t, 1, key, 2, 1, 3, exp, 6, token.MaxDelegationDepth+1)},
		{"aud entries", orderedMap(t, 1, key, 2, 1, 3, exp, 5, slices.Repeat([]string{"ep:a"}, token.MaxAudiences)), orderedMap(t, 1, key, 2, 1, 3, exp, 5, slices.Repeat([]string{"ep:a"}, token.MaxAudiences+1))},
		{"aud entry length", orderedMap(t, 1, key, 2, 1, 3, exp, 5, []string{strings.Repeat("a", token.MaxAudienceLength)}), orderedMap(t, 1, key, 2, 1, 3, exp, 5, []string{strings.Repeat("a", token.MaxAudienceLength+1)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := parse(tc.ok); err != nil {
				t.Fatalf("at the bound: %v", err)
			}
			if err := parse(tc.wrong); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("beyond the bound: %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("link size", func(t *testing.T) {
		// Pad with aud entries to a link of exactly MaxLinkSize bytes,
		// which SignLink makes and ParseChain accepts; one byte more is
		// refused by both.
		sized := func(n int) *token.Link {
			for entries := 1; entries <= token.MaxAudiences; entries++ {
				for last := 1; last <= token.MaxAudienceLength; last++ {
					aud := slices.Repeat([]string{strings.Repeat("a", token.MaxAudienceLength)}, entries-1)
					l := &token.Link{Key: k1.Public(), Selection: 1, Expiry: testNow.Add(time.Hour), Subject: strings.Repeat("s", 200),
						Audience: append(aud, strings.Repeat("b", last))}
					p, err := token.ExportLinkPayload(l)
					if err != nil {
						t.Fatal(err)
					}
					// 84 43 a1 01 27 a0 59 <2> payload 58 40 <64>
					if 1+4+1+3+len(p)+2+64 == n {
						return l
					}
				}
			}
			t.Fatalf("no link of %d bytes", n)
			return nil
		}
		at, err := token.SignLink(sized(token.MaxLinkSize), f.hash, f.pop, nil)
		if err != nil || len(at) != token.MaxLinkSize {
			t.Fatalf("SignLink at the bound: %d bytes, %v", len(at), err)
		}
		if _, err := token.ParseChain(append([]byte{0x81}, at...)); err != nil {
			t.Fatalf("ParseChain at the bound: %v", err)
		}
		if _, err := token.SignLink(sized(token.MaxLinkSize+1), f.hash, f.pop, nil); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("SignLink beyond the bound: %v, want ErrInvalid", err)
		}
		p, _ := token.ExportLinkPayload(sized(token.MaxLinkSize + 1))
		if err := parse(p); !errors.Is(err, token.ErrMalformed) {
			t.Fatalf("ParseChain beyond the bound: %v, want ErrMalformed", err)
		}
	})
}
