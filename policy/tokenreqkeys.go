package policy

import (
	"crypto"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// maxCachedCnfKeys bounds the cnf keys a [Service] keeps parsed (see
// cnfKeyCache), and maxCachedCnfPEM the bytes of a PEM it keeps: the PEM
// of a P-256, P-384 or Ed25519 key is 113 to 215 bytes, and longer bytes
// (padded with whitespace, which parsing accepts) are parsed every time,
// so the cache holds at most about 1 MiB, keys and PEM together.
const (
	maxCachedCnfKeys = 1024
	maxCachedCnfPEM  = 512
)

// cnfKeyCache keeps the cnf keys of token requests parsed, by their exact
// PEM bytes, so that a client asking again with the same key (an app
// keeps its proof-of-possession key) does not have it parsed and its
// point validated again. With each key it keeps the algorithm
// token.AlgorithmFor found for it when it was kept, so that the token
// endpoint does not validate the point again either ([Service.checkCnf]).
// Only keys that token.ParsePublicKeyPEM and token.AlgorithmFor accepted
// are kept, so a key from the cache has passed exactly the checks of a
// key parsed now, and bytes it refuses are parsed, and refused with the
// same error, every time. It holds at most max keys, each from at most
// maxCachedCnfPEM bytes; when full, an arbitrary one makes room. The keys are shared by the requests that
// carry the same bytes and must not be modified. It is safe for
// concurrent use.
type cnfKeyCache struct {
	max  int
	once sync.Once
	mu   sync.RWMutex
	m    map[string]cnfKey
}

// cnfKey is a parsed cnf key and the algorithm token.AlgorithmFor found
// for it.
type cnfKey struct {
	key crypto.PublicKey
	alg token.Algorithm
}

func newCnfKeyCache(max int) *cnfKeyCache { return &cnfKeyCache{max: max} }

// parsePEM returns token.ParsePublicKeyPEM of the bytes of b, from the
// cache when b was parsed before. A nil cache parses every time.
func (c *cnfKeyCache) parsePEM(b string) (crypto.PublicKey, error) {
	k, _, err := c.parsePEMAlgorithm(b)
	return k, err
}

// parsePEMAlgorithm is parsePEM that also returns the algorithm of the key
// (token.AlgorithmFor), or 0 from a nil cache, which leaves it unchecked.
func (c *cnfKeyCache) parsePEMAlgorithm(b string) (crypto.PublicKey, token.Algorithm, error) {
	if c == nil {
		k, err := token.ParsePublicKeyPEM([]byte(b))
		return k, 0, err
	}
	c.once.Do(func() {
		if c.max <= 0 {
			c.max = maxCachedCnfKeys
		}
		c.m = make(map[string]cnfKey)
	})
	c.mu.RLock()
	e, ok := c.m[b]
	c.mu.RUnlock()
	if ok {
		return e.key, e.alg, nil
	}
	k, err := token.ParsePublicKeyPEM([]byte(b))
	if err != nil {
		return nil, 0, err
	}
	alg, err := token.AlgorithmFor(k)
	if err != nil { // ParsePublicKeyPEM makes the same checks: not kept
		return k, 0, nil
	}
	if len(b) > maxCachedCnfPEM {
		return k, alg, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[b]; ok { // parsed meanwhile: share one copy
		return prev.key, prev.alg, nil
	}
	for old := range c.m { // map order is unspecified: an arbitrary key
		if len(c.m) < c.max {
			break
		}
		delete(c.m, old)
	}
	c.m[b] = cnfKey{key: k, alg: alg}
	return k, alg, nil
}

func (c *cnfKeyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
