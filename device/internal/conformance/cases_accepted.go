package conformance

import (
	"encoding/hex"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// Setup edits shared by the cases.

// withAnchors replaces the device's anchors.
func withAnchors(anchors ...Anchor) func(*Setup) {
	return func(s *Setup) { s.Anchors = anchors }
}

// v2Device turns on the v2 responses: next nonces and responses signed by
// device-ed25519.
func (g *gen) v2Device(s *Setup) {
	k := g.key("device-ed25519").Key
	s.NextNonce, s.DeviceKey = true, &k
}

// withOperation adds a handler.
func withOperation(name, result string, data []byte) func(*Setup) {
	return func(s *Setup) {
		s.Operations = append(s.Operations, Operation{Name: name, Result: result, Data: hex.EncodeToString(data)})
	}
}

// scopeOf parses a scope, or builds a structured one from permissions.
func scopeOf(text string, perms ...token.Permission) token.Scope {
	if len(perms) > 0 {
		return must(token.NewScope(perms...))
	}
	return must(token.ParseScope(text))
}

func accepted(g *gen) {
	gr := g.newGroup("00-accepted", "Requests a device must accept: the v1 exchange as deployed technician apps make it, byte for byte, and the v2 features.")

	b := gr.add("v1-nonce-then-operation", "The v1 exchange: a nonce request [1] answered {_ 3: nonce, 1: 2, 2: 0}, then an operation request, signed with the token's PoP key, answered {_ 4: data, 1: 4, 2: 0}.")
	n := b.nonceRequest("nonce request")
	b.call(`read-data(7, "zone-a") with a v1 token`, ok, n, g.v1(nil), "read-data", token.Int(7), token.Text("zone-a"))

	gr.add("v1-token-without-cwt-tag", "A token tagged 18 alone, without the CWT tag 61: deployed devices accept it, so does the SDK.").
		once("token 18(COSE_Sign1)", ok, stripCWTTag(g.v1(nil)), "read-data")

	gr.add("v1-two-operations-two-nonces", "Each operation needs its own nonce: two nonce requests, two operations.").
		twice(g)

	p384 := g.anchor("anchor-p384")
	b = gr.add("v2-p384-anchor-ed25519-pop", "A v2 token signed by a P-384 anchor (ES384) with the anchor's RFC 9679 thumbprint as kid, bound to an Ed25519 PoP key, with a structured scope; the request is signed with EdDSA.", withAnchors(p384))
	thumb := must(token.Thumbprint(g.key("anchor-p384").public))
	tok := g.v2("anchor-p384", thumb, func(c *token.Claims) {
		c.Key = g.key("pop-ed25519").public
		c.Scope = scopeOf("", token.Permission{Operation: "read-data"}, token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
	})
	b.op("set-temperature(21), inside 16..28", request{nonce: b.outstanding(), token: tok, pop: "pop-ed25519", op: "set-temperature", args: []token.Arg{token.Int(21)}}, ok)

	gr.add("v2-ed25519-anchor-compressed-cnf", "A v2 token signed by an Ed25519 anchor (EdDSA); its cnf is a P-256 key with a compressed point (-3: the sign of y), as the SDK's v2 issuer sends it.", withAnchors(g.anchor("anchor-ed25519"))).
		once("read-data", ok, g.v2("anchor-ed25519", nil, nil), "read-data")

	gr.add("v2-byte-string-argument", "v2 operations may carry byte string arguments.").
		once("configure(h'0102', -1)", ok, g.v2("anchor-p256", nil, nil), "configure", token.Bytes([]byte{1, 2}), token.Int(-1))

	b = gr.add("v2-token-cache", "A device that caches verified tokens answers exactly as one that does not: the second use of a token skips its signature check but nothing else.", func(s *Setup) { s.TokenCacheSize = 4 })
	tok = g.v1(nil)
	b.once("first use of the token", ok, tok, "read-data")
	b.once("second use: the token comes from the cache", ok, tok, "read-data")
	b.op("the cached token with a request signed by another key", request{nonce: b.outstanding(), token: tok, pop: "thief-p256", op: "read-data"},
		rejected(wire.StatusVerificationError, "proof-of-possession", "token.ErrSignature"))
	b.once("the cached token asking for an operation outside its scope", rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope"), tok, "set-temperature", token.Int(20))
}

// twice adds two nonce requests, each followed by an operation using it.
func (b *builder) twice(g *gen) *builder {
	tok := g.v1(nil)
	for _, op := range []string{"read-data", "configure"} {
		n := b.nonceRequest("nonce request")
		b.call(op, ok, n, tok, op)
	}
	return b
}
