package trust_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/atomicfile/atomicfiletest"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAnchorConstructors(t *testing.T) {
	for _, kind := range []string{"P-256", "P-384", "Ed25519"} {
		t.Run(kind, func(t *testing.T) {
			pub := newKey(t, kind).Public()
			name, _ := token.AnchorName(pub)
			pemKey, _ := token.MarshalPublicKeyPEM(pub)
			der, _ := token.MarshalPublicKeyDER(pub)
			cose, _ := token.MarshalCOSEKey(pub)
			for how, parse := range map[string]func() (*trust.Anchor, error){
				"key":  func() (*trust.Anchor, error) { return trust.NewAnchor(pub) },
				"PEM":  func() (*trust.Anchor, error) { return trust.ParsePEM(pemKey) },
				"DER":  func() (*trust.Anchor, error) { return trust.ParseDER(der) },
				"COSE": func() (*trust.Anchor, error) { return trust.ParseCOSEKey(cose) },
			} {
				a, err := parse()
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				alg, _ := token.AlgorithmFor(pub)
				if a.Issuer != name || !token.EqualKeys(a.Key, pub) || a.PinnedAlgorithm() != alg {
					t.Fatalf("%s: %+v", how, a)
				}
				if "mbed.ta."+a.Fingerprint() != name {
					t.Fatalf("fingerprint %s, name %s", a.Fingerprint(), name)
				}
			}
		})
	}
	pem1, _ := token.MarshalPublicKeyPEM(newKey(t, "P-256").Public())
	pem2, _ := token.MarshalPublicKeyPEM(newKey(t, "P-256").Public())
	for name, data := range map[string][]byte{
		"garbage PEM":     []byte("nope"),
		"private key PEM": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"two keys":        append(append([]byte{}, pem1...), pem2...), // which one would the device trust?
	} {
		if _, err := trust.ParsePEM(data); !errors.Is(err, trust.ErrInvalidAnchor) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := trust.ParseDER([]byte{0x30, 0x00}); !errors.Is(err, trust.ErrInvalidAnchor) {
		t.Errorf("bad DER: %v", err)
	}
}

// TestDegenerateAnchorKeys: an anchor key with which signatures verify
// without a private key (an Ed25519 point of small order, here the
// identity) or that is no point of its curve is refused wherever an anchor
// is made or added, with ErrInvalidAnchor and the token package's reason.
func TestDegenerateAnchorKeys(t *testing.T) {
	identity := ed25519.PublicKey(append([]byte{1}, make([]byte, 31)...))
	spki := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, identity...)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	cose := append([]byte{0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20}, identity...)
	k := newKey(t, "P-256").(*ecdsa.PrivateKey)
	//lint:ignore SA1019 building an invalid key on purpose needs the raw coordinates
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: k.X, Y: new(big.Int).Add(k.Y, big.NewInt(1))}
	check := func(what string, err error, reason error) {
		t.Helper()
		if !errors.Is(err, trust.ErrInvalidAnchor) || !errors.Is(err, reason) {
			t.Errorf("%s: %v, want ErrInvalidAnchor and %v", what, err, reason)
		}
	}
	_, err := trust.NewAnchor(identity)
	check("NewAnchor", err, token.ErrWeakKey)
	_, err = trust.ParsePEM(pemKey)
	check("ParsePEM", err, token.ErrWeakKey)
	_, err = trust.ParseDER(spki)
	check("ParseDER", err, token.ErrWeakKey)
	_, err = trust.ParseCOSEKey(cose)
	check("ParseCOSEKey", err, token.ErrWeakKey)
	for name, key := range map[string]crypto.PublicKey{"identity": identity, "off the curve": offCurve} {
		a := trust.Anchor{Issuer: "mbed.ta.X", KeyID: []byte("k1"), Key: key}
		check(name+": Validate", a.Validate(), token.ErrUnsupportedKey)
		store := &trust.MemoryStore{}
		check(name+": MemoryStore.Add", store.Add(a), token.ErrUnsupportedKey)
		if got, _ := store.Lookup("mbed.ta.X", []byte("k1")); len(got) != 0 {
			t.Errorf("%s: the store holds %d anchors", name, len(got))
		}
	}
}

func TestAnchorValidate(t *testing.T) {
	pub := newKey(t, "P-256").Public()
	for name, a := range map[string]trust.Anchor{
		"no issuer":         {Key: pub},
		"no key":            {Issuer: "x"},
		"alg mismatch":      {Issuer: "x", Key: pub, Algorithm: token.AlgEdDSA},
		"empty window":      {Issuer: "x", Key: pub, NotBefore: testNow, NotAfter: testNow},
		"bad operation":     {Issuer: "x", Key: pub, Constraints: trust.Constraints{Operations: []string{"no spaces"}}},
		"negative lifetime": {Issuer: "x", Key: pub, Constraints: trust.Constraints{MaxLifetime: -1}},
		"long kid":          {Issuer: "x", Key: pub, KeyID: make([]byte, trust.MaxKeyIDLength+1)},
	} {
		if err := a.Validate(); !errors.Is(err, trust.ErrInvalidAnchor) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func claims(edit func(*token.Claims)) *token.Claims {
	sc, _ := token.ParseScope("read-data configure")
	c := &token.Claims{
		Issuer: "iss", Audience: []string{"ep:hvac-17"}, Scope: sc,
		IssuedAt: testNow, NotBefore: testNow, Expiry: testNow.Add(time.Hour),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestAnchorCheck(t *testing.T) {
	pub := newKey(t, "P-256").Public()
	base := trust.Anchor{Issuer: "iss", Key: pub}
	for _, tc := range []struct {
		name       string
		anchor     func(*trust.Anchor)
		claims     func(*token.Claims)
		now        time.Time
		constraint string // "" means accepted
	}{
		{name: "no constraints", now: testNow},
		{name: "operations allowed", anchor: func(a *trust.Anchor) { a.Constraints.Operations = []string{"read-data", "configure", "reboot"} }, now: testNow},
		{name: "operation not allowed", anchor: func(a *trust.Anchor) { a.Constraints.Operations = []string{"read-data"} }, now: testNow, constraint: "operations"},
		{name: "operation prefix is not allowed", anchor: func(a *trust.Anchor) { a.Constraints.Operations = []string{"read", "configure"} }, now: testNow, constraint: "operations"},
		{name: "audience wildcard", anchor: func(a *trust.Anchor) { a.Constraints.Audiences = []string{"ep:hvac-*"} }, now: testNow},
		{name: "audience outside", anchor: func(a *trust.Anchor) { a.Constraints.Audiences = []string{"ep:hvac-1"} }, now: testNow, constraint: "audiences"},
		{name: "lifetime ok", anchor: func(a *trust.Anchor) { a.Constraints.MaxLifetime = time.Hour }, now: testNow},
		{name: "lifetime too long", anchor: func(a *trust.Anchor) { a.Constraints.MaxLifetime = 59 * time.Minute }, now: testNow, constraint: "lifetime"},
		{name: "anchor not yet valid", anchor: func(a *trust.Anchor) { a.NotBefore = testNow.Add(time.Hour) }, now: testNow, constraint: "validity"},
		{name: "anchor expired", anchor: func(a *trust.Anchor) { a.NotAfter = testNow.Add(-time.Hour) }, now: testNow, constraint: "validity"},
		{name: "unknown time skips the window", anchor: func(a *trust.Anchor) { a.NotAfter = testNow.Add(time.Hour) }},
		{name: "token issued after the window", anchor: func(a *trust.Anchor) { a.NotAfter = testNow.Add(time.Hour) }, claims: func(c *token.Claims) { c.IssuedAt = testNow.Add(2 * time.Hour) }, constraint: "validity"},
		{name: "issued before retirement", anchor: func(a *trust.Anchor) { a.RetiredAt = testNow.Add(time.Minute) }, now: testNow.Add(30 * time.Minute)},
		{name: "issued after retirement", anchor: func(a *trust.Anchor) { a.RetiredAt = testNow.Add(-time.Minute) }, now: testNow, constraint: "retired"},
		{name: "retired anchor, token without times", anchor: func(a *trust.Anchor) { a.RetiredAt = testNow }, claims: func(c *token.Claims) { c.IssuedAt, c.NotBefore = time.Time{}, time.Time{} }, now: testNow, constraint: "validity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			if tc.anchor != nil {
				tc.anchor(&a)
			}
			err := a.Check(claims(tc.claims), tc.now)
			if tc.constraint == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *trust.ConstraintError
			if !errors.Is(err, trust.ErrConstraint) || !errors.As(err, &ce) || ce.Constraint != tc.constraint {
				t.Fatalf("got %v, want constraint %q", err, tc.constraint)
			}
		})
	}
	revoked := base
	revoked.Revoked = true
	if err := revoked.Check(claims(nil), testNow); !errors.Is(err, trust.ErrAnchorRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}

func TestStoreLookupAndRotation(t *testing.T) {
	oldKey, newK := newKey(t, "P-256"), newKey(t, "Ed25519")
	s, err := trust.NewMemoryStore(
		trust.Anchor{Issuer: "acme", Key: oldKey.Public()},
		trust.Anchor{Issuer: "acme", KeyID: []byte("k2"), Key: newK.Public()},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup("acme", nil); err != nil || len(got) != 2 {
		t.Fatalf("by issuer: %d %v", len(got), err)
	}
	if got, err := s.Lookup("acme", []byte("k2")); err != nil || len(got) != 1 || !token.EqualKeys(got[0].Key, newK.Public()) {
		t.Fatalf("by kid: %v", err)
	}
	thumb, _ := token.Thumbprint(oldKey.Public())
	if got, err := s.Lookup("acme", thumb); err != nil || len(got) != 1 || !token.EqualKeys(got[0].Key, oldKey.Public()) {
		t.Fatalf("by thumbprint: %v", err)
	}
	if _, err := s.Lookup("acme", []byte("k3")); !errors.Is(err, trust.ErrUnknownAnchor) {
		t.Fatalf("unknown kid: %v", err)
	}
	if _, err := s.Lookup("other", nil); !errors.Is(err, trust.ErrUnknownAnchor) {
		t.Fatalf("unknown issuer: %v", err)
	}
	if err := s.Add(trust.Anchor{Issuer: "acme", KeyID: []byte("k2"), Key: newKey(t, "P-256").Public()}); !errors.Is(err, trust.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	v := s.Version()
	if err := s.Retire("acme", thumb, testNow); err != nil {
		t.Fatal(err)
	}
	if s.Version() == v {
		t.Fatal("version did not change")
	}
	got, _ := s.Lookup("acme", thumb)
	if !got[0].RetiredAt.Equal(testNow) {
		t.Fatalf("retired at %v", got[0].RetiredAt)
	}
	if err := s.Revoke("acme", thumb); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("acme", thumb); !errors.Is(err, trust.ErrAnchorRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if got, _ := s.Lookup("acme", nil); len(got) != 1 {
		t.Fatalf("revoked anchor returned: %d", len(got))
	}
	if err := s.Remove("acme", thumb); err != nil || s.Len() != 1 {
		t.Fatalf("remove: %v, %d left", err, s.Len())
	}
	for _, err := range []error{s.Remove("acme", thumb), s.Revoke("nobody", nil), s.Retire("nobody", nil, testNow)} {
		if !errors.Is(err, trust.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	}
}

// Revoking an anchor revokes its key: the same key held by another anchor
// (another key id, another issuer name, a file store reopened) must not
// keep verifying the compromised key's tokens.
func TestRevokeRevokesTheKeyEverywhere(t *testing.T) {
	key := newKey(t, "P-256").Public()
	other := newKey(t, "P-256").Public()
	name, _ := token.AnchorName(key)
	fs, err := trust.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []trust.Anchor{
		{Issuer: "acme", Key: key},
		{Issuer: "acme", KeyID: []byte("k2"), Key: key},
		{Issuer: "acme", KeyID: []byte("k3"), Key: other},
		{Issuer: name, Key: key},
	} {
		if err := fs.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	thumb, _ := token.Thumbprint(key)
	if err := fs.Revoke("acme", thumb); err != nil {
		t.Fatal(err)
	}
	re, err := trust.OpenFileStore(fs.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []trust.Store{fs, re} {
		for _, q := range []struct {
			issuer string
			kid    []byte
		}{{"acme", []byte("k2")}, {name, nil}} {
			if got, err := s.Lookup(q.issuer, q.kid); !errors.Is(err, trust.ErrAnchorRevoked) {
				t.Errorf("%s %q: %d anchors, %v; want the revoked key refused", q.issuer, q.kid, len(got), err)
			}
		}
		got, err := s.Lookup("acme", nil)
		if err != nil || len(got) != 1 || !token.EqualKeys(got[0].Key, other) {
			t.Errorf("acme: %d anchors, %v; want only the other key", len(got), err)
		}
	}
}

func TestStoreBounds(t *testing.T) {
	s := &trust.MemoryStore{}
	for i := range trust.MaxAnchorsPerIssuer {
		if err := s.Add(trust.Anchor{Issuer: "one", KeyID: []byte{byte(i)}, Key: newKey(t, "Ed25519").Public()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(trust.Anchor{Issuer: "one", KeyID: []byte("x"), Key: newKey(t, "Ed25519").Public()}); !errors.Is(err, trust.ErrStoreFull) {
		t.Fatalf("per issuer: %v", err)
	}
	for i := s.Len(); i < trust.MaxAnchors; i++ {
		if err := s.Add(trust.Anchor{Issuer: fmt.Sprint("iss-", i), Key: newKey(t, "Ed25519").Public()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(trust.Anchor{Issuer: "late", Key: newKey(t, "Ed25519").Public()}); !errors.Is(err, trust.ErrStoreFull) {
		t.Fatalf("total: %v", err)
	}
}

// Lookups and changes at once (run with -race): a lookup sees an anchor
// entirely or not at all.
func TestStoreConcurrency(t *testing.T) {
	s := &trust.MemoryStore{}
	keys := make([]crypto.PublicKey, 32)
	for i := range keys {
		keys[i] = newKey(t, "Ed25519").Public()
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := g; i < len(keys); i += 4 {
				if err := s.Add(trust.Anchor{Issuer: "iss", KeyID: []byte{byte(i)}, Key: keys[i]}); err != nil && !errors.Is(err, trust.ErrStoreFull) {
					t.Error(err)
				}
				s.Retire("iss", []byte{byte(i)}, testNow)
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				as, err := s.Lookup("iss", nil)
				if err != nil && !errors.Is(err, trust.ErrUnknownAnchor) {
					t.Error(err)
				}
				for _, a := range as {
					if a.Key == nil || len(a.KeyID) != 1 {
						t.Errorf("torn anchor %+v", a)
					}
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != trust.MaxAnchorsPerIssuer {
		t.Fatalf("%d anchors", s.Len())
	}
}

func TestFileStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "anchors")
	s, err := trust.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := trust.Anchor{
		Issuer: "acme", KeyID: []byte{1, 2}, Key: newKey(t, "P-384").Public(),
		NotBefore: testNow, NotAfter: testNow.Add(24 * time.Hour),
		Constraints: trust.Constraints{Operations: []string{"read-data"}, Audiences: []string{"ep:hvac-*"}, MaxLifetime: 2 * time.Hour},
	}
	b, _ := trust.NewAnchor(newKey(t, "P-256").Public())
	if err := s.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(*b); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire("acme", []byte{1, 2}, testNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(b.Issuer, nil); err != nil {
		t.Fatal(err)
	}
	re, err := trust.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	gotAll, wantAll := re.Anchors(), s.Anchors()
	if len(gotAll) != 2 || len(wantAll) != 2 {
		t.Fatalf("%d anchors reopened, %d written", len(gotAll), len(wantAll))
	}
	for i := range gotAll {
		if !token.EqualKeys(gotAll[i].Key, wantAll[i].Key) {
			t.Fatalf("anchor %d: key differs", i)
		}
		gotAll[i].Key, wantAll[i].Key = nil, nil
		if got, want := fmt.Sprint(gotAll[i]), fmt.Sprint(wantAll[i]); got != want {
			t.Fatalf("reopened anchor %d differs\n got %s\nwant %s", i, got, want)
		}
	}
	got, err := re.Lookup("acme", []byte{1, 2})
	if err != nil || !got[0].RetiredAt.Equal(testNow.Add(time.Hour)) || got[0].Constraints.MaxLifetime != 2*time.Hour || !token.EqualKeys(got[0].Key, a.Key) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := re.Lookup(b.Issuer, nil); !errors.Is(err, trust.ErrAnchorRevoked) {
		t.Fatalf("revocation lost: %v", err)
	}
}

func TestFileStoreFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := trust.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := trust.NewAnchor(newKey(t, "P-256").Public())
	if err := s.Add(*first); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, trust.FileName))
	for _, step := range []string{"write", "sync", "rename"} {
		boom := errors.New("disk pulled at " + step)
		trust.SetWriteHook(s, func(s string) error {
			if s == step {
				return boom
			}
			return nil
		})
		second, _ := trust.NewAnchor(newKey(t, "P-256").Public())
		if err := s.Add(*second); !errors.Is(err, boom) {
			t.Fatalf("%s: %v", step, err)
		}
		if s.Len() != 1 {
			t.Fatalf("%s: change applied in memory", step)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, trust.FileName)); !bytes.Equal(before, after) {
			t.Fatalf("%s: file changed", step)
		}
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
			t.Fatalf("%s: temporary files left: %v", step, tmp)
		}
	}
}

func TestFileStoreRejectsCorruptFiles(t *testing.T) {
	pemKey, _ := token.MarshalPublicKeyPEM(newKey(t, "P-256").Public())
	k := fmt.Sprintf("%q", pemKey)
	for name, content := range map[string]string{
		"not JSON":      "{",
		"wrong version": `{"version": 2, "anchors": []}`,
		"unknown field": `{"version": 1, "anchors": [], "extra": 1}`,
		"bad key":       `{"version": 1, "anchors": [{"issuer": "a", "public_key": "nope"}]}`,
		"no issuer":     `{"version": 1, "anchors": [{"issuer": "", "public_key": ` + k + `}]}`,
		"duplicate":     `{"version": 1, "anchors": [{"issuer": "a", "public_key": ` + k + `}, {"issuer": "a", "public_key": ` + k + `}]}`,
		"trailing":      `{"version": 1, "anchors": []} {}`,
		"bad lifetime":  `{"version": 1, "anchors": [{"issuer": "a", "public_key": ` + k + `, "max_lifetime": "forever"}]}`,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, trust.FileName), []byte(content), 0o644)
		if _, err := trust.OpenFileStore(dir); !errors.Is(err, trust.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// OpenFileStore removes the temporary files that writes a crash
// interrupted left behind, and only those.
func TestOpenFileStoreRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, trust.FileName)
	temps := []string{atomicfiletest.Crash(t, name), atomicfiletest.Crash(t, name)}
	unrelated := []string{"notes.txt", "." + trust.FileName + ".x1.tmp", ".other.json.123.tmp", trust.FileName + ".123.tmp", "." + trust.FileName + ".bak"}
	atomicfiletest.Unrelated(t, dir, unrelated...)
	s, err := trust.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	atomicfiletest.CheckRemoved(t, dir, temps, unrelated...)
	a, err := trust.NewAnchor(newKey(t, "P-256").Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(*a); err != nil {
		t.Fatal(err)
	}
}

// LookupToken chooses anchors as a device does: a v2 token's kid selects,
// a v1 token's kid only orders the issuer's anchors (deployed v1 devices
// look anchors up by iss alone).
func TestLookupToken(t *testing.T) {
	k1, k2, pop := newKey(t, "P-256"), newKey(t, "P-256"), newKey(t, "P-256")
	s, err := trust.NewMemoryStore(
		trust.Anchor{Issuer: "acme", KeyID: []byte("a"), Key: k1.Public()},
		trust.Anchor{Issuer: "acme", KeyID: []byte("b"), Key: k2.Public()},
	)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(p token.Profile, kid []byte) *token.Token {
		t.Helper()
		c := &token.Claims{Issuer: "acme", Audience: []string{"ep:x"}, Expiry: testNow.Add(time.Hour), NotBefore: testNow, Key: pop.Public()}
		c.Scope, _ = token.ParseScope("read-data")
		raw, err := token.Issue(c, k2, &token.IssueOptions{Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		if kid != nil { // {} -> {4: kid}, outside the signature
			withKid := append(bytes.Clone(raw[:8]), 0xa1, 0x04, 0x40|byte(len(kid)))
			raw = append(append(withKid, kid...), raw[9:]...)
		}
		tok, err := token.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	keyIDs := func(as []trust.Anchor) string {
		var b []byte
		for _, a := range as {
			b = append(b, a.KeyID...)
		}
		return string(b)
	}
	for _, c := range []struct {
		name    string
		profile token.Profile
		kid     []byte
		want    string
		err     error
	}{
		{"v1 without kid", token.ProfileV1, nil, "ab", nil},
		{"v1 kid of the second", token.ProfileV1, []byte("b"), "ba", nil},
		{"v1 kid of the first", token.ProfileV1, []byte("a"), "ab", nil},
		{"v1 unknown kid", token.ProfileV1, []byte("zz"), "ab", nil},
		{"v2 without kid", token.ProfileV2, nil, "ab", nil},
		{"v2 kid of the second", token.ProfileV2, []byte("b"), "b", nil},
		{"v2 unknown kid", token.ProfileV2, []byte("zz"), "", trust.ErrUnknownAnchor},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := trust.LookupToken(s, issue(c.profile, c.kid))
			if !errors.Is(err, c.err) || keyIDs(got) != c.want {
				t.Fatalf("anchors %q, %v; want %q, %v", keyIDs(got), err, c.want, c.err)
			}
		})
	}
	// An issuer whose anchors are all revoked: refused whatever the kid.
	if err := s.Revoke("acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.LookupToken(s, issue(token.ProfileV1, []byte("zz"))); !errors.Is(err, trust.ErrAnchorRevoked) {
		t.Fatalf("revoked issuer: %v", err)
	}
}

// Every limit of an anchor holds at exactly its value and refuses one more.
func TestAnchorLimits(t *testing.T) {
	pub := newKey(t, "P-256").Public()
	names := func(n int, format string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(format, i)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		edit func(a *trust.Anchor, n int)
		max  int
	}{
		{"issuer length", func(a *trust.Anchor, n int) { a.Issuer = strings.Repeat("i", n) }, trust.MaxIssuerLength},
		{"key id length", func(a *trust.Anchor, n int) { a.KeyID = bytes.Repeat([]byte{7}, n) }, trust.MaxKeyIDLength},
		{"operations", func(a *trust.Anchor, n int) { a.Constraints.Operations = names(n, "op%d") }, trust.MaxConstraintValues},
		{"audiences", func(a *trust.Anchor, n int) { a.Constraints.Audiences = names(n, "ep:hvac-%d") }, trust.MaxConstraintValues},
		{"audience length", func(a *trust.Anchor, n int) {
			a.Constraints.Audiences = []string{"ep:" + strings.Repeat("a", n-len("ep:"))}
		}, token.MaxAudienceLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := trust.Anchor{Issuer: "acme", Key: pub}
			tc.edit(&a, tc.max)
			if err := a.Validate(); err != nil {
				t.Fatalf("at the limit (%d): %v", tc.max, err)
			}
			if err := (&trust.MemoryStore{}).Add(a); err != nil {
				t.Fatalf("at the limit (%d), Add: %v", tc.max, err)
			}
			a = trust.Anchor{Issuer: "acme", Key: pub}
			tc.edit(&a, tc.max+1)
			if err := a.Validate(); !errors.Is(err, trust.ErrInvalidAnchor) {
				t.Fatalf("over the limit (%d): %v, want ErrInvalidAnchor", tc.max+1, err)
			}
			s := &trust.MemoryStore{}
			if err := s.Add(a); !errors.Is(err, trust.ErrInvalidAnchor) || s.Len() != 0 {
				t.Fatalf("over the limit (%d), Add: %v, %d anchors", tc.max+1, err, s.Len())
			}
		})
	}
	t.Run("empty audience", func(t *testing.T) {
		a := trust.Anchor{Issuer: "acme", Key: pub, Constraints: trust.Constraints{Audiences: []string{"ep:x", ""}}}
		if err := a.Validate(); !errors.Is(err, trust.ErrInvalidAnchor) {
			t.Fatalf("%v, want ErrInvalidAnchor", err)
		}
	})
	t.Run("zero lifetime limits nothing", func(t *testing.T) {
		a := trust.Anchor{Issuer: "acme", Key: pub, Constraints: trust.Constraints{MaxLifetime: 0}}
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := a.Check(claims(func(c *token.Claims) { c.Expiry = testNow.Add(1000 * time.Hour) }), testNow); err != nil {
			t.Fatal(err)
		}
	})
}

// OpenFileStore reads a file of exactly MaxFileSize bytes, all of it, and
// refuses a larger one.
func TestFileStoreSizeLimit(t *testing.T) {
	a, err := trust.NewAnchor(newKey(t, "P-256").Public())
	if err != nil {
		t.Fatal(err)
	}
	src, err := trust.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Add(*a); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(filepath.Join(src.Dir(), trust.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// JSON allows white space before the value: a file cut short loses
	// its end and does not parse.
	pad := func(size int) []byte {
		return append(bytes.Repeat([]byte{' '}, size-len(content)), content...)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, trust.FileName), pad(trust.MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := trust.OpenFileStore(dir)
	if err != nil {
		t.Fatalf("file of %d bytes: %v", trust.MaxFileSize, err)
	}
	if got, err := s.Lookup(a.Issuer, nil); err != nil || len(got) != 1 {
		t.Fatalf("file of %d bytes: %d anchors, %v", trust.MaxFileSize, len(got), err)
	}
	if err := os.WriteFile(filepath.Join(dir, trust.FileName), pad(trust.MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.OpenFileStore(dir); !errors.Is(err, trust.ErrCorrupt) {
		t.Fatalf("file of %d bytes: %v, want ErrCorrupt", trust.MaxFileSize+1, err)
	}
}

// The store file holds what an anchor has and nothing it does not have:
// an SDA-named anchor without constraints is its issuer and key only.
func TestFileStoreFormat(t *testing.T) {
	a, err := trust.NewAnchor(newKey(t, "P-256").Public())
	if err != nil {
		t.Fatal(err)
	}
	s, err := trust.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(*a); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(), trust.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version int
		Anchors []map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || len(f.Anchors) != 1 {
		t.Fatalf("version %d, %d anchors", f.Version, len(f.Anchors))
	}
	var fields []string
	for k := range f.Anchors[0] {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	if want := []string{"issuer", "public_key"}; !slices.Equal(fields, want) {
		t.Fatalf("fields %q, want %q", fields, want)
	}
}

// Anchors lists every anchor sorted by issuer, then key id, whatever the
// order they were added in.
func TestAnchorsSorted(t *testing.T) {
	s := &trust.MemoryStore{}
	for _, a := range []struct {
		issuer string
		kid    byte
	}{{"b", 2}, {"a", 3}, {"c", 0}, {"a", 1}, {"a", 2}, {"b", 1}, {"a", 0}} {
		if err := s.Add(trust.Anchor{Issuer: a.issuer, KeyID: []byte{a.kid}, Key: newKey(t, "Ed25519").Public()}); err != nil {
			t.Fatal(err)
		}
	}
	// The store's map of issuers comes in a new order every time.
	for range 20 {
		var got []string
		for _, a := range s.Anchors() {
			got = append(got, fmt.Sprintf("%s%d", a.Issuer, a.KeyID[0]))
		}
		if want := []string{"a0", "a1", "a2", "a3", "b1", "b2", "c0"}; !slices.Equal(got, want) {
			t.Fatalf("Anchors() = %q, want %q", got, want)
		}
	}
}

// Removing one anchor of an issuer keeps the issuer's others; removing the
// last one forgets the issuer.
func TestRemoveKeepsTheIssuersOtherAnchors(t *testing.T) {
	k1, k2, k3 := newKey(t, "P-256").Public(), newKey(t, "P-256").Public(), newKey(t, "P-256").Public()
	s, err := trust.NewMemoryStore(
		trust.Anchor{Issuer: "acme", KeyID: []byte("k1"), Key: k1},
		trust.Anchor{Issuer: "acme", KeyID: []byte("k2"), Key: k2},
		trust.Anchor{Issuer: "other", KeyID: []byte("k1"), Key: k3},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("acme", []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup("acme", nil); err != nil || len(got) != 1 || !token.EqualKeys(got[0].Key, k2) {
		t.Fatalf("acme after removing k1: %d anchors, %v; want k2", len(got), err)
	}
	if _, err := s.Lookup("acme", []byte("k1")); !errors.Is(err, trust.ErrUnknownAnchor) {
		t.Fatalf("removed k1: %v", err)
	}
	if got, err := s.Lookup("other", []byte("k1")); err != nil || len(got) != 1 || !token.EqualKeys(got[0].Key, k3) {
		t.Fatalf("another issuer's k1: %d anchors, %v", len(got), err)
	}
	if err := s.Remove("acme", []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("acme", nil); !errors.Is(err, trust.ErrUnknownAnchor) || s.Len() != 1 {
		t.Fatalf("acme emptied: %v, %d anchors left", err, s.Len())
	}
	if err := s.Remove("acme", nil); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("removing from a forgotten issuer: %v", err)
	}
	if err := s.Add(trust.Anchor{Issuer: "acme", KeyID: []byte("k1"), Key: k1}); err != nil {
		t.Fatalf("adding the removed anchor again: %v", err)
	}
}

// A store file holds as many anchors as a store may, and one more is
// refused as corrupt, not half loaded.
func TestFileStoreLimits(t *testing.T) {
	type fileAnchor struct {
		Issuer    string `json:"issuer"`
		KeyID     []byte `json:"kid"`
		PublicKey string `json:"public_key"`
	}
	keys := make([]string, trust.MaxAnchors+1)
	for i := range keys {
		pemKey, err := token.MarshalPublicKeyPEM(newKey(t, "Ed25519").Public())
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = string(pemKey)
	}
	open := func(anchors []fileAnchor) (*trust.FileStore, error) {
		data, err := json.Marshal(map[string]any{"version": 1, "anchors": anchors})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, trust.FileName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return trust.OpenFileStore(dir)
	}
	for _, tc := range []struct {
		name   string
		max    int
		issuer func(i int) string
	}{
		{"per issuer", trust.MaxAnchorsPerIssuer, func(int) string { return "one" }},
		{"in all", trust.MaxAnchors, func(i int) string { return fmt.Sprint("iss-", i/trust.MaxAnchorsPerIssuer) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var anchors []fileAnchor
			for i := range tc.max + 1 {
				anchors = append(anchors, fileAnchor{Issuer: tc.issuer(i), KeyID: []byte{byte(i), byte(i >> 8)}, PublicKey: keys[i]})
			}
			s, err := open(anchors[:tc.max])
			if err != nil || s.Len() != tc.max {
				t.Fatalf("%d anchors: %v", tc.max, err)
			}
			if s, err := open(anchors); !errors.Is(err, trust.ErrCorrupt) || s != nil {
				t.Fatalf("%d anchors: %v, want ErrCorrupt", tc.max+1, err)
			}
		})
	}
}
