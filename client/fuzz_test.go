package client

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// fixedKey returns a P-256 key derived from seed, the same in every fuzz
// worker process (seed corpus entries are built in one process and run in
// others).
func fixedKey(t testing.TB, seed byte) *ecdsa.PrivateKey {
	t.Helper()
	d := bytes.Repeat([]byte{seed}, 32)
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzDecodeTokenResponse: the token endpoint's JSON answer never panics
// the decoder, and what it accepts is bounded and consistent.
func FuzzDecodeTokenResponse(f *testing.F) {
	raw := issue(f, mustP256(f), mustKey(f, KeyP256).Public(), []string{"ep:a"}, "read-data", testNow)
	seeds := []string{
		`{"access_token":"` + base64.StdEncoding.EncodeToString(raw) + `","granted_until":"2026-11-24T13:00:00Z"}`,
		`{"access_token":"0oA=","granted_until":"2026-11-24T13:00:00+01:00","extra":[1,2,{}]}`,
		`{"access_token":"","granted_until":""}`,
		`{"access_token":"0oA","granted_until":"2026-11-24T13:00:00Z"}`,
		`{"access_token":null}`,
		`[]`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, until, err := decodeTokenResponse(data)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(tok) == 0 || len(tok) > token.MaxTokenSize || until.IsZero() {
			t.Fatalf("accepted %d token bytes until %v", len(tok), until)
		}
		_ = decodeServiceError(400, data)
	})
}

// FuzzCheckToken: checking a received token or delegated token never
// panics, fails only with ErrTokenMismatch, and accepts only tokens bound
// to the client's key (for a delegated token, chains ending with it), in
// the encoding it was given.
func FuzzCheckToken(f *testing.F) {
	pop, anchor := fixedKey(f, 1), fixedKey(f, 2)
	f.Add(issue(f, anchor, pop.Public(), []string{"ep:a"}, "read-data configure", testNow.Add(time.Hour)))
	f.Add(issue(f, anchor, pop.Public(), []string{"id:0123456789abcdef0123456789abcdef", "ep:b"}, "xy", testNow.Add(time.Hour)))
	f.Add(issue(f, anchor, mustKey(f, KeyEd25519).Public(), []string{"ep:a"}, "read-data", testNow.Add(time.Hour)))
	f.Add([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0, 0x40})
	// A delegated token whose chain ends with pop.
	holder := fixedKey(f, 3)
	delegated, err := Delegate(&AccessToken{Raw: delegable(f, anchor, holder.Public(), "read-data configure", testNow.Add(time.Hour), 2)}, holder,
		&token.DelegationSpec{To: pop.Public(), Scope: mustScope(f, "read-data"), Expiry: testNow.Add(time.Minute), Subject: "sub"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(delegated.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := CheckToken(data, &TokenCheck{Key: pop.Public(), Now: testNow})
		if err != nil {
			if !errors.Is(err, ErrTokenMismatch) {
				t.Fatalf("error %v does not match ErrTokenMismatch", err)
			}
			return
		}
		if !token.EqualKeys(tok.Key, pop.Public()) || !tok.Expiry.After(testNow) || !bytes.Equal(tok.Bytes(), data) {
			t.Fatalf("accepted %+v", tok)
		}
	})
}

// FuzzDecryptPrivateKey: an attacker-supplied key file in this package's
// first format ("SDA ENCRYPTED PRIVATE KEY", read only) never panics the
// reader and never makes it work beyond the bounds. Work factors above the
// test one are lowered so the fuzzer stays fast; the bound itself is tested
// in TestSDAKeyFileTampering.
func FuzzDecryptPrivateKey(f *testing.F) {
	enc, err := os.ReadFile(filepath.Join("testdata", "sda-v1-p256.key"))
	if err != nil {
		f.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join("testdata", "sda-v1-p256.pem"))
	if err != nil {
		f.Fatal(err)
	}
	pub, err := token.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		f.Fatal(err)
	}
	const pass = "correct horse battery staple"
	block, _ := pem.Decode(enc)
	f.Add(block.Bytes, []byte(pass))
	f.Add(block.Bytes[:40], []byte(pass))
	f.Add([]byte{1, 1, 40}, []byte("x"))
	f.Fuzz(func(t *testing.T, body, pass []byte) {
		if len(body) > 2 && body[2] > testWorkFactor+1 && body[2] <= MaxScryptWorkFactor {
			body = bytes.Clone(body)
			body[2] = testWorkFactor
		}
		file := pem.EncodeToMemory(&pem.Block{Type: "SDA ENCRYPTED PRIVATE KEY", Bytes: body})
		key, err := DecryptPrivateKeyPEM(file, pass)
		if err != nil {
			if !isAny(err, ErrMalformedKey, ErrWrongPassphrase, ErrInvalid, token.ErrUnsupportedKey) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !token.EqualKeys(key.Public(), pub) {
			t.Fatal("decrypted a key that was never encrypted")
		}
	})
}

// FuzzDecryptEncryptedPKCS8: an attacker-supplied encrypted PKCS#8 file
// (PEM "ENCRYPTED PRIVATE KEY") never panics the reader, gets a typed
// error, and never decrypts to a key that was not encrypted. Every input
// goes through the decoder and its bounds; only those whose scrypt cost is
// above twice the test's are not decrypted, so the fuzzer stays fast (the
// bounds themselves are tested in TestDecryptEncryptedPKCS8).
func FuzzDecryptEncryptedPKCS8(f *testing.F) {
	k := fixedKey(f, 3)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	enc, err := EncryptPrivateKeyPEM(k, []byte("pw"), testKeyFileOptions)
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(enc)
	f.Add(block.Bytes, []byte("pw"))
	s := newSpec(f, der)
	s.salt, s.keyLen = s.salt[:8], nil // as OpenSSL writes
	block, _ = pem.Decode(s.build(f))
	f.Add(block.Bytes, []byte("pw"))
	f.Add(block.Bytes[:60], []byte("pw"))
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00}, []byte("x"))
	const maxCost = 2 << testWorkFactor * 8
	f.Fuzz(func(t *testing.T, body, pass []byte) {
		file := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: body})
		if p, err := parsePBES2(body); err == nil && (1<<p.scrypt.logN)*p.scrypt.r*p.scrypt.p > maxCost {
			return
		}
		key, err := DecryptPrivateKeyPEM(file, pass)
		if err != nil {
			if !isAny(err, ErrMalformedKey, ErrWrongPassphrase, ErrInvalid, token.ErrUnsupportedKey) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !token.EqualKeys(key.Public(), k.Public()) {
			t.Fatal("decrypted a key that was never encrypted")
		}
	})
}

// FuzzDecodeStatusResponse: the status update endpoint's JSON answer never
// panics the decoder or the checks, fails only with the package's typed
// errors, and what is accepted is an update for the audience asked for.
func FuzzDecodeStatusResponse(f *testing.F) {
	anchor := mustP256(f)
	raw := signUpdate(f, anchor, "ep:a", 3, testNow)
	enc := base64.StdEncoding.EncodeToString(raw)
	seeds := []string{
		`{"status_update":"` + enc + `","aud":"ep:a","seq":3,"time":"2026-11-24T12:00:00Z"}`,
		`{"status_update":"` + enc + `","aud":"ep:a","seq":3}`,
		`{"status_update":"` + enc + `","aud":"ep:b","seq":3,"time":"x"}`,
		`{"status_update":"0oA=","aud":"ep:a","seq":-1}`,
		`{"status_update":null}`,
		`[]`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	name, _ := token.AnchorName(anchor.Public())
	anchors, err := trust.NewMemoryStore(trust.Anchor{Issuer: name, Key: anchor.Public()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		upd, r, err := decodeStatusResponse(data)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(upd) == 0 || len(upd) > token.MaxStatusUpdateSize {
			t.Fatalf("accepted %d update bytes", len(upd))
		}
		for _, a := range []trust.Store{nil, anchors} {
			if err := checkStatus(upd, r, "ep:a", a); err != nil {
				if !errors.Is(err, ErrStatusMismatch) {
					t.Fatalf("untyped error %v", err)
				}
				continue
			}
			p, err := token.ParseStatus(upd)
			if err != nil || p.UnverifiedUpdate().Audience != "ep:a" {
				t.Fatalf("accepted an update that is not for ep:a: %v", err)
			}
		}
	})
}
