package conformance

import (
	"encoding/hex"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// delegableToken returns a v2 token of anchor-p256 for pop-p256 (scope
// "read-data configure") that may be delegated depth links deep.
func (g *gen) delegableToken(depth int) []byte {
	return g.v2("anchor-p256", nil, func(c *token.Claims) { c.Delegation = &token.Delegation{Depth: depth} })
}

// delegated adds a link to holder (a token or a delegated token) signed by
// the key from, passing scope on to the key to for an hour (depth links
// below it), and returns the delegated token.
func (g *gen) delegated(holder []byte, from, to, scope string, depth int) []byte {
	return must(token.Delegate(holder, g.key(from).signer, &token.DelegationSpec{
		To: g.key(to).public, Scope: scopeOf(scope), Expiry: t0.Add(time.Hour), Depth: depth, Subject: to,
	}))
}

// delegatedRequest is an operation request of the delegated token dt,
// signed with pop.
func (b *builder) delegatedRequest(dt []byte, pop, op string, args ...token.Arg) request {
	d := must(token.ParseDelegatedToken(dt))
	return request{nonce: b.outstanding(), token: d.Token, chain: d.Chain.Bytes(), pop: pop, op: op, args: args}
}

// delegatedOnce adds an operation request of the delegated token dt
// signed with pop that uses a nonce outstanding when the case starts.
func (b *builder) delegatedOnce(description string, o outcome, dt []byte, pop, op string, args ...token.Arg) {
	b.op(description, b.delegatedRequest(dt, pop, op, args...), o)
}

// rawLink signs a link below the parent hash with the key from, checking
// only its encoding.
func (g *gen) rawLink(l *token.Link, parentHash [32]byte, from string) []byte {
	return must(token.SignLink(l, parentHash, g.key(from).signer, nil))
}

// withChain returns the delegated token of tok with the encoded links.
func withChain(tok []byte, links ...[]byte) []byte {
	return (&token.DelegatedToken{Token: tok, Chain: must(token.NewChain(links...))}).Bytes()
}

// revocationHash returns the revocation hash of a token.
func revocationHash(tok []byte) [32]byte { return must(token.Parse(tok)).RevocationHash() }

func delegation(g *gen) {
	gr := g.newGroup("06a-delegation", "Row 6a of the verification order (v2): a delegation chain below a delegable token, each link signed by its parent's key over its parent's hash and narrowing it (docs/PROTOCOL.md section 13). From there on the request is checked against the end of the chain: its audience, time, key (the request must be signed by the last delegate) and, with the token's, its scope. A refused chain: status 4.")
	refused := func(reason string) outcome { return verificationError("delegation", reason) }

	tok := g.delegableToken(2)
	one := g.delegated(tok, "pop-p256", "delegate-p256", "read-data", 1)
	two := g.delegated(one, "delegate-p256", "delegate-ed25519", "read-data", 0)
	b := gr.add("one-link", "pop-p256 delegates read-data to delegate-p256 (a selection of the token's first permission), which signs the request.")
	b.op("read-data by the delegate", b.delegatedRequest(one, "delegate-p256", "read-data"), ok)
	b.op("configure by the delegate: the token grants it, the link does not", b.delegatedRequest(one, "delegate-p256", "configure"), rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope"))
	b = gr.add("two-links", "delegate-p256 delegates read-data on to delegate-ed25519, which signs the request with EdDSA.")
	b.op("read-data by the second delegate", b.delegatedRequest(two, "delegate-ed25519", "read-data"), ok)
	// The last key is Ed25519: it pins EdDSA, so an ES256 request fails by
	// its algorithm before any signature check.
	b.op("read-data signed by the first delegate (ES256)", b.delegatedRequest(two, "delegate-p256", "read-data"), rejected(wire.StatusVerificationError, "proof-of-possession", "token.ErrAlgorithmMismatch"))
	b.op("read-data signed by the token's key (ES256)", b.delegatedRequest(two, "pop-p256", "read-data"), rejected(wire.StatusVerificationError, "proof-of-possession", "token.ErrAlgorithmMismatch"))
	gr.add("signed-by-the-delegator", "The one-link chain with a request signed by the token's key, pop-p256, not the delegate's: the chain moves the proof of possession to the last key.").
		delegatedOnce("read-data signed by pop-p256", rejected(wire.StatusVerificationError, "proof-of-possession", "token.ErrSignature"), one, "pop-p256", "read-data")

	rh := revocationHash(tok)
	exp := t0.Add(time.Hour)
	gr.add("link-signed-by-another-key", "A link below the token signed by thief-p256, not by the token's key.").
		delegatedOnce("read-data", refused("token.ErrLinkSignature"), withChain(tok, g.rawLink(&token.Link{Key: g.key("thief-p256").public, Selection: 1, Expiry: exp}, rh, "thief-p256")), "thief-p256", "read-data")
	gr.add("link-widening-the-scope", "A link passing on read-data and set-temperature, which the token does not grant.").
		delegatedOnce("set-temperature(20)", refused("token.ErrNotNarrower"), withChain(tok, g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Scope: scopeOf("read-data set-temperature"), Expiry: exp}, rh, "pop-p256")), "delegate-p256", "set-temperature", token.Int(20))
	gr.add("link-outliving-the-token", "A link whose exp is after the token's.").
		delegatedOnce("read-data", refused("token.ErrNotNarrower"), withChain(tok, g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Selection: 1, Expiry: exp.Add(time.Hour)}, rh, "pop-p256")), "delegate-p256", "read-data")
	shallow := g.delegableToken(1)
	first := g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Selection: 1, Expiry: exp}, revocationHash(shallow), "pop-p256")
	firstHash := must(must(token.NewChain(first)).Verify(must(must(token.Parse(shallow)).Verify(g.key("anchor-p256").public)), revocationHash(shallow))).Links[0].Hash
	gr.add("chain-deeper-than-the-token-allows", "Two links below a token of depth 1.").
		delegatedOnce("read-data", refused("token.ErrDelegationDepth"), withChain(shallow, first, g.rawLink(&token.Link{Key: g.key("delegate-ed25519").public, Selection: 1, Expiry: exp}, firstHash, "delegate-p256")), "delegate-ed25519", "read-data")
	deep := g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Selection: 1, Expiry: exp, Depth: 1}, rh, "pop-p256")
	deepHash := must(must(token.NewChain(deep)).Verify(must(must(token.Parse(tok)).Verify(g.key("anchor-p256").public)), rh)).Links[0].Hash
	gr.add("link-back-to-the-token-key", "Two links below a token of depth 2: pop-p256 delegates to delegate-p256, which delegates back to pop-p256.").
		delegatedOnce("read-data signed by pop-p256", refused("token.ErrDelegationLoop"), withChain(tok, deep, g.rawLink(&token.Link{Key: g.key("pop-p256").public, Selection: 1, Expiry: exp}, deepHash, "delegate-p256")), "pop-p256", "read-data")
	other := g.v2("anchor-p256", nil, func(c *token.Claims) { c.Delegation, c.ID = &token.Delegation{Depth: 2}, []byte{0xc7, 0x02} })
	moved := (&token.DelegatedToken{Token: other, Chain: must(token.ParseDelegatedToken(one)).Chain}).Bytes()
	gr.add("chain-below-another-token", "The chain of one-link presented with another delegable token of pop-p256 (another cti): the link names its parent by hash.").
		delegatedOnce("read-data", refused("token.ErrLinkSignature"), moved, "delegate-p256", "read-data")
	plain := g.v2("anchor-p256", nil, nil)
	gr.add("token-not-delegable", "A v2 token without a delegation claim, with a link its holder signed.").
		delegatedOnce("read-data", refused("token.ErrNotDelegable"), withChain(plain, g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Selection: 1, Expiry: exp}, revocationHash(plain), "pop-p256")), "delegate-p256", "read-data")
	v1 := g.v1(nil)
	gr.add("v1-token-with-a-chain", "A v1 token is never delegable.").
		delegatedOnce("read-data", refused("token.ErrNotDelegable"), withChain(v1, g.rawLink(&token.Link{Key: g.key("delegate-p256").public, Selection: 1, Expiry: exp}, revocationHash(v1), "pop-p256")), "delegate-p256", "read-data")

	oneHash := must(must(token.ParseDelegatedToken(one)).Chain.Verify(must(must(token.Parse(tok)).Verify(g.key("anchor-p256").public)), rh)).Links[0].Hash
	b = gr.add("revoked-link", "The device's revocation list holds the hash of one-link's link: the link and every link below it are revoked, the token is not.", func(s *Setup) {
		s.Revocations = append(s.Revocations, Revocation{Kind: "hash", ID: hex.EncodeToString(oneHash[:])})
	})
	b.op("read-data by the delegate", b.delegatedRequest(one, "delegate-p256", "read-data"), verificationError("revocation", "device.ErrRevoked"))
	b.op("read-data by the second delegate", b.delegatedRequest(two, "delegate-ed25519", "read-data"), verificationError("revocation", "device.ErrRevoked"))
	b.once("read-data with the token alone", ok, tok, "read-data")
}
