package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math/big"
	"sync"
	"testing"
)

// compressedPoints returns n SEC1 compressed points of fresh keys on curve
// and the keys.
func compressedPoints(t testing.TB, curve elliptic.Curve, n int) ([][]byte, []*ecdsa.PublicKey) {
	t.Helper()
	pts, keys := make([][]byte, n), make([]*ecdsa.PublicKey, n)
	for i := range n {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pts[i], keys[i] = elliptic.MarshalCompressed(curve, k.X, k.Y), &k.PublicKey
	}
	return pts, keys
}

// notOnCurve returns a compressed P-256 encoding whose x has no point.
func notOnCurve(t *testing.T) []byte {
	t.Helper()
	for x := int64(1); x < 1000; x++ {
		k := make([]byte, 33)
		k[0] = 2
		big.NewInt(x).FillBytes(k[1:])
		if px, _ := elliptic.UnmarshalCompressed(elliptic.P256(), k); px == nil {
			return k
		}
	}
	t.Fatal("no x without a point below 1000")
	return nil
}

// poison overwrites the coordinates of k, in place, with v.
func poison(k *ecdsa.PublicKey, v int64) {
	//lint:ignore SA1019 deliberately corrupting a key handed out, in place
	k.X.SetInt64(v)
	//lint:ignore SA1019 as above
	k.Y.SetInt64(v)
}

func TestPointMemo(t *testing.T) {
	p256, p384 := elliptic.P256(), elliptic.P384()
	t.Run("decodes as UnmarshalCompressed, hit or miss", func(t *testing.T) {
		m := newPointMemo(4)
		pts, keys := compressedPoints(t, p256, 6)
		for round := range 2 {
			for i, k := range pts {
				got, err := m.decompress(p256, k)
				if err != nil || !got.Equal(keys[i]) {
					t.Fatalf("round %d point %d: %v, key differs: %v", round, i, err, err)
				}
			}
		}
	})
	t.Run("bounded", func(t *testing.T) {
		m := newPointMemo(4)
		pts, _ := compressedPoints(t, p256, 10)
		for i, k := range pts {
			if _, err := m.decompress(p256, k); err != nil {
				t.Fatal(err)
			}
			if want := min(i+1, 4); m.len() != want {
				t.Fatalf("after %d points the memo holds %d, want %d", i+1, m.len(), want)
			}
		}
		if !m.holds(p256, pts[9]) || m.holds(p256, pts[0]) {
			t.Fatal("the memo does not hold the latest point, or still holds the first")
		}
	})
	t.Run("the least recently used point is evicted", func(t *testing.T) {
		m := newPointMemo(2)
		pts, _ := compressedPoints(t, p256, 3)
		for _, i := range []int{0, 1, 0, 2} {
			if _, err := m.decompress(p256, pts[i]); err != nil {
				t.Fatal(err)
			}
		}
		if !m.holds(p256, pts[0]) || m.holds(p256, pts[1]) || !m.holds(p256, pts[2]) {
			t.Fatal("want the memo to hold points 0 and 2, used last")
		}
	})
	t.Run("the package's memo is bounded", func(t *testing.T) {
		pts, _ := compressedPoints(t, p256, pointMemoSize+10)
		for _, k := range pts {
			if _, err := decompressPoint(p256, k); err != nil {
				t.Fatal(err)
			}
		}
		if n := points.len(); n != pointMemoSize {
			t.Fatalf("the memo holds %d points, want %d", n, pointMemoSize)
		}
	})
	t.Run("shared by links and compressed cnf keys", func(t *testing.T) {
		pts, keys := compressedPoints(t, p256, 1)
		cnf, err := appendCOSEKey(nil, keys[0], true)
		if err != nil {
			t.Fatal(err)
		}
		if points.holds(p256, pts[0]) {
			t.Fatal("a fresh key is memoized already")
		}
		got, err := parseCOSEKey("cnf", cnf)
		if err != nil || !EqualKeys(got, keys[0]) {
			t.Fatalf("parseCOSEKey: %v", err)
		}
		if !points.holds(p256, pts[0]) {
			t.Fatal("a compressed cnf key is not memoized")
		}
		got, err = parseLinkKey("key", pts[0])
		if err != nil || !EqualKeys(got, keys[0]) {
			t.Fatalf("parseLinkKey of a memoized point: %v", err)
		}
	})
	t.Run("a hit is a fresh key", func(t *testing.T) {
		m := newPointMemo(4)
		pts, keys := compressedPoints(t, p256, 1)
		first, err := m.decompress(p256, pts[0])
		if err != nil {
			t.Fatal(err)
		}
		// Poison what was handed out.
		poison(first, 1)
		first.Curve = p384
		for range 2 {
			got, err := m.decompress(p256, pts[0])
			if err != nil || !got.Equal(keys[0]) || got == first {
				t.Fatalf("after poisoning a returned key: %v, key %v, want %v", err, got, keys[0])
			}
			poison(got, 3)
		}
	})
	t.Run("keyed by curve", func(t *testing.T) {
		m := newPointMemo(4)
		pts, _ := compressedPoints(t, p256, 1)
		if _, err := m.decompress(p256, pts[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := m.decompress(p384, pts[0]); !errors.Is(err, ErrUnsupportedKey) {
			t.Fatalf("a memoized P-256 point decoded on P-384: %v", err)
		}
	})
	t.Run("a point not on the curve is refused and never memoized", func(t *testing.T) {
		m := newPointMemo(4)
		bad := notOnCurve(t)
		ff := append([]byte{3}, make([]byte, 32)...)
		for i := range ff[1:] {
			ff[1+i] = 0xff // x >= p
		}
		for range 2 {
			for _, k := range [][]byte{bad, ff, {4}, append([]byte{4}, bad[1:]...)} {
				if _, err := m.decompress(p256, k); !errors.Is(err, ErrUnsupportedKey) {
					t.Fatalf("%x: %v, want ErrUnsupportedKey", k, err)
				}
			}
		}
		if m.len() != 0 {
			t.Fatalf("the memo holds %d points after refusals", m.len())
		}
	})
	t.Run("concurrent use", func(t *testing.T) {
		m := newPointMemo(4)
		pts, keys := compressedPoints(t, p256, 8)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					j := (g + i) % len(pts)
					got, err := m.decompress(p256, pts[j])
					if err != nil || !got.Equal(keys[j]) {
						errs <- errors.New("a wrong key under concurrent use")
						return
					}
					poison(got, int64(i)) // nobody else may see it
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if m.len() > 4 {
			t.Fatalf("the memo holds %d points, more than 4", m.len())
		}
	})
}
