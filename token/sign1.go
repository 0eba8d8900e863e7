package token

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/securedeviceaccess/sda/internal/codec"
)

// COSE header labels (RFC 9052 section 3.1).
const (
	headerAlg         = 1
	headerCrit        = 2
	headerContentType = 3
	headerKid         = 4
)

// Encoded CBOR tags: COSE_Sign1 is tag 18 (RFC 9052 section 4.2), CWT tag 61
// (RFC 8392 section 6).
var (
	tagSign1Prefix = []byte{0xd2}             // 18(
	tagCWTPrefix   = []byte{0xd8, 0x3d, 0xd2} // 61(18(
)

// Encoded protected headers of the common case, recognised without decoding.
var (
	protectedES256 = []byte{0xa1, 0x01, 0x26}       // {1: -7}
	protectedEdDSA = []byte{0xa1, 0x01, 0x27}       // {1: -8}
	protectedES384 = []byte{0xa1, 0x01, 0x38, 0x22} // {1: -35}
	emptyMap       = []byte{0xa0}
)

// sign1 is a strictly parsed, not yet verified COSE_Sign1. Its byte slices
// alias the input, which callers clone once beforehand.
type sign1 struct {
	protected []byte // the protected header bytes as received (inside the bstr)
	alg       Algorithm
	kid       []byte
	payload   []byte
	signature []byte
	// contentCWT: the content type header says the payload is a CWT
	// (61, "application/cwt"): a nested CWT (RFC 8392 section 7.2 step 6).
	contentCWT bool
}

// parseSign1 parses an untagged COSE_Sign1 array (RFC 9052 section 4.2).
// field names the message in errors.
func parseSign1(field string, data []byte) (*sign1, error) {
	if err := codec.Check(data); err != nil {
		return nil, wrapMalformed(field, err)
	}
	var buf [4][]byte
	items, err := codec.ReadArray(data, buf[:0])
	if err != nil {
		return nil, wrapMalformed(field, err)
	}
	if len(items) != 4 {
		return nil, malformed(field, "COSE_Sign1 of %d elements, want 4", len(items))
	}
	m := &sign1{}
	if m.protected, err = codec.ReadBytes(items[0]); err != nil {
		return nil, wrapMalformed(field+".protected", err)
	}
	if m.payload, err = codec.ReadBytes(items[2]); err != nil {
		return nil, wrapMalformed(field+".payload", err)
	}
	if m.signature, err = codec.ReadBytes(items[3]); err != nil {
		return nil, wrapMalformed(field+".signature", err)
	}
	if err := m.parseHeaders(field, items[1]); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *sign1) parseHeaders(field string, unprotectedRaw []byte) error {
	if len(unprotectedRaw) == 0 || unprotectedRaw[0]>>5 != 5 {
		return malformed(field+".unprotected", "not a map")
	}
	// Fast path: the SDA v1 layout and its v2 siblings, byte for byte.
	if bytes.Equal(unprotectedRaw, emptyMap) {
		switch {
		case bytes.Equal(m.protected, protectedES256):
			m.alg = AlgES256
			return nil
		case bytes.Equal(m.protected, protectedEdDSA):
			m.alg = AlgEdDSA
			return nil
		case bytes.Equal(m.protected, protectedES384):
			m.alg = AlgES384
			return nil
		}
	}
	var prot, unprot map[any]cbor.RawMessage
	if len(m.protected) > 0 {
		if m.protected[0]>>5 != 5 {
			return malformed(field+".protected", "not a map")
		}
		if err := codec.Unmarshal(m.protected, &prot); err != nil {
			return wrapMalformed(field+".protected", err)
		}
	}
	if err := codec.Unmarshal(unprotectedRaw, &unprot); err != nil {
		return wrapMalformed(field+".unprotected", err)
	}
	prot, err := normalizeLabels(field+".protected", prot)
	if err != nil {
		return err
	}
	unprot, err = normalizeLabels(field+".unprotected", unprot)
	if err != nil {
		return err
	}
	for l := range unprot {
		if _, ok := prot[l]; ok {
			return malformed(field+".unprotected", "label %v also in the protected header", l)
		}
	}
	if _, ok := unprot[int64(headerAlg)]; ok {
		return malformed(field+".unprotected", "alg must be in the protected header")
	}
	if _, ok := unprot[int64(headerCrit)]; ok {
		return malformed(field+".unprotected", "crit must be in the protected header")
	}
	rawAlg, ok := prot[int64(headerAlg)]
	if !ok {
		return malformed(field+".protected", "alg missing")
	}
	var alg int64
	if err := codec.Unmarshal(rawAlg, &alg); err != nil {
		return &ParseError{Field: field + ".protected.alg", Err: fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, err)}
	}
	m.alg = Algorithm(alg)
	if !m.alg.supported() {
		return &ParseError{Field: field + ".protected.alg", Err: fmt.Errorf("%w: %v", ErrUnsupportedAlgorithm, m.alg)}
	}
	if rawCrit, ok := prot[int64(headerCrit)]; ok {
		if err := checkCrit(field+".protected.crit", rawCrit); err != nil {
			return err
		}
	}
	rawType, ok := prot[int64(headerContentType)]
	if !ok {
		rawType, ok = unprot[int64(headerContentType)]
	}
	if ok {
		// A CoAP Content-Format number or a media type (RFC 9052 section
		// 3.1); only "is it a CWT" matters here.
		n, errNum := codec.ReadUint(rawType)
		mt, errText := codec.ReadText(rawType)
		mt, _, _ = strings.Cut(mt, ";")
		m.contentCWT = errNum == nil && n == tagCWT ||
			errText == nil && strings.EqualFold(strings.TrimSpace(mt), "application/cwt")
	}
	rawKid, ok := prot[int64(headerKid)]
	if !ok {
		rawKid, ok = unprot[int64(headerKid)]
	}
	if ok {
		if m.kid, err = codec.ReadBytes(rawKid); err != nil {
			return wrapMalformed(field+".kid", err)
		}
	}
	return nil
}

// normalizeLabels turns integer labels into int64 and rejects labels that
// are neither integers nor text strings (RFC 9052 section 3).
func normalizeLabels(field string, h map[any]cbor.RawMessage) (map[any]cbor.RawMessage, error) {
	for l, v := range h {
		switch x := l.(type) {
		case int64, string:
		case uint64:
			if x > 1<<63-1 {
				return nil, malformed(field, "label %d out of range", x)
			}
			delete(h, l)
			h[int64(x)] = v
		default:
			return nil, malformed(field, "label of type %T", l)
		}
	}
	return h, nil
}

// checkCrit enforces RFC 9052 section 3.1: crit is a non-empty array of
// labels, each of which must be understood. This package understands alg and
// kid; everything else listed as critical is rejected.
func checkCrit(field string, raw []byte) error {
	var labels []any
	if err := codec.Unmarshal(raw, &labels); err != nil {
		return wrapMalformed(field, err)
	}
	if len(labels) == 0 {
		return malformed(field, "empty")
	}
	for _, l := range labels {
		switch x := l.(type) {
		case uint64:
			if x == headerAlg || x == headerKid {
				continue
			}
		case int64, string:
		default:
			return malformed(field, "label of type %T", l)
		}
		return &ParseError{Field: field, Err: fmt.Errorf("%w: %v", ErrCritical, l)}
	}
	return nil
}

// verify checks the signature over the bytes received with pub, which pins
// the algorithm.
func (m *sign1) verify(pub crypto.PublicKey, externalAAD []byte) error {
	return verifySignature(pub, m.alg, sigStructure(m.protected, externalAAD, m.payload), m.signature)
}

// sigStructure returns the ToBeSigned bytes of RFC 9052 section 4.4:
// ["Signature1", body_protected, external_aad, payload].
func sigStructure(protected, externalAAD, payload []byte) []byte {
	b := make([]byte, 0, 12+3*5+len(protected)+len(externalAAD)+len(payload))
	return appendSigStructure(b, protected, externalAAD, payload)
}

// appendSigStructure appends the ToBeSigned bytes (see sigStructure) to b.
func appendSigStructure(b, protected, externalAAD, payload []byte) []byte {
	b = append(b, 0x84, 0x6a)
	b = append(b, "Signature1"...)
	b = appendBstr(b, protected)
	b = appendBstr(b, externalAAD)
	return appendBstr(b, payload)
}

func appendBstr(b, v []byte) []byte { return codec.AppendBytes(b, v) }

// bstrSize returns the length of the encoding of a byte string of n bytes.
func bstrSize(n int) int {
	var head [9]byte
	return len(codec.AppendHead(head[:0], 2, uint64(n))) + n
}

// signSign1 builds a tagged COSE_Sign1 (with prefix as its tags) over
// payload, with alg (pinned by the signer's key) and kid in the protected
// header and an empty unprotected header. A message that would be longer
// than limit bytes (0: no limit) is refused with ErrInvalid before the
// signer is asked: its length is known beforehand, as a signature has the
// fixed size of its algorithm.
func signSign1(prefix, payload []byte, signer crypto.Signer, kid []byte, rnd io.Reader, limit int) ([]byte, error) {
	return signSign1AAD(prefix, payload, signer, kid, rnd, limit, nil)
}

// signSign1AAD is signSign1 with external additional data (RFC 9052
// section 4.3) in the signed structure.
func signSign1AAD(prefix, payload []byte, signer crypto.Signer, kid []byte, rnd io.Reader, limit int, externalAAD []byte) ([]byte, error) {
	return signSign1Hash(prefix, payload, signer, kid, rnd, limit, externalAAD, nil)
}

// signSign1Hash is signSign1AAD that, when tbsHash is not nil, sets it to
// the SHA-256 of the ToBeSigned it signs (for a token, whose external
// data is empty, its revocation hash) once the message is signed.
func signSign1Hash(prefix, payload []byte, signer crypto.Signer, kid []byte, rnd io.Reader, limit int, externalAAD []byte, tbsHash *[32]byte) ([]byte, error) {
	if signer == nil {
		return nil, invalid("nil signer")
	}
	alg, err := signerAlgorithm(signer.Public())
	if err != nil {
		return nil, err
	}
	protected, err := encodeProtected(alg, kid)
	if err != nil {
		return nil, err
	}
	size := len(prefix) + 1 + bstrSize(len(protected)) + 1 + bstrSize(len(payload)) + bstrSize(alg.signatureSize())
	if limit > 0 && size > limit {
		return nil, invalid("a message of %d bytes exceeds %d", size, limit)
	}
	tbs := sigStructure(protected, externalAAD, payload)
	sig, err := sign(signer, alg, tbs, rnd)
	if err != nil {
		return nil, err
	}
	if tbsHash != nil {
		*tbsHash = sha256.Sum256(tbs)
	}
	out := make([]byte, 0, size)
	out = append(out, prefix...)
	out = append(out, 0x84)
	out = appendBstr(out, protected)
	out = append(out, 0xa0)
	out = appendBstr(out, payload)
	return appendBstr(out, sig), nil
}

func encodeProtected(alg Algorithm, kid []byte) ([]byte, error) {
	if kid == nil {
		switch alg {
		case AlgES256:
			return protectedES256, nil
		case AlgEdDSA:
			return protectedEdDSA, nil
		case AlgES384:
			return protectedES384, nil
		}
	}
	return codec.Marshal(map[int64]any{headerAlg: int64(alg), headerKid: kid})
}
