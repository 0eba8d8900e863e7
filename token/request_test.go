package token_test

import (
	"crypto/ecdsa"
	"errors"
	"testing"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// padded returns 18(COSE_Sign1) over payload, signed by key, of exactly
// size bytes: labels nobody reads in the unprotected header fill it.
func padded(t *testing.T, key *ecdsa.PrivateKey, payload []byte, size int) []byte {
	t.Helper()
	fill := size - len(rawSign1(t, key, []byte{0xd2}, protES256, emptyMap, payload))
	// An entry is a two-byte label, a three-byte head and its bytes.
	const entry = 5 + codec.MaxStringLength
	k := (fill + entry - 1) / entry
	m := map[int][]byte{}
	for i := 0; i < k; i++ {
		n := fill/k - 5
		if i == 0 {
			n += fill % k
		}
		m[100+i] = make([]byte, n)
	}
	msg := rawSign1(t, key, []byte{0xd2}, protES256, enc(t, m), payload)
	if len(msg) != size {
		t.Fatalf("padded message of %d bytes, want %d", len(msg), size)
	}
	return msg
}

// TestMessageSizeLimit: a signed request or device response is at most
// codec.MaxInputSize bytes, tag included: one of exactly that size parses
// and verifies, one byte more is malformed.
func TestMessageSizeLimit(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	tok := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, claimsMap(t, pop)))
	bundle := enc(t, []any{uint64(7), []any{1, "configure", []any{}}, tok})
	response := enc(t, []any{uint64(0), []byte{1}, uint64(7), "hvac-1", ""})
	for _, size := range []int{codec.MaxInputSize, codec.MaxInputSize + 1} {
		ok := size <= codec.MaxInputSize
		sr, err := token.ParseRequest(padded(t, pop, bundle, size))
		if err == nil {
			_, err = sr.Verify(pop.Public())
		}
		if ok && err != nil || !ok && !errors.Is(err, token.ErrMalformed) {
			t.Errorf("request of %d bytes: %v, want ok=%v", size, err, ok)
		}
		_, err = token.VerifyResponse(padded(t, pop, response, size), pop.Public())
		if ok && err != nil || !ok && !errors.Is(err, token.ErrMalformed) {
			t.Errorf("response of %d bytes: %v, want ok=%v", size, err, ok)
		}
	}
}

// TestRequestWithoutArguments: an operation without arguments has nil
// Args once verified, signed by SignRequest or by hand.
func TestRequestWithoutArguments(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	tok := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, claimsMap(t, pop)))
	signed, err := token.SignRequest(&token.Request{Nonce: 3, Operation: token.Operation{Name: "read-data"}, Token: tok}, pop, nil)
	if err != nil {
		t.Fatal(err)
	}
	byHand := rawSign1(t, pop, []byte{0xd2}, protES256, emptyMap, enc(t, []any{uint64(3), []any{1, "read-data", []any{}}, tok}))
	for _, raw := range [][]byte{signed, byHand} {
		sr, err := token.ParseRequest(raw)
		if err != nil {
			t.Fatal(err)
		}
		r, err := sr.Verify(pop.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r.Nonce != 3 || r.Operation.Name != "read-data" || r.Operation.Args != nil {
			t.Fatalf("request %+v, want read-data with nil Args", r)
		}
	}
}
