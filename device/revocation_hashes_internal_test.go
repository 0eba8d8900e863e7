package device

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// referenceTokenHashes is tokenHashes as first written, with big integers
// and one buffer per encoding: the oracle the optimised one must agree
// with, hash for hash.
func referenceTokenHashes(rh, sent *[32]byte, tok []byte, key crypto.PublicKey) [][32]byte {
	dst := [][32]byte{*rh, *sent}
	var body []byte
	switch {
	case bytes.HasPrefix(tok, prefixCWT):
		body = tok[len(prefixCWT):]
	case bytes.HasPrefix(tok, prefixSign1):
		body = tok[len(prefixSign1):]
	default:
		return dst
	}
	items, err := codec.ReadArray(body, nil)
	if err != nil || len(items) != 4 {
		return dst
	}
	protected, err1 := codec.ReadBytes(items[0])
	payload, err2 := codec.ReadBytes(items[2])
	sig, err3 := codec.ReadBytes(items[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return dst
	}
	sigs := [][]byte{sig}
	if k, ok := key.(*ecdsa.PublicKey); ok && len(sig)%2 == 0 {
		n := k.Curve.Params().N
		half := len(sig) / 2
		if s := new(big.Int).SetBytes(sig[half:]); s.Sign() > 0 && s.Cmp(n) < 0 && (n.BitLen()+7)/8 == half {
			alt := bytes.Clone(sig)
			s.Sub(n, s).FillBytes(alt[half:])
			sigs = append(sigs, alt)
		}
	}
	for _, prefix := range [][]byte{prefixCWT, prefixSign1} {
		for _, sg := range sigs {
			b := append(bytes.Clone(prefix), 0x84)
			b = codec.AppendBytes(b, protected)
			b = append(b, 0xa0)
			b = codec.AppendBytes(b, payload)
			b = codec.AppendBytes(b, sg)
			if h := sha256.Sum256(b); !slices.Contains(dst, h) {
				dst = append(dst, h)
			}
		}
	}
	return dst
}

func sameHashes(a, b [][32]byte) bool {
	sort := func(x [][32]byte) [][32]byte {
		x = slices.Clone(x)
		slices.SortFunc(x, func(p, q [32]byte) int { return bytes.Compare(p[:], q[:]) })
		return x
	}
	return slices.Equal(sort(a), sort(b))
}

// checkTokenHashes compares tokenHashes with the reference for tok.
func checkTokenHashes(t *testing.T, tok []byte, key crypto.PublicKey) [][32]byte {
	t.Helper()
	rh, sent := sha256.Sum256([]byte("revocation hash")), sha256.Sum256(tok)
	var buf [maxTokenHashes][32]byte
	got := tokenHashes(buf[:0], &rh, &sent, tok, key)
	want := referenceTokenHashes(&rh, &sent, tok, key)
	if !sameHashes(got, want) {
		t.Fatalf("tokenHashes(%x) = %x, want %x", tok, got, want)
	}
	if len(got) > maxTokenHashes {
		t.Fatalf("%d hashes, at most %d", len(got), maxTokenHashes)
	}
	return got
}

// issueWith issues a token signed by key, as token.Issue lays it out:
// 61(18([protected, {}, payload, signature])).
func issueWith(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sc, _ := token.ParseScope("read-data")
	now := time.Unix(1700000000, 0)
	profile := token.ProfileV2
	if k, ok := key.Public().(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		profile = token.ProfileV1
	}
	tok, err := token.Issue(&token.Claims{
		Issuer: "issuer", Subject: "alice", Audience: []string{"ep:hvac-1"}, Expiry: now.Add(time.Hour),
		NotBefore: now, IssuedAt: now, ID: []byte("cti"), Scope: sc, Key: &pop.PublicKey,
	}, key, &token.IssueOptions{Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// layouts returns tok (61(18([...])) with an empty unprotected header) and
// encodings of the same signed token: tag 61 stripped, an unprotected
// header label, a byte string with a longer length head than needed.
func layouts(tok []byte) map[string][]byte {
	items, _ := codec.ReadArray(tok[3:], nil)
	protected, _ := codec.ReadBytes(items[0])
	payload, _ := codec.ReadBytes(items[2])
	sig, _ := codec.ReadBytes(items[3])
	build := func(prefix []byte, unprotected []byte, longPayload bool) []byte {
		b := append(bytes.Clone(prefix), 0x84)
		b = codec.AppendBytes(b, protected)
		b = append(b, unprotected...)
		if longPayload {
			b = append(b, 0x5a, byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)))
			b = append(b, payload...)
		} else {
			b = codec.AppendBytes(b, payload)
		}
		return codec.AppendBytes(b, sig)
	}
	return map[string][]byte{
		"as issued":            tok,
		"tag 61 stripped":      tok[2:],
		"unprotected label":    build(prefixCWT, []byte{0xa1, 0x18, 0x63, 0x00}, false),
		"stripped and label":   build(prefixSign1, []byte{0xa1, 0x18, 0x63, 0x00}, false),
		"long payload head":    build(prefixCWT, []byte{0xa0}, true),
		"truncated":            tok[:len(tok)-1],
		"no tag":               tok[3:],
		"signature not a bstr": append(bytes.Clone(tok[:len(tok)-len(sig)-2]), 0x00),
	}
}

// withOtherS returns tok with its ECDSA signature (r, s) replaced by
// (r, n-s), or with s set to v when v is not nil.
func withOtherS(tok []byte, n *big.Int, v *big.Int) []byte {
	out := bytes.Clone(tok)
	half := (n.BitLen() + 7) / 8
	s := out[len(out)-half:]
	if v == nil {
		v = new(big.Int).Sub(n, new(big.Int).SetBytes(s))
	}
	v.FillBytes(s)
	return out
}

func TestTokenHashesMatchReference(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []struct {
		name string
		key  crypto.Signer
		n    *big.Int // nil: not ECDSA
	}{
		{"ES256", p256, elliptic.P256().Params().N},
		{"ES384", p384, elliptic.P384().Params().N},
		{"EdDSA", ed, nil},
	} {
		tok := issueWith(t, k.key)
		toks := layouts(tok)
		if k.n != nil {
			one := big.NewInt(1)
			toks["n-s"] = withOtherS(tok, k.n, nil)
			toks["n-s stripped"] = withOtherS(tok, k.n, nil)[2:]
			toks["s = 1"] = withOtherS(tok, k.n, one)
			toks["s = n-1"] = withOtherS(tok, k.n, new(big.Int).Sub(k.n, one))
			toks["s = 0"] = withOtherS(tok, k.n, new(big.Int))
			toks["s = n"] = withOtherS(tok, k.n, k.n)
			toks["s = 2^bits-1"] = withOtherS(tok, k.n, new(big.Int).Sub(new(big.Int).Lsh(one, uint(k.n.BitLen())), one))
		}
		for name, v := range toks {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				for _, key := range []crypto.PublicKey{k.key.Public(), &p256.PublicKey, &p384.PublicKey, nil} {
					checkTokenHashes(t, v, key)
				}
			})
		}
		t.Run(k.name+"/every canonical encoding found", func(t *testing.T) {
			// Whatever encoding arrives, the hash of each canonical one is
			// among those looked up: the rule of docs/PROTOCOL.md section 8.
			canon := []string{"as issued", "tag 61 stripped"}
			if k.n != nil {
				canon = append(canon, "n-s", "n-s stripped")
			}
			for name, v := range toks {
				if name == "truncated" || name == "no tag" || name == "signature not a bstr" || name[:2] == "s " {
					continue
				}
				got := checkTokenHashes(t, v, k.key.Public())
				for _, c := range canon {
					if h := sha256.Sum256(toks[c]); !slices.Contains(got, h) {
						t.Errorf("received %s: the hash of %s is not looked up", name, c)
					}
				}
			}
		})
	}
}

// FuzzTokenHashes feeds arbitrary bytes, as received, to tokenHashes: it
// must never panic and must agree with the reference.
func FuzzTokenHashes(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, k := range []crypto.Signer{p256, p384} {
		tok := issueWith(f, k)
		for _, v := range layouts(tok) {
			f.Add(v, uint8(0))
			f.Add(v, uint8(1))
		}
	}
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40}, uint8(2))
	keys := []crypto.PublicKey{&p256.PublicKey, &p384.PublicKey, nil}
	f.Fuzz(func(t *testing.T, tok []byte, k uint8) {
		checkTokenHashes(t, tok, keys[int(k)%len(keys)])
	})
}

func TestTokenHashesAllocateNothing(t *testing.T) {
	if raceOn {
		t.Skip("the race detector drops pooled values")
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := issueWith(t, k)
	for name, v := range layouts(tok) {
		if name == "truncated" || name == "signature not a bstr" {
			continue // a decoding error may allocate; verified tokens decode
		}
		rh, sent := sha256.Sum256([]byte("rh")), sha256.Sum256(v)
		var buf [maxTokenHashes][32]byte
		if n := testing.AllocsPerRun(50, func() { tokenHashes(buf[:0], &rh, &sent, v, &k.PublicKey) }); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// TestRevocationCheckAllocatesNothing: the check of a token that is not
// revoked, against a list of hashes and an update at every bound (the
// anchor has no KeyID: its thumbprint is looked up), allocates nothing.
func TestRevocationCheckAllocatesNothing(t *testing.T) {
	if raceOn {
		t.Skip("the race detector drops pooled values")
	}
	a, claims, anchor, tok, tokBytes := benchAgent(t, 100)
	u := &token.StatusUpdate{Issuer: claims.Issuer, Sequence: 1, Time: time.Unix(1700000000, 0), Audience: "ep:hvac-1",
		Hashes: [][32]byte{{1}}, TokenIDs: [][]byte{{2}}, Subjects: []token.SubjectCutoff{{Subject: "s", Before: time.Unix(1, 0)}},
		Anchors: []token.AnchorCutoff{{KeyID: []byte("kid"), Before: time.Unix(1, 0)}}}
	installUpdate(t, a, u)
	hash, rh := sha256.Sum256(tokBytes), tok.RevocationHash()
	check := func() {
		if err := a.checkRevoked(claims, anchor, tokBytes, func() *[32]byte { return &hash }, func() *[32]byte { return &rh }, nil); err != nil {
			t.Fatal(err)
		}
	}
	check()
	if n := testing.AllocsPerRun(50, check); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

func installUpdate(t testing.TB, a *Agent, u *token.StatusUpdate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, err := token.SignStatus(u, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.ParseStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.status.install(raw, s.UnverifiedUpdate(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestAnchorCutoffByRememberedThumbprint: an anchor cut-off naming the
// thumbprint of a KeyID-less anchor revokes its tokens on every check,
// with the thumbprint remembered or not, for more anchor keys than are
// remembered.
func TestAnchorCutoffByRememberedThumbprint(t *testing.T) {
	a, claims, anchor, _, _ := benchAgent(t, 0)
	tp, err := token.Thumbprint(anchor.Key)
	if err != nil {
		t.Fatal(err)
	}
	installUpdate(t, a, &token.StatusUpdate{Issuer: claims.Issuer, Sequence: 1, Time: claims.IssuedAt, Audience: "ep:hvac-1",
		Anchors: []token.AnchorCutoff{{KeyID: tp, Before: claims.IssuedAt}}})
	others := make([]trust.Anchor, maxThumbprints+1)
	for i := range others {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		others[i] = trust.Anchor{Issuer: claims.Issuer, Key: &k.PublicKey}
	}
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			var re *RevocationError
			if err := a.statusRevoked(claims, anchor, nil, nil); !errors.As(err, &re) || re.Entry != "anchor cut-off" {
				t.Fatalf("token of the cut-off anchor: %v", err)
			}
			// An ECDSA key equal to the anchor's but another value: found by
			// computing its thumbprint.
			cp := *anchor.Key.(*ecdsa.PublicKey)
			other := *anchor
			other.Key = &cp
			if err := a.statusRevoked(claims, &other, nil, nil); !errors.As(err, &re) {
				t.Fatalf("the same key as another value: %v", err)
			}
			for i := range others {
				if err := a.statusRevoked(claims, &others[i], nil, nil); err != nil {
					t.Fatalf("token of another anchor %d: %v", i, err)
				}
				got, err := a.thumbprints.get(others[i].Key)
				want, _ := token.Thumbprint(others[i].Key)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("thumbprint of anchor %d: %x, %v; want %x", i, got, err, want)
				}
			}
		})
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for range 2 {
		got, err := a.thumbprints.get(ed.Public())
		want, _ := token.Thumbprint(ed.Public())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Ed25519 thumbprint: %x, %v; want %x", got, err, want)
		}
	}
	if _, err := a.thumbprints.get("not a key"); err == nil {
		t.Fatal("the thumbprint of a string")
	}
}
