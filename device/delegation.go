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
	// Key is the delegate's public key, verified: the key the link passes
	// the token's power on to. It is the request's own (parsed from it,
	// shared with no cache); do not modify it.
	Key crypto.PublicKey
	// Subject is the name the delegator gave the delegate (the link's
	// sub), "" when none. Only the delegator vouches for it.
	Subject string
	// Hash is the link's hash, the SHA-256 of its ToBeSigned: what a
	// revoker lists (sda-revoke kind "hash", or a status update's token
	// hashes) to revoke the link and every link below it.
	Hash [32]byte
}

// Thumbprint returns the COSE Key Thumbprint (RFC 9679 section 3,
// token.Thumbprint) of the delegate's key, as the audit log names it, or
// nil for a zero ChainLink. It is computed on each call: a device names
// keys only when something reads them.
func (l ChainLink) Thumbprint() []byte {
	tp, _ := token.Thumbprint(l.Key)
	return tp
}

// chainLinks returns what an outcome names of a verified chain's links.
func chainLinks(links []token.Link) []ChainLink {
	out := make([]ChainLink, len(links))
	for i := range links {
		out[i] = ChainLink{Key: links[i].Key, Subject: links[i].Subject, Hash: links[i].Hash}
	}
	return out
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
