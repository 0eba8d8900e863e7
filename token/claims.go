package token

import (
	"crypto"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// Profile selects the claim keys and features of a token.
type Profile uint8

const (
	// ProfileV1 is the SDA v1 compatibility profile (the v1 profile of docs/PROTOCOL.md), the
	// zero value: scope under claim key 12, cnf under 25, text scopes only,
	// ES256 only, no kid, and iss, aud, exp, nbf, scope and cnf always
	// present. Deployed SDA devices understand only this profile.
	ProfileV1 Profile = iota
	// ProfileV2 is the native profile (the v2 extensions of docs/PROTOCOL.md): the IANA claim keys
	// scope 9 (RFC 9200) and cnf 8 (RFC 8747), kid in the protected header,
	// ES256, ES384 or EdDSA, structured scopes.
	ProfileV2
)

// String returns "v1" or "v2".
func (p Profile) String() string {
	switch p {
	case ProfileV1:
		return "v1"
	case ProfileV2:
		return "v2"
	}
	return fmt.Sprintf("Profile(%d)", uint8(p))
}

// CWT claim keys (RFC 8392 section 4, RFC 9200 section 5.9.2, RFC 8747
// section 3.1) and their SDA v1 draft-era numbers.
const (
	claimIss     = 1
	claimSub     = 2
	claimAud     = 3
	claimExp     = 4
	claimNbf     = 5
	claimIat     = 6
	claimCti     = 7
	claimCnf     = 8  // RFC 8747
	claimScope   = 9  // RFC 9200
	claimScopeV1 = 12 // SDA v1
	claimCnfV1   = 25 // SDA v1
	claimCnonce  = 39 // RFC 9200 section 5.3 (v2)
	cnfCOSEKey   = 1  // RFC 8747 section 3.2

	// claimDelegation is the SDK's delegation claim (v2): a private-use
	// claim key, below -65536 (RFC 8392 section 9.1).
	claimDelegation = -65537
)

// Claims are the claims of an access token (a CWT, RFC 8392).
//
// Times are whole seconds; the zero time.Time means absent. Decoding requires
// iss, aud, exp, scope and cnf; nbf, iat, sub and cti are optional.
type Claims struct {
	Issuer    string           // iss: the trust anchor's name
	Subject   string           // sub: the technician (optional)
	Audience  []string         // aud: "ep:<endpoint>" or "id:<32 hex>" entries
	Expiry    time.Time        // exp
	NotBefore time.Time        // nbf
	IssuedAt  time.Time        // iat (optional)
	ID        []byte           // cti: token id (optional)
	Scope     Scope            // scope: the operations permitted
	Key       crypto.PublicKey // cnf: the technician's proof-of-possession key

	// CNonce (v2, claim 39, RFC 9200 section 5.3) is a nonce the device
	// issued, which the client passed in its token request: it proves the
	// token was made after the device asked (docs/PROTOCOL.md section 12).
	// 1 to MaxCNonceLength bytes; SDA devices issue 8. v1 tokens have none.
	CNonce []byte

	// Delegation (v2, claim -65537, docs/PROTOCOL.md section 13) says
	// whether and how far the holder may delegate the token: nil, not
	// delegable. A v1 token never carries it.
	Delegation *Delegation

	// Profile is the claim-key profile the token was decoded from. Issue
	// ignores it and uses IssueOptions.Profile.
	Profile Profile
}

// claimSlot maps a claim key to its slot in a claimSet, or -1 for a key this
// package does not know.
func claimSlot(key int64) int {
	switch key {
	case claimIss, claimSub, claimAud, claimExp, claimNbf, claimIat, claimCti:
		return int(key - 1)
	case claimCnf:
		return slotCnf
	case claimScope:
		return slotScope
	case claimScopeV1:
		return slotScopeV1
	case claimCnfV1:
		return slotCnfV1
	case claimCnonce:
		return slotCnonce
	case claimDelegation:
		return slotDelegation
	}
	return -1
}

const (
	slotIss = iota
	slotSub
	slotAud
	slotExp
	slotNbf
	slotIat
	slotCti
	slotCnf
	slotScope
	slotScopeV1
	slotCnfV1
	slotCnonce
	slotDelegation
	numSlots
)

// decodeClaims decodes the claim set strictly: integer keys only, each at
// most once, no key this package does not know (deployed v1 devices reject
// unknown keys too), exact value types, and either the SDA v1 or the RFC
// claim keys for scope and cnf, never both.
func decodeClaims(data []byte) (*Claims, error) {
	const f = "token.claims"
	var raw [numSlots][]byte
	err := codec.ReadMap(data, func(k, v []byte) error {
		key, err := codec.ReadInt(k)
		if err != nil {
			return malformed(f, "claim key is not an integer")
		}
		slot := claimSlot(key)
		if slot < 0 {
			return malformed(f, "unknown claim key %d", key)
		}
		if raw[slot] != nil {
			return malformed(f, "claim key %d repeated", key)
		}
		raw[slot] = v
		return nil
	})
	if err != nil {
		if _, ok := err.(*ParseError); ok {
			return nil, err
		}
		return nil, wrapMalformed(f, err)
	}
	c := &Claims{}
	switch {
	case raw[slotScope] != nil && raw[slotScopeV1] != nil:
		return nil, malformed(f, "scope under both key 9 and key 12")
	case raw[slotCnf] != nil && raw[slotCnfV1] != nil:
		return nil, malformed(f, "cnf under both key 8 and key 25")
	case raw[slotScopeV1] != nil && raw[slotCnf] != nil, raw[slotScope] != nil && raw[slotCnfV1] != nil:
		return nil, malformed(f, "mixes SDA v1 and RFC claim keys")
	case raw[slotScopeV1] != nil || raw[slotCnfV1] != nil:
		c.Profile = ProfileV1
		raw[slotScope], raw[slotCnf] = raw[slotScopeV1], raw[slotCnfV1]
	default:
		c.Profile = ProfileV2
	}
	if raw[slotIss] == nil {
		return nil, malformed(f+".iss", "missing")
	}
	if c.Issuer, err = codec.ReadText(raw[slotIss]); err != nil || c.Issuer == "" {
		return nil, malformed(f+".iss", "must be a non-empty text string")
	}
	if raw[slotSub] != nil {
		if c.Subject, err = codec.ReadText(raw[slotSub]); err != nil {
			return nil, wrapMalformed(f+".sub", err)
		}
	}
	if c.Audience, err = decodeAudience(raw[slotAud]); err != nil {
		return nil, wrapMalformed(f+".aud", err)
	}
	if raw[slotExp] == nil {
		return nil, malformed(f+".exp", "missing")
	}
	if c.Expiry, err = decodeTime(raw[slotExp]); err != nil {
		return nil, wrapMalformed(f+".exp", err)
	}
	if raw[slotNbf] != nil {
		if c.NotBefore, err = decodeTime(raw[slotNbf]); err != nil {
			return nil, wrapMalformed(f+".nbf", err)
		}
	}
	if raw[slotIat] != nil {
		if c.IssuedAt, err = decodeTime(raw[slotIat]); err != nil {
			return nil, wrapMalformed(f+".iat", err)
		}
	}
	if raw[slotCti] != nil {
		if c.ID, err = codec.ReadBytes(raw[slotCti]); err != nil {
			return nil, wrapMalformed(f+".cti", err)
		}
		if len(c.ID) == 0 {
			return nil, malformed(f+".cti", "empty")
		}
	}
	if raw[slotCnonce] != nil {
		if c.Profile == ProfileV1 {
			return nil, malformed(f+".cnonce", "an SDA v1 token carries no cnonce")
		}
		if c.CNonce, err = codec.ReadBytes(raw[slotCnonce]); err != nil {
			return nil, wrapMalformed(f+".cnonce", err)
		}
		if len(c.CNonce) == 0 || len(c.CNonce) > MaxCNonceLength {
			return nil, malformed(f+".cnonce", "%d bytes, want 1..%d", len(c.CNonce), MaxCNonceLength)
		}
	}
	if raw[slotDelegation] != nil {
		if c.Profile == ProfileV1 {
			return nil, malformed(f+".delegation", "an SDA v1 token is never delegable")
		}
		if c.Delegation, err = decodeDelegation(f+".delegation", raw[slotDelegation]); err != nil {
			return nil, err
		}
	}
	if raw[slotScope] == nil {
		return nil, malformed(f+".scope", "missing")
	}
	if c.Profile == ProfileV1 && raw[slotScope][0]>>5 != 3 {
		return nil, malformed(f+".scope", "an SDA v1 token carries the text form only")
	}
	if c.Scope, err = decodeScope(raw[slotScope]); err != nil {
		return nil, err
	}
	if c.Delegation != nil {
		if err := c.Delegation.checkScope(c.Scope); err != nil {
			return nil, malformed(f+".delegation", "%v", err)
		}
	}
	if raw[slotCnf] == nil {
		return nil, malformed(f+".cnf", "missing")
	}
	if c.Key, err = decodeCnf(raw[slotCnf]); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeAudience accepts an array of text strings (SDA) or a single text
// string (RFC 8392 section 3.1.3).
func decodeAudience(raw []byte) ([]string, error) {
	if raw == nil {
		return nil, fmt.Errorf("missing")
	}
	if raw[0]>>5 == 3 {
		a, err := codec.ReadText(raw)
		if err != nil {
			return nil, err
		}
		return []string{a}, checkAudience([]string{a})
	}
	var buf [8][]byte
	items, err := codec.ReadArray(raw, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("must be a text string or an array of them: %w", err)
	}
	aud := make([]string, len(items))
	for i, it := range items {
		if aud[i], err = codec.ReadText(it); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return aud, checkAudience(aud)
}

func checkAudience(aud []string) error {
	if len(aud) == 0 || len(aud) > MaxAudiences {
		return fmt.Errorf("%d entries, want 1..%d", len(aud), MaxAudiences)
	}
	for i, a := range aud {
		if a == "" || len(a) > MaxAudienceLength {
			return fmt.Errorf("entry %d has %d bytes, want 1..%d", i, len(a), MaxAudienceLength)
		}
	}
	return nil
}

// maxTime is the largest time claim accepted, in seconds: far beyond any
// real expiry, and small enough that adding a leeway cannot overflow.
const maxTime = math.MaxInt64 / 2

func decodeTime(raw []byte) (time.Time, error) {
	v, err := codec.ReadUint(raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an unsigned integer: %w", err)
	}
	if v > maxTime {
		return time.Time{}, fmt.Errorf("time %d out of range", v)
	}
	return time.Unix(int64(v), 0).UTC(), nil
}

// decodeCnf decodes {1: COSE_Key} (RFC 8747 section 3.2). Other confirmation
// methods (encrypted keys, kid) are not supported.
func decodeCnf(raw []byte) (crypto.PublicKey, error) {
	const f = "token.claims.cnf"
	var key []byte
	err := codec.ReadMap(raw, func(k, v []byte) error {
		if l, err := codec.ReadInt(k); err != nil || l != cnfCOSEKey || key != nil {
			return &ParseError{Field: f, Err: fmt.Errorf("%w: only one COSE_Key confirmation method (1) is supported", ErrUnsupportedKey)}
		}
		key = v
		return nil
	})
	if err != nil {
		if _, ok := err.(*ParseError); ok {
			return nil, err
		}
		return nil, wrapMalformed(f, err)
	}
	if key == nil {
		return nil, malformed(f, "COSE_Key (1) missing")
	}
	return parseCOSEKey(f+".COSE_Key", key)
}

// encodeClaims returns the deterministic encoding of c in profile p (RFC
// 8949 section 4.2.1: keys in the order of their encoding, which for these
// small integers is numeric order).
func encodeClaims(c *Claims, p Profile) ([]byte, error) {
	if p != ProfileV1 && p != ProfileV2 {
		return nil, invalid("unknown profile %v", p)
	}
	if c.Issuer == "" {
		return nil, invalid("iss is required")
	}
	if err := checkAudience(c.Audience); err != nil {
		return nil, invalid("aud: %v", err)
	}
	for _, v := range append([]string{c.Issuer, c.Subject}, c.Audience...) {
		if !utf8.ValidString(v) {
			return nil, invalid("claim %q is not valid UTF-8", v)
		}
	}
	exp, err := unixTime("exp", c.Expiry, true)
	if err != nil {
		return nil, err
	}
	nbf, err := unixTime("nbf", c.NotBefore, p == ProfileV1)
	if err != nil {
		return nil, err
	}
	iat, err := unixTime("iat", c.IssuedAt, false)
	if err != nil {
		return nil, err
	}
	if c.ID != nil && len(c.ID) == 0 {
		return nil, invalid("cti must not be empty")
	}
	if c.CNonce != nil && (p == ProfileV1 || len(c.CNonce) == 0 || len(c.CNonce) > MaxCNonceLength) {
		return nil, invalid("cnonce: a v2 token carries 1..%d bytes, a v1 token none", MaxCNonceLength)
	}
	if c.Scope.IsZero() {
		return nil, invalid("scope is required")
	}
	text, isText := c.Scope.Text()
	if p == ProfileV1 && !isText {
		return nil, invalid("an SDA v1 token carries text scopes only: %v", c.Scope)
	}
	if p == ProfileV1 && len(text) < MinV1ScopeLength {
		return nil, invalid("the v1 scope %q is shorter than %d bytes, and deployed devices refuse such a token (name the operation with 2 or more characters, or use ProfileV2)", text, MinV1ScopeLength)
	}
	if c.Key == nil {
		return nil, invalid("cnf key is required")
	}
	if c.Delegation != nil {
		if p == ProfileV1 {
			return nil, invalid("an SDA v1 token is never delegable")
		}
		if err := c.Delegation.validate(c.Scope); err != nil {
			return nil, err
		}
	}
	if p == ProfileV1 {
		// The v1 cnf is an EC2 P-256 key, the only PoP key (and
		// ES256 the only request algorithm) deployed devices know.
		if alg, err := keyAlgorithm(c.Key); err == nil && alg != AlgES256 {
			return nil, invalid("an SDA v1 token carries a P-256 cnf key, not %v", alg)
		}
	}

	// A time at the epoch (0) is present; only the zero time.Time is absent.
	hasNbf, hasIat := !c.NotBefore.IsZero(), !c.IssuedAt.IsZero()

	n := 5 // iss, aud, exp, scope, cnf
	for _, present := range []bool{c.Subject != "", hasNbf, hasIat, c.ID != nil, c.CNonce != nil, c.Delegation != nil} {
		if present {
			n++
		}
	}
	b := make([]byte, 0, 256)
	b = codec.AppendHead(b, 5, uint64(n))
	b = codec.AppendText(codec.AppendUint(b, claimIss), c.Issuer)
	if c.Subject != "" {
		b = codec.AppendText(codec.AppendUint(b, claimSub), c.Subject)
	}
	b = codec.AppendHead(codec.AppendUint(b, claimAud), 4, uint64(len(c.Audience)))
	for _, a := range c.Audience {
		b = codec.AppendText(b, a)
	}
	b = codec.AppendUint(codec.AppendUint(b, claimExp), exp)
	if hasNbf {
		b = codec.AppendUint(codec.AppendUint(b, claimNbf), nbf)
	}
	if hasIat {
		b = codec.AppendUint(codec.AppendUint(b, claimIat), iat)
	}
	if c.ID != nil {
		b = codec.AppendBytes(codec.AppendUint(b, claimCti), c.ID)
	}
	appendScope := func(b []byte) ([]byte, error) {
		if isText {
			return codec.AppendText(b, text), nil
		}
		enc, err := c.Scope.MarshalCBOR()
		return append(b, enc...), err
	}
	appendCnf := func(b []byte) ([]byte, error) {
		b = append(b, 0xa1, cnfCOSEKey)
		return appendCOSEKey(b, c.Key, p == ProfileV2)
	}
	if p == ProfileV2 {
		if b, err = appendCnf(codec.AppendUint(b, claimCnf)); err != nil {
			return nil, err
		}
		if b, err = appendScope(codec.AppendUint(b, claimScope)); err != nil {
			return nil, err
		}
		if c.CNonce != nil {
			b = codec.AppendBytes(codec.AppendUint(b, claimCnonce), c.CNonce)
		}
		if c.Delegation != nil {
			// -65537 (3a 00 01 00 00) sorts after every positive key.
			b = c.Delegation.append(codec.AppendInt(b, claimDelegation))
		}
		return b, nil
	}
	if b, err = appendScope(codec.AppendUint(b, claimScopeV1)); err != nil {
		return nil, err
	}
	return appendCnf(codec.AppendUint(b, claimCnfV1))
}

func unixTime(name string, t time.Time, required bool) (uint64, error) {
	if t.IsZero() {
		if required {
			return 0, invalid("%s is required", name)
		}
		return 0, nil
	}
	if t.Unix() < 0 {
		return 0, invalid("%s before 1970", name)
	}
	if t.Unix() > maxTime {
		return 0, invalid("%s too far in the future", name)
	}
	return uint64(t.Unix()), nil
}
