package device

import (
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// MaxTokenCacheSize bounds Config.TokenCacheSize.
const MaxTokenCacheSize = 1024

// tokenCache (v2) remembers tokens whose signature, anchor constraints and
// profile have been verified, keyed by the SHA-256 of the token bytes, so a
// later request with the same token skips parsing and verifying it. What
// can change between requests is checked again on every hit: the anchor's
// validity and revocation (an entry is dropped when the anchor store
// changes), audience, time and the revocation list; the PoP signature and
// the nonce are per request anyway.
//
// Only tokens signed by a trusted anchor get in, so an attacker cannot fill
// the cache; when it is full the oldest entry goes.
type tokenCache struct {
	mu    sync.Mutex
	max   int
	m     map[[32]byte]*cacheEntry
	order [][32]byte // insertion ring
	next  int
}

type cacheEntry struct {
	claims         *token.Claims
	anchor         trust.Anchor
	revocationHash [32]byte // token.RevocationHash
	version        uint64   // the anchor store's version when verified
	expires        time.Time
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[[32]byte]*cacheEntry, max), order: make([][32]byte, 0, max)}
}

// get returns the entry for h, or nil. Entries verified against an older
// version of the anchor store, or whose token has expired at now (when
// known), are dropped.
func (c *tokenCache) get(h *[32]byte, version uint64, now time.Time) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[*h]
	if e == nil {
		return nil
	}
	if e.version != version || !now.IsZero() && now.After(e.expires) {
		delete(c.m, *h)
		return nil
	}
	return e
}

func (c *tokenCache) put(h *[32]byte, e *cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[*h]; ok {
		c.m[*h] = e
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, *h)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = *h
		c.next = (c.next + 1) % c.max
	}
	c.m[*h] = e
}
