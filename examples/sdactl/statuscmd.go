package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

var statusShowCmd = &command{
	name:    "status show",
	summary: "fetch, verify and print the status update of a device",
	details: `Fetches GET /v1/status-update?aud=AUD (docs/PROTOCOL.md section 12, "Status
update"): the update the service signs for one device, listing the
revocations that concern it (token hashes, token ids, subject and anchor
cut-offs), the service's sequence number and time. Any valid API key may
fetch it, a technician's too. With -anchor (repeatable) the update is
verified as a device verifies it: the anchor named by its iss (and kid),
the signature (the anchor's key pins the algorithm), the anchor's validity
and audience constraints, and that it is for -aud; a failure prints its
reason in parentheses (malformed, unknown-anchor, anchor-revoked, signature,
anchor-constraint, wrong-audience) and exits with 3, writing nothing.
Without -anchor the content is printed marked UNVERIFIED.

The content is printed on stdout, or on stderr when the update itself goes
to stdout (-o -). With -o the signed update is written to a new file, in
base64 (one line) or, with -raw, as raw bytes, to carry to the device later.

` + serviceExitCodes + `
Example:
  sdactl status show -url http://127.0.0.1:8080 -credential-file alice.apikey \
      -aud ep:hvac-1 -anchor anchor.pem -o hvac-1.status
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		sf := addServiceFlags(fs, "any")
		aud := fs.String("aud", "", "the `device`: ep:<endpoint name> or id:<32 hex device id> (required)")
		var anchors stringList
		fs.Var(&anchors, "anchor", "verify the update with this trust anchor (PEM `file` or store directory); repeatable")
		out := fs.String("o", "", "write the signed update to this new `file` (\"-\": stdout)")
		rawOut := fs.Bool("raw", false, "with -o, write the raw CBOR bytes instead of base64")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if *aud == "" {
				return usageErrorf("-aud is required")
			}
			if _, err := parseIdentity(*aud); err != nil {
				return usageErrorf("-aud: %v", err)
			}
			if *rawOut && *out == "" {
				return usageErrorf("-raw needs -o")
			}
			if _, err := sf.check(); err != nil {
				return err
			}
			var store trust.Store
			if len(anchors) > 0 {
				s, err := e.loadAnchors(anchors)
				if err != nil {
					return err
				}
				store = s
			}
			api, err := sf.open(e)
			if err != nil {
				return err
			}
			var resp wire.StatusUpdateResponse
			cctx, cancel := context.WithTimeout(ctx, *sf.timeout)
			defer cancel()
			if err := api.call(cctx, "GET", policy.StatusUpdatePath, url.Values{"aud": {*aud}}, nil, &resp); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
					return fmt.Errorf("no device %s in the service's directory (or no status update endpoint at -url): %w", *aud, err)
				}
				return err
			}
			if len(resp.StatusUpdate) > base64.StdEncoding.EncodedLen(token.MaxStatusUpdateSize) {
				return inputErr(fmt.Errorf("status update longer than %d bytes", token.MaxStatusUpdateSize))
			}
			raw, err := base64.StdEncoding.Strict().DecodeString(resp.StatusUpdate)
			if err != nil {
				return inputErr(fmt.Errorf("the service's status_update is not base64: %w", err))
			}
			signed, err := token.ParseStatus(raw)
			if err != nil {
				return invalidStatus("malformed", err)
			}
			u := signed.UnverifiedUpdate()
			if u.Audience != *aud {
				return invalidStatus("wrong-audience", fmt.Errorf("the update is for %q, not %q", u.Audience, *aud))
			}
			var anchor *trust.Anchor
			if store != nil {
				if u, anchor, err = verifyStatus(signed, store); err != nil {
					return err
				}
			}
			w := e.stdout
			if *out == "-" {
				w = e.stderr
			}
			printStatus(w, signed, u, anchor)
			if *out == "" {
				return nil
			}
			if err := e.writeEncoded(*out, raw, *rawOut); err != nil {
				return err
			}
			if *out != "-" {
				e.status("wrote the status update of %s (seq %d) to %s", u.Audience, u.Sequence, *out)
			}
			return nil
		}
	},
}

// invalidStatus is a status update that failed verification, with the
// reason keyword of its check (as invalidToken for tokens).
func invalidStatus(reason string, err error) error {
	return inputErr(&verifyError{reason: reason, err: err, what: "status update"})
}

// verifyStatus verifies a status update with the anchors of store as a
// device does (docs/PROTOCOL.md section 12, "Carrying updates"): the
// anchors of its issuer (and kid), the signature, then the anchor's
// validity at the update's time and its audience constraints. The audience
// is checked by the caller.
func verifyStatus(s *token.SignedStatus, store trust.Store) (*token.StatusUpdate, *trust.Anchor, error) {
	cands, err := store.Lookup(s.UnverifiedIssuer(), s.UnverifiedKeyID())
	if err != nil {
		if errors.Is(err, trust.ErrAnchorRevoked) {
			return nil, nil, invalidStatus("anchor-revoked", err)
		}
		return nil, nil, invalidStatus("unknown-anchor", err)
	}
	var u *token.StatusUpdate
	for i := range cands {
		if u, err = s.Verify(cands[i].Key); err != nil {
			continue
		}
		// The anchor's window and constraints, as for a token issued at
		// the update's time naming its device.
		c := &token.Claims{Issuer: u.Issuer, Audience: []string{u.Audience}, IssuedAt: u.Time, Expiry: u.Time}
		if err := cands[i].Check(c, u.Time); err != nil {
			if errors.Is(err, trust.ErrAnchorRevoked) {
				return nil, nil, invalidStatus("anchor-revoked", err)
			}
			return nil, nil, invalidStatus("anchor-constraint", err)
		}
		return u, &cands[i], nil
	}
	return nil, nil, invalidStatus("signature", err)
}

// printStatus prints a status update; anchor is the anchor that verified
// it, nil when it was not verified.
func printStatus(w io.Writer, s *token.SignedStatus, u *token.StatusUpdate, anchor *trust.Anchor) {
	if anchor != nil {
		fmt.Fprintf(w, "verified:   signature verified with anchor %s\n", anchor.Issuer)
	} else {
		fmt.Fprintln(w, "UNVERIFIED: the signature has not been checked; nothing below is trusted")
		fmt.Fprintln(w, "            (use -anchor with the trust anchor).")
	}
	kid := "-"
	if k := s.UnverifiedKeyID(); k != nil {
		kid = hex.EncodeToString(k)
	}
	fmt.Fprintf(w, "size:       %d bytes\n", len(s.Bytes()))
	fmt.Fprintf(w, "header:     alg=%s kid=%s\n", s.Algorithm(), kid)
	fmt.Fprintf(w, "iss:        %s\n", u.Issuer)
	fmt.Fprintf(w, "seq:        %d\n", u.Sequence)
	fmt.Fprintf(w, "time:       %s\n", fmtTime(u.Time))
	fmt.Fprintf(w, "aud:        %s\n", u.Audience)
	fmt.Fprintf(w, "revoked token hashes (%d):\n", len(u.Hashes))
	for _, h := range u.Hashes {
		fmt.Fprintf(w, "  %x\n", h[:])
	}
	fmt.Fprintf(w, "revoked token ids (%d):\n", len(u.TokenIDs))
	for _, id := range u.TokenIDs {
		fmt.Fprintf(w, "  %x\n", id)
	}
	fmt.Fprintf(w, "subject cut-offs (%d):\n", len(u.Subjects))
	for _, c := range u.Subjects {
		fmt.Fprintf(w, "  %s: tokens issued at or before %s\n", printable(c.Subject), c.Before.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "anchor cut-offs (%d):\n", len(u.Anchors))
	for _, c := range u.Anchors {
		fmt.Fprintf(w, "  %x: tokens issued at or before %s\n", c.KeyID, c.Before.UTC().Format(time.RFC3339))
	}
}
