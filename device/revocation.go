package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/big"
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
// as issued is matched too, see docs/PROTOCOL.md section 8). id is a byte
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
	sigs := [2][]byte{sig}
	if k, ok := key.(*ecdsa.PublicKey); ok && len(sig)%2 == 0 {
		n := k.Curve.Params().N
		half := len(sig) / 2
		if s := new(big.Int).SetBytes(sig[half:]); s.Sign() > 0 && s.Cmp(n) < 0 && (n.BitLen()+7)/8 == half {
			alt := bytes.Clone(sig)
			s.Sub(n, s).FillBytes(alt[half:])
			sigs[1] = alt
		}
	}
	b := make([]byte, 0, len(prefixCWT)+len(tok)+16)
	for _, prefix := range [][]byte{prefixCWT, prefixSign1} {
		for _, sg := range sigs {
			if sg == nil {
				continue
			}
			b = append(b[:0], prefix...)
			b = append(b, 0x84)
			b = codec.AppendBytes(b, protected)
			b = append(b, 0xa0)
			b = codec.AppendBytes(b, payload)
			b = codec.AppendBytes(b, sg)
			if h := sha256.Sum256(b); !slices.Contains(dst, h) {
				dst = append(dst, h)
			}
		}
	}
	return dst
}

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
