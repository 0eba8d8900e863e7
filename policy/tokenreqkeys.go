package policy

import (
	"crypto"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// maxCachedCnfKeys bounds the cnf keys a [Service] keeps parsed (see
// cnfKeyCache): about 0.5 KiB each.
const maxCachedCnfKeys = 1024

// cnfKeyCache keeps the cnf keys of token requests parsed, by their exact
// PEM bytes, so that a client asking again with the same key (an app
// keeps its proof-of-possession key) does not have it parsed and its
// point validated again. Only keys that token.ParsePublicKeyPEM accepted
// are kept, so a key from the cache has passed exactly the checks of a
// key parsed now, and bytes it refuses are parsed, and refused with the
// same error, every time. It holds at most max keys; when full, an
// arbitrary one makes room. The keys are shared by the requests that
// carry the same bytes and must not be modified. It is safe for
// concurrent use.
type cnfKeyCache struct {
	max  int
	once sync.Once
	mu   sync.RWMutex
	m    map[string]crypto.PublicKey
}

func newCnfKeyCache(max int) *cnfKeyCache { return &cnfKeyCache{max: max} }

// parsePEM returns token.ParsePublicKeyPEM of the bytes of b, from the
// cache when b was parsed before. A nil cache parses every time.
func (c *cnfKeyCache) parsePEM(b string) (crypto.PublicKey, error) {
	if c == nil {
		return token.ParsePublicKeyPEM([]byte(b))
	}
	c.once.Do(func() {
		if c.max <= 0 {
			c.max = maxCachedCnfKeys
		}
		c.m = make(map[string]crypto.PublicKey)
	})
	c.mu.RLock()
	k, ok := c.m[b]
	c.mu.RUnlock()
	if ok {
		return k, nil
	}
	k, err := token.ParsePublicKeyPEM([]byte(b))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[b]; ok { // parsed meanwhile: share one copy
		return prev, nil
	}
	for old := range c.m { // map order is unspecified: an arbitrary key
		if len(c.m) < c.max {
			break
		}
		delete(c.m, old)
	}
	c.m[b] = k
	return k, nil
}

func (c *cnfKeyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
