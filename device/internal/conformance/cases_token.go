package conformance

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// verificationError is the outcome of a request refused with status 4.
func verificationError(check, reason string) outcome {
	return rejected(wire.StatusVerificationError, check, reason)
}

func anchors(g *gen) {
	gr := g.newGroup("03-anchor", "Row 3 of the verification order: the token's unverified iss (and, in v2, kid) only choose the anchor to verify with; a v1 token's kid only orders the anchors of its issuer and never refuses it (docs/PROTOCOL.md section 4.1). No anchor, or only revoked ones: status 4.")
	unknown := verificationError("anchor", "device.ErrUnknownAnchor")

	gr.add("unknown-issuer", "A token signed by a key the device does not trust, named after that key as SDA names anchors.").
		once("token of an unknown anchor", unknown, g.issue("stranger-p256", nil, nil), "read-data")
	gr.add("unknown-issuer-name", "A token signed by the device's anchor key, but naming an issuer the device does not know.").
		once("iss mbed.ta.0000...", unknown, g.v1(func(c *token.Claims) { c.Issuer = "mbed.ta." + strings.Repeat("0", 64) }), "read-data")
	revoked := g.anchor("anchor-p256")
	revoked.Revoked = true
	gr.add("revoked-anchor", "The token's anchor has been revoked: every token it signed is refused.", withAnchors(revoked)).
		once("token of the revoked anchor", verificationError("anchor", "device.ErrAnchorRevoked"), g.v1(nil), "read-data")

	named := g.anchor("anchor-p256")
	named.KeyID = hex.EncodeToString([]byte("2026"))
	gr.add("v2-unknown-kid", "A v2 token whose kid names no key of its issuer (the issuer's anchor has key id \"2026\", the token says \"2027\").", withAnchors(named)).
		once("kid 2027", unknown, g.v2("anchor-p256", []byte("2027"), nil), "read-data")

	rotated := g.anchor("anchor-ed25519")
	rotated.Issuer, rotated.KeyID = g.issuer("anchor-p256"), hex.EncodeToString([]byte("2026"))
	b := gr.add("v2-rotation-by-kid", "Key rotation: two anchors share the issuer name, the old key without a key id, the new one with key id \"2026\". Each token is verified with the key its kid names, or with the old key by its thumbprint or without a kid.", withAnchors(g.anchor("anchor-p256"), rotated))
	b.once("v2 token by the new key, kid 2026", ok, g.v2("anchor-ed25519", []byte("2026"), func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") }), "read-data")
	b.once("v2 token by the old key, kid its thumbprint", ok, g.v2("anchor-p256", must(token.Thumbprint(g.key("anchor-p256").public)), nil), "read-data")
	b.once("v1 token by the old key, no kid", ok, g.v1(nil), "read-data")

	thumb := must(token.Thumbprint(g.key("anchor-p256").public))
	gr.add("v1-token-with-thumbprint-kid", "A v1 token carrying a kid, the RFC 9679 thumbprint of the anchor key, which has no key id: accepted.").
		once("v1 token, protected header {1: -7, 4: thumbprint}", ok, g.sign1(tagsCWT, encodeMap(map[int]any{1: -7, 4: thumb}), emptyMap, encodeMap(g.claimMap()), "anchor-p256"), "read-data")

	// A v1 token's anchor is found by iss alone, as deployed v1 devices
	// find it: its kid only orders the issuer's anchors.
	b = gr.add("v1-token-with-unknown-kid", "A v1 token carrying a kid that names no anchor (\"2027\"; the anchor has no key id): deployed v1 devices ignore kid and find the anchor by iss, and so does the SDK's device.")
	b.once("v1 token, protected header {1: -7, 4: '2027'}", ok, g.sign1(tagsCWT, encodeMap(map[int]any{1: -7, 4: []byte("2027")}), emptyMap, encodeMap(g.claimMap()), "anchor-p256"), "read-data")
	b.once("v1 token, unprotected header {4: '2027'}", ok, g.sign1(tagsCWT, protES256, encodeMap(map[int]any{4: []byte("2027")}), encodeMap(g.claimMap()), "anchor-p256"), "read-data")
	gr.add("v1-token-with-kid-of-another-anchor", "Key rotation as in v2-rotation-by-kid: a v1 token signed by the old key (no key id) carrying kid \"2026\", the key id of the new Ed25519 key. The kid only puts the new key first; the old key verifies the token.", withAnchors(g.anchor("anchor-p256"), rotated)).
		once("v1 token by the old key, protected header {1: -7, 4: '2026'}", ok, g.sign1(tagsCWT, encodeMap(map[int]any{1: -7, 4: []byte("2026")}), emptyMap, encodeMap(g.claimMap()), "anchor-p256"), "read-data")
}

func tokenSignature(g *gen) {
	gr := g.newGroup("04-token-signature", "Row 4 of the verification order: the token's signature is checked over the bytes received with the anchor's key, and the anchor's key pins the algorithm: the header cannot choose another. Status 4.")
	bad := verificationError("token-signature", "token.ErrSignature")
	mismatch := verificationError("token-signature", "token.ErrAlgorithmMismatch")

	gr.add("signed-by-another-key", "A token naming the device's anchor as issuer, signed by another P-256 key.").
		once("impostor token", bad, g.issue("stranger-p256", nil, func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") }), "read-data")
	gr.add("signature-altered", "The token's signature with its last byte changed.").
		once("altered signature", bad, flipLast(g.v1(nil)), "read-data")
	tok := g.v1(func(c *token.Claims) { c.Audience = []string{"ep:hvac-2"} })
	gr.add("claims-altered", "A token for another device, ep:hvac-2, edited to name this one after it was signed.").
		once("aud changed from ep:hvac-2 to ep:hvac-1", bad, replace(tok, "ep:hvac-2", "ep:hvac-1"), "read-data")
	tok = g.v1(nil)
	short := append(append(tok[:len(tok)-66:len(tok)-66], 0x58, 0x3f), tok[len(tok)-64:len(tok)-1]...)
	gr.add("signature-truncated", "The token's ES256 signature shortened to 63 bytes.").
		once("63-byte signature", bad, short, "read-data")
	gr.add("es384-token-for-an-es256-anchor", "A v2 token signed with ES384 by a P-384 key, naming the device's P-256 anchor: the anchor pins ES256.").
		once("ES384 token", mismatch, g.v2("stranger-p384", nil, func(c *token.Claims) { c.Issuer = g.issuer("anchor-p256") }), "read-data")
	gr.add("es384-header-on-an-es256-signature", "A token whose protected header says ES384, signed with ES256 by the anchor.").
		once("alg -35", mismatch, g.sign1(tagsCWT, protES384, emptyMap, encodeMap(g.claimMap()), "anchor-p256"), "read-data")
	gr.add("eddsa-header-on-an-es256-signature", "A token whose protected header says EdDSA, signed with ES256 by the anchor.").
		once("alg -8", mismatch, g.sign1(tagsCWT, protEdDSA, emptyMap, encodeMap(g.claimMap()), "anchor-p256"), "read-data")
	gr.add("ed25519-anchor-signature-altered", "A v2 token of an Ed25519 anchor with its signature altered.", withAnchors(g.anchor("anchor-ed25519"))).
		once("altered EdDSA signature", bad, flipLast(g.v2("anchor-ed25519", nil, nil)), "read-data")
	gr.add("p384-anchor-signature-altered", "A v2 token of a P-384 anchor with its signature altered.", withAnchors(g.anchor("anchor-p384"))).
		once("altered ES384 signature", bad, flipLast(g.v2("anchor-p384", nil, nil)), "read-data")
}

func profile(g *gen) {
	gr := g.newGroup("05-profile", "Row 5 of the verification order: a device may refuse v1 tokens (status 4).")
	b := gr.add("v1-token-on-a-v2-only-device", "A device configured to accept only v2 tokens refuses a valid v1 token and accepts the same claims in a v2 token.", func(s *Setup) { s.RejectV1 = true })
	b.once("v1 token", verificationError("profile", "device.ErrProfile"), g.v1(nil), "read-data")
	b.once("v2 token", ok, g.v2("anchor-p256", nil, nil), "read-data")
}

func anchorConstraints(g *gen) {
	gr := g.newGroup("06-anchor-constraints", "Row 6 of the verification order: the anchor's validity window, its retirement and its constraints (operations, audiences, lifetime) bound what its tokens may grant. Status 4.")
	violated := verificationError("anchor-constraints", "device.ErrAnchorConstraint")
	with := func(edit func(*Anchor)) func(*Setup) {
		a := g.anchor("anchor-p256")
		edit(&a)
		return withAnchors(a)
	}

	b := gr.add("operations", "The anchor may grant read-data only.", with(func(a *Anchor) { a.Constraints.Operations = []string{"read-data"} }))
	b.once(`scope "read-data configure"`, violated, g.v1(nil), "read-data")
	b.once(`scope "read-data"`, ok, g.v1(func(c *token.Claims) { c.Scope = scopeOf("read-data") }), "read-data")

	b = gr.add("all-operations", `The anchor may grant read-data and configure; a v2 token grants "*".`, with(func(a *Anchor) { a.Constraints.Operations = []string{"read-data", "configure"} }))
	b.once(`scope ["*"]`, violated, g.v2("anchor-p256", nil, func(c *token.Claims) { c.Scope = scopeOf("", token.Permission{Operation: token.AllOperations}) }), "read-data")

	b = gr.add("audiences", `The anchor may grant audiences matching "ep:hvac-*" only.`, with(func(a *Anchor) { a.Constraints.Audiences = []string{"ep:hvac-*"} }))
	b.once("aud [ep:hvac-1, ep:boiler-1]", violated, g.v1(func(c *token.Claims) { c.Audience = []string{"ep:hvac-1", "ep:boiler-1"} }), "read-data")
	b.once("aud [ep:hvac-1]", ok, g.v1(nil), "read-data")

	b = gr.add("lifetime", "The anchor may sign tokens valid for 2 hours at most (exp - nbf).", with(func(a *Anchor) { a.Constraints.MaxLifetimeSeconds = 7200 }))
	b.once("3 hours", violated, g.v1(func(c *token.Claims) { c.Expiry = c.NotBefore.Add(3 * time.Hour) }), "read-data")
	b.once("exactly 2 hours", ok, g.v1(func(c *token.Claims) { c.Expiry = c.NotBefore.Add(2 * time.Hour) }), "read-data")

	b = gr.add("retired", "The anchor was retired an hour ago (its key rotated): tokens issued after that are refused, older ones stay valid until they expire.", with(func(a *Anchor) { a.RetiredAt = t0.Add(-time.Hour).Unix() }))
	b.once("issued a minute ago", violated, g.v1(nil), "read-data")
	b.once("issued two hours ago", ok, g.v1(func(c *token.Claims) { c.IssuedAt, c.NotBefore = t0.Add(-2*time.Hour), t0.Add(-2*time.Hour) }), "read-data")

	gr.add("anchor-expired", "The anchor's validity ended an hour ago.", with(func(a *Anchor) { a.NotAfter = t0.Add(-time.Hour).Unix() })).
		once("any token", violated, g.v1(nil), "read-data")
	gr.add("anchor-not-yet-valid", "The anchor becomes valid in an hour.", with(func(a *Anchor) { a.NotBefore = t0.Add(time.Hour).Unix() })).
		once("any token", violated, g.v1(nil), "read-data")
	gr.add("token-issued-before-the-anchor", "The anchor is valid from 10 minutes ago; the token was issued an hour ago.", with(func(a *Anchor) { a.NotBefore = t0.Add(-10 * time.Minute).Unix() })).
		once("issued an hour ago", violated, g.v1(func(c *token.Claims) { c.IssuedAt, c.NotBefore = t0.Add(-time.Hour), t0.Add(-time.Hour) }), "read-data")
}

func audience(g *gen) {
	gr := g.newGroup("07-audience", "Row 7 of the verification order: some aud entry must name the device, byte for byte: \"ep:\" or \"endpoint-name:\" and its endpoint name, \"id:\" or \"device-id:\" and its device id. No case folding, no prefix matching. Status 4.")
	wrong := verificationError("audience", "token.ErrWrongAudience")
	for _, c := range []struct {
		name, description string
		aud               []string
		o                 outcome
	}{
		{"other-device", "another device's endpoint name and id", []string{"ep:hvac-2", "id:ffffffffffffffffffffffffffffffff"}, wrong},
		{"name-prefix", "a prefix of the endpoint name", []string{"ep:hvac-"}, wrong},
		{"name-extended", "the endpoint name with a character more", []string{"ep:hvac-10"}, wrong},
		{"prefix-upper-case", "the prefix in upper case", []string{"EP:hvac-1"}, wrong},
		{"name-upper-case", "the endpoint name in upper case", []string{"ep:HVAC-1"}, wrong},
		{"trailing-space", "the endpoint name and a space", []string{"ep:hvac-1 "}, wrong},
		{"device-id-upper-case", "the device id in upper-case hex", []string{"id:" + strings.ToUpper(deviceID)}, wrong},
		{"device-id-as-endpoint", "the device id under ep:", []string{"ep:" + deviceID}, wrong},
		{"endpoint-as-device-id", "the endpoint name under id:", []string{"id:" + endpoint}, wrong},
		{"device-id", "accepted: the device id under id:", []string{"id:" + deviceID}, ok},
		{"legacy-endpoint-name", "accepted: the endpoint name under the legacy endpoint-name:", []string{"endpoint-name:" + endpoint}, ok},
		{"legacy-device-id", "accepted: the device id under the legacy device-id:", []string{"device-id:" + deviceID}, ok},
		{"second-entry", "accepted: another device first, this one second", []string{"ep:hvac-2", "ep:" + endpoint}, ok},
	} {
		b := gr.add(c.name, "aud names "+c.description+".")
		b.c.Description = "aud names " + strings.TrimPrefix(c.description, "accepted: ") + "."
		b.once(strings.Join(c.aud, ", "), c.o, g.v1(func(cl *token.Claims) { cl.Audience = c.aud }), "read-data")
	}
	gr.add("single-string", "aud as a single text string rather than an array (RFC 8392 section 3.1.3): accepted.").
		once(`aud "ep:hvac-1"`, ok, g.handmade(func(m map[int]any) { m[3] = "ep:" + endpoint }), "read-data")
	gr.add("empty-endpoint-never-matches", "A device known by its device id only: the entry \"ep:\" with an empty name does not name it.", func(s *Setup) { s.Identity.Endpoint = "" }).
		once(`aud ["ep:"]`, wrong, g.v1(func(c *token.Claims) { c.Audience = []string{"ep:"} }), "read-data")
}

func timeChecks(g *gen) {
	gr := g.newGroup("08-time", "Row 8 of the verification order, with the clock rules of docs/PROTOCOL.md section 8: a trusted clock rejects exp + leeway < now and nbf - leeway > now, where now is never below the lower bound of time; a device without a trustworthy clock checks exp against its lower bound. Status 4.")
	expired := verificationError("time", "token.ErrExpired")
	early := verificationError("time", "token.ErrNotYetValid")
	valid := func(iat, exp time.Duration) func(*token.Claims) {
		return func(c *token.Claims) {
			c.IssuedAt, c.NotBefore, c.Expiry = t0.Add(iat), t0.Add(iat), t0.Add(exp)
		}
	}

	gr.add("expired", "exp 301 s ago: beyond the leeway of 300 s.").
		once("exp = now - 301", expired, g.v1(valid(-2*time.Hour, -301*time.Second)), "read-data")
	gr.add("expired-within-the-leeway", "exp 300 s ago: exp + leeway = now is not before now.").
		once("exp = now - 300", ok, g.v1(valid(-2*time.Hour, -300*time.Second)), "read-data")
	gr.add("not-yet-valid", "nbf in 301 s: beyond the leeway.").
		once("nbf = now + 301", early, g.v1(valid(301*time.Second, 2*time.Hour)), "read-data")
	gr.add("not-yet-valid-within-the-leeway", "nbf in 300 s: nbf - leeway = now is not after now.").
		once("nbf = now + 300", ok, g.v1(valid(300*time.Second, 2*time.Hour)), "read-data")
	b := gr.add("no-leeway", "A device with no leeway: exp one second ago is expired, exp now is not.", func(s *Setup) { s.LeewaySeconds = 0 })
	b.once("exp = now - 1", expired, g.v1(valid(-time.Hour, -time.Second)), "read-data")
	b.once("exp = now", ok, g.v1(valid(-time.Hour, 0)), "read-data")
	gr.add("no-nbf", "A v2 token without nbf (nor iat) has no start of validity.").
		once("no nbf", ok, g.v2("anchor-p256", nil, func(c *token.Claims) { c.NotBefore, c.IssuedAt = time.Time{}, time.Time{} }), "read-data")

	b = gr.add("trusted-clock-set-back", "A trusted clock reads a day early, but the device's lower bound of time is now: a token that expired an hour ago is expired, a current one is valid.",
		func(s *Setup) { s.Time, s.MinTime = t0.Add(-24*time.Hour).Unix(), t0.Unix() })
	b.once("exp = bound - 1 h", expired, g.v1(valid(-3*time.Hour, -time.Hour)), "read-data")
	b.once("current token", ok, g.v1(nil), "read-data")

	b = gr.add("lower-bound-first-token", "A device without a trustworthy clock and no lower bound yet accepts a token without a time check; the token's iat becomes the bound, against which a token that expired earlier is refused.",
		func(s *Setup) { s.ClockMode = "lower-bound" })
	b.once("first token (iat = T - 60 s)", ok, g.v1(nil), "read-data")
	b.once("exp = T - 1 h", expired, g.v1(valid(-3*time.Hour, -time.Hour)), "read-data")
	gr.add("lower-bound-expired-before-min-time", "A device without a trustworthy clock, provisioned with a lower bound of time (its firmware's build time), refuses a token that expired before it.",
		func(s *Setup) { s.ClockMode = "lower-bound"; s.MinTime = t0.Unix() }).
		once("exp = bound - 301", expired, g.v1(valid(-2*time.Hour, -301*time.Second)), "read-data")
	gr.add("lower-bound-cannot-check-nbf", "A device without a trustworthy clock cannot check nbf: a token valid from tomorrow is accepted (a documented trade-off).",
		func(s *Setup) { s.ClockMode = "lower-bound"; s.MinTime = t0.Add(-time.Hour).Unix() }).
		once("nbf = T + 1 day", ok, g.v1(valid(24*time.Hour, 25*time.Hour)), "read-data")
	gr.add("strict-without-a-bound", "A strict clockless device refuses every token while it has no lower bound of time.",
		func(s *Setup) { s.ClockMode = "strict" }).
		once("any token", verificationError("time", "device.ErrTimeUnknown"), g.v1(nil), "read-data")
	gr.add("strict-with-a-bound", "A strict clockless device with a provisioned lower bound of time accepts a token valid after it.",
		func(s *Setup) { s.ClockMode = "strict"; s.MinTime = t0.Add(-30 * 24 * time.Hour).Unix() }).
		once("current token", ok, g.v1(nil), "read-data")
}
