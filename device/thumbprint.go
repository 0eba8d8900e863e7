package device

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// thumbprints remembers the COSE Key Thumbprints (RFC 9679 section 3) of
// the anchor keys that verified tokens. The anchor cut-offs of a status
// update name an anchor without a KeyID by its key's thumbprint, which
// otherwise costs an encoding and a SHA-256 on every request. A thumbprint
// depends on the key alone, so an entry never goes stale; at
// maxThumbprints keys the oldest is forgotten.
//
// An ECDSA key is recognised by its pointer (an anchor store hands out the
// same key for every lookup; the SDK never modifies a key once made), an
// Ed25519 key by its bytes. Other keys are not remembered.
type thumbprints struct {
	mu   sync.Mutex
	keys [maxThumbprints]crypto.PublicKey
	tps  [maxThumbprints][]byte
	n    int // entries in use
	next int // the entry replaced next when full
}

// get returns the thumbprint of key. The result is shared: callers must
// not modify it.
func (t *thumbprints) get(key crypto.PublicKey) ([]byte, error) {
	t.mu.Lock()
	for i := range t.n {
		if sameKey(t.keys[i], key) {
			tp := t.tps[i]
			t.mu.Unlock()
			return tp, nil
		}
	}
	t.mu.Unlock()
	tp, err := token.Thumbprint(key)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
	case ed25519.PublicKey:
		key = bytes.Clone(k)
	default:
		return tp, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n < len(t.keys) {
		t.keys[t.n], t.tps[t.n] = key, tp
		t.n++
	} else {
		t.keys[t.next], t.tps[t.next] = key, tp
		t.next = (t.next + 1) % len(t.keys)
	}
	return tp, nil
}

// sameKey reports whether a and b are the same remembered key (see
// thumbprints).
func sameKey(a, b crypto.PublicKey) bool {
	switch x := a.(type) {
	case *ecdsa.PublicKey:
		y, ok := b.(*ecdsa.PublicKey)
		return ok && x == y
	case ed25519.PublicKey:
		y, ok := b.(ed25519.PublicKey)
		return ok && bytes.Equal(x, y)
	}
	return false
}
