package conformance

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// Encoded pieces of COSE messages (RFC 9052): the tags of a CWT around a
// COSE_Sign1, the protected headers {1: alg} and the empty unprotected one.
var (
	tagsCWT   = []byte{0xd8, 0x3d, 0xd2} // 61(18(
	tagSign1  = []byte{0xd2}             // 18(
	protES256 = []byte{0xa1, 0x01, 0x26} // {1: -7}
	protES384 = []byte{0xa1, 0x01, 0x38, 0x22}
	protEdDSA = []byte{0xa1, 0x01, 0x27}
	emptyMap  = []byte{0xa0}
)

// claims returns the claims of a valid token signed by keyName: issued by
// that key as an anchor, for the device "ep:hvac-1", valid for an hour,
// scope "read-data configure", bound to pop-p256.
func (g *gen) claims(keyName string) *token.Claims {
	return &token.Claims{
		Issuer:    g.issuer(keyName),
		Subject:   "alice",
		Audience:  []string{"ep:" + endpoint},
		Expiry:    t0.Add(time.Hour),
		NotBefore: t0.Add(-time.Minute),
		IssuedAt:  t0.Add(-time.Minute),
		ID:        []byte{0xc7, 0x01},
		Scope:     must(token.ParseScope("read-data configure")),
		Key:       g.key("pop-p256").public,
	}
}

// issue returns a token made by token.Issue, signed by keyName, with the
// default claims changed by edit.
func (g *gen) issue(keyName string, opts *token.IssueOptions, edit func(*token.Claims)) []byte {
	c := g.claims(keyName)
	if edit != nil {
		edit(c)
	}
	return must(token.Issue(c, g.key(keyName).signer, opts))
}

// v1 returns a v1 token signed by anchor-p256.
func (g *gen) v1(edit func(*token.Claims)) []byte { return g.issue("anchor-p256", nil, edit) }

// v2 returns a v2 token signed by keyName, with kid in the protected header
// when it is not nil.
func (g *gen) v2(keyName string, kid []byte, edit func(*token.Claims)) []byte {
	return g.issue(keyName, &token.IssueOptions{Profile: token.ProfileV2, KeyID: kid}, edit)
}

// claimMap returns the default v1 claims (see claims) as a map that cases
// change to build tokens token.Issue refuses to make.
func (g *gen) claimMap() map[int]any {
	return map[int]any{
		1:  g.issuer("anchor-p256"),
		2:  "alice",
		3:  []string{"ep:" + endpoint},
		4:  t0.Add(time.Hour).Unix(),
		5:  t0.Add(-time.Minute).Unix(),
		6:  t0.Add(-time.Minute).Unix(),
		7:  []byte{0xc7, 0x01},
		12: "read-data configure",
		25: map[int]any{1: cbor.RawMessage(must(token.MarshalCOSEKey(g.key("pop-p256").public)))},
	}
}

// encodeMap encodes a claim map deterministically.
func encodeMap(m map[int]any) []byte { return must(codec.Marshal(m)) }

// sign1 returns prefix || COSE_Sign1 [protected, unprotected, payload,
// signature], all given as encoded bytes but the signature, which keyName
// makes over the Sig_structure (RFC 9052 section 4.4) as its algorithm
// says, whatever the protected header claims.
func (g *gen) sign1(prefix, protected, unprotected, payload []byte, keyName string) []byte {
	tbs := must(codec.Marshal([]any{"Signature1", protected, []byte{}, payload}))
	k := g.key(keyName)
	var sig []byte
	switch k.Algorithm {
	case "EdDSA":
		sig = must(k.signer.Sign(nil, tbs, crypto.Hash(0)))
	case "ES256", "ES384":
		var digest []byte
		hash, size := crypto.SHA256, 32
		if k.Algorithm == "ES384" {
			d := sha512.Sum384(tbs)
			digest, hash, size = d[:], crypto.SHA384, 48
		} else {
			d := sha256.Sum256(tbs)
			digest = d[:]
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(must(k.signer.Sign(nil, digest, hash)), &rs); err != nil {
			fail("signature of %s: %v", keyName, err)
		}
		sig = make([]byte, 2*size)
		rs.R.FillBytes(sig[:size])
		rs.S.FillBytes(sig[size:])
	}
	out := append(bytes.Clone(prefix), 0x84)
	out = codec.AppendBytes(out, protected)
	out = append(out, unprotected...)
	out = codec.AppendBytes(out, payload)
	return codec.AppendBytes(out, sig)
}

// handmade returns a v1 token signed by anchor-p256 whose claims are the
// default claims changed by edit.
func (g *gen) handmade(edit func(m map[int]any)) []byte {
	m := g.claimMap()
	if edit != nil {
		edit(m)
	}
	return g.sign1(tagsCWT, protES256, emptyMap, encodeMap(m), "anchor-p256")
}

// Re-encodings of a token that carry the same signed content: what the
// holder of a revoked token can send instead. stripCWTTag and
// addUnprotectedLabel take a token as token.Issue makes it with an ES256
// key, 61(18([h'A10126', {}, payload, r||s])).

// stripCWTTag returns the token without tag 61: 18(COSE_Sign1).
func stripCWTTag(tok []byte) []byte {
	mustPrefix(tok)
	return bytes.Clone(tok[2:])
}

// addUnprotectedLabel returns the token with {99: 0} as its unprotected
// header, a label nobody reads.
func addUnprotectedLabel(tok []byte) []byte {
	mustPrefix(tok)
	out := append(bytes.Clone(tok[:8]), 0xa1, 0x18, 0x63, 0x00)
	return append(out, tok[9:]...)
}

// otherS returns the token, which ends with a P-256 signature r||s, with
// the other valid ECDSA signature for the same r, (r, n-s).
func otherS(tok []byte) []byte {
	out := bytes.Clone(tok)
	sig := out[len(out)-32:]
	s := new(big.Int).SetBytes(sig)
	new(big.Int).Sub(elliptic.P256().Params().N, s).FillBytes(sig)
	return out
}

// reencode returns the token 18(COSE_Sign1) with unprotected, given
// encoded, as its unprotected header: the same signed token, which its
// holder can send instead.
func reencode(tok, unprotected []byte) []byte {
	if !bytes.HasPrefix(tok, tagSign1) {
		fail("token %x... is not tagged 18 alone", tok[:1])
	}
	items := must(codec.ReadArray(tok[len(tagSign1):], nil))
	if len(items) != 4 {
		fail("token: a COSE_Sign1 of %d items", len(items))
	}
	out := append(bytes.Clone(tagSign1), 0x84)
	out = append(out, items[0]...)
	out = append(out, unprotected...)
	out = append(out, items[2]...)
	return append(out, items[3]...)
}

func mustPrefix(tok []byte) {
	if !bytes.HasPrefix(tok, append(bytes.Clone(tagsCWT), 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0)) {
		fail("token %x... is not laid out as token.Issue makes a v1 token", tok[:9])
	}
}

// flipLast returns b with its last byte changed: a signature that no
// longer verifies.
func flipLast(b []byte) []byte {
	out := bytes.Clone(b)
	out[len(out)-1] ^= 0x01
	return out
}

// replace returns b with the only occurrence of old replaced by new (of the
// same length, so lengths stay right): a message changed after signing.
func replace(b []byte, old, new string) []byte {
	if bytes.Count(b, []byte(old)) != 1 || len(old) != len(new) {
		fail("replace %q by %q: not exactly one occurrence of the same length", old, new)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}
