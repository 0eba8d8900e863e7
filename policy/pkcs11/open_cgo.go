//go:build cgo

package pkcs11

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/securedeviceaccess/sda/token"
)

// Open opens the private key the PKCS#11 URI names (see [ParseURI]): it
// loads the module, logs in to the token with the user PIN (from
// opts.PIN, else the URI's pin-source) and finds the key pair by its
// object label and id. It fails with [ErrURI] for a URI ParseURI refuses,
// [ErrPIN] for a missing or wrong PIN, [ErrModule] when the module or
// token cannot be used, [ErrKeyNotFound] or [ErrAmbiguous] when the URI
// names no key pair or several, and [ErrUnsupportedKey] for a key other
// than ECDSA on P-256 or P-384. On failure nothing stays open.
func Open(uri string, opts *Options) (*Key, error) {
	u, ctx, err := login(uri, opts)
	if err != nil {
		return nil, err
	}
	k, err := find(ctx, u)
	if err != nil {
		ctx.Close()
		return nil, err
	}
	return k, nil
}

// Generate generates an ECDSA key pair for alg (token.AlgES256 for P-256,
// token.AlgES384 for P-384) in the token the PKCS#11 URI names and returns
// it open. The private key is generated in the token, sensitive and not
// extractable (CKA_SENSITIVE, not CKA_EXTRACTABLE). The URI must name the
// key's label (object); the id is the URI's, else 16 random bytes ([Key.URI]
// names it). Generate refuses with [ErrKeyExists] a label or id that a key
// pair in the token already has; it does not lock the token against a
// generation by another program at the same time. Ed25519 is refused with
// [ErrUnsupportedKey]: the PKCS#11 library used (crypto11) has no EdDSA.
func Generate(uri string, alg token.Algorithm, opts *Options) (*Key, error) {
	var curve elliptic.Curve
	switch alg {
	case token.AlgES256:
		curve = elliptic.P256()
	case token.AlgES384:
		curve = elliptic.P384()
	default:
		if _, err := ParseURI(uri); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v: only ES256 and ES384 keys can be generated", ErrUnsupportedKey, alg)
	}
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Object == "" {
		return nil, uriErr(attrObject, "required to generate a key: the key's label")
	}
	u, ctx, err := login(uri, opts)
	if err != nil {
		return nil, err
	}
	k, err := generate(ctx, u, curve)
	if err != nil {
		ctx.Close()
		return nil, err
	}
	return k, nil
}

func generate(ctx *crypto11.Context, u *URI, curve elliptic.Curve) (*Key, error) {
	for _, q := range [][2][]byte{{nil, []byte(u.Object)}, {u.ID, nil}} {
		if len(q[0]) == 0 && len(q[1]) == 0 {
			continue
		}
		found, err := ctx.FindKeyPairs(q[0], q[1])
		if err != nil {
			return nil, tokenErr(err)
		}
		if len(found) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrKeyExists, u)
		}
	}
	id := u.ID
	if len(id) == 0 {
		id = make([]byte, generatedIDLength)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	signer, err := ctx.GenerateECDSAKeyPairWithLabel(id, []byte(u.Object), curve)
	if err != nil {
		return nil, tokenErr(err)
	}
	named := *u
	named.ID = id
	return newKey(ctx, &named, signer)
}

// login parses uri, reads the PIN, loads the module and logs in to the
// token.
func login(uri string, opts *Options) (*URI, *crypto11.Context, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, nil, err
	}
	pin, err := u.pin(opts)
	if err != nil {
		return nil, nil, err
	}
	cfg := &crypto11.Config{
		Path:        u.ModulePath,
		TokenLabel:  u.Token,
		TokenSerial: u.Serial,
		Pin:         string(pin),
	}
	if u.HasSlotID {
		slot := u.SlotID
		cfg.SlotNumber = &slot
	}
	ctx, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, nil, tokenErr(err)
	}
	return u, ctx, nil
}

// find returns the one key pair the URI names.
func find(ctx *crypto11.Context, u *URI) (*Key, error) {
	var label []byte
	if u.Object != "" {
		label = []byte(u.Object)
	}
	found, err := ctx.FindKeyPairs(u.ID, label)
	if err != nil {
		return nil, tokenErr(err)
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, u)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d key pairs match %s", ErrAmbiguous, len(found), u)
	}
	named := *u
	if len(named.ID) == 0 {
		id, err := ctx.GetAttribute(found[0], crypto11.CkaId)
		if err == nil && id != nil && len(id.Value) > 0 && len(id.Value) <= MaxIDLength {
			named.ID = id.Value
		}
	}
	return newKey(ctx, &named, found[0])
}

// newKey checks the key pair's public key and wraps it in a Key that
// closes ctx.
func newKey(ctx *crypto11.Context, u *URI, signer crypto11.Signer) (*Key, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T key", ErrUnsupportedKey, signer.Public())
	}
	alg, err := token.AlgorithmFor(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return &Key{uri: *u, alg: alg, signer: signer, close: ctx.Close}, nil
}

// tokenErr classifies an error of the module: a PIN the token refuses
// matches ErrPIN, anything else ErrModule.
func tokenErr(err error) error {
	var e p11.Error
	if errors.As(err, &e) {
		switch e {
		case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE, p11.CKR_PIN_EXPIRED, p11.CKR_PIN_LOCKED:
			return fmt.Errorf("%w: %w", ErrPIN, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrModule, err)
}
