package token_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/token"
)

// enc encodes v with fxamacker's default (non-strict) encoder, so tests can
// build messages the package itself would never produce.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawSign1 builds tags || COSE_Sign1 around the given raw parts and signs it
// correctly with key (ES256), so that only the structure is at fault.
func rawSign1(t testing.TB, key *ecdsa.PrivateKey, tags, protected, unprotected, payload []byte) []byte {
	t.Helper()
	tbs := enc(t, []any{"Signature1", protected, []byte{}, payload})
	d := sha256.Sum256(tbs)
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	out := append([]byte{}, tags...)
	out = append(out, 0x84)
	out = append(out, enc(t, protected)...)
	out = append(out, unprotected...)
	out = append(out, enc(t, payload)...)
	return append(out, enc(t, sig)...)
}

// claimsMap returns a valid v1 claim set as a map that tests can modify.
func claimsMap(t testing.TB, pop *ecdsa.PrivateKey) map[int]any {
	key, err := token.MarshalCOSEKey(pop.Public())
	if err != nil {
		t.Fatal(err)
	}
	return map[int]any{
		1:  "mbed.ta.TEST",
		3:  []string{"ep:hvac-1"},
		4:  uint64(testNow.Add(time.Hour).Unix()),
		5:  uint64(testNow.Unix()),
		12: "read-data configure",
		25: map[int]cbor.RawMessage{1: key},
	}
}

var (
	cwtTags   = []byte{0xd8, 0x3d, 0xd2}
	protES256 = []byte{0xa1, 0x01, 0x26}
	emptyMap  = []byte{0xa0}
)

func TestParseTokenStrict(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	good := func(mod func(m map[int]any)) []byte {
		m := claimsMap(t, pop)
		if mod != nil {
			mod(m)
		}
		return rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, m))
	}
	kid := enc(t, map[int]any{1: -7, 4: []byte("k1")})
	for _, tc := range []struct {
		name string
		tok  []byte
		want error // nil: must parse and verify
	}{
		{"valid", good(nil), nil},
		{"tag 18 only", rawSign1(t, anchor, []byte{0xd2}, protES256, emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"aud as a single string", good(func(m map[int]any) { m[3] = "ep:hvac-1" }), nil},
		{"RFC claim keys", good(func(m map[int]any) { m[9], m[8] = m[12], m[25]; delete(m, 12); delete(m, 25) }), nil},
		{"kid in protected header", rawSign1(t, anchor, cwtTags, kid, emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"crit naming kid", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{4}, 4: []byte("k")}), emptyMap, enc(t, claimsMap(t, pop))), nil},

		{"untagged", rawSign1(t, anchor, nil, protES256, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"wrong tag", rawSign1(t, anchor, []byte{0xd8, 0x3d, 0xd1}, protES256, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"CWT tag without COSE tag", rawSign1(t, anchor, []byte{0xd8, 0x3d}, protES256, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"trailing bytes", append(good(nil), 0x00), token.ErrMalformed},
		{"truncated", good(nil)[:100], token.ErrMalformed},
		{"mixed profiles", good(func(m map[int]any) { m[8] = m[25]; delete(m, 25) }), token.ErrMalformed},
		{"scope under both keys", good(func(m map[int]any) { m[9] = m[12] }), token.ErrMalformed},
		{"unknown claim", good(func(m map[int]any) { m[26] = 1 }), token.ErrMalformed},
		{"missing iss", good(func(m map[int]any) { delete(m, 1) }), token.ErrMalformed},
		{"missing aud", good(func(m map[int]any) { delete(m, 3) }), token.ErrMalformed},
		{"missing exp", good(func(m map[int]any) { delete(m, 4) }), token.ErrMalformed},
		{"missing scope", good(func(m map[int]any) { delete(m, 12) }), token.ErrMalformed},
		{"missing cnf", good(func(m map[int]any) { delete(m, 25) }), token.ErrMalformed},
		{"iss as bytes", good(func(m map[int]any) { m[1] = []byte("mbed.ta.TEST") }), token.ErrMalformed},
		{"iss null", good(func(m map[int]any) { m[1] = nil }), token.ErrMalformed},
		{"exp negative", good(func(m map[int]any) { m[4] = -5 }), token.ErrMalformed},
		{"exp float", good(func(m map[int]any) { m[4] = 1.5e9 }), token.ErrMalformed},
		{"empty cti", good(func(m map[int]any) { m[7] = []byte{} }), token.ErrMalformed},
		{"cti as text", good(func(m map[int]any) { m[7] = "id" }), token.ErrMalformed},
		{"empty aud", good(func(m map[int]any) { m[3] = []string{} }), token.ErrMalformed},
		{"scope with a bad name", good(func(m map[int]any) { m[12] = "read-data con*figure" }), token.ErrMalformed},
		{"scope with double space", good(func(m map[int]any) { m[12] = "read-data  configure" }), token.ErrMalformed},
		{"v1 structured scope", good(func(m map[int]any) { m[12] = []any{"read-data"} }), token.ErrMalformed},
		{"cnf with private key", good(func(m map[int]any) {
			m[25] = map[int]any{1: map[int]any{1: 2, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32), -4: make([]byte, 32)}}
		}), token.ErrMalformed},
		{"cnf point not on curve", good(func(m map[int]any) {
			m[25] = map[int]any{1: map[int]any{1: 2, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)}}
		}), token.ErrUnsupportedKey},
		{"cnf short coordinate", good(func(m map[int]any) {
			x, y := pop.X.Bytes(), pop.Y.Bytes()
			m[25] = map[int]any{1: map[int]any{1: 2, -1: 1, -2: x[1:], -3: y}}
		}), token.ErrMalformed},
		{"cnf by kid", good(func(m map[int]any) { m[25] = map[int]any{3: []byte("kid")} }), token.ErrUnsupportedKey},
		{"alg only unprotected", rawSign1(t, anchor, cwtTags, nil, enc(t, map[int]any{1: -7}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"alg in both headers", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[int]any{1: -7}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"kid in both headers", rawSign1(t, anchor, cwtTags, kid, enc(t, map[int]any{4: []byte("k1")}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"unknown crit label", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{99}, 99: 1}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrCritical},
		{"empty crit", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{}}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"crit unprotected", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[int]any{2: []int{4}}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"unsupported alg", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -36}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrUnsupportedAlgorithm},
		{"alg not matching the key", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -35}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrAlgorithmMismatch},
		{"protected header not a map", rawSign1(t, anchor, cwtTags, []byte{0x80}, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"unprotected header not a map", rawSign1(t, anchor, cwtTags, protES256, []byte{0x80}, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"duplicate claim key", rawSign1(t, anchor, cwtTags, protES256, emptyMap, dupClaim(t, claimsMap(t, pop))), token.ErrMalformed},
		{"duplicate header label", rawSign1(t, anchor, cwtTags, []byte{0xa2, 0x01, 0x26, 0x01, 0x26}, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"tagged alg", rawSign1(t, anchor, cwtTags, []byte{0xa1, 0x01, 0xc1, 0x26}, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"tagged crit label", rawSign1(t, anchor, cwtTags, []byte{0xa2, 0x01, 0x26, 0x02, 0x81, 0xd8, 0x64, 0x04}, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"tagged kid label", rawSign1(t, anchor, cwtTags, protES256, []byte{0xa1, 0xd8, 0x64, 0x04, 0x41, 0x01}, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"indefinite-length claims", rawSign1(t, anchor, cwtTags, protES256, emptyMap, indefMap(t, claimsMap(t, pop))), token.ErrMalformed},
		{"empty protected header", rawSign1(t, anchor, cwtTags, []byte{}, emptyMap, enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"empty protected header, alg unprotected", rawSign1(t, anchor, cwtTags, []byte{}, enc(t, map[int]any{1: -7}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"crit naming alg", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{1}}), emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"crit naming alg and kid", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{1, 4}, 4: []byte("k")}), emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"crit naming kid and another", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 2: []int{4, 99}, 4: []byte("k"), 99: 1}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrCritical},
		{"largest integer label", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[uint64]any{1<<63 - 1: 1}), enc(t, claimsMap(t, pop))), nil},
		{"integer label beyond int64", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[uint64]any{1 << 63: 1}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"integer label 2^63+1", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[uint64]any{1<<63 + 1: 1}), enc(t, claimsMap(t, pop))), token.ErrMalformed},
		{"content type application/cbor (60)", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 3: 60}), emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"content type 61 unprotected", rawSign1(t, anchor, cwtTags, protES256, enc(t, map[int]any{3: 61}), enc(t, claimsMap(t, pop))), token.ErrUnsupportedForm},
		{"content type text/plain", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 3: "text/plain"}), emptyMap, enc(t, claimsMap(t, pop))), nil},
		{"content type Application/CWT with a parameter", rawSign1(t, anchor, cwtTags, enc(t, map[int]any{1: -7, 3: " Application/CWT ; v=1"}), emptyMap, enc(t, claimsMap(t, pop))), token.ErrUnsupportedForm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := token.Parse(tc.tok)
			if err == nil {
				_, err = p.Verify(anchor.Public())
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var pe *token.ParseError
			if errors.Is(err, token.ErrMalformed) && !errors.As(err, &pe) {
				t.Fatalf("malformed error %v is not a *ParseError", err)
			}
		})
	}
}

// dupClaim encodes m with its iss claim written twice.
func dupClaim(t testing.TB, m map[int]any) []byte {
	b := enc(t, m)
	extra := enc(t, map[int]any{1: "mbed.ta.OTHER"})[1:]
	b[0]++ // one more pair
	return append(b, extra...)
}

// indefMap encodes m as an indefinite-length map.
func indefMap(t testing.TB, m map[int]any) []byte {
	b := enc(t, m)
	out := append([]byte{0xbf}, b[1:]...)
	return append(out, 0xff)
}

func TestParseRequestStrict(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	tok := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, claimsMap(t, pop)))
	bundle := func(b any) []byte { return rawSign1(t, pop, []byte{0xd2}, protES256, emptyMap, enc(t, b)) }
	op := []any{1, "configure", []any{21, "x", []byte{1}}}
	for _, tc := range []struct {
		name string
		req  []byte
		want error
	}{
		{"valid", bundle([]any{uint64(7), op, tok}), nil},
		{"no arguments", bundle([]any{uint64(7), []any{1, "configure", []any{}}, tok}), nil},
		{"CWT tag", rawSign1(t, pop, cwtTags, protES256, emptyMap, enc(t, []any{uint64(7), op, tok})), token.ErrMalformed},
		{"untagged", rawSign1(t, pop, nil, protES256, emptyMap, enc(t, []any{uint64(7), op, tok})), token.ErrMalformed},
		{"bundle of 4", bundle([]any{uint64(7), op, tok, 1}), token.ErrMalformed},
		{"negative nonce", bundle([]any{-7, op, tok}), token.ErrMalformed},
		{"nonce as bytes", bundle([]any{[]byte{7}, op, tok}), token.ErrMalformed},
		{"token as text", bundle([]any{uint64(7), op, string(tok)}), token.ErrMalformed},
		{"empty token", bundle([]any{uint64(7), op, []byte{}}), token.ErrMalformed},
		{"operation type 2 (LwM2M)", bundle([]any{uint64(7), []any{2, "configure", []any{}}, tok}), token.ErrMalformed},
		{"operation of 2", bundle([]any{uint64(7), []any{1, "configure"}, tok}), token.ErrMalformed},
		{"bad name", bundle([]any{uint64(7), []any{1, "con figure", []any{}}, tok}), token.ErrMalformed},
		{"argument float", bundle([]any{uint64(7), []any{1, "configure", []any{1.5}}, tok}), token.ErrMalformed},
		{"argument map", bundle([]any{uint64(7), []any{1, "configure", []any{map[int]int{1: 1}}}, tok}), token.ErrMalformed},
		{"argument beyond int64", bundle([]any{uint64(7), []any{1, "configure", []any{uint64(1 << 63)}}, tok}), token.ErrMalformed},
		{"argument bignum", bundle([]any{uint64(7), []any{1, "configure", []any{new(big.Int).Lsh(big.NewInt(1), 70)}}, tok}), token.ErrMalformed},
		{"trailing bytes", append(bundle([]any{uint64(7), op, tok}), 0), token.ErrMalformed},
		{"signed by another key", rawSign1(t, anchor, []byte{0xd2}, protES256, emptyMap, enc(t, []any{uint64(7), op, tok})), token.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := token.ParseRequest(tc.req)
			if err == nil {
				_, err = sr.Verify(pop.Public())
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestParseRequestOversizedNoCopy: an oversized request is rejected before
// it is copied, so a peer cannot make the parser allocate what it sends.
func TestParseRequestOversizedNoCopy(t *testing.T) {
	data := make([]byte, 4<<20)
	data[0] = 0xd2
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := token.ParseRequest(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("rejecting a %d-byte request allocated %d bytes", len(data), n)
	}
}
