package trusttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// DefaultLifetime is the lifetime of a token minted by [Issuer.Token]
// without the [Lifetime] option.
const DefaultLifetime = time.Hour

// Issuer is a trust anchor together with its private key: what an
// authorization service holds. Devices that trust Anchor accept the tokens
// that [Issuer.Token] signs.
type Issuer struct {
	// Key is the anchor's private key, an ECDSA P-256 key (ES256), which
	// both SDA v1 and v2 tokens can use.
	Key crypto.Signer
	// Anchor is what devices trust: the public key, named as SDA names
	// anchors ("mbed.ta." and the SHA-256 of the key; see [trust.NewAnchor]).
	Anchor trust.Anchor
}

// NewIssuer returns an issuer with a fresh P-256 key.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("trusttest: generating an anchor key: %v", err)
	}
	a, err := trust.NewAnchor(key.Public())
	if err != nil {
		t.Fatalf("trusttest: building the anchor: %v", err)
	}
	return &Issuer{Key: key, Anchor: *a}
}

// Store returns a new trust store holding the issuer's anchor: for a device
// built without package devicetest, or for a technician's token client
// that verifies the tokens it receives (client.TokenClient.Anchors).
func (iss *Issuer) Store(t testing.TB) *trust.MemoryStore {
	t.Helper()
	s, err := trust.NewMemoryStore(iss.Anchor)
	if err != nil {
		t.Fatalf("trusttest: building the trust store: %v", err)
	}
	return s
}

// TokenOption changes a token minted by [Issuer.Token].
type TokenOption func(*tokenConfig)

type tokenConfig struct {
	claims  token.Claims
	issued  time.Time
	life    time.Duration
	profile token.Profile
	scope   *token.Scope
}

// Subject sets the token's sub claim (the technician).
func Subject(sub string) TokenOption {
	return func(c *tokenConfig) { c.claims.Subject = sub }
}

// IssuedAt sets the token's iat and nbf claims; the default is now. With
// [Lifetime], it makes expired tokens (IssuedAt(time.Now().Add(-2*time.Hour)))
// and tokens not yet valid.
func IssuedAt(at time.Time) TokenOption {
	return func(c *tokenConfig) { c.issued = at }
}

// Lifetime sets how long after its issue time the token expires; the default
// is [DefaultLifetime].
func Lifetime(d time.Duration) TokenOption {
	return func(c *tokenConfig) { c.life = d }
}

// ID sets the token's cti claim (token id), which devices can revoke.
func ID(cti []byte) TokenOption {
	return func(c *tokenConfig) { c.claims.ID = append([]byte(nil), cti...) }
}

// V2 mints a v2 token ([token.ProfileV2]): RFC claim keys and, in the
// protected header, the anchor key's thumbprint as kid.
func V2() TokenOption {
	return func(c *tokenConfig) { c.profile = token.ProfileV2 }
}

// Scope replaces the text scope given to [Issuer.Token] by s, for structured
// scopes with argument constraints (built with [token.NewScope]). Structured
// scopes need [V2].
func Scope(s token.Scope) TokenOption {
	return func(c *tokenConfig) { c.scope = &s }
}

// Token returns an access token signed by the issuer for one device, aud
// ("ep:<endpoint>" or "id:<device id>", as the Audience method of a
// devicetest.Device gives it), permitting the operations of scope (names
// separated by single spaces, such as "read-data configure") and bound to
// the proof-of-possession key pop. Without options it is an SDA v1 token
// valid from now for [DefaultLifetime].
func (iss *Issuer) Token(t testing.TB, aud, scope string, pop crypto.PublicKey, opts ...TokenOption) []byte {
	t.Helper()
	c := tokenConfig{life: DefaultLifetime}
	for _, o := range opts {
		o(&c)
	}
	if c.scope != nil {
		c.claims.Scope = *c.scope
	} else {
		s, err := token.ParseScope(scope)
		if err != nil {
			t.Fatalf("trusttest: scope %q: %v", scope, err)
		}
		c.claims.Scope = s
	}
	if c.issued.IsZero() {
		c.issued = time.Now()
	}
	c.issued = c.issued.Truncate(time.Second)
	c.claims.Issuer = iss.Anchor.Issuer
	c.claims.Audience = []string{aud}
	c.claims.IssuedAt, c.claims.NotBefore = c.issued, c.issued
	c.claims.Expiry = c.issued.Add(c.life)
	c.claims.Key = pop
	iopts := &token.IssueOptions{Profile: c.profile}
	if c.profile == token.ProfileV2 {
		kid, err := token.Thumbprint(iss.Anchor.Key)
		if err != nil {
			t.Fatalf("trusttest: anchor key id: %v", err)
		}
		iopts.KeyID = kid
	}
	b, err := token.Issue(&c.claims, iss.Key, iopts)
	if err != nil {
		t.Fatalf("trusttest: issuing a token: %v", err)
	}
	return b
}

// NewPoPKey returns a fresh ECDSA P-256 proof-of-possession key, the kind a
// technician app holds and SDA v1 devices understand.
func NewPoPKey(t testing.TB) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("trusttest: generating a PoP key: %v", err)
	}
	return key
}
