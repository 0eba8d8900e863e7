package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// maxLifetime bounds -lifetime of "token issue" (the policy service's bound).
const maxLifetime = 999 * 24 * time.Hour

var tokenIssueCmd = &command{
	name:    "token issue",
	summary: "issue an access token signed with a trust anchor's private key",
	details: `The token's iss is the anchor name of the key ("mbed.ta." + SHA-256 of its
public key), which is how devices find the anchor; nbf and iat are now, exp is
now + -lifetime, cti is 16 random bytes, cnf is the -pop key. The token is
written in base64 (one line) unless -raw is given.

-scope takes operation names separated by single spaces and, in v2 tokens,
argument constraints in the form "sdactl token inspect" prints, which it
reads back: NAME(CONSTRAINT, ...) where a constraint is argN in MIN..MAX,
argN in {VALUE, ...} or argN = VALUE, and a value is an integer, a text
string in double quotes ("eco", with \" and \\ escaped) or bytes in hex
(h'DEADBEEF'); "*" permits every operation (v2). Example: a v1 token, and a
v2 token that permits set-temperature only between 16 and 28 and set-mode
only to eco or boost:
  sdactl token issue -key anchor.key -aud ep:hvac-1 -scope "read-data configure" \
      -sub alice -pop tech.pem -o alice.token
  sdactl token issue -key anchor.key -aud ep:hvac-1 -profile v2 -sub alice -pop tech.pem \
      -scope 'read-data set-temperature(arg0 in 16..28) set-mode(arg0 in {"eco", "boost"})' \
      -o alice-v2.token

-delegate-depth N (v2) lets the token's holder pass on, offline, parts of it
through up to N links ("sdactl token delegate"), of every operation of the
scope or, with -delegate-ops, of those listed only: the delegation claim an
authorization service puts in tokens when the owner's policy allows it.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		keyFile := fs.String("key", "", "trust anchor private key `file` (required)")
		passFile := fs.String("passphrase-file", "", "passphrase of an encrypted -key, first line of this `file` (\"-\": stdin)")
		var aud stringList
		fs.Var(&aud, "aud", "audience: \"ep:<endpoint>\" or \"id:<32 hex device id>\"; repeatable (required)")
		scope := fs.String("scope", "", "operations, separated by spaces; v2: with constraints, as \"token inspect\" prints them (required)")
		sub := fs.String("sub", "", "subject: who the token is for")
		lifetime := fs.Duration("lifetime", time.Hour, "validity from now")
		pop := fs.String("pop", "", "proof-of-possession key `file`: public key PEM, or an unencrypted private key (required)")
		profile := fs.String("profile", "v1", "token profile: v1 (deployed SDA devices) or v2")
		kid := fs.String("kid", "", "v2 key id in the header: hex bytes, or \"thumbprint\" for the anchor key's RFC 9679 thumbprint")
		delegateDepth := fs.Int("delegate-depth", 0, fmt.Sprintf("v2: links of delegation the holder may add, 1..%d (default: none)", token.MaxDelegationDepth))
		delegateOps := fs.String("delegate-ops", "", "v2, with -delegate-depth: the operations that may be passed on, comma-separated (default: all of -scope)")
		out := fs.String("o", "-", "output `file` (\"-\": stdout)")
		rawOut := fs.Bool("raw", false, "write the raw CBOR bytes instead of base64")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			switch {
			case *delegateDepth < 0 || *delegateDepth > token.MaxDelegationDepth:
				return usageErrorf("-delegate-depth %d outside 1..%d", *delegateDepth, token.MaxDelegationDepth)
			case *delegateOps != "" && *delegateDepth == 0:
				return usageErrorf("-delegate-ops needs -delegate-depth")
			case *keyFile == "":
				return usageErrorf("-key is required")
			case len(aud) == 0:
				return usageErrorf("-aud is required")
			case *scope == "":
				return usageErrorf("-scope is required")
			case *pop == "":
				return usageErrorf("-pop is required")
			case *lifetime <= 0 || *lifetime > maxLifetime:
				return usageErrorf("-lifetime %v outside (0, %v]", *lifetime, maxLifetime)
			}
			prof, err := parseProfile(*profile)
			if err != nil {
				return err
			}
			sc, err := token.ParseScopeText(*scope)
			if err != nil {
				return usageErrorf("-scope: %v", err)
			}
			if _, text := sc.Text(); !text && prof == token.ProfileV1 {
				return usageErrorf("-scope: an SDA v1 token carries operation names only, not constraints or \"*\" (use -profile v2)")
			}
			for _, a := range aud {
				if _, err := parseIdentity(a); err != nil {
					return usageErrorf("-aud: %v", err)
				}
			}
			if *kid != "" && prof != token.ProfileV2 {
				return usageErrorf("-kid needs -profile v2")
			}
			var deleg *token.Delegation
			if *delegateDepth > 0 {
				if prof != token.ProfileV2 {
					return usageErrorf("-delegate-depth needs -profile v2 (v1 tokens are never delegable)")
				}
				deleg = &token.Delegation{Depth: *delegateDepth}
				if *delegateOps != "" {
					deleg.Operations = strings.Split(*delegateOps, ",")
				}
			}
			key, err := e.loadPrivateKey(*keyFile, *passFile)
			if err != nil {
				return err
			}
			popKey, err := e.loadPublicKey(*pop)
			if err != nil {
				return err
			}
			if prof == token.ProfileV1 {
				if alg, _ := token.AlgorithmFor(key.Public()); alg != token.AlgES256 {
					return inputErr(fmt.Errorf("-key: a v1 token is signed with a P-256 key, not %s (use -profile v2)", keyDescription(key.Public())))
				}
				if alg, _ := token.AlgorithmFor(popKey); alg != token.AlgES256 {
					return inputErr(fmt.Errorf("-pop: a v1 token binds a P-256 key, not %s (use -profile v2)", keyDescription(popKey)))
				}
			}
			opts := &token.IssueOptions{Profile: prof}
			switch *kid {
			case "":
			case "thumbprint":
				if opts.KeyID, err = token.Thumbprint(key.Public()); err != nil {
					return inputErr(err)
				}
			default:
				if opts.KeyID, err = hex.DecodeString(*kid); err != nil || len(opts.KeyID) == 0 {
					return usageErrorf("-kid: not hex bytes or \"thumbprint\"")
				}
			}
			iss, err := token.AnchorName(key.Public())
			if err != nil {
				return inputErr(fmt.Errorf("-key: %w", err))
			}
			cti := make([]byte, 16)
			if _, err := rand.Read(cti); err != nil {
				return err
			}
			now := e.now().Truncate(time.Second)
			raw, err := token.Issue(&token.Claims{
				Issuer: iss, Subject: *sub, Audience: aud,
				Expiry: now.Add(*lifetime), NotBefore: now, IssuedAt: now,
				ID: cti, Scope: sc, Key: popKey, Delegation: deleg,
			}, key, opts)
			if errors.Is(err, token.ErrInvalid) {
				return usageErrorf("%v", err)
			}
			if err != nil {
				return inputErr(err)
			}
			if err := e.writeEncoded(*out, raw, *rawOut); err != nil {
				return err
			}
			if *out != "-" {
				e.status("wrote %s token to %s, valid until %s", prof, *out, now.Add(*lifetime).UTC().Format(time.RFC3339))
			}
			return nil
		}
	},
}

func parseProfile(s string) (token.Profile, error) {
	switch s {
	case "v1":
		return token.ProfileV1, nil
	case "v2":
		return token.ProfileV2, nil
	}
	return 0, usageErrorf("-profile %q: want v1 or v2", s)
}

// parseIdentity turns an audience entry into the device identity it names.
func parseIdentity(aud string) (token.Identity, error) {
	for _, p := range []string{token.PrefixEndpoint, token.PrefixLegacyEndpoint} {
		if v, ok := strings.CutPrefix(aud, p); ok && v != "" {
			return token.Identity{Endpoint: v}, nil
		}
	}
	for _, p := range []string{token.PrefixDeviceID, token.PrefixLegacyDeviceID} {
		if v, ok := strings.CutPrefix(aud, p); ok && v != "" {
			return token.Identity{DeviceID: v}, nil
		}
	}
	return token.Identity{}, fmt.Errorf("%q: want \"ep:<endpoint name>\" or \"id:<device id>\"", aud)
}

var tokenInspectCmd = &command{
	name:    "token inspect",
	args:    "TOKENFILE",
	summary: "decode and print a token WITHOUT verifying it",
	details: `TOKENFILE ("-": stdin) holds the token in base64 or raw. The token is
parsed strictly, but its signature is not checked: everything printed is what
the token claims, not what is true. Use "sdactl token verify" to check it.
Times are RFC 3339, in UTC.

A delegated token ("sdactl token delegate") is printed as its token, then its
chain: whether the links' signatures and narrowing check out against the
token's (unverified) claims, and for each link the delegate's key and its
RFC 9679 thumbprint, sub, scope, window (nbf "the parent's" when the link
does not narrow it), aud, depth (links that may follow) and the link's hash
(what a revocation of the link, and everything below it, lists).
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 1, 1, "TOKENFILE"); err != nil {
				return err
			}
			raw, err := e.readToken(args[0])
			if err != nil {
				return err
			}
			raw, chain, err := splitHeld(raw)
			if err != nil {
				return inputErr(err)
			}
			t, err := token.Parse(raw)
			if err != nil {
				return inputErr(err)
			}
			printUnverified(e.stdout, t, e.now())
			if chain != nil {
				printChain(e.stdout, t, t.UnverifiedClaims(), chain)
			}
			return nil
		}
	},
}

func printUnverified(w io.Writer, t *token.Token, now time.Time) {
	c := t.UnverifiedClaims()
	fmt.Fprintln(w, "UNVERIFIED: the signature has not been checked; nothing below is trusted")
	fmt.Fprintln(w, "            (use \"sdactl token verify\" with the trust anchor).")
	kid := "-"
	if k := t.UnverifiedKeyID(); k != nil {
		kid = hex.EncodeToString(k)
	}
	fmt.Fprintf(w, "size:       %d bytes\n", len(t.Bytes()))
	fmt.Fprintf(w, "profile:    %s\n", c.Profile)
	fmt.Fprintf(w, "header:     alg=%s kid=%s\n", t.Algorithm(), kid)
	fmt.Fprintf(w, "iss:        %s\n", c.Issuer)
	fmt.Fprintf(w, "sub:        %s\n", orDash(c.Subject))
	fmt.Fprintf(w, "aud:        %s\n", strings.Join(c.Audience, " "))
	fmt.Fprintf(w, "scope:      %s\n", c.Scope)
	fmt.Fprintf(w, "iat:        %s\n", fmtTime(c.IssuedAt))
	fmt.Fprintf(w, "nbf:        %s\n", fmtTime(c.NotBefore))
	exp := fmtTime(c.Expiry)
	if !c.Expiry.IsZero() {
		if d := c.Expiry.Sub(now).Truncate(time.Second); d >= 0 {
			exp += fmt.Sprintf(" (in %v)", d)
		} else {
			exp += fmt.Sprintf(" (expired %v ago)", -d)
		}
	}
	fmt.Fprintf(w, "exp:        %s\n", exp)
	cti := "-"
	if c.ID != nil {
		cti = hex.EncodeToString(c.ID)
	}
	fmt.Fprintf(w, "cti:        %s\n", cti)
	deleg := "-"
	if d := c.Delegation; d != nil {
		deleg = fmt.Sprintf("depth %d", d.Depth)
		if d.Operations != nil {
			deleg += ", operations " + strings.Join(d.Operations, " ")
		}
	}
	fmt.Fprintf(w, "delegation: %s\n", deleg)
	cnf := keyDescription(c.Key)
	if tp, err := token.Thumbprint(c.Key); err == nil {
		cnf += ", thumbprint " + hex.EncodeToString(tp)
	}
	fmt.Fprintf(w, "cnf:        %s\n", cnf)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var tokenVerifyCmd = &command{
	name:    "token verify",
	args:    "TOKENFILE",
	summary: "verify a token against trust anchors, as a device would",
	details: `Checks, in the device's order: strict parsing, the anchor named by iss (and
kid), the signature with the anchor's key (which pins the algorithm), the
anchor's constraints, the audience (when -aud is given) and the time (exp and
nbf, with -leeway, at -now). The first failure is printed on stderr with its
reason in parentheses, one of: malformed, unknown-anchor, anchor-revoked,
signature, algorithm-mismatch, anchor-constraint, wrong-audience, expired,
not-yet-valid; the exit code is 3.

A delegated token ("sdactl token delegate") is checked as a device checks it:
after the anchor's constraints, its chain (each link signed by its parent's
key over its parent's hash, narrowing scope, window and audience, within the
depth, no key twice; reasons not-delegable, delegation-depth, link-signature,
not-narrower, delegation-loop), then the audience and the time on the chain's
effective values (its last link's). With -pop, the token (the chain's last
link, for a delegated token) must be bound to that key (reason wrong-pop).

-anchor takes a public key PEM file (or an unencrypted private key file) or a
trust anchor store directory (package trust, file anchors.json); repeatable.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var anchors stringList
		fs.Var(&anchors, "anchor", "trust anchor: public key PEM `file` or anchor store directory; repeatable (required)")
		aud := fs.String("aud", "", "device `identity` the token must name, e.g. ep:hvac-1 or id:<32 hex>")
		nowFlag := fs.String("now", "", "check the time at this RFC 3339 `time` instead of now")
		leeway := fs.Duration("leeway", device.DefaultLeeway, "clock skew tolerated on exp and nbf")
		popFile := fs.String("pop", "", "proof-of-possession key `file` the token must be bound to: public key PEM, or an unencrypted private key")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 1, 1, "TOKENFILE"); err != nil {
				return err
			}
			if len(anchors) == 0 {
				return usageErrorf("-anchor is required")
			}
			if *leeway < 0 {
				return usageErrorf("-leeway must not be negative")
			}
			now := e.now()
			if *nowFlag != "" {
				var err error
				if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
					return usageErrorf("-now: %v", err)
				}
			}
			var id *token.Identity
			if *aud != "" {
				i, err := parseIdentity(*aud)
				if err != nil {
					return usageErrorf("-aud: %v", err)
				}
				id = &i
			}
			store, err := e.loadAnchors(anchors)
			if err != nil {
				return err
			}
			var pop crypto.PublicKey
			if *popFile != "" {
				if pop, err = e.loadPublicKey(*popFile); err != nil {
					return err
				}
			}
			raw, err := e.readToken(args[0])
			if err != nil {
				return err
			}
			raw, chain, err := splitHeld(raw)
			if err != nil {
				return invalidToken("malformed", err)
			}
			claims, anchor, err := verifyToken(raw, chain, store, id, now, *leeway)
			if err != nil {
				return err
			}
			if pop != nil && !token.EqualKeys(pop, claims.Key) {
				return invalidToken("wrong-pop", fmt.Errorf("bound to %s, not to -pop", keyDescription(claims.Key)))
			}
			fmt.Fprintf(e.stdout, "valid: signature verified with anchor %s\n", anchor.Issuer)
			if chain != nil {
				fmt.Fprintf(e.stdout, "delegation: %s verified; the values below are the last link's\n", links(chain.Len()))
			}
			if pop != nil {
				fmt.Fprintf(e.stdout, "pop: bound to -pop\n")
			}
			if id != nil {
				fmt.Fprintf(e.stdout, "audience: names %s\n", *aud)
			} else {
				fmt.Fprintln(e.stdout, "audience: not checked (no -aud)")
			}
			fmt.Fprintf(e.stdout, "time: valid at %s (nbf %s, exp %s, leeway %v)\n",
				fmtTime(now), fmtTime(claims.NotBefore), fmtTime(claims.Expiry), *leeway)
			fmt.Fprintf(e.stdout, "sub: %s\nscope: %s\n", orDash(claims.Subject), claims.Scope)
			return nil
		}
	},
}

// verifyError is a failed verification of a token (or of what names
// itself) with its reason keyword.
type verifyError struct {
	reason string
	err    error
	what   string // "token" when empty
}

func (e *verifyError) Error() string {
	what := e.what
	if what == "" {
		what = "token"
	}
	return fmt.Sprintf("invalid %s (%s): %v", what, e.reason, e.err)
}
func (e *verifyError) Unwrap() error { return e.err }

func invalidToken(reason string, err error) error {
	return inputErr(&verifyError{reason: reason, err: err})
}

// verifyToken checks raw, and its delegation chain when it is not nil, as
// a device does; id nil skips the audience. The claims returned are the
// chain's effective ones.
func verifyToken(raw []byte, chain *token.Chain, store trust.Store, id *token.Identity, now time.Time, leeway time.Duration) (*token.Claims, *trust.Anchor, error) {
	t, err := token.Parse(raw)
	if err != nil {
		return nil, nil, invalidToken("malformed", err)
	}
	cands, err := trust.LookupToken(store, t)
	if err != nil {
		if errors.Is(err, trust.ErrAnchorRevoked) {
			return nil, nil, invalidToken("anchor-revoked", err)
		}
		return nil, nil, invalidToken("unknown-anchor", err)
	}
	var claims *token.Claims
	var anchor *trust.Anchor
	for i := range cands {
		if claims, err = t.Verify(cands[i].Key); err == nil {
			anchor = &cands[i]
			break
		}
	}
	if anchor == nil {
		if errors.Is(err, token.ErrAlgorithmMismatch) {
			return nil, nil, invalidToken("algorithm-mismatch", err)
		}
		return nil, nil, invalidToken("signature", err)
	}
	if err := anchor.Check(claims, now); err != nil {
		if errors.Is(err, trust.ErrAnchorRevoked) {
			return nil, nil, invalidToken("anchor-revoked", err)
		}
		return nil, nil, invalidToken("anchor-constraint", err)
	}
	if chain != nil {
		v, err := chain.Verify(claims, t.RevocationHash())
		if err != nil {
			return nil, nil, invalidToken(delegationReason(err), err)
		}
		claims = v.Claims
	}
	if id != nil {
		err = claims.Validate(token.Validation{Identity: *id, Now: now, Leeway: leeway})
	} else {
		switch {
		case claims.Expiry.Add(leeway).Before(now):
			err = token.ErrExpired
		case !claims.NotBefore.IsZero() && claims.NotBefore.Add(-leeway).After(now):
			err = token.ErrNotYetValid
		}
	}
	switch {
	case err == nil:
		return claims, anchor, nil
	case errors.Is(err, token.ErrWrongAudience):
		return nil, nil, invalidToken("wrong-audience", err)
	case errors.Is(err, token.ErrExpired):
		return nil, nil, invalidToken("expired", fmt.Errorf("%w at %s (exp %s)", err, fmtTime(now), fmtTime(claims.Expiry)))
	case errors.Is(err, token.ErrNotYetValid):
		return nil, nil, invalidToken("not-yet-valid", fmt.Errorf("%w at %s (nbf %s)", err, fmtTime(now), fmtTime(claims.NotBefore)))
	default:
		return nil, nil, invalidToken("malformed", err)
	}
}

// loadAnchors builds an anchor store from PEM files and anchor store
// directories.
func (e *env) loadAnchors(paths []string) (*trust.MemoryStore, error) {
	store := &trust.MemoryStore{}
	add := func(a trust.Anchor, from string) error {
		if err := store.Add(a); err != nil {
			return inputErr(fmt.Errorf("anchor %s: %w", from, err))
		}
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, ioErr(err)
		}
		if fi.IsDir() {
			fst, err := trust.OpenFileStore(p)
			if err != nil {
				return nil, inputErr(err)
			}
			list := fst.Anchors()
			if len(list) == 0 {
				return nil, inputErr(fmt.Errorf("anchor store %s holds no anchors", p))
			}
			for _, a := range list {
				if err := add(a, p); err != nil {
					return nil, err
				}
			}
			continue
		}
		pub, err := e.loadPublicKey(p)
		if err != nil {
			return nil, err
		}
		a, err := trust.NewAnchor(pub)
		if err != nil {
			return nil, inputErr(fmt.Errorf("anchor %s: %w", p, err))
		}
		if err := add(*a, p); err != nil {
			return nil, err
		}
	}
	return store, nil
}
