package conformance

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// Outcomes of the first two rows of the verification order.
var (
	tooLarge    = rejected(wire.StatusInvalidRequest, "size", "device.ErrMessageTooLarge")
	badEnvelope = rejected(wire.StatusInvalidRequest, "envelope", "token.ErrMalformed")
	// badOperationEnvelope is badEnvelope for an envelope that starts as
	// an operation request: answered with an operation response.
	badOperationEnvelope = outcome{status: wire.StatusInvalidRequest, check: "envelope", reason: "token.ErrMalformed", respType: wire.TypeOperationResponse}
	malformed            = rejected(wire.StatusInvalidRequest, "parse", "token.ErrMalformed")
	unsupportedCWT       = rejected(wire.StatusInvalidRequest, "parse", "token.ErrUnsupportedForm")
)

func size(g *gen) {
	gr := g.newGroup("01-size", "Row 1 of the verification order: a request larger than the device's limit (2048 bytes, as the original) is refused before anything is parsed, with an error response {_ 1: 255, 2: 2}.")
	tok := g.v1(nil)
	b := gr.add("at-the-limit", "A valid request of exactly 2048 bytes is processed.")
	b.sized("2048 bytes", tok, 2048, ok)
	b = gr.add("over-the-limit", "A valid request of 2049 bytes is refused unparsed; its nonce stays usable.")
	n := b.sized("2049 bytes", tok, 2049, tooLarge)
	b.call("the same nonce in a request of normal size", ok, n, tok, "read-data")
}

// sized adds a read-data request padded with text arguments to exactly
// length bytes, and returns its nonce.
func (b *builder) sized(description string, tok []byte, length int, o outcome) uint64 {
	n := b.outstanding()
	first := token.Text(strings.Repeat("a", token.MaxArgBytes))
	pad := 0
	for range 8 { // the length of the padding's head changes at most twice
		r := request{nonce: n, token: tok, pop: "pop-p256", op: "read-data", args: []token.Arg{first, token.Text(strings.Repeat("b", pad))}}
		req, built := b.encode(r)
		if len(req) == length {
			b.send(description, req, built, n, r.op, o)
			return n
		}
		pad = max(0, pad+length-len(req))
	}
	fail("%s: no request of %d bytes", b.c.Name, length)
	return 0
}

func envelope(g *gen) {
	gr := g.newGroup("02-envelope", "Row 2 of the verification order, the envelope: anything but [1] or [3, bstr], strictly encoded (definite lengths, no trailing bytes, no other types), is refused with status 2 and consumes no nonce. The response is an error response {_ 1: 255, 2: 2}, unless the envelope starts as an operation request (an array whose first element is the unsigned integer 3): the reference device picks the response type from that element alone, so such an envelope gets an operation response {_ 1: 4, 2: 2}.")
	// op: the envelope starts as an operation request, [3, ...], and gets
	// an operation response.
	for _, c := range []struct {
		name, description, hex string
		op                     bool
	}{
		{"empty", "no bytes at all", "", false},
		{"truncated", "an array head announcing one element, and nothing after it", "81", false},
		{"empty-array", "[]", "80", false},
		{"map", "{} instead of an array", "a0", false},
		{"integer", "1 instead of [1]", "01", false},
		{"tagged", "the nonce request inside a tag, 1([1])", "c18101", false},
		{"nonce-request-with-an-extra-element", "[1, 1]", "820101", false},
		{"unknown-message-type", "[2]", "8102", false},
		{"response-type-as-message-type", "[4], a response type", "8104", false},
		{"negative-message-type", "[-1]", "8120", false},
		{"text-message-type", `["1"]`, "816131", false},
		{"null-message-type", "[null]", "81f6", false},
		{"float-message-type", "[1.0]", "81f93c00", false},
		{"indefinite-length-array", "[_ 1]", "9f01ff", false},
		{"trailing-byte", "[1] followed by 00", "810100", false},
		{"two-messages", "[1] twice in one request", "81018101", false},
		{"operation-type-negative", "[-4, h'00'], whose first element is not the unsigned integer 3", "82234100", false},
		{"operation-type-as-map-key", "{3: h'00'}, a map rather than an array", "a1034100", false},
		{"operation-request-without-bundle", "[3]", "8103", true},
		{"operation-request-empty-bundle", "[3, h'']", "820340", true},
		{"operation-request-text-bundle", `[3, "abc"]`, "820363616263", true},
		{"operation-request-integer-bundle", "[3, 1]", "820301", true},
		{"operation-request-array-bundle", "[3, []]", "820380", true},
		{"operation-request-map-bundle", "[3, {}]", "8203a0", true},
		{"operation-request-extra-element", "[3, h'00', 1]", "8303410001", true},
		{"operation-request-indefinite-length", "[_ 3, h'00']", "9f034100ff", true},
	} {
		kind, o := "an error response", badEnvelope
		if c.op {
			kind, o = "an operation response, as it starts as an operation request", badOperationEnvelope
		}
		gr.add(c.name, "An envelope the device refuses with "+kind+": "+c.description+".").
			raw(c.description, must(hex.DecodeString(c.hex)), 0, "", o)
	}

	// A technician's valid request in an envelope that does not decode:
	// refused, and its nonce stays usable.
	tok := g.v1(nil)
	for _, c := range []struct {
		name, description string
		wrap              func(req []byte) []byte
	}{
		{"operation-request-trailing-byte", "[3, bstr] followed by 00", func(req []byte) []byte { return append(bytes.Clone(req), 0x00) }},
		{"operation-request-extra-element-valid-bundle", "[3, bstr, 1]", func(req []byte) []byte {
			return append(append([]byte{0x83}, req[1:]...), 0x01)
		}},
		{"operation-request-indefinite-length-valid-bundle", "[_ 3, bstr]", func(req []byte) []byte {
			return append(append([]byte{0x9f}, req[1:]...), 0xff)
		}},
	} {
		b := gr.add(c.name, "A technician's valid operation request sent as "+c.description+": refused with an operation response, status 2; the same request in a valid envelope then succeeds with the same nonce.").
			differs("The reference device processes the signed bundle of " + c.description + " and runs the operation.")
		n := b.outstanding()
		req, built := b.encode(request{nonce: n, token: tok, pop: "pop-p256", op: "read-data"})
		if req[0] != 0x82 || req[1] != 0x03 {
			fail("%s: the request %x is not [3, bstr]", b.c.Name, req[:2])
		}
		b.raw(c.description, c.wrap(req), n, "read-data", badOperationEnvelope)
		b.send("[3, bstr]", req, built, n, "read-data", ok)
	}
}

// bundle returns a request whose signed bundle is 18([h'A10126', {},
// payload, signature]) with payload encoded from v and signed by pop-p256:
// only the bundle's content is at fault.
func (g *gen) bundle(v any) []byte {
	return wire.EncodeOperationRequest(g.sign1(tagSign1, protES256, emptyMap, must(codec.Marshal(v)), "pop-p256"))
}

func parseBundle(g *gen) {
	gr := g.newGroup("02-parse-bundle", "Row 2 of the verification order, the signed bundle: the COSE_Sign1 18([h'A10126', {}, bstr .cbor [nonce, [1, name, args], token], signature]) is parsed strictly before any signature is checked; anything else gets an operation response with status 2, {_ 1: 4, 2: 2}, and consumes no nonce.")
	tok := g.v1(nil)
	op := []any{1, "configure", []any{21, "x"}}
	for _, c := range []struct {
		name, description string
		request           func(n uint64) []byte
	}{
		{"untagged", "the bundle's COSE_Sign1 without tag 18", func(n uint64) []byte {
			return wire.EncodeOperationRequest(g.sign1(nil, protES256, emptyMap, must(codec.Marshal([]any{n, op, tok})), "pop-p256"))
		}},
		{"tagged-as-cwt", "the bundle tagged 61(18(...)) like a token", func(n uint64) []byte {
			return wire.EncodeOperationRequest(g.sign1(tagsCWT, protES256, emptyMap, must(codec.Marshal([]any{n, op, tok})), "pop-p256"))
		}},
		{"trailing-byte", "a byte after the COSE_Sign1, inside the envelope's byte string", func(n uint64) []byte {
			return wire.EncodeOperationRequest(append(g.sign1(tagSign1, protES256, emptyMap, must(codec.Marshal([]any{n, op, tok})), "pop-p256"), 0x00))
		}},
		{"alg-only-unprotected", "alg in the unprotected header, the protected header empty", func(n uint64) []byte {
			return wire.EncodeOperationRequest(g.sign1(tagSign1, nil, protES256, must(codec.Marshal([]any{n, op, tok})), "pop-p256"))
		}},
		{"indefinite-length-bundle", "the bundle array of indefinite length", func(n uint64) []byte {
			payload := must(codec.Marshal([]any{n, op, tok}))
			payload = append(append([]byte{0x9f}, payload[1:]...), 0xff)
			return wire.EncodeOperationRequest(g.sign1(tagSign1, protES256, emptyMap, payload, "pop-p256"))
		}},
		{"four-elements", "[nonce, operation, token, 1]", func(n uint64) []byte { return g.bundle([]any{n, op, tok, 1}) }},
		{"negative-nonce", "the nonce -7", func(uint64) []byte { return g.bundle([]any{-7, op, tok}) }},
		{"nonce-as-bytes", "the nonce as a byte string", func(uint64) []byte { return g.bundle([]any{[]byte{7}, op, tok}) }},
		{"token-as-text", "the token as a text string", func(n uint64) []byte { return g.bundle([]any{n, op, string(tok)}) }},
		{"empty-token", "an empty token", func(n uint64) []byte { return g.bundle([]any{n, op, []byte{}}) }},
		{"operation-type-2", "operation type 2 (reserved for LwM2M)", func(n uint64) []byte {
			return g.bundle([]any{n, []any{2, "configure", []any{}}, tok})
		}},
		{"operation-without-arguments-array", "[1, name] without the arguments array", func(n uint64) []byte {
			return g.bundle([]any{n, []any{1, "configure"}, tok})
		}},
		{"invalid-operation-name", `the operation name "con figure"`, func(n uint64) []byte {
			return g.bundle([]any{n, []any{1, "con figure", []any{}}, tok})
		}},
		{"float-argument", "the argument 1.5", func(n uint64) []byte { return g.bundle([]any{n, []any{1, "configure", []any{1.5}}, tok}) }},
		{"map-argument", "the argument {1: 1}", func(n uint64) []byte {
			return g.bundle([]any{n, []any{1, "configure", []any{map[int]int{1: 1}}}, tok})
		}},
		{"argument-beyond-int64", "the argument 2^63", func(n uint64) []byte {
			return g.bundle([]any{n, []any{1, "configure", []any{uint64(1) << 63}}, tok})
		}},
		{"bignum-argument", "the argument 2^70 as a bignum (tag 2)", func(n uint64) []byte {
			return g.bundle([]any{n, []any{1, "configure", []any{new(big.Int).Lsh(big.NewInt(1), 70)}}, tok})
		}},
		{"seventeen-arguments", "17 arguments, one more than the limit", func(n uint64) []byte {
			args := make([]any, token.MaxArgs+1)
			for i := range args {
				args[i] = i
			}
			return g.bundle([]any{n, []any{1, "configure", args}, tok})
		}},
	} {
		b := gr.add(c.name, "A signed bundle the device refuses: "+c.description+".")
		n := b.outstanding()
		b.raw(c.description, c.request(n), n, "configure", malformed)
	}

	b := gr.add("malformed-bundle-leaves-the-nonce-usable", "A malformed bundle consumes no nonce: the technician's request with the nonce still succeeds.")
	n := b.outstanding()
	b.raw("18([h'', {}, h'', h''])", wire.EncodeOperationRequest([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}), n, "", malformed)
	b.call("the genuine request with the nonce", ok, n, tok, "read-data")
}

// dupKey encodes m with one more pair, key k with value v, written after
// the others: a duplicate key when m holds k.
func dupKey(m map[int]any, k int, v any) []byte {
	b := encodeMap(m)
	b[0]++ // one more pair; claim maps stay below 24 pairs
	return append(b, must(codec.Marshal(map[int]any{k: v}))[1:]...)
}

func parseToken(g *gen) {
	gr := g.newGroup("02-parse-token", "Row 2 of the verification order, the token: 61(18(COSE_Sign1)) or 18(COSE_Sign1), its headers and claims are parsed strictly before any signature is checked (docs/PROTOCOL.md sections 1 and 4). A token that does not parse gets status 2, {_ 1: 4, 2: 2}. Each token here is signed correctly by the device's anchor and sent in a correctly signed request: only its structure is at fault.")
	claims := encodeMap(g.claimMap())
	ecKey := func(x, y []byte, extra ...any) map[int]any {
		m := map[int]any{1: 2, -1: 1, -2: x, -3: y}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(int)] = extra[i+1]
		}
		return map[int]any{1: m}
	}
	pop := g.key("pop-p256").public
	popCOSE := must(token.MarshalCOSEKey(pop))
	var popKey map[int]cbor.RawMessage
	if err := codec.Unmarshal(popCOSE, &popKey); err != nil {
		fail("pop key: %v", err)
	}
	var x, y []byte
	_ = codec.Unmarshal(popKey[-2], &x)
	_ = codec.Unmarshal(popKey[-3], &y)
	header := func(m map[int]any) []byte { return encodeMap(m) }
	thumb := must(token.Thumbprint(g.key("anchor-p256").public))

	for _, c := range []struct {
		name, description string
		tok               []byte
		o                 outcome
	}{
		{"untagged", "a COSE_Sign1 without tags", g.sign1(nil, protES256, emptyMap, claims, "anchor-p256"), malformed},
		{"cwt-tag-without-cose-tag", "61([...]) without tag 18", g.sign1([]byte{0xd8, 0x3d}, protES256, emptyMap, claims, "anchor-p256"), malformed},
		{"unknown-tag", "19([...]), a tag of no COSE message", g.sign1([]byte{0xd3}, protES256, emptyMap, claims, "anchor-p256"), malformed},
		{"trailing-byte", "a byte after the token, inside its byte string", append(g.v1(nil), 0x00), malformed},
		{"truncated", "the first 100 bytes of a token", g.v1(nil)[:100], malformed},
		{"duplicate-claim", "aud twice, the second naming another device", g.sign1(tagsCWT, protES256, emptyMap, dupKey(g.claimMap(), 3, []string{"ep:hvac-9"}), "anchor-p256"), malformed},
		{"indefinite-length-claims", "the claims map of indefinite length", g.sign1(tagsCWT, protES256, emptyMap, append(append([]byte{0xbf}, claims[1:]...), 0xff), "anchor-p256"), malformed},
		{"unknown-claim", "claim 26, which no profile defines", g.handmade(func(m map[int]any) { m[26] = 1 }), malformed},
		{"mixed-profiles", "scope under the v1 key 12, cnf under the v2 key 8", g.handmade(func(m map[int]any) { m[8] = m[25]; delete(m, 25) }), malformed},
		{"scope-under-both-keys", "scope under 12 and 9", g.handmade(func(m map[int]any) { m[9] = m[12] }), malformed},
		{"missing-iss", "no iss", g.handmade(func(m map[int]any) { delete(m, 1) }), malformed},
		{"missing-aud", "no aud", g.handmade(func(m map[int]any) { delete(m, 3) }), malformed},
		{"missing-exp", "no exp", g.handmade(func(m map[int]any) { delete(m, 4) }), malformed},
		{"missing-scope", "no scope", g.handmade(func(m map[int]any) { delete(m, 12) }), malformed},
		{"missing-cnf", "no cnf", g.handmade(func(m map[int]any) { delete(m, 25) }), malformed},
		{"iss-as-bytes", "iss a byte string", g.handmade(func(m map[int]any) { m[1] = []byte(m[1].(string)) }), malformed},
		{"iss-null", "iss null", g.handmade(func(m map[int]any) { m[1] = nil }), malformed},
		{"exp-negative", "exp -5", g.handmade(func(m map[int]any) { m[4] = -5 }), malformed},
		{"exp-float", "exp a float", g.handmade(func(m map[int]any) { m[4] = float64(t0.Unix() + 3600) }), malformed},
		{"cti-empty", "cti h''", g.handmade(func(m map[int]any) { m[7] = []byte{} }), malformed},
		{"cti-as-text", "cti a text string", g.handmade(func(m map[int]any) { m[7] = "c701" }), malformed},
		{"aud-empty", "aud []", g.handmade(func(m map[int]any) { m[3] = []string{} }), malformed},
		{"scope-invalid-name", `scope "read-data con*figure"`, g.handmade(func(m map[int]any) { m[12] = "read-data con*figure" }), malformed},
		{"scope-double-space", `scope "read-data  configure"`, g.handmade(func(m map[int]any) { m[12] = "read-data  configure" }), malformed},
		{"scope-structured-in-v1", `a structured scope ["read-data"] under the v1 key`, g.handmade(func(m map[int]any) { m[12] = []any{"read-data"} }), malformed},
		{"cnf-with-private-key", "a cnf COSE_Key carrying d (-4)", g.handmade(func(m map[int]any) { m[25] = ecKey(x, y, -4, make([]byte, 32)) }), malformed},
		{"cnf-short-coordinate", "a cnf x coordinate of 31 bytes", g.handmade(func(m map[int]any) { m[25] = ecKey(x[1:], y) }), malformed},
		{"cnf-point-not-on-curve", "a cnf point (0, 0), not on P-256", g.handmade(func(m map[int]any) { m[25] = ecKey(make([]byte, 32), make([]byte, 32)) }),
			rejected(wire.StatusInvalidRequest, "parse", "token.ErrUnsupportedKey")},
		{"cnf-duplicate-label", "a cnf COSE_Key with x twice", g.handmade(func(m map[int]any) {
			key := dupKey(map[int]any{1: 2, -1: 1, -2: x, -3: y}, -2, x)
			m[25] = map[int]any{1: cbor.RawMessage(key)}
		}), malformed},
		{"cnf-alg-not-the-curve", "a cnf P-256 COSE_Key whose alg (3) says ES384", g.handmade(func(m map[int]any) { m[25] = ecKey(x, y, 3, -35) }), malformed},
		{"cnf-by-kid", "cnf naming a key by kid (3) instead of carrying it", g.handmade(func(m map[int]any) { m[25] = map[int]any{3: []byte("kid")} }),
			rejected(wire.StatusInvalidRequest, "parse", "token.ErrUnsupportedKey")},
		{"alg-only-unprotected", "alg in the unprotected header, the protected header empty", g.sign1(tagsCWT, nil, protES256, claims, "anchor-p256"), malformed},
		{"alg-in-both-headers", "alg in the protected and the unprotected header", g.sign1(tagsCWT, protES256, protES256, claims, "anchor-p256"), malformed},
		{"kid-in-both-headers", "kid in the protected and the unprotected header", g.sign1(tagsCWT, header(map[int]any{1: -7, 4: thumb}), header(map[int]any{4: thumb}), claims, "anchor-p256"), malformed},
		{"crit-unknown-label", "crit [99] with label 99 present", g.sign1(tagsCWT, header(map[int]any{1: -7, 2: []int{99}, 99: 0}), emptyMap, claims, "anchor-p256"),
			rejected(wire.StatusInvalidRequest, "parse", "token.ErrCritical")},
		{"crit-empty", "crit []", g.sign1(tagsCWT, header(map[int]any{1: -7, 2: []int{}}), emptyMap, claims, "anchor-p256"), malformed},
		{"crit-unprotected", "crit in the unprotected header", g.sign1(tagsCWT, protES256, header(map[int]any{2: []int{1}}), claims, "anchor-p256"), malformed},
		{"alg-unsupported", "alg -36 (ES512)", g.sign1(tagsCWT, header(map[int]any{1: -36}), emptyMap, claims, "anchor-p256"),
			rejected(wire.StatusInvalidRequest, "parse", "token.ErrUnsupportedAlgorithm")},
		{"alg-tagged", "alg 1(-7), inside a tag", g.sign1(tagsCWT, []byte{0xa1, 0x01, 0xc1, 0x26}, emptyMap, claims, "anchor-p256"), malformed},
		{"header-duplicate-label", "the protected header {1: -7, 1: -7}", g.sign1(tagsCWT, []byte{0xa2, 0x01, 0x26, 0x01, 0x26}, emptyMap, claims, "anchor-p256"), malformed},
		{"protected-header-not-a-map", "the protected header []", g.sign1(tagsCWT, []byte{0x80}, emptyMap, claims, "anchor-p256"), malformed},
		{"unprotected-header-not-a-map", "the unprotected header []", g.sign1(tagsCWT, protES256, []byte{0x80}, claims, "anchor-p256"), malformed},
		{"crit-naming-kid", "accepted: crit [4] naming the kid, the anchor's thumbprint, which the device understands",
			g.sign1(tagsCWT, header(map[int]any{1: -7, 2: []int{4}, 4: thumb}), emptyMap, claims, "anchor-p256"), ok},
	} {
		b := gr.add(c.name, "A token the device refuses: "+c.description+".")
		if c.o.check == "none" {
			b.c.Description = "A token the device accepts: " + strings.TrimPrefix(c.description, "accepted: ") + "."
		}
		b.once(c.description, c.o, c.tok, "read-data")
	}

	// A token just over the limit, in a request signed by hand
	// (token.SignRequest refuses such a token).
	aud := []string{"ep:" + endpoint}
	var big []byte
	for len(big) <= token.MaxTokenSize {
		aud = append(aud, "ep:"+strings.Repeat("x", 26)+hex.EncodeToString([]byte{byte(len(aud))}))
		big = g.handmade(func(m map[int]any) { m[3] = aud })
	}
	b := gr.add("too-large", "A token the device refuses: a token of more than 1536 bytes (many audiences).")
	n := b.outstanding()
	b.raw(fmt.Sprintf("a token of %d bytes", len(big)), g.bundle([]any{n, []any{1, "read-data", []any{}}, big}), n, "read-data", malformed)
}

func cwtForms(g *gen) {
	gr := g.newGroup("02-parse-cwt-forms", "Row 2 of the verification order: a token is a COSE_Sign1 and nothing else. MACed, encrypted, multi-signer and nested CWTs (RFC 8392 Appendix A.4 to A.6) are refused as malformed, status 2, before any cryptography; the SDK's reason is token.ErrUnsupportedForm.")
	claims := encodeMap(g.claimMap())
	prot := func(alg int) []byte { return encodeMap(map[int]any{1: alg}) }
	cose := func(tags []byte, items ...any) []byte {
		return append(bytes.Clone(tags), must(codec.Marshal(items))...)
	}
	inner := g.v1(nil)
	for _, c := range []struct {
		name, description string
		tok               []byte
	}{
		{"mac0-in-cwt", "61(17([h'A10105', {}, claims, tag])), a CWT MACed with HMAC 256/256", cose([]byte{0xd8, 0x3d, 0xd1}, prot(5), map[int]any{}, claims, make([]byte, 32))},
		{"mac0", "17([h'A10105', {}, claims, tag]) without tag 61", cose([]byte{0xd1}, prot(5), map[int]any{}, claims, make([]byte, 32))},
		{"encrypt0", "16([h'A1010A', {}, ciphertext]), a CWT encrypted with AES-CCM-16-64-128", cose([]byte{0xd0}, prot(10), map[int]any{}, make([]byte, len(claims)+8))},
		{"encrypt0-in-cwt", "61(16([h'A1010A', {}, ciphertext]))", cose([]byte{0xd8, 0x3d, 0xd0}, prot(10), map[int]any{}, make([]byte, len(claims)+8))},
		{"cose-mac", "61(97([h'A10105', {}, claims, tag, []])), a COSE_Mac", cose([]byte{0xd8, 0x3d, 0xd8, 0x61}, prot(5), map[int]any{}, claims, make([]byte, 32), []any{})},
		{"cose-encrypt", "96([h'A1010A', {}, ciphertext, []]), a COSE_Encrypt", cose([]byte{0xd8, 0x60}, prot(10), map[int]any{}, make([]byte, len(claims)+8), []any{})},
		{"cose-sign", "98([h'', {}, claims, [[h'A10126', {}, signature]]]), a COSE_Sign with one signer", cose([]byte{0xd8, 0x62}, []byte{}, map[int]any{}, claims, []any{[]any{protES256, map[int]any{}, make([]byte, 64)}})},
		{"nested-cwt", "a COSE_Sign1 by the anchor whose payload is a whole token, 61(18(...))", g.sign1(tagsCWT, protES256, emptyMap, inner, "anchor-p256")},
		{"nested-cose-sign1", "a COSE_Sign1 by the anchor whose payload is a token tagged 18 only", g.sign1(tagsCWT, protES256, emptyMap, inner[2:], "anchor-p256")},
		{"content-type-61", "a COSE_Sign1 by the anchor with content type 61 (a nested CWT) in its protected header", g.sign1(tagsCWT, encodeMap(map[int]any{1: -7, 3: 61}), emptyMap, inner[3:], "anchor-p256")},
		{"content-type-application-cwt", `a COSE_Sign1 by the anchor with content type "application/cwt"`, g.sign1(tagsCWT, encodeMap(map[int]any{1: -7, 3: "application/cwt"}), emptyMap, inner[3:], "anchor-p256")},
	} {
		gr.add(c.name, "An unsupported form of CWT: "+c.description+".").
			once(c.description, unsupportedCWT, c.tok, "read-data")
	}
}

// Ed25519 public keys that a device must refuse in cnf (docs/PROTOCOL.md
// section 4.3), in wire order: points of small order, with which a
// signature verifies without any private key, and non-canonical encodings
// (y >= p).
var weakEd25519 = []struct {
	name, description, hex string
	smallOrder             bool
}{
	{"identity", "the identity point (y = 1)", "0100000000000000000000000000000000000000000000000000000000000000", true},
	{"identity-sign-bit", "the identity point with the sign bit set", "0100000000000000000000000000000000000000000000000000000000000080", true},
	{"order-2", "the point of order 2 (y = p - 1)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", true},
	{"order-4", "a point of order 4 (y = 0)", "0000000000000000000000000000000000000000000000000000000000000000", true},
	{"order-8", "a point of order 8", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", true},
	{"order-8-other", "the other point of order 8", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", true},
	{"non-canonical-p", "y = p, a non-canonical encoding of y = 0", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", true},
	{"non-canonical-p-plus-1", "y = p + 1, a non-canonical encoding of the identity", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", true},
	{"non-canonical-p-plus-3", "y = p + 3, a non-canonical encoding of a point (y = 3) that is not of small order", "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", false},
}

func weakKeys(g *gen) {
	gr := g.newGroup("02-parse-weak-keys", "Row 2 of the verification order: a v2 token, signed by the device's real anchor, whose cnf is an Ed25519 key of small order or in a non-canonical encoding (y >= p). With a key A of small order a signature made without the private key verifies: S = 0 and R = identity, over any message whose k = SHA-512(R || A || message) mod L the order of A divides, so a stolen token would work as a bearer token; a non-canonical encoding names a point under a second encoding. The device refuses the token as malformed, status 2, whatever the request's signature; the SDK's reason is token.ErrWeakKey.")
	identity := must(hex.DecodeString(weakEd25519[0].hex))
	for _, w := range weakEd25519 {
		x := must(hex.DecodeString(w.hex))
		m := g.claimMap()
		delete(m, 12)
		delete(m, 25)
		m[9] = "read-data"
		m[8] = map[int]any{1: map[int]any{1: 1, -1: 6, -2: x}}
		tok := g.sign1(tagsCWT, protES256, emptyMap, encodeMap(m), "anchor-p256")
		description := "cnf is " + w.description + "; the request read-data(i) is signed with R = identity, S = 0, the argument i the first for which 8 divides k"
		if w.smallOrder {
			description += ": [k]A is then the identity and the signature verifies (crypto/ed25519 accepts it)."
		} else {
			description += ", which does not make the signature verify with this key: a device that accepts the key refuses the request later, at the PoP signature."
		}
		b := gr.add(w.name, description)
		n := b.outstanding()
		forged := forgeEd25519(identity, x, func(i int) []byte {
			return must(codec.Marshal([]any{n, []any{1, "read-data", []any{i}}, tok}))
		})
		b.raw("the forged request", wire.EncodeOperationRequest(forged), n, "read-data", rejected(wire.StatusInvalidRequest, "parse", "token.ErrWeakKey"))
	}
}

// ed25519L is the order of the Ed25519 base point (RFC 8032 section 5.1).
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// forgeEd25519 returns the COSE_Sign1 of the first payload(i), i = 0, 1,
// ..., whose EdDSA signature R = r, S = 0 verifies under the key a if a is
// of small order and r the identity: the first for which 8 divides
// k = SHA-512(R || A || ToBeSigned) mod L (RFC 8032 section 5.1.7), so
// that [k]A is the identity.
func forgeEd25519(r, a []byte, payload func(i int) []byte) []byte {
	for i := 0; i < 256; i++ {
		p := payload(i)
		tbs := must(codec.Marshal([]any{"Signature1", protEdDSA, []byte{}, p}))
		h := sha512.New()
		h.Write(r)
		h.Write(a)
		h.Write(tbs)
		digest := h.Sum(nil)
		slices.Reverse(digest) // little-endian
		if new(big.Int).Mod(new(big.Int).SetBytes(digest), ed25519L).Uint64()%8 != 0 {
			continue
		}
		out := append([]byte{0xd2, 0x84}, codec.AppendBytes(nil, protEdDSA)...)
		out = codec.AppendBytes(append(out, 0xa0), p)
		return codec.AppendBytes(out, append(bytes.Clone(r), make([]byte, 32)...))
	}
	fail("no forged Ed25519 signature in 256 tries")
	return nil
}
