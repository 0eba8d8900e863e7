package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

// Every limit of limits.go and every documented bound is held at exactly N
// (accepted) and N+1 (refused), by the encoder that must not produce the
// message and by the decoder that must not accept it.

// maxTime is the largest time claim accepted, in seconds (Claims).
const maxTime = math.MaxInt64 / 2

// names returns n distinct operation names.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("op%d", i)
	}
	return out
}

// ints returns the integer arguments 0 to n-1.
func ints(n int) []token.Arg {
	out := make([]token.Arg, n)
	for i := range out {
		out[i] = token.Int(int64(i))
	}
	return out
}

// limitClaims returns valid v1 claims for an anchor and PoP key.
func limitClaims(t testing.TB, pop *ecdsa.PrivateKey) *token.Claims {
	return &token.Claims{Issuer: "mbed.ta.TEST", Audience: []string{"ep:hvac-1"}, Expiry: testNow.Add(time.Hour),
		NotBefore: testNow, Scope: mustScope(t, "read-data"), Key: pop.Public()}
}

// TestClaimLimits: MaxAudiences, MaxAudienceLength and the largest time
// claim, in Issue and in Parse.
func TestClaimLimits(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	audiences := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("ep:%d", i)
		}
		return out
	}
	long := func(n int) []string { return []string{"ep:" + strings.Repeat("e", n-3)} }
	for _, tc := range []struct {
		name   string
		ok     bool
		claims func(c *token.Claims)
		raw    func(m map[int]any)
	}{
		{"MaxAudiences entries", true, func(c *token.Claims) { c.Audience = audiences(token.MaxAudiences) },
			func(m map[int]any) { m[3] = audiences(token.MaxAudiences) }},
		{"MaxAudiences+1 entries", false, func(c *token.Claims) { c.Audience = audiences(token.MaxAudiences + 1) },
			func(m map[int]any) { m[3] = audiences(token.MaxAudiences + 1) }},
		{"entry of MaxAudienceLength bytes", true, func(c *token.Claims) { c.Audience = long(token.MaxAudienceLength) },
			func(m map[int]any) { m[3] = long(token.MaxAudienceLength) }},
		{"entry of MaxAudienceLength+1 bytes", false, func(c *token.Claims) { c.Audience = long(token.MaxAudienceLength + 1) },
			func(m map[int]any) { m[3] = long(token.MaxAudienceLength + 1) }},
		{"one-string aud of MaxAudienceLength+1 bytes", false, func(c *token.Claims) { c.Audience = long(token.MaxAudienceLength + 1) },
			func(m map[int]any) { m[3] = long(token.MaxAudienceLength + 1)[0] }},
		{"exp at the largest time", true, func(c *token.Claims) { c.Expiry = time.Unix(maxTime, 0) },
			func(m map[int]any) { m[4] = uint64(maxTime) }},
		{"exp after the largest time", false, func(c *token.Claims) { c.Expiry = time.Unix(maxTime+1, 0) },
			func(m map[int]any) { m[4] = uint64(maxTime + 1) }},
		{"nbf after the largest time", false, func(c *token.Claims) { c.NotBefore = time.Unix(maxTime+1, 0) },
			func(m map[int]any) { m[5] = uint64(maxTime + 1) }},
		{"iat at the largest time", true, func(c *token.Claims) { c.IssuedAt = time.Unix(maxTime, 0) },
			func(m map[int]any) { m[6] = uint64(maxTime) }},
		{"iat after the largest time", false, func(c *token.Claims) { c.IssuedAt = time.Unix(maxTime+1, 0) },
			func(m map[int]any) { m[6] = uint64(maxTime + 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := limitClaims(t, pop)
			tc.claims(c)
			_, err := token.Issue(c, anchor, nil)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrInvalid) {
				t.Errorf("Issue: %v, want ok=%v", err, tc.ok)
			}
			m := claimsMap(t, pop)
			tc.raw(m)
			_, err = parseClaimsMap(t, anchor, m)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Parse: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// A token expiring at the largest time is valid for any leeway: adding
	// it cannot overflow into the past.
	m := claimsMap(t, pop)
	m[4] = uint64(maxTime)
	c, err := parseClaimsMap(t, anchor, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(token.Validation{Identity: token.Identity{Endpoint: "hvac-1"}, Now: testNow, Leeway: math.MaxInt64}); err != nil {
		t.Fatalf("exp at the largest time, largest leeway: %v", err)
	}
}

// TestTokenSizeLimit: a token of exactly MaxTokenSize bytes is issued and
// parsed; one byte more is neither.
func TestTokenSizeLimit(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	c := limitClaims(t, pop)
	// An ES256 signature has a fixed size, so the length of the token
	// follows from the claims: find the subject that makes it N bytes.
	short, err := token.Issue(c, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A sub claim of n bytes adds n and at most 5 bytes of key, head and
	// payload head: start just below.
	var tok []byte
	n := max(token.MaxTokenSize-len(short)-6, 0)
	for ; n < token.MaxTokenSize; n++ {
		c.Subject = strings.Repeat("s", n)
		b, err := token.Issue(c, anchor, nil)
		if err != nil {
			t.Fatalf("subject of %d bytes: %v", n, err)
		}
		if len(b) == token.MaxTokenSize {
			tok = b
			break
		}
	}
	if tok == nil {
		t.Fatal("no subject length makes a token of MaxTokenSize bytes")
	}
	if _, err := token.Parse(tok); err != nil {
		t.Fatalf("token of MaxTokenSize bytes: %v", err)
	}
	if _, err := token.SignRequest(&token.Request{Nonce: 1, Operation: token.Operation{Name: "read-data"}, Token: tok}, pop, nil); err != nil {
		t.Fatalf("request with a token of MaxTokenSize bytes: %v", err)
	}
	c.Subject = strings.Repeat("s", n+1)
	if b, err := token.Issue(c, anchor, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("Issue made a token of %d bytes (%v), want ErrInvalid", len(b), err)
	}
	// The same claims, signed by hand.
	m := claimsMap(t, pop)
	m[12] = "read-data"
	m[2] = strings.Repeat("s", n+1)
	raw := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, m))
	if len(raw) != token.MaxTokenSize+1 {
		t.Fatalf("hand-made token of %d bytes, want %d", len(raw), token.MaxTokenSize+1)
	}
	var pe *token.ParseError
	if _, err := token.Parse(raw); !errors.As(err, &pe) || pe.Field != "token" {
		t.Fatalf("token of MaxTokenSize+1 bytes: %v, want a *ParseError for field token", err)
	}
	m[2] = strings.Repeat("s", n)
	if raw := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, m)); len(raw) != token.MaxTokenSize {
		t.Fatalf("hand-made token of %d bytes, want %d", len(raw), token.MaxTokenSize)
	} else if _, err := token.Parse(raw); err != nil {
		t.Fatalf("hand-made token of MaxTokenSize bytes: %v", err)
	}
	big := append(tok, 0)
	if _, err := token.SignRequest(&token.Request{Nonce: 1, Operation: token.Operation{Name: "read-data"}, Token: big}, pop, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("request with a token of MaxTokenSize+1 bytes: %v, want ErrInvalid", err)
	}
}

// countingSigner counts the signatures asked of it.
type countingSigner struct {
	crypto.Signer
	calls int
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.calls++
	return s.Signer.Sign(r, digest, opts)
}

// TestIssueSizeLimitPerAlgorithm: with every algorithm, with and without a
// kid, Issue makes a token of exactly MaxTokenSize bytes, and refuses
// claims one byte longer without asking the key to sign them.
func TestIssueSizeLimitPerAlgorithm(t *testing.T) {
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	for _, tc := range []struct {
		name, kind string
		opts       *token.IssueOptions
	}{
		{"ES256 v1", "P-256", nil},
		{"ES256 v2 with a kid", "P-256", &token.IssueOptions{Profile: token.ProfileV2, KeyID: make([]byte, 32)}},
		{"ES384", "P-384", &token.IssueOptions{Profile: token.ProfileV2}},
		{"EdDSA", "Ed25519", &token.IssueOptions{Profile: token.ProfileV2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anchor := &countingSigner{Signer: newKey(t, tc.kind)}
			c := limitClaims(t, pop)
			short, err := token.Issue(c, anchor, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// A sub claim of n bytes adds n and at most 5 bytes of key,
			// heads and payload head: start just below.
			n := max(token.MaxTokenSize-len(short)-6, 0)
			for ; n < token.MaxTokenSize; n++ {
				c.Subject = strings.Repeat("s", n)
				b, err := token.Issue(c, anchor, tc.opts)
				if err != nil {
					t.Fatalf("subject of %d bytes: %v", n, err)
				}
				if len(b) == token.MaxTokenSize {
					if _, err := token.Parse(b); err != nil {
						t.Fatalf("token of MaxTokenSize bytes: %v", err)
					}
					break
				}
			}
			if n == token.MaxTokenSize {
				t.Fatal("no subject length makes a token of MaxTokenSize bytes")
			}
			c.Subject = strings.Repeat("s", n+1)
			before := anchor.calls
			if b, err := token.Issue(c, anchor, tc.opts); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Issue made a token of %d bytes (%v), want ErrInvalid", len(b), err)
			}
			if anchor.calls != before {
				t.Fatal("Issue asked the key to sign a token it refused")
			}
		})
	}
}

// TestScopeLimits: MaxScopeItems, MaxNameLength, MaxConstraints,
// MaxSetValues, argument indexes below MaxArgs and values of MaxArgBytes,
// in NewScope and in Scope.UnmarshalCBOR.
func TestScopeLimits(t *testing.T) {
	perms := func(n int) []token.Permission {
		out := make([]token.Permission, n)
		for i, name := range names(n) {
			out[i] = token.Permission{Operation: name, Constraints: []token.Constraint{token.InRange(0, 0, 1)}}
		}
		return out
	}
	one := func(cs ...token.Constraint) []token.Permission {
		return []token.Permission{{Operation: "set", Constraints: cs}}
	}
	ranges := func(n int) []token.Constraint {
		out := make([]token.Constraint, n)
		for i := range out {
			out[i] = token.InRange(i%token.MaxArgs, 0, 1)
		}
		return out
	}
	text := token.Text(strings.Repeat("t", token.MaxArgBytes))
	bytes := token.Bytes(make([]byte, token.MaxArgBytes))
	for _, tc := range []struct {
		name  string
		ok    bool
		perms []token.Permission
	}{
		{"MaxScopeItems permissions", true, perms(token.MaxScopeItems)},
		{"MaxScopeItems+1 permissions", false, perms(token.MaxScopeItems + 1)},
		{"name of MaxNameLength", true, []token.Permission{{Operation: "a" + strings.Repeat("b", token.MaxNameLength-1)}, perms(1)[0]}},
		{"name of MaxNameLength+1", false, []token.Permission{{Operation: "a" + strings.Repeat("b", token.MaxNameLength)}, perms(1)[0]}},
		{"MaxConstraints constraints", true, one(ranges(token.MaxConstraints)...)},
		{"MaxConstraints+1 constraints", false, one(ranges(token.MaxConstraints + 1)...)},
		{"MaxSetValues values", true, one(token.OneOf(0, ints(token.MaxSetValues)...))},
		{"MaxSetValues+1 values", false, one(token.OneOf(0, ints(token.MaxSetValues+1)...))},
		{"argument index MaxArgs-1", true, one(token.InRange(token.MaxArgs-1, 0, 1))},
		{"argument index MaxArgs", false, one(token.InRange(token.MaxArgs, 0, 1))},
		{"one-of text of MaxArgBytes", true, one(token.OneOf(0, text))},
		{"equal bytes of MaxArgBytes", true, one(token.Equals(0, bytes))},
		{"one-of text of MaxArgBytes+1", false, one(token.OneOf(0, token.Text(strings.Repeat("t", token.MaxArgBytes+1))))},
		{"equal bytes of MaxArgBytes+1", false, one(token.Equals(0, token.Bytes(make([]byte, token.MaxArgBytes+1))))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := token.NewScope(tc.perms...)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("NewScope: %v, want ok=%v", err, tc.ok)
			}
			// The wire form, written without NewScope's checks.
			items := make([]any, len(tc.perms))
			for i, p := range tc.perms {
				cs := make([]any, len(p.Constraints))
				for j, c := range p.Constraints {
					switch c.Kind {
					case token.ConstraintRange:
						cs[j] = []any{c.Arg, 1, c.Min, c.Max}
					case token.ConstraintOneOf:
						cs[j] = []any{c.Arg, 2, c.Values}
					case token.ConstraintEqual:
						cs[j] = []any{c.Arg, 3, c.Values[0]}
					}
				}
				items[i] = []any{p.Operation, cs}
				if len(cs) == 0 {
					items[i] = p.Operation
				}
			}
			b, err := codec.Marshal(items)
			if err != nil {
				t.Fatal(err)
			}
			got, err := unmarshalScope(b)
			if !tc.ok {
				if !errors.Is(err, token.ErrMalformed) {
					t.Fatalf("UnmarshalCBOR: %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCBOR: %v", err)
			}
			if !got.Equal(sc) {
				t.Fatalf("UnmarshalCBOR gave %v, want %v", got, sc)
			}
		})
	}
}

// TestArgumentLimits: MaxArgs arguments and arguments of MaxArgBytes, in
// SignRequest, ParseRequest and Arg.UnmarshalCBOR.
func TestArgumentLimits(t *testing.T) {
	anchor := newKey(t, "P-256").(*ecdsa.PrivateKey)
	pop := newKey(t, "P-256").(*ecdsa.PrivateKey)
	tok := rawSign1(t, anchor, cwtTags, protES256, emptyMap, enc(t, claimsMap(t, pop)))
	for _, tc := range []struct {
		name string
		ok   bool
		args []token.Arg
	}{
		{"MaxArgs arguments", true, ints(token.MaxArgs)},
		{"MaxArgs+1 arguments", false, ints(token.MaxArgs + 1)},
		{"text of MaxArgBytes", true, []token.Arg{token.Text(strings.Repeat("t", token.MaxArgBytes))}},
		{"text of MaxArgBytes+1", false, []token.Arg{token.Text(strings.Repeat("t", token.MaxArgBytes+1))}},
		{"bytes of MaxArgBytes", true, []token.Arg{token.Bytes(make([]byte, token.MaxArgBytes))}},
		{"bytes of MaxArgBytes+1", false, []token.Arg{token.Bytes(make([]byte, token.MaxArgBytes+1))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := token.Operation{Name: "set", Args: tc.args}
			_, err := token.SignRequest(&token.Request{Nonce: 1, Operation: op, Token: tok}, pop, nil)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("SignRequest: %v, want ok=%v", err, tc.ok)
			}
			args := make([]any, len(tc.args))
			for i, a := range tc.args {
				args[i] = a
			}
			req := rawSign1(t, pop, []byte{0xd2}, protES256, emptyMap, enc(t, []any{uint64(1), []any{1, "set", args}, tok}))
			sr, err := token.ParseRequest(req)
			if !tc.ok {
				if !errors.Is(err, token.ErrMalformed) {
					t.Fatalf("ParseRequest: %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			r, err := sr.Verify(pop.Public())
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Operation.Args) != len(tc.args) || !r.Operation.Args[len(tc.args)-1].Equal(tc.args[len(tc.args)-1]) {
				t.Fatalf("arguments %v, want %v", r.Operation.Args, tc.args)
			}
		})
	}
	for _, tc := range []struct {
		name string
		ok   bool
		v    any
	}{
		{"text of MaxArgBytes", true, strings.Repeat("t", token.MaxArgBytes)},
		{"text of MaxArgBytes+1", false, strings.Repeat("t", token.MaxArgBytes+1)},
		{"bytes of MaxArgBytes", true, make([]byte, token.MaxArgBytes)},
		{"bytes of MaxArgBytes+1", false, make([]byte, token.MaxArgBytes+1)},
	} {
		var a token.Arg
		err := a.UnmarshalCBOR(enc(t, tc.v))
		if tc.ok != (err == nil) {
			t.Errorf("Arg.UnmarshalCBOR, %s: %v, want ok=%v", tc.name, err, tc.ok)
		}
		if tc.ok && a.Kind() == 0 {
			t.Errorf("Arg.UnmarshalCBOR, %s: no value decoded", tc.name)
		}
	}
}

// TestResponseLimits: the status is a 32-bit unsigned integer and the data
// at most codec.MaxStringLength bytes.
func TestResponseLimits(t *testing.T) {
	dev := newKey(t, "P-256").(*ecdsa.PrivateKey)
	for _, tc := range []struct {
		name   string
		ok     bool
		status uint64
	}{
		{"status 2^32-1", true, math.MaxUint32},
		{"status 2^32", false, math.MaxUint32 + 1},
	} {
		raw := rawSign1(t, dev, []byte{0xd2}, protES256, emptyMap, enc(t, []any{tc.status, []byte{}, uint64(1), "hvac-1", ""}))
		r, err := token.VerifyResponse(raw, dev.Public())
		if tc.ok && (err != nil || r.Status != math.MaxUint32) || !tc.ok && !errors.Is(err, token.ErrMalformed) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// The payload is one byte string of at most codec.MaxStringLength
	// bytes: the largest data SignResponse signs is what VerifyResponse
	// accepts, and one byte more is refused.
	resp := &token.DeviceResponse{Status: 1, Nonce: 2, Device: token.Identity{Endpoint: "hvac-1"}}
	n := codec.MaxStringLength
	for ; n > 0; n-- {
		resp.Data = make([]byte, n)
		if _, err := token.SignResponse(resp, dev, nil); err == nil {
			break
		} else if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("SignResponse with %d bytes of data: %v, want ErrInvalid", n, err)
		}
	}
	if n < codec.MaxStringLength-16 {
		t.Fatalf("SignResponse refuses %d bytes of data, far under the %d-byte payload limit", n+1, codec.MaxStringLength)
	}
	raw, err := token.SignResponse(resp, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := token.VerifyResponse(raw, dev.Public()); err != nil || len(r.Data) != n {
		t.Fatalf("VerifyResponse with %d bytes of data: %v", n, err)
	}
	// SignResponse is not stricter than VerifyResponse: one byte more,
	// signed by hand, is refused by the decoder too.
	raw = rawSign1(t, dev, []byte{0xd2}, protES256, emptyMap, enc(t, []any{uint64(1), make([]byte, n+1), uint64(2), "hvac-1", ""}))
	if _, err := token.VerifyResponse(raw, dev.Public()); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("VerifyResponse with %d bytes of data: %v, want ErrMalformed", n+1, err)
	}
}

// TestRequestSizeLimit: the bundle is one byte string of at most
// codec.MaxStringLength bytes; SignRequest refuses a bundle over it,
// whatever makes it large, and signs only requests that ParseRequest
// accepts.
func TestRequestSizeLimit(t *testing.T) {
	pop := newKey(t, "P-256")
	tok := make([]byte, 512)
	args := make([]token.Arg, token.MaxArgs)
	for i := range args {
		args[i] = token.Bytes(make([]byte, token.MaxArgBytes))
	}
	req := &token.Request{Nonce: 1, Operation: token.Operation{Name: "set", Args: args}, Token: tok}
	if _, err := token.SignRequest(req, pop, nil); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("SignRequest with a bundle over %d bytes: %v, want ErrInvalid", codec.MaxStringLength, err)
	}
	// Shrink the last argument until the request is signed: it must parse,
	// and one byte more must be refused.
	n := token.MaxArgBytes
	var raw []byte
	for ; n >= 0; n-- {
		args[len(args)-1] = token.Bytes(make([]byte, n))
		var err error
		if raw, err = token.SignRequest(req, pop, nil); err == nil {
			break
		} else if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("SignRequest: %v, want ErrInvalid", err)
		}
	}
	if n < 0 {
		t.Fatal("no request signed")
	}
	sr, err := token.ParseRequest(raw)
	if err != nil {
		t.Fatalf("ParseRequest of a signed request: %v", err)
	}
	if _, err := sr.Verify(pop.Public()); err != nil {
		t.Fatal(err)
	}
	// SignRequest is not stricter than ParseRequest: one byte more, signed
	// by hand, is refused by the decoder too.
	wire := make([]any, len(args))
	for i, a := range args {
		wire[i] = a
	}
	wire[len(wire)-1] = make([]byte, n+1)
	raw = rawSign1(t, pop.(*ecdsa.PrivateKey), []byte{0xd2}, protES256, emptyMap, enc(t, []any{uint64(1), []any{1, "set", wire}, tok}))
	if _, err := token.ParseRequest(raw); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("ParseRequest of a bundle one byte larger: %v, want ErrMalformed", err)
	}
}
