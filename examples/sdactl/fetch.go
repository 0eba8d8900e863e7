package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
)

var tokenFetchCmd = &command{
	name:    "token fetch",
	summary: "fetch an access token from an authorization service",
	details: `Sends POST /ace-auth/token with the API key of -credential-file as bearer
credential, asking for the audiences, scope and proof-of-possession key given.
The service must be https, except on a loopback address. The token received is
checked (cnf, audience, scope, expiry; and its signature with -anchor when
given) and written in base64 unless -raw is given. A denial by the service's
policies exits with 1, a rejected credential or request with 3.

Example:
  sdactl token fetch -url http://127.0.0.1:8080 -credential-file alice.apikey \
      -aud ep:hvac-1 -scope read-data -pop tech.pem -o alice.token
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		u := fs.String("url", "", "authorization service `URL` (its token endpoint path is added when missing) (required)")
		credFile := fs.String("credential-file", "", "`file` holding the API key, one line (\"-\": stdin) (required)")
		var aud stringList
		fs.Var(&aud, "aud", "audience: \"ep:<endpoint>\" or \"id:<32 hex device id>\"; repeatable (required)")
		scope := fs.String("scope", "", "operations, separated by spaces (required)")
		pop := fs.String("pop", "", "proof-of-possession key `file`: public key PEM, or an unencrypted private key (required)")
		var anchors stringList
		fs.Var(&anchors, "anchor", "verify the token's signature with this trust anchor (PEM `file` or store directory); repeatable")
		timeout := fs.Duration("timeout", client.DefaultHTTPTimeout, "bound on the whole request")
		out := fs.String("o", "-", "output `file` (\"-\": stdout)")
		rawOut := fs.Bool("raw", false, "write the raw CBOR bytes instead of base64")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			switch {
			case *u == "":
				return usageErrorf("-url is required")
			case *credFile == "":
				return usageErrorf("-credential-file is required")
			case len(aud) == 0:
				return usageErrorf("-aud is required")
			case *scope == "":
				return usageErrorf("-scope is required")
			case *pop == "":
				return usageErrorf("-pop is required")
			case *timeout <= 0:
				return usageErrorf("-timeout must be positive")
			}
			endpoint, err := tokenEndpoint(*u)
			if err != nil {
				return err
			}
			cred, err := e.readSecret(*credFile)
			if err != nil {
				return err
			}
			popKey, err := e.loadPublicKey(*pop)
			if err != nil {
				return err
			}
			tc := &client.TokenClient{
				Endpoint:   endpoint,
				Credential: cred,
				HTTPClient: &http.Client{Timeout: *timeout},
				Now:        e.now,
			}
			if len(anchors) > 0 {
				store, err := e.loadAnchors(anchors)
				if err != nil {
					return err
				}
				tc.Anchors = store
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			e.status("asking %s for a token", endpoint)
			tok, err := tc.Fetch(ctx, &token.AccessRequest{Audience: aud, Scope: strings.Fields(*scope), Key: popKey})
			if err != nil {
				return fetchError(err)
			}
			raw := tok.Raw
			if err := e.writeEncoded(*out, raw, *rawOut); err != nil {
				return err
			}
			e.status("token granted until %s", fmtTime(tok.Expiry))
			return nil
		}
	},
}

// tokenEndpoint returns the token endpoint URL for a service URL.
func tokenEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("-url %q: want http(s)://host[:port][/path]", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = client.TokenPath
	}
	return u.String(), nil
}

// fetchError maps a token fetch error to its exit code.
func fetchError(err error) error {
	var se *client.ServiceError
	switch {
	case errors.As(err, &se):
		msg := fmt.Errorf("authorization service: %w", err)
		switch {
		case se.StatusCode == http.StatusForbidden && se.Type == "access_denied":
			return failedErr(msg)
		case se.StatusCode >= 500:
			return ioErr(msg)
		default:
			return inputErr(msg)
		}
	case errors.Is(err, client.ErrInvalid):
		return usageErrorf("%v", err)
	case errors.Is(err, client.ErrTokenMismatch), errors.Is(err, client.ErrBadResponse):
		return inputErr(err)
	case errors.Is(err, context.DeadlineExceeded):
		return ioErr(fmt.Errorf("no answer within the timeout: %w", err))
	default:
		return ioErr(err)
	}
}
