package main

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/securedeviceaccess/sda/policy/pkcs11"
	"github.com/securedeviceaccess/sda/token"
)

// isPKCS11URI reports whether a -key value names a key in a PKCS#11 token
// (RFC 7512: the scheme is case-insensitive) rather than a file.
func isPKCS11URI(s string) bool {
	return len(s) >= len("pkcs11:") && strings.EqualFold(s[:len("pkcs11:")], "pkcs11:")
}

// loadAnchorKey returns the trust anchor key that -key names, and a
// function that releases it: a PEM file (with -passphrase-file if it is
// encrypted), or a key in a PKCS#11 token named by a pkcs11: URI whose
// PIN comes from -pin-file or the URI's pin-source, never from the command
// line.
func (e *env) loadAnchorKey(key, passphraseFile, pinFile string) (crypto.Signer, func(), error) {
	if !isPKCS11URI(key) {
		if pinFile != "" {
			return nil, nil, usageErrorf("-pin-file is for a -key in a PKCS#11 token (pkcs11:...)")
		}
		k, err := e.loadPrivateKey(key, passphraseFile)
		return k, func() {}, err
	}
	if passphraseFile != "" {
		return nil, nil, usageErrorf("-passphrase-file is for a key file; a PKCS#11 token takes its PIN with -pin-file")
	}
	opts, err := e.pkcs11Options(pinFile)
	if err != nil {
		return nil, nil, err
	}
	k, err := pkcs11.Open(key, opts)
	if err != nil {
		return nil, nil, pkcs11Err("-key", err)
	}
	return k, func() { k.Close() }, nil
}

// pkcs11Options reads the PIN from -pin-file ("-": stdin), if given.
func (e *env) pkcs11Options(pinFile string) (*pkcs11.Options, error) {
	if pinFile == "" {
		return nil, nil
	}
	pin, err := e.readPassphrase(pinFile)
	if err != nil {
		return nil, err
	}
	return &pkcs11.Options{PIN: bytes.NewReader(pin)}, nil
}

// generatePKCS11 is "keys generate -pkcs11 URI": it generates the key in
// the token, writes the public key to pubOut if set, and prints the key's
// URI (with its id) and its public half.
func (e *env) generatePKCS11(uri, pinFile, pubOut string, alg token.Algorithm) error {
	if pubOut != "" && pubOut != "-" {
		// Checked first, so that a key is not left in the token for want
		// of a file name; writeNewFile checks again.
		if _, err := os.Lstat(pubOut); err == nil {
			return ioErr(fmt.Errorf("%s: %w", pubOut, fs.ErrExist))
		}
	}
	opts, err := e.pkcs11Options(pinFile)
	if err != nil {
		return err
	}
	k, err := pkcs11.Generate(uri, alg, opts)
	if err != nil {
		return pkcs11Err("-pkcs11", err)
	}
	defer k.Close()
	named := k.URI().String()
	if pubOut != "" {
		pem, err := token.MarshalPublicKeyPEM(k.Public())
		if err != nil {
			return err
		}
		if err := e.writeNewFile(pubOut, pem); err != nil {
			return fmt.Errorf("the key is in the token (%s), but: %w", named, err)
		}
	}
	fmt.Fprintf(e.stdout, "private key: %s (in the PKCS#11 token)\n", named)
	return printKeyInfo(e.stdout, k.Public(), false)
}

// pkcs11Err gives an error of package pkcs11 its exit code.
func pkcs11Err(flag string, err error) error {
	err = fmt.Errorf("%s: %w", flag, err)
	switch {
	case errors.Is(err, pkcs11.ErrKeyExists), errors.Is(err, pkcs11.ErrNoCgo):
		return failedErr(err)
	case errors.Is(err, pkcs11.ErrModule):
		return ioErr(err)
	}
	return inputErr(err)
}

// keysGeneratePKCS11 checks the flags of "keys generate -pkcs11" and
// generates the key.
func (e *env) keysGeneratePKCS11(uri, pinFile, pubOut, out, passFile string, ed, p384 bool) error {
	switch {
	case out != "":
		return usageErrorf("-o and -pkcs11 exclude each other: the key stays in the token")
	case passFile != "":
		return usageErrorf("-passphrase-file is for a key file; the token's PIN goes with -pin-file")
	case ed:
		return usageErrorf("-ed25519 with -pkcs11: the PKCS#11 library used has no Ed25519; use P-256 or -p384")
	}
	alg := token.AlgES256
	if p384 {
		alg = token.AlgES384
	}
	return e.generatePKCS11(uri, pinFile, pubOut, alg)
}
