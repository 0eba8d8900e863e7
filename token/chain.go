package token

import (
	"bytes"
	"crypto"
	"slices"
	"strconv"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// Chain is a delegation chain (docs/PROTOCOL.md section 13), parsed
// strictly but not verified: 1 to MaxDelegationDepth links, in order from
// the token down.
//
//	Chain = [+ Link]
type Chain struct {
	links []*parsedLink
}

// ParseChain parses an encoded chain strictly: an array of 1 to
// MaxDelegationDepth links, each as [SignLink] writes them. It does no
// cryptography; errors match [ErrMalformed]. The Chain keeps a copy of
// data.
func ParseChain(data []byte) (*Chain, error) {
	const f = "chain"
	if len(data) > MaxChainSize {
		return nil, malformed(f, "%d bytes exceed %d", len(data), MaxChainSize)
	}
	if err := codec.Check(data); err != nil {
		return nil, wrapMalformed(f, err)
	}
	return parseChainItem(bytes.Clone(data))
}

// parseChainItem parses a chain that is an item of a checked message;
// the Chain aliases data.
func parseChainItem(data []byte) (*Chain, error) {
	const f = "chain"
	if len(data) == 0 || data[0]>>5 != 4 {
		return nil, malformed(f, "not an array")
	}
	var buf [MaxDelegationDepth][]byte
	items, err := codec.ReadArray(data, buf[:0])
	if err != nil {
		return nil, wrapMalformed(f, err)
	}
	return newChain(items)
}

func newChain(items [][]byte) (*Chain, error) {
	if len(items) == 0 || len(items) > MaxDelegationDepth {
		return nil, malformed("chain", "%d links, want 1..%d", len(items), MaxDelegationDepth)
	}
	c := &Chain{links: make([]*parsedLink, len(items))}
	for i, it := range items {
		l, err := parseLink(linkField(i), it)
		if err != nil {
			return nil, err
		}
		c.links[i] = l
	}
	return c, nil
}

func linkField(i int) string { return "chain.link[" + strconv.Itoa(i) + "]" }

// NewChain returns the chain of the given encoded links ([SignLink]'s
// output), in order from the token down, parsed as [ParseChain] parses
// them. The links are copied.
func NewChain(links ...[]byte) (*Chain, error) {
	items := make([][]byte, len(links))
	for i, l := range links {
		if len(l) > MaxLinkSize {
			return nil, malformed(linkField(i), "%d bytes exceed %d", len(l), MaxLinkSize)
		}
		if err := codec.Check(l); err != nil {
			return nil, wrapMalformed(linkField(i), err)
		}
		items[i] = bytes.Clone(l)
	}
	return newChain(items)
}

// Len returns the number of links; 0 for a nil Chain.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.links)
}

// Bytes returns the encoded chain, [+ Link]; nil for a nil Chain.
func (c *Chain) Bytes() []byte {
	if c == nil {
		return nil
	}
	n := 1
	for _, l := range c.links {
		n += len(l.raw)
	}
	b := codec.AppendHead(make([]byte, 0, n), 4, uint64(len(c.links)))
	for _, l := range c.links {
		b = append(b, l.raw...)
	}
	return b
}

// UnverifiedLinks returns copies of the links as decoded, not verified:
// for display and for choosing what to verify with only. Hash is zero, and
// so is Scope for a selection. nil for a nil Chain.
func (c *Chain) UnverifiedLinks() []Link {
	if c == nil {
		return nil
	}
	out := make([]Link, len(c.links))
	for i, l := range c.links {
		out[i] = cloneLink(l.claims)
	}
	return out
}

// VerifiedChain is the result of [Chain.Verify]: what the holder of the
// chain's last key may do.
type VerifiedChain struct {
	// Claims are a copy of the token's claims with the Key, Scope,
	// Audience, Expiry and NotBefore of the end of the chain, and
	// Delegation set to what the last link still allows (nil when its
	// Depth is 0).
	Claims *Claims
	// Links are the verified links, each with Hash set and Scope resolved.
	Links []Link

	tokenScope Scope
	tokenKey   crypto.PublicKey
}

// Check reports whether the chain permits op: the token's scope and the
// scope of every link must permit it (so that soundness does not rest on
// [Scope.Within] alone). A nil error means permitted; otherwise the error
// is a [*ScopeError]. A nil VerifiedChain permits nothing.
func (v *VerifiedChain) Check(op Operation) error {
	if v == nil {
		return &ScopeError{Operation: op.Name, Arg: -1, Reason: "no verified chain"}
	}
	if err := v.tokenScope.Check(op); err != nil {
		return err
	}
	for i := range v.Links {
		if err := v.Links[i].Scope.Check(op); err != nil {
			return err
		}
	}
	return nil
}

// Keys returns the keys of the chain: the token's cnf key, then each
// link's key. The last one signs requests. nil for a nil VerifiedChain.
func (v *VerifiedChain) Keys() []crypto.PublicKey {
	if v == nil {
		return nil
	}
	out := make([]crypto.PublicKey, 0, 1+len(v.Links))
	out = append(out, v.tokenKey)
	for i := range v.Links {
		out = append(out, v.Links[i].Key)
	}
	return out
}

// linkParent is what a link's parent allows: the token's values, then each
// link's effective ones.
type linkParent struct {
	key      crypto.PublicKey
	scope    Scope
	exp, nbf time.Time
	aud      []string
	depth    int // links allowed below
	hash     [32]byte
}

func tokenHolder(c *Claims, hash [32]byte) linkParent {
	h := linkParent{key: c.Key, scope: c.Scope, exp: c.Expiry, nbf: c.NotBefore, aud: c.Audience, hash: hash}
	if c.Delegation != nil {
		h.depth = c.Delegation.Depth
	}
	return h
}

// checkLink makes the cheap checks of link i below parent (rules a, c, d
// and e of docs/PROTOCOL.md section 13) and returns the link's effective
// values (hash unset) and its resolved scope. keys are the keys of the
// chain above it; ops is the token's list of delegable operations.
func checkLink(i int, parent *linkParent, l *Link, keys []crypto.PublicKey, ops []string) (linkParent, Scope, error) {
	// a. depth: the parent allows a further link (parent.depth >= 1, as
	// l.Depth >= 0) with at most parent.depth-1 below it.
	if l.Depth > parent.depth-1 {
		return linkParent{}, Scope{}, refuse(i, "depth", ErrDelegationDepth, "depth %d, the parent allows %d further links", l.Depth, parent.depth)
	}
	// c. loops.
	for j, k := range keys {
		if equalKeys(keyAlgorithm, k, l.Key) { // keys that passed AlgorithmFor
			return linkParent{}, Scope{}, refuse(i, "key", ErrDelegationLoop, "the key is already key %d of the chain", j)
		}
	}
	// d. scope.
	var scope Scope
	if l.Selection != 0 {
		n := len(parent.scope.perms)
		if l.Selection>>n != 0 {
			return linkParent{}, Scope{}, refuse(i, "scope", ErrNotNarrower, "selection %#x beyond the parent's %d permissions", l.Selection, n)
		}
		perms := make([]Permission, 0, n)
		for j := range n {
			if l.Selection&(1<<j) != 0 {
				perms = append(perms, parent.scope.perms[j])
			}
		}
		scope = Scope{perms: perms}
	} else {
		if !l.Scope.Within(parent.scope) {
			return linkParent{}, Scope{}, refuse(i, "scope", ErrNotNarrower, "%v is not provably within %v", l.Scope, parent.scope)
		}
		scope = l.Scope
	}
	if ops != nil {
		// The list never names AllOperations (not an operation name), so a
		// "*" permission is never passed on with a list.
		for _, p := range scope.perms {
			if !slices.Contains(ops, p.Operation) {
				return linkParent{}, Scope{}, refuse(i, "scope", ErrNotDelegable, "%q may not be passed on", p.Operation)
			}
		}
	}
	// e. time window and audience.
	h := linkParent{key: l.Key, scope: scope, exp: l.Expiry, nbf: parent.nbf, aud: parent.aud, depth: l.Depth}
	if l.Expiry.After(parent.exp) {
		return linkParent{}, Scope{}, refuse(i, "exp", ErrNotNarrower, "exp %d after the parent's %d", l.Expiry.Unix(), parent.exp.Unix())
	}
	if !l.NotBefore.IsZero() {
		if l.NotBefore.Before(parent.nbf) {
			return linkParent{}, Scope{}, refuse(i, "nbf", ErrNotNarrower, "nbf %d before the parent's %d", l.NotBefore.Unix(), parent.nbf.Unix())
		}
		h.nbf = l.NotBefore
	}
	if !h.nbf.IsZero() && h.nbf.After(h.exp) {
		return linkParent{}, Scope{}, refuse(i, "nbf", ErrNotNarrower, "nbf %d after exp %d", h.nbf.Unix(), h.exp.Unix())
	}
	if l.Audience != nil {
		for _, a := range l.Audience {
			if !slices.Contains(parent.aud, a) {
				return linkParent{}, Scope{}, refuse(i, "aud", ErrNotNarrower, "%q is not an audience of the parent", a)
			}
		}
		h.aud = l.Audience
	}
	return h, scope, nil
}

// Verify verifies the chain below a token whose signature has been
// verified: parent are its claims ([Token.Verify]) and parentHash its
// [Token.RevocationHash]. For each link in order it checks, cheapest
// first (docs/PROTOCOL.md section 13): (a) the depth the parent allows
// ([ErrDelegationDepth]); (c) that the link's key is not already in the
// chain ([ErrDelegationLoop]); (d) that its scope is a selection of the
// parent's permissions or provably within the parent's scope
// ([ErrNotNarrower]) and passes on only operations the token lists
// ([ErrNotDelegable]); (e) that its time window and audience lie within
// the parent's ([ErrNotNarrower]); and only then (b) its signature with
// the parent's key over the parent's hash ([ErrLinkSignature]). A token
// without a delegation claim is refused with ErrNotDelegable, a chain
// longer than its depth with ErrDelegationDepth. Every refusal is a
// [*DelegationError]. Verify does not check time or audience against a
// device: validate the returned Claims ([Claims.Validate]).
func (c *Chain) Verify(parent *Claims, parentHash [32]byte) (*VerifiedChain, error) {
	return c.walk(parent, parentHash, true)
}

// walk checks the chain below parent; with verify, the signatures too.
func (c *Chain) walk(parent *Claims, parentHash [32]byte, verify bool) (*VerifiedChain, error) {
	if c == nil || len(c.links) == 0 || parent == nil {
		return nil, invalid("a nil or empty chain, or nil claims")
	}
	d := parent.Delegation
	if d == nil || parent.Profile == ProfileV1 {
		return nil, refuse(0, "depth", ErrNotDelegable, "the token carries no delegation claim")
	}
	if len(c.links) > d.Depth {
		return nil, refuse(d.Depth, "depth", ErrDelegationDepth, "%d links, the token allows %d", len(c.links), d.Depth)
	}
	h := tokenHolder(parent, parentHash)
	keys := make([]crypto.PublicKey, 1, 1+len(c.links))
	keys[0] = parent.Key
	v := &VerifiedChain{Links: make([]Link, len(c.links)), tokenScope: parent.Scope, tokenKey: parent.Key}
	for i, pl := range c.links {
		next, scope, err := checkLink(i, &h, pl.claims, keys, d.Operations)
		if err != nil {
			return nil, err
		}
		if verify {
			if next.hash, err = pl.verify(h.key, h.hash); err != nil {
				return nil, refuse(i, "signature", ErrLinkSignature, "%v", err)
			}
		} else {
			next.hash = pl.hash(h.hash)
		}
		l := cloneLink(pl.claims)
		l.Scope, l.Hash = scope, next.hash
		v.Links[i] = l
		keys = append(keys, l.Key)
		h = next
	}
	claims := parent.clone()
	claims.Key, claims.Scope, claims.Expiry, claims.NotBefore = h.key, h.scope, h.exp, h.nbf
	claims.Audience = slices.Clone(h.aud)
	claims.Delegation = nil
	if h.depth > 0 {
		claims.Delegation = &Delegation{Depth: h.depth, Operations: slices.Clone(d.Operations)}
	}
	v.Claims = claims
	return v, nil
}
