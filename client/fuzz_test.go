package client

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
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

// FuzzCheckToken: checking a received token never panics, fails only with
// ErrTokenMismatch, and accepts only tokens bound to the client's key.
func FuzzCheckToken(f *testing.F) {
	pop, anchor := fixedKey(f, 1), fixedKey(f, 2)
	f.Add(issue(f, anchor, pop.Public(), []string{"ep:a"}, "read-data configure", testNow.Add(time.Hour)))
	f.Add(issue(f, anchor, pop.Public(), []string{"id:0123456789abcdef0123456789abcdef", "ep:b"}, "xy", testNow.Add(time.Hour)))
	f.Add(issue(f, anchor, mustKey(f, KeyEd25519).Public(), []string{"ep:a"}, "read-data", testNow.Add(time.Hour)))
	f.Add([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := CheckToken(data, &TokenCheck{Key: pop.Public(), Now: testNow})
		if err != nil {
			if !errors.Is(err, ErrTokenMismatch) {
				t.Fatalf("error %v does not match ErrTokenMismatch", err)
			}
			return
		}
		if !token.EqualKeys(tok.Key, pop.Public()) || !tok.Expiry.After(testNow) || !bytes.Equal(tok.Raw, data) {
			t.Fatalf("accepted %+v", tok)
		}
	})
}

// FuzzDecryptPrivateKey: an attacker-supplied key file never panics the
// reader and never makes it work beyond the bounds. Work factors above the
// test one are lowered so the fuzzer stays fast; the bound itself is tested
// in TestEncryptedKeyFileTampering.
func FuzzDecryptPrivateKey(f *testing.F) {
	k := fixedKey(f, 3)
	enc, err := EncryptPrivateKeyPEM(k, []byte("pw"), testWorkFactor)
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(enc)
	f.Add(block.Bytes, []byte("pw"))
	f.Add(block.Bytes[:40], []byte("pw"))
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
		if !token.EqualKeys(key.Public(), k.Public()) {
			t.Fatal("decrypted a key that was never encrypted")
		}
	})
}
