package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// TestCnfKeyCache: the cache of parsed cnf keys returns what
// token.ParsePublicKeyPEM returns for the same bytes, the same key for
// the same bytes once cached, the same errors for bad keys (which it does
// not keep), and holds at most its bound.
func TestCnfKeyCache(t *testing.T) {
	newPEM := func(t *testing.T) []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := token.MarshalPublicKeyPEM(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("hit", func(t *testing.T) {
		c := newCnfKeyCache(4)
		p := newPEM(t)
		want, err := token.ParsePublicKeyPEM(p)
		if err != nil {
			t.Fatal(err)
		}
		k1, err := c.parsePEM(string(p))
		if err != nil {
			t.Fatal(err)
		}
		k2, err := c.parsePEM(string(append([]byte(nil), p...)))
		if err != nil {
			t.Fatal(err)
		}
		if !want.(*ecdsa.PublicKey).Equal(k1) || k1 != k2 {
			t.Fatalf("got %v and %v, want the same key %v twice", k1, k2, want)
		}
		if c.len() != 1 {
			t.Fatalf("%d keys cached, want 1", c.len())
		}
		// Other bytes for the same key (a trailing newline) are another
		// entry: the key is the exact bytes.
		if _, err := c.parsePEM(string(p) + "\n"); err != nil {
			t.Fatal(err)
		}
		if c.len() != 2 {
			t.Fatalf("%d keys cached, want 2", c.len())
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		weakDER, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(append([]byte{1}, make([]byte, 31)...)))
		if err != nil {
			t.Fatal(err)
		}
		weak := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: weakDER})
		good := newPEM(t)
		for name, bad := range map[string][]byte{
			"weak":       weak,
			"not pem":    []byte("x"),
			"two blocks": append(append([]byte(nil), good...), good...),
			"private":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: weakDER}),
		} {
			t.Run(name, func(t *testing.T) {
				c := newCnfKeyCache(4)
				_, want := token.ParsePublicKeyPEM(bad)
				if want == nil {
					t.Fatal("token.ParsePublicKeyPEM accepts it")
				}
				for range 2 {
					k, err := c.parsePEM(string(bad))
					if k != nil || err == nil {
						t.Fatalf("got %v, %v, want an error", k, err)
					}
					for _, target := range []error{token.ErrMalformed, token.ErrWeakKey, token.ErrUnsupportedKey} {
						if errors.Is(err, target) != errors.Is(want, target) {
							t.Fatalf("errors.Is(%v, %v) = %v, token.ParsePublicKeyPEM's error %v says %v", err, target, !errors.Is(want, target), want, errors.Is(want, target))
						}
					}
				}
				if c.len() != 0 {
					t.Fatalf("%d bad keys cached", c.len())
				}
			})
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c := newCnfKeyCache(3)
		pems := make([][]byte, 10)
		for i := range pems {
			pems[i] = newPEM(t)
			if _, err := c.parsePEM(string(pems[i])); err != nil {
				t.Fatal(err)
			}
			if c.len() > 3 {
				t.Fatalf("%d keys cached, bound 3", c.len())
			}
		}
		// Evicted or not, every key still parses to itself.
		for _, p := range pems {
			want, _ := token.ParsePublicKeyPEM(p)
			if k, err := c.parsePEM(string(p)); err != nil || !want.(*ecdsa.PublicKey).Equal(k) {
				t.Fatalf("got %v, %v, want %v", k, err, want)
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) { // run with -race
		c := newCnfKeyCache(4)
		pems := make([][]byte, 8)
		for i := range pems {
			pems[i] = newPEM(t)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					p := pems[(g+i)%len(pems)]
					want, _ := token.ParsePublicKeyPEM(p)
					if k, err := c.parsePEM(string(p)); err != nil || !want.(*ecdsa.PublicKey).Equal(k) {
						errs <- fmt.Errorf("got %v, %v, want %v", k, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if c.len() > 4 {
			t.Fatalf("%d keys cached, bound 4", c.len())
		}
	})
}

// TestCnfKeyCacheAlgorithm: the cache keeps with each key the outcome of
// token.AlgorithmFor, checked once when the key is kept, so that the
// token endpoint's check of the key (checkCnf) uses it instead of
// validating the point again, and refuses with it what it refuses of a key
// checked now (a v1 service, an Ed25519 key).
func TestCnfKeyCacheAlgorithm(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	c := newCnfKeyCache(8)
	for _, pub := range []any{&p256.PublicKey, &p384.PublicKey, edPub} {
		p, err := token.MarshalPublicKeyPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		want, err := token.AlgorithmFor(pub)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // parsed, then from the cache
			k, alg, err := c.parsePEMAlgorithm(string(p))
			if err != nil || alg != want {
				t.Fatalf("%T: algorithm %v, %v; want %v", pub, alg, err, want)
			}
			for _, profile := range []token.Profile{token.ProfileV1, token.ProfileV2} {
				s := &Service{Profile: profile}
				if got, now := s.checkCnf(k, alg), s.checkCnf(k, 0); (got == nil) != (now == nil) {
					t.Fatalf("%T, profile %v: with the cached algorithm %v, checked now %v", pub, profile, got, now)
				}
			}
		}
	}
	t.Run("allocations", func(t *testing.T) {
		p, _ := token.MarshalPublicKeyPEM(&p256.PublicKey)
		k, alg, err := c.parsePEMAlgorithm(string(p))
		if err != nil {
			t.Fatal(err)
		}
		s := &Service{}
		// The point check of an ECDSA key allocates; a key whose check the
		// cache kept is not checked again.
		if n := testing.AllocsPerRun(100, func() {
			if err := s.checkCnf(k, alg); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("checking a cached key allocates %.0f times, want 0", n)
		}
	})
}

// TestCnfKeyCachePadded: bytes longer than any PEM of a supported key
// (padded with whitespace, which ParsePublicKeyPEM accepts) are parsed but
// not kept, so that the cache holds at most maxCachedCnfKeys entries of at
// most maxCachedCnfPEM bytes, however clients pad their keys.
func TestCnfKeyCachePadded(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := token.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > maxCachedCnfPEM {
		t.Fatalf("a P-384 key's PEM is %d bytes, over maxCachedCnfPEM %d", len(p), maxCachedCnfPEM)
	}
	c := newCnfKeyCache(4)
	padded := string(p) + strings.Repeat(" ", maxCachedCnfPEM)
	got, err := c.parsePEM(padded)
	if err != nil || !k.PublicKey.Equal(got) {
		t.Fatalf("padded key: %v, %v", got, err)
	}
	if c.len() != 0 {
		t.Fatalf("%d keys cached for padded bytes, want 0", c.len())
	}
	if _, err := c.parsePEM(string(p)); err != nil || c.len() != 1 {
		t.Fatalf("the key itself: %v, %d cached, want 1", err, c.len())
	}
}
