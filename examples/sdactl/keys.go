package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"flag"
	"fmt"
	"io"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
)

var keysGenerateCmd = &command{
	name:    "keys generate",
	summary: "generate a private key (trust anchor or proof-of-possession key) into a new file",
	details: fmt.Sprintf(`The key is written as PEM (PKCS#8) with mode 0600, synced to disk; an
existing file is never overwritten. With -passphrase-file it is encrypted
as a standard encrypted PKCS#8 file (PEM "ENCRYPTED PRIVATE KEY", RFC 5958)
with PBES2 (RFC 8018): AES-256-CBC under a key derived from the passphrase
with scrypt (RFC 7914), N = 2^%d, r = 8, p = 1 (256 MiB of memory;
-scrypt-work-factor %d..%d sets the exponent), with a random 16-byte salt
and IV.

OpenSSL 3 cannot read files at these parameters: it limits scrypt to 32 MiB
of memory. -openssl writes N = 2^%d, r = %d, p = %d instead, which
"openssl pkey" reads: the same time as the default but 16 MiB, so 16 times
less memory-hard against passphrase guessing. Files of the SDK's first
format ("SDA ENCRYPTED PRIVATE KEY") are still read.

The public half and its names are printed as "sdactl keys show" prints
them; the private key never is. SDA v1 devices and tokens need P-256, the
default.

These examples name private keys NAME.key and public keys NAME.pem:
  sdactl keys generate -o anchor.key -pub anchor.pem
  sdactl keys generate -o tech.key -pub tech.pem -passphrase-file pass.txt -openssl

With -pkcs11 URI instead of -o, the key is generated in a PKCS#11 token (an
HSM, or SoftHSM2), where it stays: sensitive and not extractable. The URI
(RFC 7512) names the module, the token and the new key's label (object);
the token's PIN comes from -pin-file ("-": stdin) or the URI's pin-source,
never from the command line. sdactl prints the key's URI with its id, for
authserver -key:
  sdactl keys generate -pin-file pin.txt -pub anchor.pem -pkcs11 \
      'pkcs11:token=sda;object=anchor?module-path=/usr/lib/softhsm/libsofthsm2.so'
`, client.DefaultScryptWorkFactor, client.MinScryptWorkFactor, client.MaxScryptWorkFactor,
		opensslOptions.WorkFactor, opensslOptions.R, opensslOptions.P),
	args: "",
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		out := fs.String("o", "", "private key `file` to create (required)")
		pubOut := fs.String("pub", "", "also write the public key PEM to this new `file`")
		ed := fs.Bool("ed25519", false, "generate an Ed25519 key (v2 only) instead of P-256")
		p384 := fs.Bool("p384", false, "generate a P-384 key (v2 only) instead of P-256")
		passFile := fs.String("passphrase-file", "", "encrypt the key with the passphrase on the first line of this `file` (\"-\": stdin)")
		work := fs.Int("scrypt-work-factor", 0, fmt.Sprintf("scrypt work factor log2(N) of an encrypted key, %d..%d (0: %d), with r = 8, p = 1", client.MinScryptWorkFactor, client.MaxScryptWorkFactor, client.DefaultScryptWorkFactor))
		pk11 := fs.String("pkcs11", "", "generate the key in the PKCS#11 token this RFC 7512 `URI` names instead of a file (see below)")
		pinFile := fs.String("pin-file", "", "with -pkcs11: the token's PIN, first line of this `file` (\"-\": stdin)")
		openssl := fs.Bool("openssl", false, fmt.Sprintf("encrypt so that OpenSSL 3 reads the file: scrypt N = 2^%d, r = %d, p = %d", opensslOptions.WorkFactor, opensslOptions.R, opensslOptions.P))
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *pk11 != "" {
				return e.keysGeneratePKCS11(*pk11, *pinFile, *pubOut, *out, *passFile, *ed, *p384)
			}
			if *pinFile != "" {
				return usageErrorf("-pin-file needs -pkcs11")
			}
			if *out == "" {
				return usageErrorf("-o is required")
			}
			if *out == "-" {
				return usageErrorf("-o -: sdactl does not print private keys")
			}
			if *ed && *p384 {
				return usageErrorf("-ed25519 and -p384 exclude each other")
			}
			opts, err := keyFileOptions(*passFile != "", *work, *openssl)
			if err != nil {
				return err
			}
			kt := client.KeyP256
			switch {
			case *ed:
				kt = client.KeyEd25519
			case *p384:
				kt = client.KeyP384
			}
			key, err := client.GenerateKey(kt)
			if err != nil {
				return fmt.Errorf("generate key: %w", err)
			}
			var data []byte
			if *passFile != "" {
				pass, err := e.readPassphrase(*passFile)
				if err != nil {
					return err
				}
				if opts == nil || opts.WorkFactor >= 15 || opts.P > 1 {
					e.status("deriving the encryption key from the passphrase (scrypt)...")
				}
				data, err = client.EncryptPrivateKeyPEM(key, pass, opts)
				if err != nil {
					return err
				}
			} else {
				data, err = client.MarshalPrivateKeyPEM(key)
				if err != nil {
					return err
				}
			}
			// The public key first: if its file cannot be created, no
			// private key is left behind without it.
			if *pubOut != "" {
				pem, err := token.MarshalPublicKeyPEM(key.Public())
				if err != nil {
					return err
				}
				if err := e.writeNewFile(*pubOut, pem); err != nil {
					return err
				}
			}
			if err := e.writeNewFile(*out, data); err != nil {
				return err
			}
			enc := "not encrypted"
			if *passFile != "" {
				enc = "encrypted"
			}
			fmt.Fprintf(e.stdout, "private key: %s (%s)\n", *out, enc)
			return printKeyInfo(e.stdout, key.Public(), false)
		}
	},
}

// opensslOptions are the parameters of -openssl.
var opensslOptions = *client.OpenSSLKeyFileOptions()

// keyFileOptions returns the encryption options that keys generate's
// flags select: nil for the default, or for a key written in clear.
func keyFileOptions(encrypted bool, work int, openssl bool) (*client.KeyFileOptions, error) {
	switch {
	case work != 0 && (work < client.MinScryptWorkFactor || work > client.MaxScryptWorkFactor):
		return nil, usageErrorf("-scrypt-work-factor %d outside %d..%d", work, client.MinScryptWorkFactor, client.MaxScryptWorkFactor)
	case work != 0 && openssl:
		return nil, usageErrorf("-scrypt-work-factor and -openssl exclude each other")
	case (work != 0 || openssl) && !encrypted:
		return nil, usageErrorf("-scrypt-work-factor and -openssl need -passphrase-file")
	case openssl:
		o := opensslOptions
		return &o, nil
	case work != 0:
		return &client.KeyFileOptions{WorkFactor: work}, nil
	}
	return nil, nil
}

var keysShowCmd = &command{
	name:    "keys show",
	args:    "KEYFILE",
	summary: "show a key's public half, SDA anchor name and RFC 9679 thumbprint",
	details: `KEYFILE is a private key file (encrypted ones need -passphrase-file) or a
public key PEM file. The anchor name is what SDA v1 tokens carry in iss:
"mbed.ta." and the upper-case hex SHA-256 of the DER SubjectPublicKeyInfo.
The thumbprint is the COSE Key Thumbprint (RFC 9679, SHA-256) in hex, the
recommended kid of v2 tokens. With -pem only the public key PEM is printed,
for redirecting into an anchor file.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		pemOnly := fs.Bool("pem", false, "print only the public key PEM")
		passFile := fs.String("passphrase-file", "", "passphrase of an encrypted key, first line of this `file` (\"-\": stdin)")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 1, 1, "KEYFILE"); err != nil {
				return err
			}
			var pub crypto.PublicKey
			var err error
			if *passFile != "" {
				var key crypto.Signer
				key, err = e.loadPrivateKey(args[0], *passFile)
				if key != nil {
					pub = key.Public()
				}
			} else {
				pub, err = e.loadPublicKey(args[0])
			}
			if err != nil {
				return err
			}
			return printKeyInfo(e.stdout, pub, *pemOnly)
		}
	},
}

// printKeyInfo prints the public key's type, anchor name, thumbprint and PEM.
func printKeyInfo(w io.Writer, pub crypto.PublicKey, pemOnly bool) error {
	pemBytes, err := token.MarshalPublicKeyPEM(pub)
	if err != nil {
		return inputErr(err)
	}
	if pemOnly {
		_, err := w.Write(pemBytes)
		return ioErr(err)
	}
	name, err := token.AnchorName(pub)
	if err != nil {
		return inputErr(err)
	}
	tp, err := token.Thumbprint(pub)
	if err != nil {
		return inputErr(err)
	}
	_, err = fmt.Fprintf(w, "type:        %s\nanchor name: %s\nthumbprint:  %s\n%s",
		keyDescription(pub), name, hex.EncodeToString(tp), pemBytes)
	return ioErr(err)
}
