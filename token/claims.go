package token

import (
	"crypto"
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// Profile selects the claim keys and features of a token.
type Profile uint8

const (
	// ProfileV1 is the SDA v1 compatibility profile (WIRE.md part 1), the
	// zero value: scope under claim key 12, cnf under 25, text scopes only,
	// ES256 only, no kid, and iss, aud, exp, nbf, scope and cnf always
	// present. Deployed SDA devices understand only this profile.
	ProfileV1 Profile = iota
	// ProfileV2 is the native profile (WIRE.md part 2): the IANA claim keys
	// scope 9 (RFC 9200) and cnf 8 (RFC 8747), kid in the protected header,
	// ES256, ES384 or EdDSA, structured scopes.
	ProfileV2
)

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
	cnfCOSEKey   = 1  // RFC 8747 section 3.2
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

	// Profile is the claim-key profile the token was decoded from. Issue
	// ignores it and uses IssueOptions.Profile.
	Profile Profile
}

// claimsWire is the wire form used for decoding. Every field is a raw item so
// presence, types and profile mixing can be checked precisely; unknown claim
// keys are rejected by the strict decoder.
type claimsWire struct {
	Iss     cbor.RawMessage `cbor:"1,keyasint,omitempty"`
	Sub     cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	Aud     cbor.RawMessage `cbor:"3,keyasint,omitempty"`
	Exp     cbor.RawMessage `cbor:"4,keyasint,omitempty"`
	Nbf     cbor.RawMessage `cbor:"5,keyasint,omitempty"`
	Iat     cbor.RawMessage `cbor:"6,keyasint,omitempty"`
	Cti     cbor.RawMessage `cbor:"7,keyasint,omitempty"`
	Cnf     cbor.RawMessage `cbor:"8,keyasint,omitempty"`
	Scope   cbor.RawMessage `cbor:"9,keyasint,omitempty"`
	ScopeV1 cbor.RawMessage `cbor:"12,keyasint,omitempty"`
	CnfV1   cbor.RawMessage `cbor:"25,keyasint,omitempty"`
}

func decodeClaims(data []byte) (*Claims, error) {
	const f = "token.claims"
	if len(data) == 0 || data[0]>>5 != 5 {
		return nil, malformed(f, "not a map")
	}
	var w claimsWire
	if err := codec.Unmarshal(data, &w); err != nil {
		return nil, wrapMalformed(f, err)
	}
	c := &Claims{}
	switch {
	case w.Scope != nil && w.ScopeV1 != nil:
		return nil, malformed(f, "scope under both key 9 and key 12")
	case w.Cnf != nil && w.CnfV1 != nil:
		return nil, malformed(f, "cnf under both key 8 and key 25")
	case w.ScopeV1 != nil && w.Cnf != nil, w.Scope != nil && w.CnfV1 != nil:
		return nil, malformed(f, "mixes SDA v1 and RFC claim keys")
	case w.ScopeV1 != nil || w.CnfV1 != nil:
		c.Profile = ProfileV1
		w.Scope, w.Cnf = w.ScopeV1, w.CnfV1
	default:
		c.Profile = ProfileV2
	}
	var err error
	if w.Iss == nil {
		return nil, malformed(f+".iss", "missing")
	}
	if err := decodeText(w.Iss, &c.Issuer); err != nil || c.Issuer == "" {
		return nil, malformed(f+".iss", "must be a non-empty text string")
	}
	if w.Sub != nil {
		if err := decodeText(w.Sub, &c.Subject); err != nil {
			return nil, wrapMalformed(f+".sub", err)
		}
	}
	if c.Audience, err = decodeAudience(w.Aud); err != nil {
		return nil, wrapMalformed(f+".aud", err)
	}
	if w.Exp == nil {
		return nil, malformed(f+".exp", "missing")
	}
	for _, t := range []struct {
		name string
		raw  []byte
		dst  *time.Time
	}{{"exp", w.Exp, &c.Expiry}, {"nbf", w.Nbf, &c.NotBefore}, {"iat", w.Iat, &c.IssuedAt}} {
		if t.raw == nil {
			continue
		}
		if *t.dst, err = decodeTime(t.raw); err != nil {
			return nil, wrapMalformed(f+"."+t.name, err)
		}
	}
	if w.Cti != nil {
		if c.ID, err = byteString(w.Cti); err != nil {
			return nil, wrapMalformed(f+".cti", err)
		}
	}
	if w.Scope == nil {
		return nil, malformed(f+".scope", "missing")
	}
	if c.Scope, err = DecodeScope(w.Scope); err != nil {
		return nil, wrapMalformed(f+".scope", err)
	}
	if c.Profile == ProfileV1 && w.Scope[0]>>5 != 3 {
		return nil, malformed(f+".scope", "an SDA v1 token carries the text form only")
	}
	if w.Cnf == nil {
		return nil, malformed(f+".cnf", "missing")
	}
	if c.Key, err = decodeCnf(w.Cnf); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeText(raw []byte, dst *string) error {
	if raw[0]>>5 != 3 {
		return fmt.Errorf("not a text string")
	}
	return codec.Unmarshal(raw, dst)
}

// decodeAudience accepts an array of text strings (SDA) or a single text
// string (RFC 8392 section 3.1.3).
func decodeAudience(raw []byte) ([]string, error) {
	if raw == nil {
		return nil, fmt.Errorf("missing")
	}
	var aud []string
	switch raw[0] >> 5 {
	case 3:
		aud = make([]string, 1)
		if err := codec.Unmarshal(raw, &aud[0]); err != nil {
			return nil, err
		}
	case 4:
		if err := codec.Unmarshal(raw, &aud); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("must be a text string or an array of them")
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

func decodeTime(raw []byte) (time.Time, error) {
	if raw[0]>>5 != 0 {
		return time.Time{}, fmt.Errorf("must be an unsigned integer")
	}
	var v uint64
	if err := codec.Unmarshal(raw, &v); err != nil {
		return time.Time{}, err
	}
	if v > math.MaxInt64/2 {
		return time.Time{}, fmt.Errorf("time %d out of range", v)
	}
	return time.Unix(int64(v), 0).UTC(), nil
}

// decodeCnf decodes {1: COSE_Key} (RFC 8747 section 3.2). Other confirmation
// methods (encrypted keys, kid) are not supported.
func decodeCnf(raw []byte) (crypto.PublicKey, error) {
	const f = "token.claims.cnf"
	var cnf struct {
		Key cbor.RawMessage `cbor:"1,keyasint"`
	}
	if raw[0]>>5 != 5 {
		return nil, malformed(f, "not a map")
	}
	if err := codec.Unmarshal(raw, &cnf); err != nil {
		return nil, &ParseError{Field: f, Err: fmt.Errorf("%w: only the COSE_Key confirmation method (1) is supported: %v", ErrUnsupportedKey, err)}
	}
	if cnf.Key == nil {
		return nil, malformed(f, "COSE_Key (1) missing")
	}
	if cnf.Key[0]>>5 != 5 {
		return nil, malformed(f+".COSE_Key", "not a map")
	}
	return parseCOSEKey(f+".COSE_Key", cnf.Key)
}

// claimsOut is the wire form used for encoding; field order does not matter
// (the deterministic encoding sorts keys).
type claimsOut struct {
	Iss     string          `cbor:"1,keyasint"`
	Sub     string          `cbor:"2,keyasint,omitempty"`
	Aud     []string        `cbor:"3,keyasint"`
	Exp     uint64          `cbor:"4,keyasint"`
	Nbf     *uint64         `cbor:"5,keyasint,omitempty"`
	Iat     *uint64         `cbor:"6,keyasint,omitempty"`
	Cti     []byte          `cbor:"7,keyasint,omitempty"`
	Cnf     cbor.RawMessage `cbor:"8,keyasint,omitempty"`
	Scope   cbor.RawMessage `cbor:"9,keyasint,omitempty"`
	ScopeV1 cbor.RawMessage `cbor:"12,keyasint,omitempty"`
	CnfV1   cbor.RawMessage `cbor:"25,keyasint,omitempty"`
}

// encodeClaims returns the deterministic encoding of c in profile p.
func encodeClaims(c *Claims, p Profile) ([]byte, error) {
	if c.Issuer == "" {
		return nil, invalid("iss is required")
	}
	if err := checkAudience(c.Audience); err != nil {
		return nil, invalid("aud: %v", err)
	}
	out := claimsOut{Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience, Cti: c.ID}
	var err error
	if out.Exp, err = unixTime("exp", c.Expiry, true); err != nil {
		return nil, err
	}
	nbf, err := unixTime("nbf", c.NotBefore, p == ProfileV1)
	if err != nil {
		return nil, err
	}
	if !c.NotBefore.IsZero() || p == ProfileV1 {
		out.Nbf = &nbf
	}
	if !c.IssuedAt.IsZero() {
		iat, err := unixTime("iat", c.IssuedAt, false)
		if err != nil {
			return nil, err
		}
		out.Iat = &iat
	}
	if c.ID != nil && len(c.ID) == 0 {
		return nil, invalid("cti must not be empty")
	}
	if c.Scope.IsZero() {
		return nil, invalid("scope is required")
	}
	scope, err := c.Scope.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	if c.Key == nil {
		return nil, invalid("cnf key is required")
	}
	marshalKey := MarshalCOSEKey
	if p == ProfileV2 {
		marshalKey = marshalCOSEKeyCompact
	}
	key, err := marshalKey(c.Key)
	if err != nil {
		return nil, err
	}
	cnf, err := codec.Marshal(map[int]cbor.RawMessage{cnfCOSEKey: key})
	if err != nil {
		return nil, err
	}
	switch p {
	case ProfileV1:
		if _, ok := c.Scope.Text(); !ok {
			return nil, invalid("an SDA v1 token carries text scopes only: %v", c.Scope)
		}
		out.ScopeV1, out.CnfV1 = scope, cnf
	case ProfileV2:
		out.Scope, out.Cnf = scope, cnf
	default:
		return nil, invalid("unknown profile %v", p)
	}
	return codec.Marshal(&out)
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
	return uint64(t.Unix()), nil
}
