package trust

import (
	"bytes"
	"cmp"
	"crypto"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Store is what a device needs from a set of trust anchors. Implementations
// must be safe for concurrent use.
type Store interface {
	// Lookup returns the anchors that may have signed a token naming issuer
	// in its iss claim and, when kid is not nil, kid in its protected
	// header. Anchors that do not carry a KeyID match by their key's
	// thumbprint. Revoked anchors are never returned, nor anchors holding
	// the key of a revoked anchor (under any issuer or key id). With nothing to
	// return, the error matches [ErrUnknownAnchor], or [ErrAnchorRevoked]
	// when every match is revoked. The returned anchors are copies whose
	// slices must not be modified.
	Lookup(issuer string, kid []byte) ([]Anchor, error)
}

// Versioned is the optional capability of a [Store] that says when its
// anchors changed. A device keeps a cache of verified tokens
// (device.Config.TokenCacheSize) only for a store that implements it: a
// cached verification is reused while Version returns the number it was
// made under, and dropped as soon as the number changes, so that a revoked
// or retired anchor takes effect on the next request. A custom Store
// without it works, with every token verified in full. [MemoryStore] and
// [FileStore] implement it.
type Versioned interface {
	// Version returns a number that changes whenever the anchors change
	// (an anchor added, retired, revoked or removed). It must not return
	// the same number for two different sets of anchors.
	Version() uint64
}

// Compile-time checks.
var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*FileStore)(nil)
)

// entry is an anchor held by a store, with its key id computed once.
type entry struct {
	a  Anchor
	id []byte
}

// snapshot is an immutable state of a store. Changes build a new snapshot
// and publish it atomically, so readers never see a half-applied change and
// never wait for a writer.
type snapshot struct {
	version  uint64
	byIssuer map[string][]*entry
	count    int
	// revokedKeys are the keys of the revoked anchors (see index): an
	// anchor holding one of them is revoked too, whatever its name.
	revokedKeys []crypto.PublicKey
}

// index recomputes what is derived from the anchors; call it once a new
// snapshot is complete.
func (s *snapshot) index() {
	s.revokedKeys = nil
	for _, es := range s.byIssuer {
		for _, e := range es {
			if e.a.Revoked {
				s.revokedKeys = append(s.revokedKeys, e.a.Key)
			}
		}
	}
}

// revoked reports whether e is revoked, or holds the key of a revoked
// anchor.
func (s *snapshot) revoked(e *entry) bool {
	if e.a.Revoked {
		return true
	}
	for _, k := range s.revokedKeys {
		if token.EqualKeys(k, e.a.Key) {
			return true
		}
	}
	return false
}

func (s *snapshot) clone() *snapshot {
	n := &snapshot{version: s.version + 1, byIssuer: make(map[string][]*entry, len(s.byIssuer)), count: s.count}
	for k, v := range s.byIssuer {
		n.byIssuer[k] = slices.Clone(v)
	}
	return n
}

func (s *snapshot) anchors() []Anchor {
	out := make([]Anchor, 0, s.count)
	for _, es := range s.byIssuer {
		for _, e := range es {
			out = append(out, e.a.clone())
		}
	}
	slices.SortFunc(out, func(a, b Anchor) int {
		return cmp.Or(strings.Compare(a.Issuer, b.Issuer), bytes.Compare(a.KeyID, b.KeyID))
	})
	return out
}

// MemoryStore is a [Store] held in memory. The zero value is an empty store
// ready to use. It is safe for concurrent use: lookups never block, changes
// are serialised and each is applied completely or not at all.
type MemoryStore struct {
	mu  sync.Mutex // serialises changes
	cur atomic.Pointer[snapshot]

	// persist, when set (FileStore), makes a new snapshot durable before
	// it is published; an error abandons the change.
	persist func(*snapshot) error
}

// NewMemoryStore returns a store holding the given anchors.
func NewMemoryStore(anchors ...Anchor) (*MemoryStore, error) {
	s := &MemoryStore{}
	for _, a := range anchors {
		if err := s.Add(a); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *MemoryStore) load() *snapshot {
	if p := s.cur.Load(); p != nil {
		return p
	}
	return &snapshot{}
}

// Lookup implements [Store].
func (s *MemoryStore) Lookup(issuer string, kid []byte) ([]Anchor, error) {
	snap := s.load()
	es := snap.byIssuer[issuer]
	var out []Anchor
	revoked := false
	for _, e := range es {
		if kid != nil && !bytes.Equal(kid, e.id) {
			continue
		}
		if snap.revoked(e) {
			revoked = true
			continue
		}
		if out == nil {
			out = make([]Anchor, 0, len(es))
		}
		out = append(out, e.a)
	}
	switch {
	case out != nil:
		return out, nil
	case revoked:
		return nil, fmt.Errorf("%w: issuer %q", ErrAnchorRevoked, issuer)
	case len(es) > 0:
		return nil, fmt.Errorf("%w: issuer %q has no key id %x", ErrUnknownAnchor, issuer, kid)
	}
	return nil, fmt.Errorf("%w: issuer %q", ErrUnknownAnchor, issuer)
}

// Anchors returns copies of all anchors, revoked ones included, sorted by
// issuer and key id.
func (s *MemoryStore) Anchors() []Anchor { return s.load().anchors() }

// Len returns the number of anchors, revoked ones included.
func (s *MemoryStore) Len() int { return s.load().count }

// Version implements [Versioned]: the number changes whenever the store
// changes.
func (s *MemoryStore) Version() uint64 { return s.load().version }

// change applies f to a copy of the current snapshot and publishes the copy
// if f and persisting succeed.
func (s *MemoryStore) change(f func(*snapshot) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.load().clone()
	if err := f(next); err != nil {
		return err
	}
	next.index()
	if s.persist != nil {
		if err := s.persist(next); err != nil {
			return err
		}
	}
	s.cur.Store(next)
	return nil
}

// Add adds a copy of a. It fails with [ErrInvalidAnchor] if a does not
// validate, [ErrDuplicate] if an anchor with the same issuer and key id is
// present, and [ErrStoreFull] beyond [MaxAnchors] or [MaxAnchorsPerIssuer].
func (s *MemoryStore) Add(a Anchor) error {
	if err := a.Validate(); err != nil {
		return err
	}
	e := &entry{a: a.clone()}
	var err error
	if e.id, err = e.a.keyID(); err != nil {
		return invalidAnchor("%w", err)
	}
	return s.change(func(n *snapshot) error { return n.add(e) })
}

func (n *snapshot) add(e *entry) error {
	es := n.byIssuer[e.a.Issuer]
	for _, o := range es {
		if bytes.Equal(o.id, e.id) {
			return fmt.Errorf("%w: issuer %q key id %x", ErrDuplicate, e.a.Issuer, e.id)
		}
	}
	if n.count >= MaxAnchors || len(es) >= MaxAnchorsPerIssuer {
		return fmt.Errorf("%w: %d anchors, %d for issuer %q", ErrStoreFull, n.count, len(es), e.a.Issuer)
	}
	n.byIssuer[e.a.Issuer] = append(es, e)
	n.count++
	return nil
}

// update replaces every anchor of issuer matching kid (all of them when kid
// is nil) by f's result.
func (s *MemoryStore) update(issuer string, kid []byte, f func(*Anchor)) error {
	return s.change(func(n *snapshot) error {
		found := false
		es := n.byIssuer[issuer]
		for i, e := range es {
			if kid != nil && !bytes.Equal(kid, e.id) {
				continue
			}
			c := &entry{a: e.a.clone(), id: e.id}
			f(&c.a)
			es[i] = c
			found = true
		}
		if !found {
			return fmt.Errorf("%w: issuer %q key id %x", ErrNotFound, issuer, kid)
		}
		return nil
	})
}

// Retire retires the anchors of issuer with key id kid (every anchor of
// issuer when kid is nil) at time at: tokens they signed that were issued
// after at are rejected, older tokens stay valid until they expire. This is
// the end of a key rotation's overlap. An earlier retirement time is kept.
func (s *MemoryStore) Retire(issuer string, kid []byte, at time.Time) error {
	if at.IsZero() {
		return invalidAnchor("zero retirement time")
	}
	return s.update(issuer, kid, func(a *Anchor) {
		if a.RetiredAt.IsZero() || at.Before(a.RetiredAt) {
			a.RetiredAt = at
		}
	})
}

// Revoke revokes the anchors of issuer with key id kid (every anchor of
// issuer when kid is nil): from now on every token they signed is rejected
// with [ErrAnchorRevoked], also when another anchor (another issuer name or
// key id) holds the same key: Lookup returns no anchor with a revoked key.
// A revoked anchor stays in the store, so that it cannot be added again by
// mistake; [MemoryStore.Remove] deletes it.
func (s *MemoryStore) Revoke(issuer string, kid []byte) error {
	return s.update(issuer, kid, func(a *Anchor) { a.Revoked = true })
}

// Remove deletes the anchors of issuer with key id kid (every anchor of
// issuer when kid is nil).
func (s *MemoryStore) Remove(issuer string, kid []byte) error {
	return s.change(func(n *snapshot) error {
		es := n.byIssuer[issuer]
		kept := es[:0:0]
		for _, e := range es {
			if kid == nil || bytes.Equal(kid, e.id) {
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) == len(es) {
			return fmt.Errorf("%w: issuer %q key id %x", ErrNotFound, issuer, kid)
		}
		n.count -= len(es) - len(kept)
		if len(kept) == 0 {
			delete(n.byIssuer, issuer)
		} else {
			n.byIssuer[issuer] = kept
		}
		return nil
	})
}
