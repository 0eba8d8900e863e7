package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// Link is one delegation (docs/PROTOCOL.md section 13): its parent's
// holder passes a narrower part of the parent to Key. On the wire it is an
// untagged COSE_Sign1 signed with the parent's key (the token's cnf key for
// the first link, the previous link's key after that) over the parent's
// hash:
//
//	LinkClaims = {1: key: bstr, 2: scope: uint / tstr / [+ permission],
//	              3: exp: uint, ? 4: nbf: uint, ? 5: aud: [+ tstr],
//	              ? 6: depth: uint, ? 7: sub: tstr}
type Link struct {
	// Key is the delegate's public key, which signs requests (or the next
	// link).
	Key crypto.PublicKey
	// Scope is what the link passes on. For a selection it is the zero
	// Scope until [Chain.Verify] resolves it against the parent.
	Scope Scope
	// Selection, when non-zero, keeps the parent's i-th permission for
	// each bit i set (the least significant bit is permission 0).
	Selection uint32
	// Expiry is the end of the link's validity: required, at most the
	// parent's.
	Expiry time.Time
	// NotBefore is the start of its validity; zero: the parent's.
	NotBefore time.Time
	// Audience restricts the devices; nil: the parent's.
	Audience []string
	// Depth is how many links may follow this one (0: none).
	Depth int
	// Subject names the delegate for the audit log; it is the delegator's
	// say-so, not authenticated further.
	Subject string
	// Hash is the link's hash, which names it as a parent and on
	// revocation lists: set by [Chain.Verify] and [Delegate], zero in
	// [Chain.UnverifiedLinks].
	Hash [32]byte
}

// Link payload keys (docs/PROTOCOL.md, "Numbered keys").
const (
	linkKey = 1 + iota
	linkScope
	linkExp
	linkNbf
	linkAud
	linkDepth
	linkSub
)

// linkAADPrefix starts the external additional data of a link's
// signature (RFC 9052 section 4.3), followed by the parent's hash: it keeps
// a link's signature from verifying as a request's or a token's, and binds
// the link to its parent.
var linkAADPrefix = []byte("SDA delegation")

// maxSelection bounds a selection: one bit per permission of a scope.
const maxSelection = 1<<MaxScopeItems - 1

// linkAAD returns the external additional data of a link below the parent
// whose hash is parentHash, in buf.
func linkAAD(buf *[14 + 32]byte, parentHash [32]byte) []byte {
	copy(buf[:], linkAADPrefix)
	copy(buf[14:], parentHash[:])
	return buf[:]
}

// appendLinkKey appends the delegate's key as a byte string: the SEC1
// compressed point of an ECDSA key, the 32 bytes of an Ed25519 key.
func appendLinkKey(b []byte, pub crypto.PublicKey) ([]byte, error) {
	alg, err := AlgorithmFor(pub)
	if err != nil {
		return nil, err
	}
	if alg == AlgEdDSA {
		return codec.AppendBytes(b, pub.(ed25519.PublicKey)), nil
	}
	pt, err := pub.(*ecdsa.PublicKey).Bytes() // 04 || x || y
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	n := (len(pt) - 1) / 2
	b = codec.AppendHead(b, 2, uint64(1+n))
	b = append(b, 2|pt[len(pt)-1]&1)
	return append(b, pt[1:1+n]...), nil
}

// parseLinkKey decodes a link's key by its length: 33 bytes a compressed
// P-256 point, 49 a compressed P-384 point, 32 an Ed25519 key (weak keys
// refused with ErrWeakKey).
func parseLinkKey(f string, k []byte) (crypto.PublicKey, error) {
	var curve elliptic.Curve
	switch len(k) {
	case ed25519.PublicKeySize:
		if err := checkEd25519(k); err != nil {
			return nil, &ParseError{Field: f, Err: err}
		}
		return ed25519.PublicKey(bytes.Clone(k)), nil
	case 33:
		curve = elliptic.P256()
	case 49:
		curve = elliptic.P384()
	default:
		return nil, &ParseError{Field: f, Err: fmt.Errorf("%w: a key of %d bytes", ErrUnsupportedKey, len(k))}
	}
	pub, err := decompressPoint(curve, k)
	if err != nil {
		return nil, &ParseError{Field: f, Err: err}
	}
	return pub, nil
}

// decompressPoint decodes a SEC1 compressed point (0x02 or 0x03, then x)
// on curve.
func decompressPoint(curve elliptic.Curve, k []byte) (*ecdsa.PublicKey, error) {
	n := len(k) - 1
	if n < 1 || k[0] != 2 && k[0] != 3 {
		return nil, fmt.Errorf("%w: not a compressed point", ErrUnsupportedKey)
	}
	x, y := elliptic.UnmarshalCompressed(curve, k)
	if x == nil {
		return nil, fmt.Errorf("%w: compressed point not on the curve", ErrUnsupportedKey)
	}
	point := make([]byte, 1+2*n)
	point[0] = 4
	x.FillBytes(point[1 : 1+n])
	y.FillBytes(point[1+n:])
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pub, nil
}

// encodeLinkClaims returns the deterministic encoding of l's payload.
func encodeLinkClaims(l *Link) ([]byte, error) {
	if l == nil {
		return nil, invalid("nil link")
	}
	if l.Key == nil {
		return nil, invalid("link: key is required")
	}
	if l.Selection > maxSelection {
		return nil, invalid("link: selection %#x beyond %d permissions", l.Selection, MaxScopeItems)
	}
	if l.Selection == 0 && l.Scope.IsZero() {
		return nil, invalid("link: scope or selection is required")
	}
	exp, err := unixTime("link exp", l.Expiry, true)
	if err != nil {
		return nil, err
	}
	nbf, err := unixTime("link nbf", l.NotBefore, false)
	if err != nil {
		return nil, err
	}
	if l.Audience != nil {
		if err := checkAudience(l.Audience); err != nil {
			return nil, invalid("link aud: %v", err)
		}
		for _, a := range l.Audience {
			if !utf8.ValidString(a) {
				return nil, invalid("link aud %q is not valid UTF-8", a)
			}
		}
	}
	if l.Depth < 0 || l.Depth > MaxDelegationDepth {
		return nil, invalid("link depth %d, want 0..%d", l.Depth, MaxDelegationDepth)
	}
	if len(l.Subject) > MaxLinkSubjectLength || !utf8.ValidString(l.Subject) {
		return nil, invalid("link sub: at most %d bytes of UTF-8", MaxLinkSubjectLength)
	}
	n := 3
	for _, present := range []bool{!l.NotBefore.IsZero(), l.Audience != nil, l.Depth > 0, l.Subject != ""} {
		if present {
			n++
		}
	}
	b := make([]byte, 0, 64)
	b = codec.AppendHead(b, 5, uint64(n))
	if b, err = appendLinkKey(codec.AppendUint(b, linkKey), l.Key); err != nil {
		return nil, err
	}
	b = codec.AppendUint(b, linkScope)
	if l.Selection != 0 {
		b = codec.AppendUint(b, uint64(l.Selection))
	} else {
		enc, err := l.Scope.MarshalCBOR()
		if err != nil {
			return nil, err
		}
		b = append(b, enc...)
	}
	b = codec.AppendUint(codec.AppendUint(b, linkExp), exp)
	if !l.NotBefore.IsZero() {
		b = codec.AppendUint(codec.AppendUint(b, linkNbf), nbf)
	}
	if l.Audience != nil {
		b = codec.AppendHead(codec.AppendUint(b, linkAud), 4, uint64(len(l.Audience)))
		for _, a := range l.Audience {
			b = codec.AppendText(b, a)
		}
	}
	if l.Depth > 0 {
		b = codec.AppendUint(codec.AppendUint(b, linkDepth), uint64(l.Depth))
	}
	if l.Subject != "" {
		b = codec.AppendText(codec.AppendUint(b, linkSub), l.Subject)
	}
	return b, nil
}

// decodeLinkClaims decodes a link's payload strictly: integer keys 1..7,
// ascending, each once, exact types, every bound.
func decodeLinkClaims(f string, data []byte) (*Link, error) {
	var raw [linkSub + 1][]byte
	if err := readIntKeyMap(f, data, raw[:]); err != nil {
		return nil, err
	}
	for _, k := range []int{linkKey, linkScope, linkExp} {
		if raw[k] == nil {
			return nil, malformed(f, "key %d missing", k)
		}
	}
	l := &Link{}
	kb, err := codec.ReadBytes(raw[linkKey])
	if err != nil {
		return nil, wrapMalformed(f+".key", err)
	}
	if l.Key, err = parseLinkKey(f+".key", kb); err != nil {
		return nil, err
	}
	if s := raw[linkScope]; s[0]>>5 == 0 {
		sel, err := codec.ReadUint(s)
		if err != nil {
			return nil, wrapMalformed(f+".scope", err)
		}
		if sel == 0 || sel > maxSelection {
			return nil, malformed(f+".scope", "selection %#x, want 1..%#x", sel, maxSelection)
		}
		l.Selection = uint32(sel)
	} else if l.Scope, err = decodeScope(s); err != nil {
		if pe, ok := err.(*ParseError); ok {
			return nil, &ParseError{Field: f + "." + pe.Field, Err: pe.Err}
		}
		return nil, wrapMalformed(f+".scope", err)
	}
	if l.Expiry, err = decodeTime(raw[linkExp]); err != nil {
		return nil, wrapMalformed(f+".exp", err)
	}
	if v := raw[linkNbf]; v != nil {
		if l.NotBefore, err = decodeTime(v); err != nil {
			return nil, wrapMalformed(f+".nbf", err)
		}
	}
	if v := raw[linkAud]; v != nil {
		if l.Audience, err = readTextArray(f+".aud", v, MaxAudiences); err != nil {
			return nil, err
		}
		if err := checkAudience(l.Audience); err != nil {
			return nil, wrapMalformed(f+".aud", err)
		}
	}
	if v := raw[linkDepth]; v != nil {
		d, err := codec.ReadUint(v)
		if err != nil {
			return nil, wrapMalformed(f+".depth", err)
		}
		if d < 1 || d > MaxDelegationDepth {
			return nil, malformed(f+".depth", "%d, want 1..%d (0 is encoded by leaving it out)", d, MaxDelegationDepth)
		}
		l.Depth = int(d)
	}
	if v := raw[linkSub]; v != nil {
		if l.Subject, err = codec.ReadText(v); err != nil {
			return nil, wrapMalformed(f+".sub", err)
		}
		if l.Subject == "" || len(l.Subject) > MaxLinkSubjectLength {
			return nil, malformed(f+".sub", "%d bytes, want 1..%d", len(l.Subject), MaxLinkSubjectLength)
		}
	}
	return l, nil
}

// parsedLink is a strictly parsed, not yet verified link. Its slices alias
// the chain's copy of the input.
type parsedLink struct {
	raw       []byte
	protected []byte
	alg       Algorithm
	payload   []byte
	signature []byte
	claims    *Link
}

// parseLink parses one encoded link: an untagged COSE_Sign1 whose
// protected header is exactly {1: alg} as the SDK writes it, whose
// unprotected header is empty, and whose signature has its algorithm's
// size.
func parseLink(f string, data []byte) (*parsedLink, error) {
	if len(data) > MaxLinkSize {
		return nil, malformed(f, "%d bytes exceed %d", len(data), MaxLinkSize)
	}
	var buf [4][]byte
	items, err := codec.ReadArray(data, buf[:0])
	if err != nil {
		return nil, wrapMalformed(f, err)
	}
	if len(items) != 4 {
		return nil, malformed(f, "COSE_Sign1 of %d elements, want 4", len(items))
	}
	p := &parsedLink{raw: data}
	if p.protected, err = codec.ReadBytes(items[0]); err != nil {
		return nil, wrapMalformed(f+".protected", err)
	}
	switch {
	case bytes.Equal(p.protected, protectedES256):
		p.alg = AlgES256
	case bytes.Equal(p.protected, protectedES384):
		p.alg = AlgES384
	case bytes.Equal(p.protected, protectedEdDSA):
		p.alg = AlgEdDSA
	default:
		return nil, malformed(f+".protected", "must be exactly {1: alg} of ES256, ES384 or EdDSA")
	}
	if !bytes.Equal(items[1], emptyMap) {
		return nil, malformed(f+".unprotected", "must be empty")
	}
	if p.payload, err = codec.ReadBytes(items[2]); err != nil {
		return nil, wrapMalformed(f+".payload", err)
	}
	if p.signature, err = codec.ReadBytes(items[3]); err != nil {
		return nil, wrapMalformed(f+".signature", err)
	}
	if len(p.signature) != p.alg.signatureSize() {
		return nil, malformed(f+".signature", "%d bytes, want %d for %v", len(p.signature), p.alg.signatureSize(), p.alg)
	}
	if p.claims, err = decodeLinkClaims(f+".claims", p.payload); err != nil {
		return nil, err
	}
	return p, nil
}

// hash returns the link's hash below a parent of hash parentHash: the
// SHA-256 of its ToBeSigned.
func (p *parsedLink) hash(parentHash [32]byte) [32]byte {
	var aad [14 + 32]byte
	var buf [MaxLinkSize + 64]byte
	return sha256.Sum256(appendSigStructure(buf[:0], p.protected, linkAAD(&aad, parentHash), p.payload))
}

// verify checks the link's signature with the parent's key, which pins
// the algorithm, and returns the link's hash.
func (p *parsedLink) verify(parentKey crypto.PublicKey, parentHash [32]byte) ([32]byte, error) {
	var aad [14 + 32]byte
	var buf [MaxLinkSize + 64]byte
	tbs := appendSigStructure(buf[:0], p.protected, linkAAD(&aad, parentHash), p.payload)
	if err := verifySignature(parentKey, p.alg, tbs, p.signature); err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(tbs), nil
}

// SignLink encodes l deterministically and signs it with key under the
// parent whose hash is parentHash (the token's [Token.RevocationHash] for
// the first link, the previous link's Hash after that), returning the
// encoded link, an untagged COSE_Sign1. It checks the encoding only, not
// that the link narrows its parent: it is for conformance tests and tools;
// [Delegate] is the way to delegate. l.Hash is ignored.
func SignLink(l *Link, parentHash [32]byte, key crypto.Signer, rnd io.Reader) ([]byte, error) {
	payload, err := encodeLinkClaims(l)
	if err != nil {
		return nil, err
	}
	var aad [14 + 32]byte
	out, err := signSign1AAD(nil, payload, key, nil, rnd, MaxLinkSize, linkAAD(&aad, parentHash))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cloneLink returns a deep copy of l.
func cloneLink(l *Link) Link {
	c := *l
	c.Audience = slices.Clone(l.Audience)
	return c
}
