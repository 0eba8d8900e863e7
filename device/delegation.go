package device

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"

	"github.com/securedeviceaccess/sda/token"
)

// ChainLink names one link of the delegation chain of a delegated request
// (docs/PROTOCOL.md section 13) in an [Outcome] and a [Call].
type ChainLink struct {
	// Key is the COSE Key Thumbprint (RFC 9679 section 3,
	// token.Thumbprint) of the delegate's key, the key the link passes the
	// token's power on to.
	Key []byte
	// Subject is the name the delegator gave the delegate (the link's
	// sub), "" when none. Only the delegator vouches for it.
	Subject string
	// Hash is the link's hash, the SHA-256 of its ToBeSigned: what a
	// revoker lists (sda-revoke kind "hash", or a status update's token
	// hashes) to revoke the link and every link below it.
	Hash [32]byte
}

// clone returns a copy of links that shares no bytes with it.
func cloneChain(links []ChainLink) []ChainLink {
	if links == nil {
		return nil
	}
	out := slices.Clone(links)
	for i := range out {
		out[i].Key = bytes.Clone(out[i].Key)
	}
	return out
}

// parseChain parses the chain a signed request carries, strictly; nil
// when the bundle has none (3 elements).
func parseChain(sr *token.SignedRequest) (*token.Chain, error) {
	raw := sr.UnverifiedChain()
	if raw == nil {
		return nil, nil
	}
	return token.ParseChain(raw)
}

// chainLinks returns what the audit names of a verified chain: the
// thumbprint of the token's key and the links. A key whose thumbprint
// cannot be computed (none the token package accepts) is named by nil.
func chainLinks(tokenKey crypto.PublicKey, links []token.Link) ([]byte, []ChainLink) {
	tp, _ := token.Thumbprint(tokenKey)
	out := make([]ChainLink, len(links))
	for i := range links {
		out[i].Key, _ = token.Thumbprint(links[i].Key)
		out[i].Subject, out[i].Hash = links[i].Subject, links[i].Hash
	}
	return tp, out
}

// revokedLinks reports whether the revocation list holds the hash of one
// of links (a verified chain's, in order): a revoked link revokes every
// link below it, so the first one found is reported.
func (r *revocations) revokedLinks(links []token.Link) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := range links {
		if _, ok := r.hs[links[i].Hash]; ok {
			h := links[i].Hash
			return fmt.Errorf("%w: delegation link %d, hash %x", ErrRevoked, i+1, h[:8])
		}
	}
	return nil
}

// linkRevoked returns the position (1 for the first link) of the first of
// links whose hash u lists, or 0.
func linkRevoked(u *token.StatusUpdate, links []token.Link) int {
	if !u.HasHashes() {
		return 0
	}
	for i := range links {
		if _, ok := slices.BinarySearchFunc(u.Hashes, links[i].Hash, func(h, t [32]byte) int { return bytes.Compare(h[:], t[:]) }); ok {
			return i + 1
		}
	}
	return 0
}
