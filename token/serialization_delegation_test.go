package token_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// The keys of the delegation layouts: Ed25519 keys from fixed seeds, whose
// signatures are deterministic (RFC 8032), so whole tokens and links are
// pinned; the delegate is the P-256 key of fixedPoP.
const (
	delegAnchorPub = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" // seed 01 x 32
	delegPopPub    = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394" // seed 02 x 32
	delegTokenSig  = "ccbd7f9df32d0c7b725d060087084259ad5f24a67b205c2aec4a96fb1867cb6f" +
		"704f3dd445d80c4408a078b46a47649c393656e2d53ebc2b128edd64a0b09e01"
	delegTokenHash = "de2c2a0f56b1ad96530259f76f4ea430ef70c83ad43a79015c175fb64797919a"
	delegLinkSig   = "9d02e6e0359c8fa142bff64ce0e96fc711f72381a04fcf4379b32114adaa40c9" +
		"0b8c26584089ff8155bc88be1eab07f22dbddc9d9eec84dcfc591ce8be538006"
	delegLinkHash = "9dcfcb9b824c3c235806a5405f747a04fa7ad65517719b05d517c3ba009eb67d"
)

// TestSerializationDelegation pins the delegation formats (docs/PROTOCOL.md
// section 13) byte for byte: the delegation claim in a v2 token, a link in
// the selection form, its Sig_structure with the external AAD, the chain,
// the delegated token and a 4-element bundle.
func TestSerializationDelegation(t *testing.T) {
	anchor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	pop := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	delegate := fixedPoP(t)
	claims := &token.Claims{
		Issuer:     "mbed.ta.TEST",
		Audience:   []string{"ep:hvac-1"},
		Expiry:     time.Unix(1800000000, 0),
		Scope:      mustScope(t, "read-data configure"),
		Key:        pop.Public(),
		Delegation: &token.Delegation{Depth: 1, Operations: []string{"read-data"}},
	}
	tok, err := token.Issue(claims, anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	wantTok := annotated{
		{"d8 3d d2 84", "tags 61(18(, COSE_Sign1: array of 4"},
		{"43 a1 01 27 a0", "protected {1: -8} (EdDSA), unprotected {}"},
		{"58 75", "payload: bstr of 117 bytes"},
		{"a6", "  map of 6 claims"},
		{"01 6c" + hexOf("mbed.ta.TEST"), "  1 iss"},
		{"03 81 69" + hexOf("ep:hvac-1"), "  3 aud"},
		{"04 1a 6b49d200", "  4 exp: 1800000000"},
		{"08 a1 01 a3 01 01 20 06 21 58 20" + delegPopPub, "  8 cnf: {1: COSE_Key OKP Ed25519}"},
		{"09 73" + hexOf("read-data configure"), "  9 scope: text(19)"},
		{"3a 00010000", "  -65537: the delegation claim, after every positive key"},
		{"a2", "    Delegation: map of 2"},
		{"01 01", "    1 depth: 1"},
		{"02 81 69" + hexOf("read-data"), "    2 operations: [\"read-data\"]"},
		{"58 40" + delegTokenSig, "signature: bstr(64), Ed25519 (deterministic)"},
	}.bytes(t)
	if !bytes.Equal(tok, wantTok) {
		t.Fatalf("delegable token\n got %x\nwant %x", tok, wantTok)
	}
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	verified, err := parsed.Verify(anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	if h := parsed.RevocationHash(); hex.EncodeToString(h[:]) != delegTokenHash {
		t.Fatalf("token hash %x, want %s", h, delegTokenHash)
	}

	// The first link, in the selection form, from the token's key to the
	// delegate's.
	dt, err := token.Delegate(tok, pop, &token.DelegationSpec{To: delegate.Public(), Scope: mustScope(t, "read-data"), Expiry: time.Unix(1799990000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	payload := annotated{
		{"a3", "map of 3"},
		{"01 58 21 02" + popX, "  1 key: bstr(33), SEC1 compressed P-256 point (02: y even)"},
		{"02 01", "  2 scope: selection 0b1, the parent's permission 0 (read-data)"},
		{"03 1a 6b49aaf0", "  3 exp: 1799990000"},
	}.bytes(t)
	link := annotated{
		{"84", "COSE_Sign1, untagged: array of 4"},
		{"43 a1 01 27", "protected: {1: -8}, pinned by the parent's (token's) Ed25519 key"},
		{"a0", "unprotected: empty, always"},
		{"58 2d" + hex.EncodeToString(payload), "payload: bstr(45), the LinkClaims above"},
		{"58 40" + delegLinkSig, "signature: bstr(64) by the token's cnf key"},
	}.bytes(t)
	if len(link) != 119 {
		t.Fatalf("a selection link of %d bytes, want 119", len(link))
	}
	tbs := annotated{
		{"84 6a" + hexOf("Signature1"), "Sig_structure: [\"Signature1\","},
		{"43 a1 01 27", "  protected,"},
		{"58 2e" + hexOf("SDA delegation") + delegTokenHash, "  external_aad: bstr(46) \"SDA delegation\" || the parent's hash (the token's revocation hash),"},
		{"58 2d" + hex.EncodeToString(payload), "  payload]"},
	}.bytes(t)
	if !ed25519.Verify(pop.Public().(ed25519.PublicKey), tbs, link[len(link)-64:]) {
		t.Fatal("the link's signature does not verify over the Sig_structure above")
	}
	if h := sha256.Sum256(tbs); hex.EncodeToString(h[:]) != delegLinkHash {
		t.Fatalf("link hash (SHA-256 of the Sig_structure) %x, want %s", h, delegLinkHash)
	}
	wantDT := annotated{
		{"82", "DelegatedToken: array of 2"},
		{"58 c2" + hex.EncodeToString(tok), "  token: bstr(194)"},
		{"81", "  Chain: array of 1"},
		{hex.EncodeToString(link), "    the link"},
	}.bytes(t)
	if !bytes.Equal(dt, wantDT) {
		t.Fatalf("delegated token\n got %x\nwant %x", dt, wantDT)
	}
	d, err := token.ParseDelegatedToken(dt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Chain.Verify(verified, parsed.RevocationHash())
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(v.Links[0].Hash[:]) != delegLinkHash {
		t.Fatalf("VerifiedChain link hash %x, want %s", v.Links[0].Hash, delegLinkHash)
	}

	// Every optional key of a link payload, in order.
	full, err := token.ExportLinkPayload(&token.Link{Key: anchor.Public(), Scope: mustScope(t, "read-data"), Expiry: time.Unix(1799990000, 0),
		NotBefore: time.Unix(1700000000, 0), Audience: []string{"ep:hvac-1"}, Depth: 1, Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	wantFull := annotated{
		{"a7", "map of 7"},
		{"01 58 20" + delegAnchorPub, "  1 key: bstr(32), an Ed25519 key"},
		{"02 69" + hexOf("read-data"), "  2 scope: explicit, text(9)"},
		{"03 1a 6b49aaf0", "  3 exp"},
		{"04 1a 6553f100", "  4 nbf: 1700000000"},
		{"05 81 69" + hexOf("ep:hvac-1"), "  5 aud: array(1)"},
		{"06 01", "  6 depth: 1"},
		{"07 63" + hexOf("bob"), "  7 sub: text(3)"},
	}.bytes(t)
	if !bytes.Equal(full, wantFull) {
		t.Fatalf("link payload with every key\n got %x\nwant %x", full, wantFull)
	}

	// The bundle: a 4th element, the chain; signed by the last key.
	req, err := token.SignRequest(&token.Request{Nonce: 7, Operation: readData(), Token: tok, Chain: d.Chain.Bytes()}, delegate, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := annotated{
		{"d2 84 43 a1 01 26 a0", "18(COSE_Sign1): protected {1: -7} (ES256: the delegate's P-256 key), unprotected {}"},
		{"59 014b", "payload: bstr of 331 bytes"},
		{"84", "  Bundle: array of 4"},
		{"07", "  nonce"},
		{"83 01 69" + hexOf("read-data") + "80", "  Operation"},
		{"58 c2" + hex.EncodeToString(tok), "  token: bstr(194)"},
		{"81" + hex.EncodeToString(link), "  chain: array of 1 link, not wrapped in a bstr"},
		{"58 40", "signature: bstr(64), r||s, by the last key of the chain"},
	}.bytes(t)
	if len(req) != len(wantReq)+64 || !bytes.Equal(req[:len(wantReq)], wantReq) {
		t.Fatalf("4-element request\n got %x\nwant %x + 64 signature bytes", req, wantReq)
	}
}
