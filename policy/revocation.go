package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// RevocationKind names what a revocation revokes.
type RevocationKind string

// Revocation kinds (docs/PROTOCOL.md section 12, "Revocations").
const (
	// RevokeToken revokes one token, named by its cti or a hash.
	RevokeToken RevocationKind = "token"
	// RevokeSubject revokes every token of a subject issued at or before
	// a time: a subject cut-off.
	RevokeSubject RevocationKind = "subject"
	// RevokeAnchor revokes every token verified with an anchor key issued
	// at or before a time: an anchor cut-off.
	RevokeAnchor RevocationKind = "anchor"
	// RevokeDevice, in a [RevokeRequest] only, revokes every unexpired
	// token of the ledger whose audience names a device: it is written as
	// one RevokeToken revocation per token.
	RevokeDevice RevocationKind = "device"
)

// Revocation is a record of the store (kind [KindRevocation]): a token,
// or the tokens of a subject or an anchor key up to a time, that devices
// must refuse. Byte strings are in lower-case hexadecimal. Revocations
// are written by [Service.Revoke]; their id is derived from what they
// revoke, so that revoking twice writes one record.
type Revocation struct {
	ID   string         `json:"id"`
	Kind RevocationKind `json:"kind"`
	// TokenID is the revoked token's cti (RevokeToken). Hash is its
	// revocation hash when the ledger knows the token, else the hash
	// given; devices are sent Hash when set, else TokenID.
	TokenID string `json:"cti,omitempty"`
	Hash    string `json:"hash,omitempty"`
	// Subject (RevokeSubject) or Anchor, a key id (RevokeAnchor), and
	// Before: the tokens issued at or before it are revoked.
	Subject string    `json:"subject,omitempty"`
	Anchor  string    `json:"anchor,omitempty"`
	Before  time.Time `json:"before,omitzero"`
	// Until is when the revocation stops being relevant: the expiry of
	// the last token it can revoke. It is then left out of status
	// updates and pruned.
	Until time.Time `json:"until"`
	// Audience lists the devices a RevokeToken revocation concerns (the
	// token's audience, from the ledger); empty means every device.
	Audience []string `json:"aud,omitempty"`
	// CreatedAt, CreatedBy (the administrator's subject) and Reason
	// describe the revocation.
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// revocationID returns the id of the revocation: its kind and a digest of
// what it revokes, so that the same revocation always has the same id.
func revocationID(r *Revocation) string {
	var what string
	switch r.Kind {
	case RevokeToken:
		if r.Hash != "" {
			what = "hash:" + r.Hash
		} else {
			what = "cti:" + r.TokenID
		}
	case RevokeSubject:
		what = "subject:" + r.Subject
	case RevokeAnchor:
		what = "anchor:" + r.Anchor
	}
	sum := sha256.Sum256([]byte(what))
	return string(r.Kind) + "-" + hex.EncodeToString(sum[:20])
}

// Validate checks the revocation's fields and bounds, and that its id is
// the one derived from what it revokes.
func (r *Revocation) Validate() error {
	var f fieldErrs
	switch r.Kind {
	case RevokeToken:
		if r.Hash == "" && r.TokenID == "" {
			f.add("cti", "a token revocation names a cti or a hash")
		}
		if r.Hash != "" {
			checkHex(&f, "hash", r.Hash, 32, 32)
		}
		if r.TokenID != "" {
			checkHex(&f, "cti", r.TokenID, 1, maxTokenIDBytes)
		}
		if r.Subject != "" || r.Anchor != "" || !r.Before.IsZero() {
			f.add("kind", "a token revocation has no subject, anchor or before")
		}
	case RevokeSubject, RevokeAnchor:
		if r.Kind == RevokeSubject {
			checkID(&f, "subject", r.Subject)
		} else {
			checkHex(&f, "anchor", r.Anchor, 1, maxKeyIDBytes)
		}
		if r.Before.IsZero() {
			f.add("before", "required")
		}
		if r.TokenID != "" || r.Hash != "" || len(r.Audience) > 0 ||
			(r.Kind == RevokeSubject && r.Anchor != "") || (r.Kind == RevokeAnchor && r.Subject != "") {
			f.add("kind", "a cut-off names only a subject or an anchor, for every device")
		}
	default:
		f.add("kind", "one of %q, %q, %q", RevokeToken, RevokeSubject, RevokeAnchor)
	}
	if r.Until.IsZero() {
		f.add("until", "required")
	}
	if len(r.Audience) > token.MaxAudiences {
		f.add("aud", "at most %d entries", token.MaxAudiences)
	}
	for i, a := range r.Audience {
		if validateAudience(a) != nil {
			f.add(fmt.Sprintf("aud[%d]", i), "not a device audience")
		}
	}
	if r.CreatedAt.IsZero() {
		f.add("created_at", "required")
	}
	if len(r.CreatedBy) > maxIDLen {
		f.add("created_by", "longer than %d bytes", maxIDLen)
	}
	if len(r.Reason) > maxDescriptionLen {
		f.add("reason", "longer than %d bytes", maxDescriptionLen)
	}
	if len(f.list) == 0 && r.ID != revocationID(r) {
		f.add("id", "must be %q, derived from what it revokes", revocationID(r))
	}
	return f.err()
}

func (r *Revocation) clone() *Revocation {
	c := *r
	c.Audience = slices.Clone(r.Audience)
	return &c
}

// relevant reports whether the revocation still concerns a token that a
// device could accept at now (within the leeway devices allow).
func (r *Revocation) relevant(now time.Time) bool {
	return !r.Until.Add(IssuedRetention).Before(now)
}

// statusEntries are the revocations relevant to one device at one time,
// in the form of the status update's keys 5 to 8 (docs/PROTOCOL.md
// section 12, "Status update"), and the store's sequence number they were
// read at. Each list is sorted ascending, without repeats.
type statusEntries struct {
	Seq      int64
	Hashes   [][]byte        // revoked token hashes, 32 bytes each (key 5)
	TokenIDs [][]byte        // revoked token ids (key 6)
	Subjects []subjectCutoff // subject cut-offs (key 7)
	Anchors  []anchorCutoff  // anchor cut-offs (key 8)
}

type subjectCutoff struct {
	Subject string
	Before  time.Time
}

type anchorCutoff struct {
	KeyID  []byte
	Before time.Time
}

// Bounds of a device's status update (docs/PROTOCOL.md section 12); the
// those of package token.
const (
	maxStatusHashes   = token.MaxStatusHashes
	maxStatusTokenIDs = token.MaxStatusTokenIDs
	maxStatusSubjects = token.MaxStatusSubjects
	maxStatusAnchors  = token.MaxStatusAnchors
	maxStatusBytes    = token.MaxStatusUpdateSize
)

// RevocationBoundError reports a revocation refused because the status
// update of a device would exceed a bound with it. It matches
// [ErrConflict]; nothing was written. Revoke the tokens by a subject or
// anchor cut-off instead.
type RevocationBoundError struct {
	// Audience names the device ("id:<hex>" or the audience given).
	Audience string
	// Entries says which bound: "token hashes", "token ids", "subject
	// cut-offs", "anchor cut-offs" or "bytes"; Count is how many there
	// would be and Max the bound.
	Entries    string
	Count, Max int
}

// Error says which bound the revocation would exceed and what to do.
func (e *RevocationBoundError) Error() string {
	return fmt.Sprintf("policy: conflict: the status update of %s would hold %d %s, more than %d: revoke by a subject or anchor cut-off instead",
		e.Audience, e.Count, e.Entries, e.Max)
}

// Unwrap returns [ErrConflict].
func (e *RevocationBoundError) Unwrap() error { return ErrConflict }

// statusCounts counts the entries of one device's status update.
type statusCounts struct {
	hashes, ids, bytes int
}

// checkStatusBounds checks that the status update of every device stays
// within the bounds with revs, the revocations that would be held. key
// maps an audience to its device's key.
func checkStatusBounds(revs []*Revocation, key func(aud string) string) error {
	var global statusCounts
	perDevice := map[string]*statusCounts{}
	name := map[string]string{}
	subjects, anchors := 0, 0
	fixed := statusOverhead
	for _, r := range revs {
		switch r.Kind {
		case RevokeSubject:
			subjects++
			fixed += 1 + cborHead(len(r.Subject)) + len(r.Subject) + 9
			continue
		case RevokeAnchor:
			anchors++
			fixed += 1 + cborHead(len(r.Anchor)/2) + len(r.Anchor)/2 + 9
			continue
		}
		add := func(c *statusCounts) {
			if r.Hash != "" {
				c.hashes++
				c.bytes += 32
			} else {
				c.ids++
				c.bytes += cborHead(len(r.TokenID)/2) + len(r.TokenID)/2
			}
		}
		if len(r.Audience) == 0 {
			add(&global)
			continue
		}
		seen := map[string]bool{}
		for _, a := range r.Audience {
			k := key(a)
			if seen[k] {
				continue
			}
			seen[k] = true
			if perDevice[k] == nil {
				perDevice[k], name[k] = &statusCounts{}, a
			}
			add(perDevice[k])
		}
	}
	if subjects > maxStatusSubjects {
		return &RevocationBoundError{Audience: "every device", Entries: "subject cut-offs", Count: subjects, Max: maxStatusSubjects}
	}
	if anchors > maxStatusAnchors {
		return &RevocationBoundError{Audience: "every device", Entries: "anchor cut-offs", Count: anchors, Max: maxStatusAnchors}
	}
	check := func(aud string, c statusCounts) error {
		switch {
		case c.hashes > maxStatusHashes:
			return &RevocationBoundError{Audience: aud, Entries: "token hashes", Count: c.hashes, Max: maxStatusHashes}
		case c.ids > maxStatusTokenIDs:
			return &RevocationBoundError{Audience: aud, Entries: "token ids", Count: c.ids, Max: maxStatusTokenIDs}
		}
		// Lists' heads and keys, at most 5 bytes each.
		if n := fixed + c.bytes + 20; n > maxStatusBytes {
			return &RevocationBoundError{Audience: aud, Entries: "bytes", Count: n, Max: maxStatusBytes}
		}
		return nil
	}
	if err := check("every device", global); err != nil {
		return err
	}
	for _, k := range slices.Sorted(mapsKeys(perDevice)) {
		c := perDevice[k]
		if err := check(name[k], statusCounts{global.hashes + c.hashes, global.ids + c.ids, global.bytes + c.bytes}); err != nil {
			return err
		}
	}
	return nil
}

// statusOverhead bounds the bytes of a signed status update besides its
// revocation entries: the COSE_Sign1 structure with a protected header of
// an algorithm and a key id of at most 64 bytes, a signature of at most
// 132 bytes, and the payload's iss (at most maxNameLen bytes), seq, time
// and aud (at most 64 bytes).
const statusOverhead = 2 + (3 + 4 + 2 + maxKeyIDBytes) + 1 + 3 + (3 + 132) +
	1 + (1 + 3 + maxNameLen) + (1 + 9) + (1 + 9) + (1 + 2 + 64)

// cborHead returns the bytes of the CBOR head of a length n.
func cborHead(n int) int {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	}
	return 5
}

// deviceKey returns the key under which the status bounds count the
// device an audience names: its id when the directory knows it, else the
// parsed audience.
func (st *state) deviceKey(aud string) string {
	k, err := parseAudience(aud)
	if err != nil {
		return aud
	}
	if name, ok := strings.CutPrefix(k, "e\x00"); ok {
		if e := st.byEndpoint[name]; e != nil {
			return "i\x00" + e.d.ID
		}
	}
	return k
}

// deviceAudiences returns the audience forms that name the device.
func deviceAudiences(d *Device) []string {
	out := []string{token.PrefixDeviceID + d.ID, token.PrefixLegacyDeviceID + d.ID}
	if d.EndpointName != "" {
		out = append(out, token.PrefixEndpoint+d.EndpointName, token.PrefixLegacyEndpoint+d.EndpointName)
	}
	return out
}
