package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/pkcs11"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

const opTimeout = 10 * time.Second

// softHSM makes a throwaway SoftHSM2 token for the test and returns the
// URI of a key named object in it (PIN from the pin-source file). Tests
// using it cannot be parallel (testenv.SoftHSM sets SOFTHSM2_CONF).
func softHSM(t testing.TB, object string) (*testenv.SoftHSMToken, string) {
	t.Helper()
	if !cgoEnabled {
		testenv.Missing(t, "built without cgo: PKCS#11 modules cannot be loaded")
	}
	tok := testenv.SoftHSM(t, "sda-test")
	return tok, keyURI(tok, object, "&pin-source=file:"+tok.PINFile)
}

// keyURI returns the URI of the key named object in tok, with the query
// attributes extra ("&..." or "").
func keyURI(tok *testenv.SoftHSMToken, object, extra string) string {
	return "pkcs11:token=" + tok.Label + ";object=" + object + ";type=private?module-path=" + tok.Module + extra
}

// generate generates a key in the token and closes it at the test's end.
func generate(t testing.TB, uri string, alg token.Algorithm) *pkcs11.Key {
	t.Helper()
	k, err := pkcs11.Generate(uri, alg, nil)
	if err != nil {
		t.Fatalf("Generate(%s): %v", uri, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func open(t testing.TB, uri string, opts *pkcs11.Options) *pkcs11.Key {
	t.Helper()
	k, err := pkcs11.Open(uri, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// A key generated in the token opens again by label or by id and signs
// tokens and status updates that verify with its public key.
func TestGenerateOpenSign(t *testing.T) {
	for _, alg := range []token.Algorithm{token.AlgES256, token.AlgES384} {
		t.Run(alg.String(), func(t *testing.T) {
			tok, uri := softHSM(t, "anchor")
			gen := generate(t, uri, alg)
			if gen.Algorithm() != alg {
				t.Fatalf("Algorithm = %v", gen.Algorithm())
			}
			if got, err := token.AlgorithmFor(gen.Public()); err != nil || got != alg {
				t.Fatalf("AlgorithmFor(Public) = %v, %v", got, err)
			}
			named := gen.URI()
			if len(named.ID) == 0 || named.Object != "anchor" || strings.Contains(named.String(), "pin-value") {
				t.Fatalf("URI of the generated key: %s", named)
			}
			byLabel := open(t, uri, nil)
			named.Object, named.PINFile = "", ""
			byID := open(t, named.String(), &pkcs11.Options{PIN: strings.NewReader(tok.PIN + "\n")})
			for _, k := range []*pkcs11.Key{byLabel, byID} {
				if !k.Public().(*ecdsa.PublicKey).Equal(gen.Public()) {
					t.Fatal("the opened key is not the generated one")
				}
			}

			profile := token.ProfileV1
			if alg != token.AlgES256 {
				profile = token.ProfileV2
			}
			now := time.Now().Truncate(time.Second)
			claims := &token.Claims{
				Issuer: "test-anchor", Subject: "alice", Audience: []string{"ep:hvac-1"}, Scope: scope(t, "read"),
				IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), ID: []byte("0123456789abcdef"),
				Key: pubOfPoP(t),
			}
			signed, err := token.Issue(claims, byID, &token.IssueOptions{Profile: profile})
			if err != nil {
				t.Fatalf("token.Issue: %v", err)
			}
			parsed, err := token.Parse(signed)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parsed.Verify(gen.Public()); err != nil {
				t.Fatalf("Verify: %v", err)
			}

			status, err := token.SignStatus(&token.StatusUpdate{Issuer: "test-anchor", Audience: "ep:hvac-1", Sequence: 7, Time: now}, byLabel, nil)
			if err != nil {
				t.Fatalf("token.SignStatus: %v", err)
			}
			ss, err := token.ParseStatus(status)
			if err != nil {
				t.Fatal(err)
			}
			if u, err := ss.Verify(gen.Public()); err != nil || u.Sequence != 7 {
				t.Fatalf("status Verify = %+v, %v", u, err)
			}
		})
	}
}

func scope(t testing.TB, text string) token.Scope {
	t.Helper()
	s, err := token.ParseScope(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pubOfPoP(t testing.TB) crypto.PublicKey {
	t.Helper()
	k, err := client.GenerateKey(client.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// The service issues tokens signed in the token, which a device agent
// trusting the key's anchor accepts, and signs status updates with it.
func TestServiceWithTokenKey(t *testing.T) {
	for _, tc := range []struct {
		profile token.Profile
		alg     token.Algorithm
	}{{token.ProfileV1, token.AlgES256}, {token.ProfileV2, token.AlgES384}} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			_, uri := softHSM(t, "anchor")
			generate(t, uri, tc.alg)
			key := open(t, uri, nil)
			svc := &policy.Service{Store: policy.NewMemoryStore(), Signer: key, Profile: tc.profile}
			if tc.profile == token.ProfileV2 {
				kid, err := token.Thumbprint(key.Public())
				if err != nil {
					t.Fatal(err)
				}
				svc.KeyID = kid
			}
			id := token.Identity{Endpoint: "hvac-1", DeviceID: hex.EncodeToString(sha256.New().Sum(nil)[:16])}
			ctx := context.Background()
			if err := svc.Apply(ctx,
				policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
				policy.PutDevice(&policy.Device{ID: id.DeviceID, EndpointName: id.Endpoint}),
				policy.PutPolicy(&policy.Policy{ID: "p1", Status: policy.Active, Effect: policy.Allow,
					Subjects: policy.Subjects{Users: []string{"alice"}}, Operations: []policy.OperationRule{{Name: "read-data"}},
					Devices: policy.DeviceSelector{All: true}, TokenLifetime: policy.MinTokenLifetime}),
			); err != nil {
				t.Fatal(err)
			}
			pop, err := client.GenerateKey(client.KeyP256)
			if err != nil {
				t.Fatal(err)
			}
			issued, err := svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}

			anchor, err := trust.NewAnchor(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if issued.Claims.Issuer != anchor.Issuer && tc.profile == token.ProfileV1 {
				t.Fatalf("iss %q, anchor %q", issued.Claims.Issuer, anchor.Issuer)
			}
			anchor.Issuer = issued.Claims.Issuer
			dev := devicetest.NewDevice(t, devicetest.Options{
				Identity:     id,
				TrustAnchors: []trust.Anchor{*anchor},
				Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
			})
			s := &client.Session{Conn: dev.Conn(), Key: pop, Tokens: client.StaticToken(issued.Token), Timeout: opTimeout}
			res, err := s.Do(ctx, token.Operation{Name: "read-data"})
			if err != nil || string(res.Data) != "21.5 C" {
				t.Fatalf("read-data with a token signed in the HSM = %v, %v", res, err)
			}
			if o := dev.LastOutcome(); !o.Allowed() || o.Subject != "alice" {
				t.Fatalf("device outcome %+v", o)
			}

			signed, u, err := svc.StatusUpdate(ctx, "ep:hvac-1")
			if err != nil {
				t.Fatalf("StatusUpdate: %v", err)
			}
			ss, err := token.ParseStatus(signed)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ss.Verify(key.Public()); err != nil || got.Sequence != u.Sequence || got.Issuer != issued.Claims.Issuer {
				t.Fatalf("status update Verify = %+v, %v", got, err)
			}
		})
	}
}

func TestOpenAndGenerateRefuse(t *testing.T) {
	tok, uri := softHSM(t, "anchor")
	// Closed at once: PKCS#11 logs in per application, so while a key of
	// the token is open in the process, a login with a wrong PIN succeeds
	// (the token answers CKR_USER_ALREADY_LOGGED_IN; see the package doc).
	generate(t, uri, token.AlgES256).Close()
	withPIN := func(pin string) *pkcs11.Options { return &pkcs11.Options{PIN: strings.NewReader(pin)} }
	bare := keyURI(tok, "anchor", "")
	for _, tc := range []struct {
		name string
		do   func() (*pkcs11.Key, error)
		want error
	}{
		{"wrong PIN", func() (*pkcs11.Key, error) { return pkcs11.Open(bare, withPIN("0000")) }, pkcs11.ErrPIN},
		{"no PIN", func() (*pkcs11.Key, error) { return pkcs11.Open(bare, nil) }, pkcs11.ErrPIN},
		{"two PINs", func() (*pkcs11.Key, error) { return pkcs11.Open(uri, withPIN(tok.PIN)) }, pkcs11.ErrPIN},
		{"PIN in the URI", func() (*pkcs11.Key, error) { return pkcs11.Open(bare+"&pin-value="+tok.PIN, nil) }, pkcs11.ErrPINInURI},
		{"no such key", func() (*pkcs11.Key, error) { return pkcs11.Open(keyURI(tok, "other", ""), withPIN(tok.PIN)) }, pkcs11.ErrKeyNotFound},
		{"no such token", func() (*pkcs11.Key, error) {
			return pkcs11.Open("pkcs11:token=nothing;object=anchor?module-path="+tok.Module, withPIN(tok.PIN))
		}, pkcs11.ErrModule},
		{"no such module", func() (*pkcs11.Key, error) {
			return pkcs11.Open("pkcs11:token=sda-test;object=anchor?module-path=/nonexistent/lib.so", withPIN(tok.PIN))
		}, pkcs11.ErrModule},
		{"existing label", func() (*pkcs11.Key, error) { return pkcs11.Generate(bare, token.AlgES256, withPIN(tok.PIN)) }, pkcs11.ErrKeyExists},
		{"Ed25519", func() (*pkcs11.Key, error) {
			return pkcs11.Generate(keyURI(tok, "ed", ""), token.AlgEdDSA, withPIN(tok.PIN))
		}, pkcs11.ErrUnsupportedKey},
		{"generate without a label", func() (*pkcs11.Key, error) {
			return pkcs11.Generate("pkcs11:token=sda-test;id=%01?module-path="+tok.Module, token.AlgES256, withPIN(tok.PIN))
		}, pkcs11.ErrURI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.do()
			if k != nil {
				k.Close()
			}
			if !errors.Is(err, tc.want) || k != nil {
				t.Fatalf("got %v, %v; want %v", k, err, tc.want)
			}
		})
	}

	// The existing id of a second label is refused too, and a refused
	// generation leaves no key behind.
	first := open(t, uri, nil)
	id := first.URI()
	first.Close()
	id.Object = "second"
	id.PINFile = ""
	if k, err := pkcs11.Generate(id.String(), token.AlgES256, withPIN(tok.PIN)); !errors.Is(err, pkcs11.ErrKeyExists) {
		t.Fatalf("Generate with an existing id = %v, %v", k, err)
	}
	if k, err := pkcs11.Open(keyURI(tok, "second", ""), withPIN(tok.PIN)); !errors.Is(err, pkcs11.ErrKeyNotFound) {
		t.Fatalf("after the refused generation: %v, %v", k, err)
	}
	if k, err := pkcs11.Open(keyURI(tok, "ed", ""), withPIN(tok.PIN)); !errors.Is(err, pkcs11.ErrKeyNotFound) {
		t.Fatalf("after the refused Ed25519 generation: %v, %v", k, err)
	}
}

// Signatures in parallel through one Key, and Close while they run: Close
// waits for them, and Sign after Close fails with ErrClosed.
func TestConcurrentSignAndClose(t *testing.T) {
	_, uri := softHSM(t, "anchor")
	k := generate(t, uri, token.AlgES256)
	digest := sha256.Sum256([]byte("message"))
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for range 20 {
				sig, err := k.Sign(nil, digest[:], crypto.SHA256)
				if errors.Is(err, pkcs11.ErrClosed) {
					return
				}
				if err != nil || !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
					t.Errorf("Sign = %x, %v", sig, err)
					return
				}
			}
		})
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if sig, err := k.Sign(nil, digest[:], crypto.SHA256); !errors.Is(err, pkcs11.ErrClosed) {
		t.Fatalf("Sign after Close = %x, %v", sig, err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
