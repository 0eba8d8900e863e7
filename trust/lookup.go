package trust

import (
	"bytes"
	"slices"

	"github.com/securedeviceaccess/sda/token"
)

// LookupToken returns the anchors of s that may have signed t, in the
// order to try them, as a device chooses them (docs/PROTOCOL.md section
// 4.1). It uses only t's unverified iss, kid and claim keys.
//
// A v2 token's kid selects: the anchors of the issuer with that key id
// ([Store.Lookup] with the kid). A v1 token's anchors are found by iss
// alone, as deployed v1 devices find them (they ignore kid): its kid,
// which v1 issuers do not send but other issuers and COSE libraries do,
// only puts the issuer's anchors with that key id first, and never causes
// a refusal, not even when no anchor has that key id (an anchor without a
// KeyID has its key's thumbprint as key id). Errors are those of
// [Store.Lookup].
func LookupToken(s Store, t *token.Token) ([]Anchor, error) {
	issuer, kid := t.UnverifiedIssuer(), t.UnverifiedKeyID()
	if kid == nil || t.UnverifiedClaims().Profile != token.ProfileV1 {
		return s.Lookup(issuer, kid)
	}
	all, err := s.Lookup(issuer, nil)
	if err != nil {
		return nil, err
	}
	first, err := s.Lookup(issuer, kid)
	if err != nil || len(first) == len(all) {
		return all, nil
	}
	out := append(make([]Anchor, 0, len(all)), first...)
	for i := range all {
		if !slices.ContainsFunc(first, func(f Anchor) bool { return sameAnchor(&f, &all[i]) }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// sameAnchor reports whether x and y, anchors of one issuer, are the same.
func sameAnchor(x, y *Anchor) bool {
	return bytes.Equal(x.KeyID, y.KeyID) && token.EqualKeys(x.Key, y.Key)
}
