package main

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/internal/atomicfile"
	"github.com/securedeviceaccess/sda/token"
)

// Bounds of what sdactl reads.
const (
	maxPEMFile        = 16 << 10 // public keys, anchors
	maxTokenFile      = 32 << 10 // a token or a delegated token, base64 or raw (a request bundle holding either is at most 16 KiB)
	maxPassphraseFile = 1 << 10
	maxCredentialFile = 1 << 10
)

// readFile reads at most limit bytes of the file at path ("-": stdin).
func (e *env) readFile(path string, limit int64) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, ioErr(err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, ioErr(fmt.Errorf("read %s: %w", path, err))
	}
	if int64(len(data)) > limit {
		return nil, inputErr(fmt.Errorf("%s: larger than %d bytes", path, limit))
	}
	return data, nil
}

// writeNewFile writes data to a new file at path with mode 0600, synced to
// disk before it returns; it never replaces an existing file, and a file
// appears at path only complete (internal/atomicfile.Create). path "-"
// writes to stdout.
func (e *env) writeNewFile(path string, data []byte) error {
	if path == "-" {
		_, err := e.stdout.Write(data)
		return ioErr(err)
	}
	if err := atomicfile.Create(path, data, 0o600, nil); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ioErr(fmt.Errorf("%s exists; sdactl does not overwrite files", path))
		}
		return ioErr(err)
	}
	return nil
}

// writeEncoded writes CBOR bytes (a token, a delegated token, a status
// update) with writeNewFile: raw when rawOut is set, else in base64 on
// one line, as the commands that read them accept either.
func (e *env) writeEncoded(path string, raw []byte, rawOut bool) error {
	if !rawOut {
		raw = []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	}
	return e.writeNewFile(path, raw)
}

// readPassphrase reads a passphrase from the first line of a file ("-":
// stdin). An empty passphrase is refused.
func (e *env) readPassphrase(path string) ([]byte, error) {
	data, err := e.readFile(path, maxPassphraseFile)
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, inputErr(fmt.Errorf("passphrase file %s: empty passphrase", path))
	}
	return line, nil
}

// readSecret reads a one-line secret (an API key) from a file ("-": stdin).
func (e *env) readSecret(path string) (string, error) {
	data, err := e.readFile(path, maxCredentialFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return "", inputErr(fmt.Errorf("credential file %s: expected one non-empty line", path))
	}
	return s, nil
}

// loadPrivateKey reads a private key file, encrypted when passphraseFile
// is set.
func (e *env) loadPrivateKey(path, passphraseFile string) (crypto.Signer, error) {
	var pass []byte
	if passphraseFile != "" {
		var err error
		if pass, err = e.readPassphrase(passphraseFile); err != nil {
			return nil, err
		}
	}
	key, err := client.ReadKeyFile(path, pass)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, client.ErrKeyEncrypted):
		return nil, inputErr(fmt.Errorf("%s: the key is encrypted; give its passphrase with -passphrase-file", path))
	case errors.Is(err, client.ErrKeyNotEncrypted):
		return nil, inputErr(fmt.Errorf("%s: the key is not encrypted, but a passphrase was given", path))
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, ioErr(err)
	default:
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
}

// loadPublicKey reads a public key from a PEM file holding either a PUBLIC
// KEY block or an unencrypted private key (whose public half is used).
func (e *env) loadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := e.readFile(path, maxPEMFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, inputErr(fmt.Errorf("%s: no PEM block", path))
	}
	if block.Type == "PUBLIC KEY" {
		pub, err := token.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, inputErr(fmt.Errorf("%s: %w", path, err))
		}
		return pub, nil
	}
	key, err := client.ParsePrivateKeyPEM(data)
	if errors.Is(err, client.ErrKeyEncrypted) {
		return nil, inputErr(fmt.Errorf("%s: the private key is encrypted; give its passphrase with -passphrase-file where the command has it, or use its public key PEM (\"sdactl keys show -pem\")", path))
	}
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	return key.Public(), nil
}

// readToken reads an access token from a file ("-": stdin), raw CBOR or
// base64 (standard or URL alphabet, padded or not).
func (e *env) readToken(path string) ([]byte, error) {
	data, err := e.readFile(path, maxTokenFile)
	if err != nil {
		return nil, err
	}
	raw, err := decodeToken(data)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	return raw, nil
}

// decodeToken returns the token bytes of data: raw when it starts with a
// CBOR tag (0xd8 for tag 61, 0xd2 for tag 18) or, for a delegated token
// [token, chain], with the head of a two-element array (0x82), else base64.
func decodeToken(data []byte) ([]byte, error) {
	if len(data) > 0 && (data[0] == 0xd8 || data[0] == 0xd2 || data[0] == 0x82) {
		return data, nil
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, fmt.Errorf("%w: empty token", token.ErrMalformed)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	return nil, fmt.Errorf("%w: neither a raw token nor base64", token.ErrMalformed)
}

// keyDescription names a public key's type and the algorithm it pins.
func keyDescription(pub crypto.PublicKey) string {
	alg, err := token.AlgorithmFor(pub)
	if err != nil {
		return fmt.Sprintf("unsupported key %T", pub)
	}
	switch alg {
	case token.AlgES256:
		return "ECDSA P-256 (ES256)"
	case token.AlgES384:
		return "ECDSA P-384 (ES384)"
	case token.AlgEdDSA:
		return "Ed25519 (EdDSA)"
	}
	return alg.String()
}
