package token

import (
	"bytes"
	"cmp"
	"crypto"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// Bounds of a status update (docs/PROTOCOL.md section 12). [SignStatus]
// refuses an update beyond any of them and [ParseStatus] refuses one that
// is, so a device holds at most MaxStatusUpdateSize bytes per issuer.
const (
	MaxStatusHashes   = 256 // revoked token hashes
	MaxStatusTokenIDs = 64  // revoked token ids (cti)
	MaxStatusSubjects = 64  // subject cut-offs
	MaxStatusAnchors  = 16  // anchor cut-offs

	// MaxStatusUpdateSize is the most bytes of a signed status update.
	MaxStatusUpdateSize = 16384
	// MaxTokenIDLength is the most bytes of a token id (cti) in a status
	// update, as a device's own revocation list holds them.
	MaxTokenIDLength = 64
	// MaxStatusSubjectLength is the most bytes of a subject in a cut-off.
	MaxStatusSubjectLength = 256
	// MaxKeyIDLength is the most bytes of an anchor key id in a cut-off.
	MaxKeyIDLength = 64
)

// statusAAD is the external additional data of a status update's
// signature (RFC 9052 section 4.3), which keeps a token's signature (made
// with empty external data by the same anchor key) from ever verifying as
// an update's, and the other way round.
var statusAAD = []byte("SDA status update")

// Status update payload keys (docs/PROTOCOL.md, "Numbered keys").
const (
	statusIss      = 1
	statusSeq      = 2
	statusTime     = 3
	statusAud      = 4
	statusHashes   = 5
	statusTokenIDs = 6
	statusSubjects = 7
	statusAnchors  = 8
)

// StatusUpdate is what an authorization service tells one device about
// the tokens of its issuer (v2, docs/PROTOCOL.md section 12): which are
// revoked, and what time it is. An update is complete: a device replaces
// what it held from the issuer with the newest update it verifies.
type StatusUpdate struct {
	// Issuer is the iss of the issuer's tokens; the update is signed by
	// one of its anchor keys.
	Issuer string
	// Sequence grows with every change of the issuer's revocations.
	Sequence uint64
	// Time is the service's time when it made the update, in whole
	// seconds; a device takes it as a lower bound of time.
	Time time.Time
	// Audience names the one device the update is for: "ep:<name>" or
	// "id:<32 hex>" (or the legacy prefixes).
	Audience string

	// Hashes are revocation hashes ([RevocationHash]) of revoked tokens.
	Hashes [][32]byte
	// TokenIDs are the ids (cti) of revoked tokens, 1 to
	// MaxTokenIDLength bytes each.
	TokenIDs [][]byte
	// Subjects revoke every token of a subject issued at or before a time.
	Subjects []SubjectCutoff
	// Anchors revoke every token verified with an anchor key issued at or
	// before a time.
	Anchors []AnchorCutoff
}

// SubjectCutoff revokes every token of the issuer whose sub is Subject
// and whose issue time (iat, else nbf) is at or before Before; a token
// with neither is revoked whatever its time.
type SubjectCutoff struct {
	Subject string
	Before  time.Time
}

// AnchorCutoff revokes every token verified with the issuer's anchor key
// named KeyID (the anchor's key id, or its COSE Key Thumbprint when it has
// none, [Thumbprint]) whose issue time (iat, else nbf) is at or before
// Before; a token with neither is revoked whatever its time.
type AnchorCutoff struct {
	KeyID  []byte
	Before time.Time
}

// The kinds of entry of a status update, as [StatusUpdate.Revokes] names
// the one that revokes a token.
const (
	EntryTokenHash     = "token hash"
	EntryTokenID       = "token id"
	EntrySubjectCutoff = "subject cut-off"
	EntryAnchorCutoff  = "anchor cut-off"
)

// NewerThan reports whether u is newer than an update with sequence
// number seq and time t: a larger sequence number, or the same one and a
// later time.
func (u *StatusUpdate) NewerThan(seq uint64, t time.Time) bool {
	return u.Sequence > seq || u.Sequence == seq && u.Time.Unix() > t.Unix()
}

// Revokes reports whether u revokes the token with verified claims c,
// revocation hash revocationHash (nil when not computed: hashes are then
// not looked up, see [StatusUpdate.HasHashes]) and verified by the anchor
// key with id anchorKeyID, and if so which entry (EntryTokenHash,
// EntryTokenID, EntrySubjectCutoff or EntryAnchorCutoff). It does not
// compare c.Issuer with u.Issuer: callers apply an update to the tokens of
// its issuer only.
func (u *StatusUpdate) Revokes(c *Claims, revocationHash *[32]byte, anchorKeyID []byte) (string, bool) {
	if revocationHash != nil && len(u.Hashes) > 0 {
		if _, ok := slices.BinarySearchFunc(u.Hashes, *revocationHash, func(h, t [32]byte) int { return bytes.Compare(h[:], t[:]) }); ok {
			return EntryTokenHash, true
		}
	}
	if c.ID != nil && len(u.TokenIDs) > 0 {
		if _, ok := slices.BinarySearchFunc(u.TokenIDs, c.ID, bytes.Compare); ok {
			return EntryTokenID, true
		}
	}
	issued := c.IssuedAt
	if issued.IsZero() {
		issued = c.NotBefore
	}
	cut := func(before time.Time) bool { return issued.IsZero() || !issued.After(before) }
	if len(u.Subjects) > 0 {
		if i, ok := slices.BinarySearchFunc(u.Subjects, c.Subject, func(s SubjectCutoff, t string) int { return strings.Compare(s.Subject, t) }); ok && cut(u.Subjects[i].Before) {
			return EntrySubjectCutoff, true
		}
	}
	for i := range u.Anchors {
		if bytes.Equal(u.Anchors[i].KeyID, anchorKeyID) && cut(u.Anchors[i].Before) {
			return EntryAnchorCutoff, true
		}
	}
	return "", false
}

// HasHashes reports whether u lists token hashes: only then must a
// device compute a token's revocation hash for [StatusUpdate.Revokes].
func (u *StatusUpdate) HasHashes() bool { return len(u.Hashes) > 0 }

// StatusOptions are the options of [SignStatus].
type StatusOptions struct {
	// KeyID, if set, is put in the protected header (kid), as for tokens of
	// an anchor with a key id.
	KeyID []byte
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// SignStatus encodes u deterministically (its entries sorted, repeats
// removed) and signs it with the issuer's anchor key, returning
// 18(COSE_Sign1) bytes (docs/PROTOCOL.md section 12). The key's type
// decides the algorithm. An update beyond a bound (MaxStatusHashes and the
// others, or MaxStatusUpdateSize in all) is an [ErrInvalid] error and
// nothing is signed.
func SignStatus(u *StatusUpdate, key crypto.Signer, opts *StatusOptions) ([]byte, error) {
	if u == nil {
		return nil, invalid("nil status update")
	}
	if opts == nil {
		opts = &StatusOptions{}
	}
	payload, err := encodeStatus(u)
	if err != nil {
		return nil, err
	}
	return signSign1AAD(tagSign1Prefix, payload, key, opts.KeyID, opts.Rand, MaxStatusUpdateSize, statusAAD)
}

func encodeStatus(u *StatusUpdate) ([]byte, error) {
	if u.Issuer == "" || !utf8.ValidString(u.Issuer) {
		return nil, invalid("status update: issuer must be non-empty UTF-8")
	}
	if err := validateAudience(u.Audience); err != nil {
		return nil, invalid("status update: aud: %v", err)
	}
	t, err := unixTime("status update time", u.Time, true)
	if err != nil {
		return nil, err
	}
	hashes := slices.Clone(u.Hashes)
	slices.SortFunc(hashes, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	hashes = slices.Compact(hashes)
	ids := slices.Clone(u.TokenIDs)
	slices.SortFunc(ids, bytes.Compare)
	ids = slices.CompactFunc(ids, bytes.Equal)
	subs := slices.Clone(u.Subjects)
	slices.SortStableFunc(subs, func(a, b SubjectCutoff) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), b.Before.Compare(a.Before))
	})
	subs = slices.CompactFunc(subs, func(a, b SubjectCutoff) bool { return a.Subject == b.Subject }) // the latest cut-off wins
	anchors := slices.Clone(u.Anchors)
	slices.SortStableFunc(anchors, func(a, b AnchorCutoff) int {
		return cmp.Or(bytes.Compare(a.KeyID, b.KeyID), b.Before.Compare(a.Before))
	})
	anchors = slices.CompactFunc(anchors, func(a, b AnchorCutoff) bool { return bytes.Equal(a.KeyID, b.KeyID) })
	switch {
	case len(hashes) > MaxStatusHashes:
		return nil, invalid("status update: %d token hashes exceed %d", len(hashes), MaxStatusHashes)
	case len(ids) > MaxStatusTokenIDs:
		return nil, invalid("status update: %d token ids exceed %d", len(ids), MaxStatusTokenIDs)
	case len(subs) > MaxStatusSubjects:
		return nil, invalid("status update: %d subject cut-offs exceed %d", len(subs), MaxStatusSubjects)
	case len(anchors) > MaxStatusAnchors:
		return nil, invalid("status update: %d anchor cut-offs exceed %d", len(anchors), MaxStatusAnchors)
	}
	n := 4
	b := make([]byte, 0, 64+len(u.Issuer)+len(u.Audience)+32*len(hashes))
	for _, present := range []bool{len(hashes) > 0, len(ids) > 0, len(subs) > 0, len(anchors) > 0} {
		if present {
			n++
		}
	}
	b = codec.AppendHead(b, 5, uint64(n))
	b = codec.AppendText(codec.AppendUint(b, statusIss), u.Issuer)
	b = codec.AppendUint(codec.AppendUint(b, statusSeq), u.Sequence)
	b = codec.AppendUint(codec.AppendUint(b, statusTime), t)
	b = codec.AppendText(codec.AppendUint(b, statusAud), u.Audience)
	if len(hashes) > 0 {
		b = codec.AppendHead(codec.AppendUint(b, statusHashes), 2, uint64(32*len(hashes)))
		for i := range hashes {
			b = append(b, hashes[i][:]...)
		}
	}
	if len(ids) > 0 {
		b = codec.AppendHead(codec.AppendUint(b, statusTokenIDs), 4, uint64(len(ids)))
		for _, id := range ids {
			if len(id) == 0 || len(id) > MaxTokenIDLength {
				return nil, invalid("status update: token id of %d bytes, want 1..%d", len(id), MaxTokenIDLength)
			}
			b = codec.AppendBytes(b, id)
		}
	}
	if len(subs) > 0 {
		b = codec.AppendHead(codec.AppendUint(b, statusSubjects), 4, uint64(len(subs)))
		for _, s := range subs {
			if len(s.Subject) > MaxStatusSubjectLength || !utf8.ValidString(s.Subject) {
				return nil, invalid("status update: subject cut-off %q: at most %d bytes of UTF-8", s.Subject, MaxStatusSubjectLength)
			}
			before, err := unixTime("subject cut-off", s.Before, true)
			if err != nil {
				return nil, err
			}
			b = codec.AppendUint(codec.AppendText(append(b, 0x82), s.Subject), before)
		}
	}
	if len(anchors) > 0 {
		b = codec.AppendHead(codec.AppendUint(b, statusAnchors), 4, uint64(len(anchors)))
		for _, a := range anchors {
			if len(a.KeyID) == 0 || len(a.KeyID) > MaxKeyIDLength {
				return nil, invalid("status update: anchor key id of %d bytes, want 1..%d", len(a.KeyID), MaxKeyIDLength)
			}
			before, err := unixTime("anchor cut-off", a.Before, true)
			if err != nil {
				return nil, err
			}
			b = codec.AppendUint(codec.AppendBytes(append(b, 0x82), a.KeyID), before)
		}
	}
	return b, nil
}

// SignedStatus is a status update parsed strictly whose signature has not
// been verified. Values read from it before [SignedStatus.Verify] succeeds
// are marked Unverified and may only be used to choose the key to verify
// with, or to skip an update that would not be newer anyway.
type SignedStatus struct {
	raw    []byte
	msg    *sign1
	update *StatusUpdate
}

// ParseStatus parses a signed status update strictly (18(COSE_Sign1),
// deterministic payload, entries ascending without repeats, every bound)
// without any cryptography. Errors match [ErrMalformed].
func ParseStatus(data []byte) (*SignedStatus, error) {
	const f = "status"
	if len(data) > MaxStatusUpdateSize {
		return nil, malformed(f, "%d bytes exceed %d", len(data), MaxStatusUpdateSize)
	}
	if !bytes.HasPrefix(data, tagSign1Prefix) {
		return nil, malformed(f, "must start with tag 18(")
	}
	raw := bytes.Clone(data)
	m, err := parseSign1(f, raw[len(tagSign1Prefix):])
	if err != nil {
		return nil, err
	}
	if m.contentCWT {
		return nil, malformed(f+".protected", "content type marks a CWT")
	}
	u, err := decodeStatus(m.payload)
	if err != nil {
		return nil, err
	}
	return &SignedStatus{raw: raw, msg: m, update: u}, nil
}

func decodeStatus(data []byte) (*StatusUpdate, error) {
	const f = "status.payload"
	var raw [statusAnchors + 1][]byte
	if err := readIntKeyMap(f, data, raw[:]); err != nil {
		return nil, err
	}
	for k := statusIss; k <= statusAud; k++ {
		if raw[k] == nil {
			return nil, malformed(f, "key %d missing", k)
		}
	}
	u := &StatusUpdate{}
	var err error
	if u.Issuer, err = codec.ReadText(raw[statusIss]); err != nil || u.Issuer == "" {
		return nil, malformed(f+".iss", "must be a non-empty text string")
	}
	if u.Sequence, err = codec.ReadUint(raw[statusSeq]); err != nil {
		return nil, wrapMalformed(f+".seq", err)
	}
	if u.Time, err = decodeTime(raw[statusTime]); err != nil {
		return nil, wrapMalformed(f+".time", err)
	}
	if u.Audience, err = codec.ReadText(raw[statusAud]); err != nil {
		return nil, wrapMalformed(f+".aud", err)
	}
	if err := validateAudience(u.Audience); err != nil {
		return nil, malformed(f+".aud", "%v", err)
	}
	if v := raw[statusHashes]; v != nil {
		hs, err := codec.ReadBytes(v)
		if err != nil {
			return nil, wrapMalformed(f+".hashes", err)
		}
		if len(hs) == 0 || len(hs)%32 != 0 || len(hs)/32 > MaxStatusHashes {
			return nil, malformed(f+".hashes", "%d bytes, want a multiple of 32, 32..%d", len(hs), 32*MaxStatusHashes)
		}
		u.Hashes = make([][32]byte, len(hs)/32)
		for i := range u.Hashes {
			u.Hashes[i] = [32]byte(hs[32*i:])
			if i > 0 && bytes.Compare(u.Hashes[i-1][:], u.Hashes[i][:]) >= 0 {
				return nil, malformed(f+".hashes", "not ascending without repeats")
			}
		}
	}
	if v := raw[statusTokenIDs]; v != nil {
		items, err := readEntries(f+".cti", v, MaxStatusTokenIDs)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			id, err := codec.ReadBytes(it)
			if err != nil {
				return nil, wrapMalformed(f+".cti", err)
			}
			if len(id) == 0 || len(id) > MaxTokenIDLength {
				return nil, malformed(f+".cti", "token id of %d bytes, want 1..%d", len(id), MaxTokenIDLength)
			}
			if i > 0 && bytes.Compare(u.TokenIDs[i-1], id) >= 0 {
				return nil, malformed(f+".cti", "not ascending without repeats")
			}
			u.TokenIDs = append(u.TokenIDs, id)
		}
	}
	if v := raw[statusSubjects]; v != nil {
		items, err := readEntries(f+".subjects", v, MaxStatusSubjects)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			k, before, err := readCutoff(f+".subjects", it, 3)
			if err != nil {
				return nil, err
			}
			s := string(k)
			if len(s) > MaxStatusSubjectLength {
				return nil, malformed(f+".subjects", "subject of %d bytes exceeds %d", len(s), MaxStatusSubjectLength)
			}
			if i > 0 && u.Subjects[i-1].Subject >= s {
				return nil, malformed(f+".subjects", "not ascending without repeats")
			}
			u.Subjects = append(u.Subjects, SubjectCutoff{Subject: s, Before: before})
		}
	}
	if v := raw[statusAnchors]; v != nil {
		items, err := readEntries(f+".anchors", v, MaxStatusAnchors)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			kid, before, err := readCutoff(f+".anchors", it, 2)
			if err != nil {
				return nil, err
			}
			if len(kid) == 0 || len(kid) > MaxKeyIDLength {
				return nil, malformed(f+".anchors", "key id of %d bytes, want 1..%d", len(kid), MaxKeyIDLength)
			}
			if i > 0 && bytes.Compare(u.Anchors[i-1].KeyID, kid) >= 0 {
				return nil, malformed(f+".anchors", "not ascending without repeats")
			}
			u.Anchors = append(u.Anchors, AnchorCutoff{KeyID: kid, Before: before})
		}
	}
	return u, nil
}

// readEntries reads a non-empty array of at most max elements.
func readEntries(field string, v []byte, max int) ([][]byte, error) {
	if len(v) == 0 || v[0]>>5 != 4 {
		return nil, malformed(field, "not an array")
	}
	items, err := codec.ReadArray(v, nil)
	if err != nil {
		return nil, wrapMalformed(field, err)
	}
	if len(items) == 0 || len(items) > max {
		return nil, malformed(field, "%d entries, want 1..%d", len(items), max)
	}
	return items, nil
}

// readCutoff reads [key, before], key of CBOR major type major (2 bytes,
// 3 text).
func readCutoff(field string, it []byte, major byte) ([]byte, time.Time, error) {
	var buf [2][]byte
	if len(it) == 0 || it[0]>>5 != 4 {
		return nil, time.Time{}, malformed(field, "entry is not an array")
	}
	items, err := codec.ReadArray(it, buf[:0])
	if err != nil {
		return nil, time.Time{}, wrapMalformed(field, err)
	}
	if len(items) != 2 || len(items[0]) == 0 || items[0][0]>>5 != major {
		return nil, time.Time{}, malformed(field, "entry is not [key, before]")
	}
	var key []byte
	if major == 3 {
		s, err := codec.ReadText(items[0])
		if err != nil {
			return nil, time.Time{}, wrapMalformed(field, err)
		}
		key = []byte(s)
	} else if key, err = codec.ReadBytes(items[0]); err != nil {
		return nil, time.Time{}, wrapMalformed(field, err)
	}
	before, err := decodeTime(items[1])
	if err != nil {
		return nil, time.Time{}, wrapMalformed(field, err)
	}
	return bytes.Clone(key), before, nil
}

// UnverifiedIssuer returns the issuer, not yet verified: use it only to
// look up the anchor to verify with.
func (s *SignedStatus) UnverifiedIssuer() string { return s.update.Issuer }

// UnverifiedKeyID returns the kid header parameter, or nil, not yet
// verified: use it only to look up the anchor to verify with.
func (s *SignedStatus) UnverifiedKeyID() []byte { return bytes.Clone(s.msg.kid) }

// UnverifiedNewerThan reports whether the update, not yet verified, would
// be newer than seq and t ([StatusUpdate.NewerThan]): a device skips an
// update that would not be before spending a signature verification on it.
func (s *SignedStatus) UnverifiedNewerThan(seq uint64, t time.Time) bool {
	return s.update.NewerThan(seq, t)
}

// Algorithm returns the algorithm named in the protected header.
func (s *SignedStatus) Algorithm() Algorithm { return s.msg.alg }

// Bytes returns a copy of the signed update as received.
func (s *SignedStatus) Bytes() []byte { return bytes.Clone(s.raw) }

// Verify checks the signature with pub, which pins the algorithm, and only
// then returns the update. It checks nothing else: callers check that the
// key is an anchor of the update's issuer, that the audience names the
// device and that the update is newer than the one they hold.
func (s *SignedStatus) Verify(pub crypto.PublicKey) (*StatusUpdate, error) {
	if err := s.msg.verify(pub, statusAAD); err != nil {
		return nil, err
	}
	return s.update.clone(), nil
}

// UnverifiedUpdate returns a copy of the update as parsed, not yet
// verified: for display and debugging only.
func (s *SignedStatus) UnverifiedUpdate() *StatusUpdate { return s.update.clone() }

func (u *StatusUpdate) clone() *StatusUpdate {
	c := *u
	c.Hashes = slices.Clone(u.Hashes)
	c.TokenIDs = make([][]byte, len(u.TokenIDs))
	for i := range u.TokenIDs {
		c.TokenIDs[i] = bytes.Clone(u.TokenIDs[i])
	}
	if u.TokenIDs == nil {
		c.TokenIDs = nil
	}
	c.Subjects = slices.Clone(u.Subjects)
	c.Anchors = slices.Clone(u.Anchors)
	for i := range c.Anchors {
		c.Anchors[i].KeyID = bytes.Clone(c.Anchors[i].KeyID)
	}
	return &c
}
