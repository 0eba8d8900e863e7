package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// RevokeOperation is the name of the built-in operation that adds an entry
// to the device's revocation list. Like any operation it runs only if the
// token's scope permits it. Its arguments:
//
//	sda-revoke(kind: tstr, id: bstr / tstr [, until: int])
//
// kind is "cti" (id is a token id) or "hash" (id is the token's revocation
// hash, 32 bytes: token.RevocationHash, which every encoding of the same
// signed token shares; for compatibility the SHA-256 of the token's bytes
// as issued is matched too, see docs/PROTOCOL.md section 8; or the hash of
// a delegation link, which revokes the link and every link below it). id is a byte
// string (v2) or, for v1 tokens, whose arguments are integers and text
// only, a hex text string. until, optional, is the revoked token's exp in
// seconds since the epoch: once the device's time is past it (plus the
// leeway) the entry may be dropped to make room. Without it the entry
// stays until removed by a firmware reset of the state.
const RevokeOperation = "sda-revoke"

// Bounds of the revocation list (Config.MaxRevocations).
const (
	DefaultMaxRevocations = 256
	// MaxMaxRevocations is the largest Config.MaxRevocations: a full list
	// of entries of the largest size (a 64-byte cti with an until of 19
	// digits) persists in about 516 KB, within what a [FileState] value
	// may hold.
	MaxMaxRevocations = 4096
)

// maxRevokedIDLength bounds a revoked cti.
const maxRevokedIDLength = 64

// revocations is the bounded, persisted revocation list. Readers see an
// immutable snapshot; add builds a new one, persists it and only then
// publishes it, so a failed write changes nothing.
type revocations struct {
	max   int
	state State

	mu  sync.RWMutex
	ids map[string]int64 // cti -> until (unix seconds, 0 = forever)
	hs  map[[32]byte]int64

	addMu sync.Mutex // serialises add
}

func loadRevocations(max int, state State) (*revocations, error) {
	r := &revocations{max: max, state: state, ids: map[string]int64{}, hs: map[[32]byte]int64{}}
	b, err := state.Load(stateKeyRevocations)
	if err != nil {
		return nil, fmt.Errorf("%w: loading %s: %v", ErrState, stateKeyRevocations, err)
	}
	if b == nil {
		return r, nil
	}
	if r.ids, r.hs, err = decodeRevocations(b, max); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, stateKeyRevocations, err)
	}
	return r, nil
}

// holdsHashes reports whether the list holds token hashes: only then must
// a request compute the hashes its token is looked up under.
func (r *revocations) holdsHashes() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.hs) > 0
}

// revoked reports whether the token with id cti (may be nil) and hashes hs
// (see tokenHashes) is revoked.
func (r *revocations) revoked(cti []byte, hs [][32]byte) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := range hs {
		if _, ok := r.hs[hs[i]]; ok {
			h := hs[i] // a copy: only a rejection allocates
			return fmt.Errorf("%w: token hash %x", ErrRevoked, h[:8])
		}
	}
	if cti != nil {
		if _, ok := r.ids[string(cti)]; ok {
			return fmt.Errorf("%w: token id %x", ErrRevoked, cti)
		}
	}
	return nil
}

// add revokes a cti (isHash false) or a token hash. now is the device's
// time, zero when unknown: expired entries are dropped only when it is
// known.
func (r *revocations) add(isHash bool, id []byte, until int64, now time.Time, leeway time.Duration) error {
	r.addMu.Lock()
	defer r.addMu.Unlock()
	r.mu.RLock()
	ids, hs := maps.Clone(r.ids), maps.Clone(r.hs)
	r.mu.RUnlock()
	if isHash {
		h := [32]byte(id)
		if old, ok := hs[h]; ok && (old == 0 || old >= until && until != 0) {
			return nil
		}
		hs[h] = until
	} else {
		if old, ok := ids[string(id)]; ok && (old == 0 || old >= until && until != 0) {
			return nil
		}
		ids[string(id)] = until
	}
	if len(ids)+len(hs) > r.max && !now.IsZero() {
		limit := now.Add(-leeway).Unix()
		maps.DeleteFunc(ids, func(_ string, u int64) bool { return u != 0 && u < limit })
		maps.DeleteFunc(hs, func(_ [32]byte, u int64) bool { return u != 0 && u < limit })
	}
	if len(ids)+len(hs) > r.max {
		return fmt.Errorf("%w: %d entries", ErrRevocationListFull, r.max)
	}
	b, err := encodeRevocations(ids, hs)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	if err := r.state.Store(stateKeyRevocations, b); err != nil {
		return fmt.Errorf("%w: storing %s: %v", ErrState, stateKeyRevocations, err)
	}
	r.mu.Lock()
	r.ids, r.hs = ids, hs
	r.mu.Unlock()
	return nil
}

// Encoded tags a token starts with: 61(18( or 18( (token.Parse).
var (
	prefixCWT   = []byte{0xd8, 0x3d, 0xd2}
	prefixSign1 = []byte{0xd2}
)

// maxTokenHashes is the most hashes tokenHashes returns.
const maxTokenHashes = 6

// maxCanonicalSize bounds a canonical encoding tokenHashes builds on the
// stack: the largest token plus the tag 61 it may lack. A canonical
// encoding is never longer than the token it re-encodes plus that tag (its
// heads are shortest and its unprotected header is the one-byte {}), so
// the buffer only grows, on the heap, for bytes longer than a token.
const maxCanonicalSize = token.MaxTokenSize + 2

// Orders of the curves an anchor key may use, big-endian and of the size of
// the signature's s, for computing n-s without big-integer arithmetic.
var (
	orderP256 = elliptic.P256().Params().N.Bytes()
	orderP384 = elliptic.P384().Params().N.Bytes()
)

// curveOrder returns the order n of k's curve, big-endian in (BitLen+7)/8
// bytes.
func curveOrder(k *ecdsa.PublicKey) []byte {
	switch k.Curve {
	case elliptic.P256():
		return orderP256
	case elliptic.P384():
		return orderP384
	}
	return k.Curve.Params().N.Bytes() // no anchor key has another curve
}

// otherS writes n-s to dst (of len(s) bytes) and reports whether it did:
// only when s is a valid half of an ECDSA signature, 0 < s < n with s as
// long as n, is (r, n-s) the other valid signature. dst may be s itself;
// nothing is written when it reports false.
func otherS(dst, s, n []byte) bool {
	if len(s) != len(n) || len(dst) != len(s) || bytes.Compare(s, n) >= 0 {
		return false
	}
	var zero byte
	for _, c := range s {
		zero |= c
	}
	if zero == 0 {
		return false
	}
	var borrow uint16
	for i := len(s) - 1; i >= 0; i-- {
		d := uint16(n[i]) - uint16(s[i]) - borrow
		dst[i], borrow = byte(d), d>>8&1
	}
	return true
}

// tokenHashes appends to dst the hashes under which a verified token is
// found on the revocation list:
//
//   - rh, its revocation hash (token.RevocationHash): the SHA-256 of its
//     COSE ToBeSigned, which covers exactly what the signature covers and
//     so is the same for every encoding of the token;
//   - sent, the SHA-256 of tok, the token bytes as received;
//   - the SHA-256 of each canonical encoding of the same signed token,
//     61(18([protected, {}, payload, signature])) and 18([...]) with
//     shortest lengths and, for ECDSA (key is the anchor's key), either of
//     the two valid signatures (r, s) and (r, n-s).
//
// The last two match entries made with the SHA-256 of a token's bytes as
// issued (what revokers used before the revocation hash): such an entry
// survives re-encoding only for tokens issued with an empty unprotected
// header, as this SDK issues them. The holder of a token can strip tag 61,
// change the unprotected header and use the other s, since the signature
// does not cover them.
//
// It allocates nothing for a token of at most token.MaxTokenSize bytes.
// The canonical encodings are built once, in one buffer: 18([...]) is
// 61(18([...])) without its first two bytes. A canonical encoding equal to
// tok is not hashed again (its hash is sent), and the two signatures of
// one encoding share the hashing of everything before s.
func tokenHashes(dst [][32]byte, rh, sent *[32]byte, tok []byte, key crypto.PublicKey) [][32]byte {
	dst = append(dst, *rh, *sent)
	var body []byte
	switch {
	case bytes.HasPrefix(tok, prefixCWT):
		body = tok[len(prefixCWT):]
	case bytes.HasPrefix(tok, prefixSign1):
		body = tok[len(prefixSign1):]
	default:
		return dst
	}
	var buf [4][]byte
	items, err := codec.ReadArray(body, buf[:0])
	if err != nil || len(items) != 4 {
		return dst
	}
	protected, err1 := codec.ReadBytes(items[0])
	payload, err2 := codec.ReadBytes(items[2])
	sig, err3 := codec.ReadBytes(items[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return dst
	}
	h := hashers.Get().(*tokenHasher)
	defer hashers.Put(h)
	b := append(h.enc[:0], prefixCWT...)
	b = append(b, 0x84)
	b = codec.AppendBytes(b, protected)
	b = append(b, 0xa0)
	b = codec.AppendBytes(b, payload)
	b = codec.AppendBytes(b, sig)
	if cap(b) <= maxCanonicalSize {
		h.enc = b // else it grew for bytes longer than a token: not kept
	}
	add := func(sum []byte) {
		if h := [32]byte(sum); !slices.Contains(dst, h) {
			dst = append(dst, h)
		}
	}
	var alt []byte // n-s, or nil when there is no other valid signature
	if k, ok := key.(*ecdsa.PublicKey); ok && len(sig)%2 == 0 && len(sig)/2 <= len(h.alt) {
		half := len(sig) / 2
		if otherS(h.alt[:half], sig[half:], curveOrder(k)) {
			alt = h.alt[:half]
		}
	}
	// 61(18([...])), then 18([...]): the same bytes without the first two.
	for _, skip := range [2]int{0, len(prefixCWT) - len(prefixSign1)} {
		form := b[skip:]
		asSent := bytes.Equal(form, tok) // its hash is sent
		if alt == nil {
			if !asSent {
				h.d.Reset()
				h.d.Write(form)
				add(h.d.Sum(h.sum[:0]))
			}
			continue
		}
		// The two signatures differ only in s, the last bytes: everything
		// before is hashed once.
		common, s := form[:len(form)-len(alt)], form[len(form)-len(alt):]
		h.d.Reset()
		h.d.Write(common)
		if !asSent {
			h.state, _ = h.d.(encoding.BinaryAppender).AppendBinary(h.state[:0])
			h.d.Write(s)
			add(h.d.Sum(h.sum[:0]))
			_ = h.d.(encoding.BinaryUnmarshaler).UnmarshalBinary(h.state)
		}
		h.d.Write(alt)
		add(h.d.Sum(h.sum[:0]))
	}
	return dst
}

// maxScalarSize is the size of the largest ECDSA scalar (P-521).
const maxScalarSize = 66

// tokenHasher is what tokenHashes works with, pooled so that it allocates
// nothing: a SHA-256 state and room to save it, the canonical encoding
// being built, n-s and a hash.
type tokenHasher struct {
	d     hash.Hash
	state []byte
	enc   []byte
	alt   [maxScalarSize]byte
	sum   [32]byte
}

var hashers = sync.Pool{New: func() any {
	return &tokenHasher{d: sha256.New(), state: make([]byte, 0, 128), enc: make([]byte, 0, maxCanonicalSize)}
}}

// revokeHandler is the built-in RevokeOperation.
func (a *Agent) revokeHandler(_ context.Context, call *Call) ([]byte, error) {
	args := call.Operation.Args
	if len(args) != 2 && len(args) != 3 {
		return nil, fmt.Errorf("%s takes 2 or 3 arguments, got %d", RevokeOperation, len(args))
	}
	kind, ok := args[0].Text()
	if !ok || kind != "cti" && kind != "hash" {
		return nil, fmt.Errorf("%s: kind must be \"cti\" or \"hash\"", RevokeOperation)
	}
	var id []byte
	switch args[1].Kind() {
	case token.KindBytes:
		id, _ = args[1].Bytes()
	case token.KindText:
		s, _ := args[1].Text()
		var err error
		if id, err = hex.DecodeString(s); err != nil {
			return nil, fmt.Errorf("%s: id is not hex: %v", RevokeOperation, err)
		}
	default:
		return nil, fmt.Errorf("%s: id must be a byte string or hex text", RevokeOperation)
	}
	isHash := kind == "hash"
	switch {
	case isHash && len(id) != 32:
		return nil, fmt.Errorf("%s: a token hash has 32 bytes, not %d", RevokeOperation, len(id))
	case !isHash && (len(id) == 0 || len(id) > maxRevokedIDLength):
		return nil, fmt.Errorf("%s: a token id has 1..%d bytes, not %d", RevokeOperation, maxRevokedIDLength, len(id))
	}
	var until int64
	if len(args) == 3 {
		v, ok := args[2].Int()
		if !ok || v <= 0 {
			return nil, fmt.Errorf("%s: until must be a positive integer", RevokeOperation)
		}
		until = v
	}
	now, known := a.clock.now()
	if !known {
		now = time.Time{}
	}
	if err := a.revocations.add(isHash, id, until, now, a.leeway); err != nil {
		return nil, err
	}
	return nil, nil
}
