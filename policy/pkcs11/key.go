package pkcs11

import (
	"crypto"
	"io"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// Key is a private key held in a PKCS#11 token: a [crypto.Signer] for
// token.Issue, token.SignStatus and policy.Service.Signer. Signing happens
// in the token; the private key never leaves it. Its signatures are
// ASN.1 DER ECDSA signatures, as crypto/ecdsa's, which package token
// converts to the COSE encoding and checks.
//
// A Key is safe for concurrent use. Close it when done: it logs out and
// unloads the module once no other Key uses it.
type Key struct {
	uri    URI
	alg    token.Algorithm
	signer crypto.Signer
	close  func() error

	mu     sync.RWMutex
	closed bool
}

// Public returns the public key, an *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Algorithm returns the COSE algorithm the key signs with: token.AlgES256
// for a P-256 key, token.AlgES384 for P-384.
func (k *Key) Algorithm() token.Algorithm { return k.alg }

// URI returns a PKCS#11 URI naming the key, with its id (CKA_ID) as well
// as the names it was opened or generated with. It holds no PIN.
func (k *Key) URI() *URI {
	u := k.uri
	u.ID = append([]byte(nil), k.uri.ID...)
	return &u
}

// Sign signs digest, the hash of the message by opts.HashFunc(), in the
// token and returns an ASN.1 DER ECDSA signature. rand is not used: the
// token draws the signature's randomness. After Close it fails with
// [ErrClosed].
func (k *Key) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.closed {
		return nil, ErrClosed
	}
	sig, err := k.signer.Sign(rand, digest, opts)
	if err != nil {
		return nil, tokenErr(err)
	}
	return sig, nil
}

// Close waits for signatures in progress, then closes the key's sessions
// with the token and, when no other Key uses the module, unloads it.
// Closing a closed Key does nothing.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	return k.close()
}
