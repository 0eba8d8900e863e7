package token

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"sync"
)

// points is the process-wide memo of decompressed points, shared by the
// keys of delegation links and the compressed cnf keys of v2 tokens (as
// crypto/tls shares parsed certificates between connections): a device
// sees the same few keys again and again, and decompressing one (a square
// root and an inversion in the field) costs about a tenth of a signature
// verification.
var points = newPointMemo(pointMemoSize)

// pointKey names a compressed point on a curve.
type pointKey struct {
	curve elliptic.Curve
	point string // SEC1 compressed: 0x02 or 0x03, then x
}

// pointMemo maps compressed points to their uncompressed encoding. It
// holds at most size points, the least recently used evicted first, and
// only points that decoded on their curve. Safe for concurrent use.
type pointMemo struct {
	mu   sync.Mutex
	size int
	m    map[pointKey]*list.Element // of *memoPoint
	lru  list.List                  // most recently used at the front
}

type memoPoint struct {
	key   pointKey
	point []byte // 0x04 || x || y, never modified once stored
}

func newPointMemo(size int) *pointMemo {
	return &pointMemo{size: size, m: make(map[pointKey]*list.Element, size)}
}

// decompress decodes the SEC1 compressed point k (0x02 or 0x03, then x) on
// curve, as elliptic.UnmarshalCompressed and ecdsa.ParseUncompressedPublicKey
// do, through the memo: only a point that passed both is stored. Every
// call returns a new *ecdsa.PublicKey, made by ParseUncompressedPublicKey
// from the memo's bytes, so that what a caller does to it cannot reach the
// memo.
func (p *pointMemo) decompress(curve elliptic.Curve, k []byte) (*ecdsa.PublicKey, error) {
	n := len(k) - 1
	if n < 1 || k[0] != 2 && k[0] != 3 {
		return nil, fmt.Errorf("%w: not a compressed point", ErrUnsupportedKey)
	}
	key := pointKey{curve: curve, point: string(k)}
	p.mu.Lock()
	var point []byte
	e := p.m[key]
	hit := e != nil
	if hit {
		p.lru.MoveToFront(e)
		point = e.Value.(*memoPoint).point
	}
	p.mu.Unlock()
	if !hit {
		x, y := elliptic.UnmarshalCompressed(curve, k)
		if x == nil {
			return nil, fmt.Errorf("%w: compressed point not on the curve", ErrUnsupportedKey)
		}
		point = make([]byte, 1+2*n)
		point[0] = 4
		x.FillBytes(point[1 : 1+n])
		y.FillBytes(point[1+n:])
	}
	// Every time, memo or not: the sanctioned way to a *ecdsa.PublicKey,
	// which checks the point on the curve again (a few multiplications,
	// under 1% of a verification).
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if !hit {
		p.put(key, point)
	}
	return pub, nil
}

// put stores point under key unless it is there already, evicting the
// least recently used point when the memo is full.
func (p *pointMemo) put(key pointKey, point []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[key]; ok || p.size <= 0 {
		return
	}
	if len(p.m) >= p.size {
		old := p.lru.Back()
		p.lru.Remove(old)
		delete(p.m, old.Value.(*memoPoint).key)
	}
	p.m[key] = p.lru.PushFront(&memoPoint{key: key, point: point})
}

// len returns the number of points held.
func (p *pointMemo) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// holds reports whether the memo holds the compressed point k on curve.
func (p *pointMemo) holds(curve elliptic.Curve, k []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[pointKey{curve: curve, point: string(k)}]
	return ok
}
