package token

import (
	"bytes"
	"crypto"
	"io"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// DelegatedToken is what a delegate holds (docs/PROTOCOL.md section 13):
// the access token and the chain of links down to the delegate's key.
//
//	DelegatedToken = [token: bstr, chain: Chain]
type DelegatedToken struct {
	Token []byte // the access token, as issued
	Chain *Chain
}

// ParseDelegatedToken parses a delegated token strictly: the array, the
// token (as [Parse] does) and the chain (as [ParseChain] does). It does no
// cryptography; errors match [ErrMalformed].
func ParseDelegatedToken(data []byte) (*DelegatedToken, error) {
	const f = "delegated_token"
	if len(data) > MaxDelegatedTokenSize {
		return nil, malformed(f, "%d bytes exceed %d", len(data), MaxDelegatedTokenSize)
	}
	if err := codec.Check(data); err != nil {
		return nil, wrapMalformed(f, err)
	}
	if len(data) == 0 || data[0]>>5 != 4 {
		return nil, malformed(f, "not an array")
	}
	raw := bytes.Clone(data)
	var buf [2][]byte
	items, err := codec.ReadArray(raw, buf[:0])
	if err != nil {
		return nil, wrapMalformed(f, err)
	}
	if len(items) != 2 {
		return nil, malformed(f, "%d elements, want 2", len(items))
	}
	tok, err := codec.ReadBytes(items[0])
	if err != nil {
		return nil, wrapMalformed(f+".token", err)
	}
	if _, err := Parse(tok); err != nil {
		return nil, err
	}
	chain, err := parseChainItem(items[1])
	if err != nil {
		return nil, err
	}
	return &DelegatedToken{Token: bytes.Clone(tok), Chain: chain}, nil
}

// Bytes returns the encoded delegated token. A nil Chain is written as an
// empty array, which ParseDelegatedToken refuses. nil for a nil
// DelegatedToken.
func (d *DelegatedToken) Bytes() []byte {
	if d == nil {
		return nil
	}
	chain := d.Chain.Bytes()
	if chain == nil {
		chain = []byte{0x80}
	}
	b := make([]byte, 0, 1+bstrSize(len(d.Token))+len(chain))
	b = appendBstr(append(b, 0x82), d.Token)
	return append(b, chain...)
}

// DelegationSpec is what [Delegate] passes on.
type DelegationSpec struct {
	// To is the delegate's public key (required).
	To crypto.PublicKey
	// Scope is what is passed on (required). It is encoded as a selection
	// of the parent's permissions when each of its permissions equals one
	// of the parent's, and otherwise explicitly, when it is provably within
	// the parent's scope ([Scope.Within]).
	Scope Scope
	// Expiry is the end of the delegation (required), at most the
	// parent's. [Delegate] truncates it to whole seconds, the precision
	// of the wire's NumericDate (RFC 8392 section 2), before it checks
	// and encodes it: an Expiry within the parent's last second, such as
	// now.Add(d) landing on it, is the parent's exp.
	Expiry time.Time
	// NotBefore is the start; zero: the parent's. Truncated to whole
	// seconds as Expiry is.
	NotBefore time.Time
	// Audience restricts the devices to some of the parent's; nil: the
	// parent's.
	Audience []string
	// Depth is how many links the delegate may add below (0: none).
	Depth int
	// Subject names the delegate in the devices' audit logs.
	Subject string
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Delegate adds a link below holder (an access token or a
// [DelegatedToken]) to spec.To, signed with key, which must be the key
// holder is bound to (the token's cnf key, or the last link's), and
// returns the encoded DelegatedToken. It refuses, with the same typed
// errors as [Chain.Verify], anything a device would refuse (not delegable,
// too deep, not narrower, a loop); it reads the holder's token and links
// without verifying their signatures. Bad arguments are [ErrInvalid].
func Delegate(holder []byte, key crypto.Signer, spec *DelegationSpec) ([]byte, error) {
	if key == nil || spec == nil {
		return nil, invalid("nil key or spec")
	}
	if spec.To == nil || spec.Scope.IsZero() || spec.Expiry.IsZero() {
		return nil, invalid("delegation: To, Scope and Expiry are required")
	}
	if _, err := AlgorithmFor(spec.To); err != nil {
		return nil, err
	}
	tokBytes := holder
	var chain *Chain
	if len(holder) > 0 && holder[0] == 0x82 {
		d, err := ParseDelegatedToken(holder)
		if err != nil {
			return nil, err
		}
		tokBytes, chain = d.Token, d.Chain
	}
	t, err := Parse(tokBytes)
	if err != nil {
		return nil, err
	}
	claims := t.claims
	if claims.Delegation == nil {
		return nil, refuse(0, "depth", ErrNotDelegable, "the token carries no delegation claim")
	}
	end := tokenHolder(claims, t.RevocationHash())
	keys := []crypto.PublicKey{claims.Key}
	n := 0
	if chain != nil {
		v, err := chain.walk(claims, end.hash, false)
		if err != nil {
			return nil, err
		}
		last := v.Links[len(v.Links)-1]
		end = linkParent{key: last.Key, scope: v.Claims.Scope, exp: v.Claims.Expiry, nbf: v.Claims.NotBefore, aud: v.Claims.Audience, hash: last.Hash}
		if v.Claims.Delegation != nil {
			end.depth = v.Claims.Delegation.Depth
		}
		keys, n = v.Keys(), len(v.Links)
	}
	if !EqualKeys(key.Public(), end.key) {
		return nil, invalid("delegation: the signing key is not the key the holder is bound to")
	}
	// Whole seconds, as encoded (Time.Unix floors, and so does Truncate):
	// the checks below compare what the device will compare.
	l := &Link{Key: spec.To, Expiry: spec.Expiry.Truncate(time.Second), NotBefore: spec.NotBefore.Truncate(time.Second), Audience: spec.Audience, Depth: spec.Depth, Subject: spec.Subject}
	if l.Selection = selection(spec.Scope, end.scope); l.Selection == 0 {
		l.Scope = spec.Scope
	}
	if _, _, err := checkLink(n, &end, l, keys, claims.Delegation.Operations); err != nil {
		return nil, err
	}
	link, err := SignLink(l, end.hash, key, spec.Rand)
	if err != nil {
		return nil, err
	}
	links := [][]byte{link}
	if chain != nil {
		links = make([][]byte, 0, n+1)
		for _, pl := range chain.links {
			links = append(links, pl.raw)
		}
		links = append(links, link)
	}
	c, err := NewChain(links...)
	if err != nil {
		return nil, err
	}
	return (&DelegatedToken{Token: tokBytes, Chain: c}).Bytes(), nil
}

// selection returns the bit mask that selects s's permissions from
// parent's, or 0 when some permission of s is not one of parent's.
func selection(s, parent Scope) uint32 {
	var mask uint32
	for _, p := range s.perms {
		found := false
		for j, q := range parent.perms {
			if (Scope{perms: []Permission{p}}).Equal(Scope{perms: []Permission{q}}) {
				mask |= 1 << j
				found = true
				break
			}
		}
		if !found {
			return 0
		}
	}
	return mask
}
