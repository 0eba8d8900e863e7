package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

var tokenDelegateCmd = &command{
	name:    "token delegate",
	summary: "pass on, offline, a narrower part of a token to another key (v2)",
	details: `Adds a delegation link below the token of -token (a token, or a delegated
token to delegate further), signed with -key, the private key the token is
bound to (for a delegated token, the key of its last link). The link names
the -to key, the -scope passed on, the validity window (from the token's nbf,
or -nbf, to now + -lifetime or -until), the audiences (-aud; none: the
token's) and how many more links may follow (-depth, default 0: none). The
result, a delegated token (the token and its chain), is written in base64
unless -raw is given; its holder uses it with "sdactl call" and the -to key.

Only a v2 token whose owner allows it carries the delegation claim (the
policy's "delegation", or "token issue -delegate-depth"). Everything a device
would refuse is refused here, on stderr with its reason in parentheses, and
exit code 3: not-delegable (no delegation claim, every v1 token, or an
operation the owner does not let pass on), delegation-depth (as many links as
allowed), not-narrower (a scope, time window or audience wider than the
token's, with the field named), delegation-loop (a key already in the chain).
No signature is verified: "sdactl token verify" checks a token with the
trust anchor.

-scope is written as for "token issue": operation names and, in v2,
constraints such as set-temperature(arg0 in 18..24), each provably within
the token's scope.

Example: a token alice may pass on one link of; she passes read-data on to a
subcontractor's key for two hours; the subcontractor checks it and reads:
  sdactl token issue -key anchor.key -aud ep:hvac-1 -profile v2 -sub alice -pop tech.pem \
      -scope "read-data configure" -lifetime 8h -delegate-depth 1 -o alice-delegable.token
  sdactl keys generate -o sub.key -pub sub.pem
  sdactl token delegate -token alice-delegable.token -key tech.key -passphrase-file pass.txt \
      -to sub.pem -scope read-data -lifetime 2h -sub subcontractor -o sub.token
  sdactl token inspect sub.token
  sdactl token verify -anchor anchor.pem -pop sub.pem -aud ep:hvac-1 sub.token
  sdactl call -token sub.token -key sub.key tcp://127.0.0.1:7301 read-data
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		tokFile := fs.String("token", "", "token or delegated token `file`, base64 or raw (\"-\": stdin) (required)")
		keyFile := fs.String("key", "", "private key `file` the token is bound to (required)")
		passFile := fs.String("passphrase-file", "", "passphrase of an encrypted -key, first line of this `file` (\"-\": stdin)")
		to := fs.String("to", "", "the delegate's key `file`: public key PEM, or an unencrypted private key (required)")
		scope := fs.String("scope", "", "what is passed on: operations, as for \"token issue\" (required)")
		lifetime := fs.Duration("lifetime", 0, "validity from now (this or -until is required)")
		until := fs.String("until", "", "end of validity, an RFC 3339 `time` (this or -lifetime is required)")
		nbf := fs.String("nbf", "", "start of validity, an RFC 3339 `time` (default: the token's)")
		var aud stringList
		fs.Var(&aud, "aud", "audience passed on, one of the token's; repeatable (default: the token's)")
		depth := fs.Int("depth", 0, "links that may follow this one")
		sub := fs.String("sub", "", "a name for the delegate, for devices' audit logs")
		out := fs.String("o", "-", "output `file` (\"-\": stdout)")
		rawOut := fs.Bool("raw", false, "write the raw CBOR bytes instead of base64")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			switch {
			case *tokFile == "":
				return usageErrorf("-token is required")
			case *keyFile == "":
				return usageErrorf("-key is required")
			case *to == "":
				return usageErrorf("-to is required")
			case *scope == "":
				return usageErrorf("-scope is required")
			case (*lifetime == 0) == (*until == ""):
				return usageErrorf("give one of -lifetime and -until")
			case *lifetime < 0 || *lifetime > maxLifetime:
				return usageErrorf("-lifetime %v outside (0, %v]", *lifetime, maxLifetime)
			case *depth < 0 || *depth >= token.MaxDelegationDepth:
				return usageErrorf("-depth %d outside 0..%d", *depth, token.MaxDelegationDepth-1)
			case *tokFile == "-" && *passFile == "-":
				return usageErrorf("-token and -passphrase-file cannot both read stdin")
			}
			sc, err := token.ParseScopeText(*scope)
			if err != nil {
				return usageErrorf("-scope: %v", err)
			}
			now := e.now().Truncate(time.Second)
			spec := &token.DelegationSpec{Scope: sc, Expiry: now.Add(*lifetime), Audience: aud, Depth: *depth, Subject: *sub}
			if *until != "" {
				if spec.Expiry, err = time.Parse(time.RFC3339, *until); err != nil {
					return usageErrorf("-until: %v", err)
				}
			}
			if *nbf != "" {
				if spec.NotBefore, err = time.Parse(time.RFC3339, *nbf); err != nil {
					return usageErrorf("-nbf: %v", err)
				}
			}
			for _, a := range aud {
				if _, err := parseIdentity(a); err != nil {
					return usageErrorf("-aud: %v", err)
				}
			}
			holder, err := e.readToken(*tokFile)
			if err != nil {
				return err
			}
			key, err := e.loadPrivateKey(*keyFile, *passFile)
			if err != nil {
				return err
			}
			if spec.To, err = e.loadPublicKey(*to); err != nil {
				return err
			}
			raw, err := token.Delegate(holder, key, spec)
			switch {
			case errors.Is(err, token.ErrDelegation):
				return inputErr(&verifyError{what: "delegation", reason: delegationReason(err), err: err})
			case errors.Is(err, token.ErrInvalid):
				return usageErrorf("%v", err)
			case err != nil:
				return inputErr(err)
			}
			if err := e.writeEncoded(*out, raw, *rawOut); err != nil {
				return err
			}
			if *out != "-" {
				e.status("wrote delegated token to %s, valid until %s", *out, spec.Expiry.UTC().Format(time.RFC3339))
			}
			return nil
		}
	},
}

// delegationReason names a delegation refusal of package token by its
// kind, and the field it names, if any.
func delegationReason(err error) string {
	reason := "delegation"
	for _, k := range []struct {
		err  error
		name string
	}{
		{token.ErrNotDelegable, "not-delegable"}, {token.ErrDelegationDepth, "delegation-depth"},
		{token.ErrLinkSignature, "link-signature"}, {token.ErrNotNarrower, "not-narrower"},
		{token.ErrDelegationLoop, "delegation-loop"},
	} {
		if errors.Is(err, k.err) {
			reason = k.name
			break
		}
	}
	var de *token.DelegationError
	if errors.As(err, &de) && (de.Field == "scope" || de.Field == "exp" || de.Field == "nbf" || de.Field == "aud") {
		reason += ", " + de.Field
	}
	return reason
}

// splitHeld returns the token of a token file and its delegation chain,
// nil for a token; neither is verified.
func splitHeld(raw []byte) ([]byte, *token.Chain, error) {
	if len(raw) == 0 || raw[0] != 0x82 {
		return raw, nil, nil
	}
	d, err := token.ParseDelegatedToken(raw)
	if err != nil {
		return nil, nil, err
	}
	return d.Token, d.Chain, nil
}

// printChain prints the links of a delegation chain below the token t,
// after verifying it against the token's claims, which are not verified
// (so nothing printed is trusted); a chain that does not verify is
// printed as it reads, with the reason.
func printChain(w io.Writer, t *token.Token, claims *token.Claims, chain *token.Chain) {
	list := chain.UnverifiedLinks()
	v, err := chain.Verify(claims, t.RevocationHash())
	if err == nil {
		list = v.Links
		fmt.Fprintf(w, "chain:      %s, %d bytes; signatures and narrowing check out against the token's claims\n", links(chain.Len()), len(chain.Bytes()))
	} else {
		fmt.Fprintf(w, "chain:      %s, %d bytes; does NOT verify against the token's claims (%s): %v\n", links(chain.Len()), len(chain.Bytes()), delegationReason(err), err)
	}
	for i, l := range list {
		tp := keyDescription(l.Key)
		if b, err := token.Thumbprint(l.Key); err == nil {
			tp += ", thumbprint " + hex.EncodeToString(b)
		}
		scope := l.Scope.String()
		if l.Selection != 0 && err != nil {
			scope = fmt.Sprintf("selection %#x of the parent's permissions", l.Selection)
		}
		nbf := "the parent's"
		if !l.NotBefore.IsZero() {
			nbf = fmtTime(l.NotBefore)
		}
		aud := "the parent's"
		if l.Audience != nil {
			aud = strings.Join(l.Audience, " ")
		}
		hash := "-"
		if err == nil {
			hash = hex.EncodeToString(l.Hash[:])
		}
		fmt.Fprintf(w, "link %d:\n", i+1)
		fmt.Fprintf(w, "  key:      %s\n", tp)
		fmt.Fprintf(w, "  sub:      %s\n", orDash(l.Subject))
		fmt.Fprintf(w, "  scope:    %s\n", scope)
		fmt.Fprintf(w, "  nbf:      %s\n", nbf)
		fmt.Fprintf(w, "  exp:      %s\n", fmtTime(l.Expiry))
		fmt.Fprintf(w, "  aud:      %s\n", aud)
		fmt.Fprintf(w, "  depth:    %d\n", l.Depth)
		fmt.Fprintf(w, "  hash:     %s\n", hash)
	}
}

// links says how many links there are.
func links(n int) string {
	if n == 1 {
		return "1 link"
	}
	return fmt.Sprintf("%d links", n)
}
