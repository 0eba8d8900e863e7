package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

func proofOfPossession(g *gen) {
	gr := g.newGroup("09-proof-of-possession", "Row 9 of the verification order: the request must be signed with the key the verified token names in cnf, over the bytes received; that key pins the algorithm. Status 4. The nonce is not consumed.")
	bad := verificationError("proof-of-possession", "token.ErrSignature")
	tok := g.v1(nil)

	b := gr.add("signed-by-another-key", "A stolen token in a request signed with the thief's own key.")
	b.op("request signed by thief-p256", request{nonce: b.outstanding(), token: tok, pop: "thief-p256", op: "read-data"}, bad)

	b = gr.add("argument-changed", "A request whose argument was changed after it was signed.")
	n := b.outstanding()
	req, _ := b.encode(request{nonce: n, token: tok, pop: "pop-p256", op: "configure", args: []token.Arg{token.Text("zone-a")}})
	b.raw(`configure("zone-a") changed to configure("zone-b")`, replace(req, "zone-a", "zone-b"), n, "configure", bad)

	b = gr.add("signature-altered", "A request whose signature was altered.")
	n = b.outstanding()
	req, _ = b.encode(request{nonce: n, token: tok, pop: "pop-p256", op: "read-data"})
	b.raw("last byte of the signature changed", flipLast(req), n, "read-data", bad)

	b = gr.add("eddsa-request-for-a-p256-key", "A request signed with EdDSA while the token's cnf is a P-256 key, which pins ES256.")
	b.op("request signed by pop-ed25519", request{nonce: b.outstanding(), token: tok, pop: "pop-ed25519", op: "read-data"},
		verificationError("proof-of-possession", "token.ErrAlgorithmMismatch"))

	b = gr.add("forgeries-leave-the-nonce-usable", "Requests with a technician's nonce that fail the token or PoP signature do not consume it: the technician's own request with it still runs.").
		differs("The original device consumed the nonce before checking the signatures: it answers the last request with status 4.")
	n = b.outstanding()
	b.op("the technician's token, signed by a thief", request{nonce: n, token: tok, pop: "thief-p256", op: "configure"}, bad)
	b.call("a forged token", verificationError("token-signature", "token.ErrSignature"), n,
		g.issue("stranger-p256", nil, func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") }), "configure")
	b.call("the technician's request", ok, n, tok, "configure")
}

func nonces(g *gen) {
	gr := g.newGroup("10-nonce", "Row 10 of the verification order, and nonce requests: a nonce is single use, valid for the nonce lifetime (300 s here) and consumed only once the PoP signature verified (status 4 otherwise). A device holds at most max_nonces unexpired nonces and never evicts one: it answers a nonce request with status 8 (busy) instead, as it does while it throttles repeated failures that cost it a signature verification.")
	tok := g.v1(nil)

	gr.add("never-issued", "A nonce the device never issued (another device's, or a guess).").
		call("unknown nonce", verificationError("nonce", "device.ErrNonceUnknown"), 0x0123456789abcdef, tok, "read-data")
	gr.add("zero", "The nonce 0, which a device never issues.").
		call("nonce 0", verificationError("nonce", "device.ErrNonceUnknown"), 0, tok, "read-data")

	b := gr.add("replayed", "The same request twice: the second finds its nonce used and does not run.")
	n := b.outstanding()
	req, built := b.encode(request{nonce: n, token: tok, pop: "pop-p256", op: "read-data"})
	b.send("first", req, built, n, "read-data", ok)
	b.send("replay", req, built, n, "read-data", verificationError("nonce", "device.ErrNonceReplayed"))

	b = gr.add("lifetime", "A nonce is usable for 299 s after it was issued, not 300 s.")
	n1, n2 := b.nonceRequest("first nonce"), b.nonceRequest("second nonce")
	b.call("first nonce after 299 s", ok.after(299), n1, tok, "read-data")
	b.call("second nonce after 300 s", verificationError("nonce", "device.ErrNonceExpired").after(1), n2, tok, "read-data")

	b = gr.add("all-slots-taken", "A device holding at most 3 nonces, all outstanding: a nonce request is answered busy, no held nonce is evicted; using one frees a slot, and so does expiry.", func(s *Setup) { s.MaxNonces = 3 }).
		differs("The original device evicted the oldest nonce instead (a flood of nonce requests invalidated a technician's nonce); status 8 is new in v2.")
	held := []uint64{b.outstanding(), b.outstanding(), b.outstanding()}
	b.nonceRefused("a fourth nonce", 0, "device.ErrNoncesExhausted")
	b.call("a held nonce", ok, held[0], tok, "read-data")
	b.nonceRequest("a nonce in the freed slot")
	b.nonceRefused("one more", 0, "device.ErrNoncesExhausted")
	b.call("another held nonce", ok, held[1], tok, "read-data")
	b.nonceRequest("a nonce in the freed slot")
	b.nonceRefused("one more, when the others expire in 1 s", 299, "device.ErrNoncesExhausted")
	b.nonceRequestAfter("1 s later, when the held nonces have expired", 1)

	b = gr.add("throttled-after-failed-signatures", "After 5 requests failing a signature check within a minute, the device refuses nonces for a minute (status 8); a nonce issued before still works.").
		differs("The original device did not throttle; status 8 is new in v2.")
	held = nil
	for range 6 {
		held = append(held, b.outstanding())
	}
	for i := range 5 {
		b.op("request signed by a thief", request{nonce: held[i], token: tok, pop: "thief-p256", op: "read-data"}, verificationError("proof-of-possession", "token.ErrSignature"))
	}
	b.nonceRefused("nonce request", 0, "device.ErrThrottled")
	b.call("the technician's held nonce", ok, held[5], tok, "read-data")
	b.nonceRefused("nonce request 59 s later", 59, "device.ErrThrottled")
	b.nonceRequestAfter("nonce request a minute after the lockout began", 1)

	b = gr.add("throttled-after-forged-tokens", "Tokens naming the device's anchor but signed by another key cost the device a signature check each: after 5 within a minute, nonces are refused.").
		differs("The original device did not throttle; status 8 is new in v2.")
	forged := g.issue("stranger-p256", nil, func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") })
	for range 5 {
		b.once("forged token", verificationError("token-signature", "token.ErrSignature"), forged, "read-data")
	}
	b.nonceRefused("nonce request", 0, "device.ErrThrottled")

	// Failures that cost the device no signature verification lock no one
	// out: an attacker without a valid token cannot deny a technician
	// service by naming made-up or revoked issuers.
	revokedAnchor := g.anchor("anchor-ed25519")
	revokedAnchor.Revoked = true
	withRevokedAnchor := withAnchors(g.anchor("anchor-p256"), revokedAnchor)
	madeUp := func(i int) []byte {
		return g.issue("stranger-p256", nil, func(c *token.Claims) { c.Issuer = fmt.Sprintf("mbed.ta.made-up-%d", i) })
	}
	ofRevoked := g.v2("anchor-ed25519", nil, nil)
	es384 := g.v2("stranger-p384", nil, func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") })
	unknownIssuer := verificationError("anchor", "device.ErrUnknownAnchor")
	anchorRevoked := verificationError("anchor", "device.ErrAnchorRevoked")
	mismatch := verificationError("token-signature", "token.ErrAlgorithmMismatch")
	for _, c := range []struct {
		name, description string
		edits             []func(*Setup)
		tok               func(i int) []byte
		o                 outcome
	}{
		{"unknown-issuers-do-not-throttle", "tokens naming issuers the device does not know", nil, madeUp, unknownIssuer},
		{"revoked-anchor-does-not-throttle", "tokens of a revoked anchor", []func(*Setup){withRevokedAnchor}, func(int) []byte { return ofRevoked }, anchorRevoked},
		{"algorithm-mismatch-does-not-throttle", "ES384 tokens naming the device's P-256 anchor, which pins ES256", nil, func(int) []byte { return es384 }, mismatch},
	} {
		b = gr.add(c.name, "Six requests with "+c.description+" cost the device no signature verification and do not count towards throttling (5 failures): the next nonce request is served.", c.edits...)
		n := b.nonceRequest("the attacker's nonce request")
		for i := range 6 {
			b.call(fmt.Sprintf("request %d", i+1), c.o, n, c.tok(i), "read-data")
		}
		b.nonceRequest("a technician's nonce request")
	}

	b = gr.add("only-costly-failures-throttle", "Of failures from one source (here the only one), only those that cost a signature verification count towards throttling: status 4 from the token signature check on, for a token naming an issuer the device trusts, except a token whose algorithm no anchor of the issuer pins. After 6 failures that do not count and 4 that do, a nonce is still issued; the fifth that counts locks nonces out.", withRevokedAnchor).
		differs("The original device did not throttle; status 8 is new in v2.")
	n = b.nonceRequest("the attacker's nonce request")
	for i := range 2 {
		b.call("a made-up issuer", unknownIssuer, n, madeUp(i), "read-data")
		b.call("a revoked anchor", anchorRevoked, n, ofRevoked, "read-data")
		b.call("an ES384 token for the P-256 anchor", mismatch, n, es384, "read-data")
	}
	b.call("counted: a forged token signature", verificationError("token-signature", "token.ErrSignature"), n, forged, "read-data")
	b.call("counted: a token for another device", verificationError("audience", "token.ErrWrongAudience"), n, g.v1(func(c *token.Claims) { c.Audience = []string{"ep:hvac-2"} }), "read-data")
	b.call("counted: an expired token", verificationError("time", "token.ErrExpired"), n, g.v1(func(c *token.Claims) {
		c.IssuedAt, c.NotBefore, c.Expiry = t0.Add(-2*time.Hour), t0.Add(-2*time.Hour), t0.Add(-time.Hour)
	}), "read-data")
	b.op("counted: a stolen token in a request signed by a thief", request{nonce: n, token: tok, pop: "thief-p256", op: "read-data"}, verificationError("proof-of-possession", "token.ErrSignature"))
	b.nonceRequest("nonce request after 4 counted failures")
	b.call("counted: a nonce the device never issued", verificationError("nonce", "device.ErrNonceUnknown"), 0x0123456789abcdef, tok, "read-data")
	b.nonceRefused("nonce request after 5 counted failures", 0, "device.ErrThrottled")

	b = gr.add("failures-spread-over-more-than-the-window", "A device that throttles after 3 failures within a minute: 4 failures 31 s apart (any 3 of them span more than a minute) do not lock it.",
		func(s *Setup) { s.Throttle.Failures = 3 })
	held = []uint64{b.outstanding(), b.outstanding(), b.outstanding(), b.outstanding()}
	for i, n := range held {
		o := verificationError("proof-of-possession", "token.ErrSignature")
		if i > 0 {
			o = o.after(31)
		}
		b.op("request signed by a thief", request{nonce: n, token: tok, pop: "thief-p256", op: "read-data"}, o)
	}
	b.nonceRequest("nonce request")

	b = gr.add("throttling-disabled", "A device configured not to throttle keeps issuing nonces after any number of failures.", func(s *Setup) { s.Throttle.Failures = -1 })
	for range 6 {
		b.op("request signed by a thief", request{nonce: b.outstanding(), token: tok, pop: "thief-p256", op: "read-data"}, verificationError("proof-of-possession", "token.ErrSignature"))
	}
	b.nonceRequest("nonce request")

	b = gr.add("malformed-and-denied-do-not-throttle", "Malformed requests (status 2) and scope denials (status 5) reveal nothing about keys and do not count towards throttling.")
	for range 5 {
		b.raw("malformed bundle", wire.EncodeOperationRequest([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}), 0, "", malformed)
		b.once("operation outside the scope", rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope"), tok, "set-temperature", token.Int(20))
	}
	b.nonceRequest("nonce request")
}

func revocation(g *gen) {
	gr := g.newGroup("11-revocation", "Row 11 of the verification order: a token whose id (cti) or hash is on the device's revocation list is refused, status 4, after its nonce was consumed. A hash entry is a token's revocation hash, the SHA-256 of its COSE ToBeSigned, which every encoding of the same signed token shares, or, for compatibility, the SHA-256 of a token's bytes as issued, which revokes the encodings of the token the SDK can recognise: tag 61 stripped or added, an unprotected header label added, the other ECDSA signature (r, n - s). The built-in operation sda-revoke adds entries.")
	revoked := verificationError("revocation", "device.ErrRevoked")
	noCTI := g.v1(func(c *token.Claims) { c.ID = nil })
	exp := t0.Add(time.Hour).Unix()
	byHash := func(tok []byte) func(*Setup) {
		sum := sha256.Sum256(tok)
		return func(s *Setup) {
			s.Revocations = append(s.Revocations, Revocation{Kind: "hash", ID: hex.EncodeToString(sum[:]), Until: exp})
		}
	}

	b := gr.add("cti", "The token id c701 is revoked; a token with another id is not.", func(s *Setup) {
		s.Revocations = append(s.Revocations, Revocation{Kind: "cti", ID: "c701", Until: exp})
	})
	b.once("cti c701", revoked, g.v1(nil), "read-data")
	b.once("cti c702", ok, g.v1(func(c *token.Claims) { c.ID = []byte{0xc7, 0x02} }), "read-data")

	for _, c := range []struct {
		name, description string
		tok               []byte
	}{
		{"hash", "the token as issued", noCTI},
		{"hash-cwt-tag-stripped", "the token without tag 61, 18(COSE_Sign1)", stripCWTTag(noCTI)},
		{"hash-unprotected-label-added", "the token with the unprotected header {99: 0}", addUnprotectedLabel(noCTI)},
		{"hash-other-ecdsa-signature", "the token with the signature (r, n - s)", otherS(noCTI)},
	} {
		gr.add(c.name, "A token without cti revoked by the SHA-256 of its bytes as issued, sent as "+c.description+".", byHash(noCTI)).
			once(c.description, revoked, c.tok, "read-data")
	}
	gr.add("hash-of-a-reencoding", "A token revoked by the hash of a re-encoding (tag 61 stripped) the device saw, sent as issued.", byHash(stripCWTTag(noCTI))).
		once("the token as issued", revoked, noCTI, "read-data")

	// A token laid out as RFC 8392 appendix A.3 (and as several COSE
	// libraries lay out tokens): tag 18 alone, the kid in the unprotected
	// header, no cti. Its holder can change everything the signature does
	// not cover; its revocation hash revokes every such encoding.
	a3Claims := g.claimMap()
	delete(a3Claims, 7)
	a3Payload := encodeMap(a3Claims)
	kid := must(token.Thumbprint(g.key("anchor-p256").public))
	a3 := g.sign1(tagSign1, protES256, encodeMap(map[int]any{4: kid}), a3Payload, "anchor-p256")
	revHash := sha256.Sum256(must(codec.Marshal([]any{"Signature1", protES256, []byte{}, a3Payload})))
	if revHash != must(token.Parse(a3)).RevocationHash() {
		fail("revocation hash %x differs from token.RevocationHash", revHash)
	}
	byRevocationHash := func(s *Setup) {
		s.Revocations = append(s.Revocations, Revocation{Kind: "hash", ID: hex.EncodeToString(revHash[:]), Until: exp})
	}
	kidLabel := append(encodeMap(map[int]any{4: kid}), 0x18, 0x63, 0x00)
	kidLabel[0]++ // {4: kid, 99: 0}
	for _, c := range []struct {
		name, description string
		tok               []byte
	}{
		{"revocation-hash-a3-as-issued", "as issued, 18([h'A10126', {4: kid}, payload, signature])", a3},
		{"revocation-hash-a3-in-cwt-tag", "inside tag 61, 61(18([...]))", append([]byte{0xd8, 0x3d}, a3...)},
		{"revocation-hash-a3-other-ecdsa-signature", "with the signature (r, n - s)", otherS(a3)},
		{"revocation-hash-a3-kid-removed", "with the kid removed, the unprotected header {}", reencode(a3, emptyMap)},
		{"revocation-hash-a3-label-added", "with the unprotected header {4: kid, 99: 0}, a label nobody reads", reencode(a3, kidLabel)},
	} {
		gr.add(c.name, "A v1 token without cti laid out as RFC 8392 appendix A.3 (tag 18 alone, the kid, the anchor's thumbprint, in the unprotected header), revoked by its revocation hash, the SHA-256 of its COSE ToBeSigned [\"Signature1\", h'A10126', h'', payload]; sent "+c.description+".", byRevocationHash).
			once(c.description, revoked, c.tok, "read-data")
	}

	admin := g.v1(func(c *token.Claims) {
		c.Subject, c.ID, c.Scope = "admin", []byte{0xad}, scopeOf("sda-revoke read-data")
	})
	b = gr.add("revoke-operation", "The built-in operation sda-revoke(\"cti\", \"c701\") (v1 tokens carry the id as hex text), permitted by its token's scope, revokes the token c701.")
	victim := g.v1(nil)
	b.once("the victim's token works", ok, victim, "read-data")
	b.once(`sda-revoke("cti", "c701")`, ok, admin, "sda-revoke", token.Text("cti"), token.Text("c701"))
	b.once("the victim's token is revoked", revoked, victim, "read-data")

	b = gr.add("revoke-operation-v2", "In v2 the id of sda-revoke may be a byte string: sda-revoke(\"hash\", h'...') revokes a token without cti.")
	v2victim := g.v2("anchor-p256", nil, func(c *token.Claims) { c.ID = nil })
	sum := sha256.Sum256(v2victim)
	b.once("the victim's token works", ok, v2victim, "read-data")
	b.once(`sda-revoke("hash", h'...')`, ok, g.v2("anchor-p256", nil, func(c *token.Claims) { c.ID, c.Scope = []byte{0xad}, scopeOf("sda-revoke") }), "sda-revoke", token.Text("hash"), token.Bytes(sum[:]))
	b.once("the victim's token is revoked", revoked, v2victim, "read-data")

	b = gr.add("revoke-operation-with-token-cache", "A device caching verified tokens still checks the revocation list: a token revokes its own hash, and its next request, served from the cache, is refused.", func(s *Setup) { s.TokenCacheSize = 4 })
	self := g.v1(func(c *token.Claims) { c.Scope = scopeOf("read-data sda-revoke") })
	sum = sha256.Sum256(self)
	b.once("read-data", ok, self, "read-data")
	b.once("sda-revoke(\"hash\", its own hash in hex)", ok, self, "sda-revoke", token.Text("hash"), token.Text(hex.EncodeToString(sum[:])))
	b.once("read-data again", revoked, self, "read-data")

	b = gr.add("revoked-token-does-not-move-the-clock", "A device without a trustworthy clock does not take the issue time of a revoked token as its lower bound of time: a token revoked because its issuer's clock ran a month ahead, used anyway, does not make current tokens look expired.",
		func(s *Setup) {
			s.ClockMode, s.MinTime = "lower-bound", t0.Add(-time.Hour).Unix()
			s.Revocations = append(s.Revocations, Revocation{Kind: "cti", ID: hex.EncodeToString([]byte("from-the-future"))})
		})
	b.once("the revoked token, issued in a month", revoked, g.v1(func(c *token.Claims) {
		c.ID = []byte("from-the-future")
		c.IssuedAt, c.NotBefore, c.Expiry = t0.Add(30*24*time.Hour), t0.Add(30*24*time.Hour), t0.Add(31*24*time.Hour)
	}), "read-data")
	b.once("a current token", ok, g.v1(nil), "read-data")

	gr.add("revoke-operation-not-in-scope", "sda-revoke runs only if the token's scope permits it, like any operation.").
		once(`sda-revoke("cti", "c701") with a token for read-data and configure`, rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope"), victim, "sda-revoke", token.Text("cti"), token.Text("c701"))
	gr.add("revoke-operation-bad-arguments", "sda-revoke with an unknown kind fails (status 0x0FFFFFFF) and changes nothing.").
		once(`sda-revoke("jti", "00")`, rejected(wire.StatusOperationFailed, "operation", "device.ErrOperationFailed"), admin, "sda-revoke", token.Text("jti"), token.Text("00"))
}

func scope(g *gen) {
	gr := g.newGroup("12-scope", "Row 12 of the verification order: the token's scope must permit the operation, by its exact name, and (v2) its arguments. Status 5. The nonce is consumed.")
	denied := rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope")
	tok := g.v1(nil)
	for _, c := range []struct {
		name, description string
		tok               []byte
		op                string
	}{
		{"not-in-scope", `set-temperature with scope "read-data configure"`, tok, "set-temperature"},
		{"granted-name-is-a-prefix", `configure with scope "c read-data": "c" does not permit "configure"`, g.v1(func(c *token.Claims) { c.Scope = scopeOf("c read-data") }), "configure"},
		{"requested-name-is-a-prefix", `c with scope "read-data configure": "configure" does not permit "c"`, tok, "c"},
		{"requested-name-is-shorter", `read with scope "read-data configure"`, tok, "read"},
		{"requested-name-is-longer", `read-data-all with scope "read-data configure"`, tok, "read-data-all"},
		{"case", `Read-data with scope "read-data configure"`, tok, "Read-data"},
	} {
		gr.add(c.name, "Denied: "+c.description+".").once(c.op, denied, c.tok, c.op)
	}

	gr.add("v1-one-character-scope", `A v1 token whose scope text is one byte, "c" (made by hand: the SDK refuses to issue it, token.MinV1ScopeLength). The SDK's device accepts it.`).
		differs("Deployed v1 devices refuse such a token with status 2 (docs/PROTOCOL.md section 5).").
		once("c", ok, g.handmade(func(m map[int]any) { m[12] = "c" }), "c")

	constrained := g.v2("anchor-p256", nil, func(c *token.Claims) {
		c.Scope = scopeOf("",
			token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}},
			token.Permission{Operation: "configure", Constraints: []token.Constraint{token.OneOf(0, token.Text("eco"), token.Text("boost"))}},
			token.Permission{Operation: "read-data", Constraints: []token.Constraint{token.Equals(0, token.Int(5))}},
		)
	})
	b := gr.add("v2-constraints", "A v2 token permitting set-temperature(arg0 in 16..28), configure(arg0 one of \"eco\", \"boost\") and read-data(arg0 = 5): a missing argument, or one of the wrong type, fails its constraint.", func(s *Setup) { s.MaxNonces = 16 })
	for _, c := range []struct {
		op   string
		args []token.Arg
		o    outcome
	}{
		{"set-temperature", []token.Arg{token.Int(16)}, ok},
		{"set-temperature", []token.Arg{token.Int(28)}, ok},
		{"set-temperature", []token.Arg{token.Int(15)}, denied},
		{"set-temperature", []token.Arg{token.Int(29)}, denied},
		{"set-temperature", nil, denied},
		{"set-temperature", []token.Arg{token.Text("20")}, denied},
		{"configure", []token.Arg{token.Text("eco")}, ok},
		{"configure", []token.Arg{token.Text("turbo")}, denied},
		{"configure", []token.Arg{token.Bytes([]byte("eco"))}, denied},
		{"read-data", []token.Arg{token.Int(5)}, ok},
		{"read-data", []token.Arg{token.Int(6)}, denied},
	} {
		args := make([]string, len(c.args))
		for i, a := range c.args {
			args[i] = a.String()
		}
		b.once(c.op+"("+strings.Join(args, ", ")+")", c.o, constrained, c.op, c.args...)
	}

	b = gr.add("v2-all-operations", `A v2 token permitting "*", and "*" with arg0 in 0..10.`)
	b.once(`configure with "*"`, ok, g.v2("anchor-p256", nil, func(c *token.Claims) { c.Scope = scopeOf("", token.Permission{Operation: token.AllOperations}) }), "configure")
	limited := g.v2("anchor-p256", nil, func(c *token.Claims) {
		c.Scope = scopeOf("", token.Permission{Operation: token.AllOperations, Constraints: []token.Constraint{token.InRange(0, 0, 10)}})
	})
	b.once(`set-temperature(20) with "*" and arg0 in 0..10`, denied, limited, "set-temperature", token.Int(20))
	b.once(`set-temperature(10) with "*" and arg0 in 0..10`, ok, limited, "set-temperature", token.Int(10))
}

func operation(g *gen) {
	gr := g.newGroup("13-operation", "Row 13 of the verification order: the handler. No handler: status 1; the handler fails: 0x0FFFFFFF; it crashes: 3; its response does not fit the response limit: 6, without data.")
	tok := g.v1(func(c *token.Claims) { c.Scope = scopeOf("read-data missing fail crash fits chatty") })
	gr.add("no-handler", "The scope permits an operation the device has no handler for.").
		once("missing", rejected(wire.StatusError, "operation", "device.ErrUnknownOperation"), tok, "missing")
	gr.add("handler-fails", "The handler runs and fails.", withOperation("fail", "error", nil)).
		once("fail", rejected(wire.StatusOperationFailed, "operation", "device.ErrOperationFailed"), tok, "fail")
	gr.add("handler-crashes", "The handler crashes (in Go, panics).", withOperation("crash", "crash", nil)).
		once("crash", rejected(wire.StatusInternalError, "operation", "device.ErrHandlerPanic"), tok, "crash")
	b := gr.add("response-limit", "A device whose responses may be 64 bytes: a response of 64 bytes is sent, one of 65 bytes is replaced by status 6 without data.",
		withOperation("fits", "data", make([]byte, 55)), withOperation("chatty", "data", make([]byte, 56)), func(s *Setup) { s.MaxResponseSize = 64 })
	b.once("fits: 55 bytes of data, a 64-byte response", ok, tok, "fits")
	b.once("chatty: 56 bytes of data", rejected(wire.StatusResponseTooSmall, "response", "device.ErrResponseTooLarge"), tok, "chatty")
}

func v2Responses(g *gen) {
	gr := g.newGroup("14-v2-responses", "v2 responses (docs/PROTOCOL.md section 8): a device may offer a next nonce (key 5) in the response to every request whose PoP signature and nonce verified, and sign (key 6, with its Ed25519 key here) its response to every request whose PoP signature verified, whatever the outcome. Unauthenticated requests get neither.")
	tok := g.v2("anchor-p256", nil, nil)
	v2 := func(s *Setup) { g.v2Device(s) }

	b := gr.add("session", "A session: a nonce request, then each operation uses the next nonce of the previous response; a denied operation is signed and offers a next nonce too; a forged request gets neither.", v2)
	n := b.nonceRequest("nonce request")
	b.call("read-data", ok, n, tok, "read-data")
	b.call("configure with the next nonce", ok, b.lastNext(), tok, "configure")
	b.call("set-temperature with the next nonce: denied", rejected(wire.StatusAccessDenied, "scope", "token.ErrOutOfScope"), b.lastNext(), tok, "set-temperature", token.Int(1))
	b.call("read-data with the next nonce", ok, b.lastNext(), tok, "read-data")
	b.op("a forged request with the next nonce", request{nonce: b.lastNext(), token: tok, pop: "thief-p256", op: "read-data"},
		verificationError("proof-of-possession", "token.ErrSignature"))

	b = gr.add("replayed-request-is-signed", "A replayed request is authentic, so its rejection is signed, but its nonce did not verify, so no next nonce is offered.", v2)
	n = b.outstanding()
	req, built := b.encode(request{nonce: n, token: tok, pop: "pop-p256", op: "read-data"})
	b.send("first", req, built, n, "read-data", ok)
	b.send("replay", req, built, n, "read-data", verificationError("nonce", "device.ErrNonceReplayed"))

	b = gr.add("revoked-token-is-signed", "A revoked token's request is authentic and fresh: signed, with a next nonce.", v2, func(s *Setup) {
		s.Revocations = append(s.Revocations, Revocation{Kind: "cti", ID: "c701", Until: t0.Add(time.Hour).Unix()})
	})
	b.once("revoked token", verificationError("revocation", "device.ErrRevoked"), tok, "read-data")

	gr.add("failed-operation-is-signed", "A failed operation's response is signed, with a next nonce.", v2, withOperation("fail", "error", nil)).
		once("fail", rejected(wire.StatusOperationFailed, "operation", "device.ErrOperationFailed"), g.v2("anchor-p256", nil, func(c *token.Claims) { c.Scope = scopeOf("fail") }), "fail")

	gr.add("malformed-request-is-not-signed", "A request that does not parse gets neither a signature nor a next nonce.", v2).
		once("token without tags", malformed, tok[3:], "read-data")

	b = gr.add("no-next-nonce-while-throttled", "While the device throttles, it offers no next nonce.", v2, func(s *Setup) { s.Throttle.Failures = 2 })
	held := []uint64{b.outstanding(), b.outstanding(), b.outstanding()}
	for i := range 2 {
		b.op("request signed by a thief", request{nonce: held[i], token: tok, pop: "thief-p256", op: "read-data"}, verificationError("proof-of-possession", "token.ErrSignature"))
	}
	o := ok
	o.noNext = true
	b.call("the technician's held nonce", o, held[2], tok, "read-data")
}

// lastNext returns the next nonce offered by the last step's response.
func (b *builder) lastNext() uint64 {
	r, err := wire.DecodeResponse(must(hex.DecodeString(b.c.Steps[len(b.c.Steps)-1].Response)))
	if err != nil || r.NextNonce == 0 {
		fail("%s: the last response offers no next nonce (%v)", b.c.Name, err)
	}
	return r.NextNonce
}
