package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// demo plays the story and writes the transcript, one line per step.
type demo struct {
	w      io.Writer
	svc    *authService
	r1, r2 *controller
	n      int              // steps so far
	conns  []transport.Conn // the technicians' connections, closed by closeConns
}

// play runs every step in order and stops at the first unexpected outcome.
func (d *demo) play(ctx context.Context) error {
	d.printf("Secure Device Access demo: the rooftop HVAC controllers of acme-buildings\n")
	d.printf("  authorization service  %s  (v1 tokens at %s, v2 tokens at %s)\n", d.svc.url,
		strings.TrimPrefix(d.svc.tokenURL(token.ProfileV1), d.svc.url), strings.TrimPrefix(d.svc.tokenURL(token.ProfileV2), d.svc.url))
	d.printf("  trust anchor           %s\n", d.svc.anchor.Issuer)
	for _, c := range []*controller{d.r1, d.r2} {
		d.printf("  controller %-11s tcp %s  (%s)\n", c.id.Endpoint, c.addr, c.profile)
	}
	d.printf("  policies: service-co may read-data, configure, set-temperature 16..28 C (v2),\n")
	d.printf("            and pass read-data on, one link deep (v2);\n")
	d.printf("            service-co juniors may read-data; the manufacturer (hvac-maker) may\n")
	d.printf("            read-data, configure, update-firmware\n")

	alice, err := newTechnician("alice", "service-co", d.svc.secrets["alice"])
	if err != nil {
		return err
	}
	jim, err := newTechnician("jim", "service-co junior", d.svc.secrets["jim"])
	if err != nil {
		return err
	}
	mona, err := newTechnician("mona", "hvac-maker", d.svc.secrets["mona"])
	if err != nil {
		return err
	}
	eve, err := newTechnician("eve", "nobody", "")
	if err != nil {
		return err
	}
	defer d.closeConns()
	session := func(t *technician, c *controller, tokens client.TokenProvider) (*client.Session, *recorder, error) {
		return d.session(ctx, t, c, tokens)
	}

	d.section("the service company's technician on rooftop-1 (SDA v1)")
	aliceTokens, err := d.askToken(ctx, alice, token.ProfileV1, rooftop1.Endpoint, "read-data configure", granted)
	if err != nil {
		return err
	}
	aliceR1, aliceWire, err := session(alice, d.r1, aliceTokens)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR1, d.r1, op("read-data"), success); err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR1, d.r1, op("configure", token.Text("fan-speed"), token.Int(80)), success); err != nil {
		return err
	}
	captured := aliceWire.captured()
	if err := d.operate(ctx, alice, aliceR1, d.r1, op("update-firmware", token.Text("2.5.0")),
		refused(client.ErrAccessDenied, device.CheckScope, token.ErrOutOfScope)); err != nil {
		return err
	}

	d.section("a junior technician")
	if _, err := d.askToken(ctx, jim, token.ProfileV1, rooftop1.Endpoint, "read-data configure", denied); err != nil {
		return err
	}
	jimTokens, err := d.askToken(ctx, jim, token.ProfileV1, rooftop1.Endpoint, "read-data", granted)
	if err != nil {
		return err
	}
	jimR1, _, err := session(jim, d.r1, jimTokens)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, jim, jimR1, d.r1, op("read-data"), success); err != nil {
		return err
	}

	d.section("the manufacturer's technician")
	monaTokens, err := d.askToken(ctx, mona, token.ProfileV1, rooftop1.Endpoint, "read-data update-firmware", granted)
	if err != nil {
		return err
	}
	monaR1, _, err := session(mona, d.r1, monaTokens)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, mona, monaR1, d.r1, op("update-firmware", token.Text("2.5.0")), success); err != nil {
		return err
	}

	d.section("attacks on rooftop-1 by eve, who captured alice's configure request on the network")
	if err := d.replay(ctx, d.r1, captured); err != nil {
		return err
	}
	stolen, err := unverifiedToken(captured)
	if err != nil {
		return err
	}
	d.step("eve presents alice's token, signing with her own key")
	eveR1, _, err := session(eve, d.r1, forgedTokens{raw: stolen, key: eve.key.Public()})
	if err != nil {
		return err
	}
	if err := d.outcome(ctx, eveR1, d.r1, op("configure", token.Text("fan-speed"), token.Int(0)),
		refused(client.ErrVerification, device.CheckProofOfPossession, token.ErrSignature)); err != nil {
		return err
	}
	forged, err := d.forge(eve)
	if err != nil {
		return err
	}
	d.step("eve forges a token in acme-buildings' name, signed with her own key")
	eveForged, _, err := session(eve, d.r1, forgedTokens{raw: forged, key: eve.key.Public()})
	if err != nil {
		return err
	}
	if err := d.outcome(ctx, eveForged, d.r1, op("update-firmware", token.Text("6.6.6")),
		refused(client.ErrVerification, device.CheckTokenSignature, token.ErrSignature)); err != nil {
		return err
	}

	d.section("v2 on rooftop-2: a scope with an argument range, and signed responses")
	aliceV2, err := d.askToken(ctx, alice, token.ProfileV2, rooftop2.Endpoint, "read-data set-temperature", granted)
	if err != nil {
		return err
	}
	aliceR2, _, err := session(alice, d.r2, aliceV2)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR2, d.r2, op("set-temperature", token.Int(23)), success); err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR2, d.r2, op("set-temperature", token.Int(35)),
		refused(client.ErrAccessDenied, device.CheckScope, token.ErrOutOfScope)); err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR2, d.r2, op("read-data"), success); err != nil {
		return err
	}

	if err := d.delegation(ctx, alice, jim); err != nil {
		return err
	}

	if err := d.stolenPhone(ctx, alice, jim); err != nil {
		return err
	}

	d.printf("\nall %d steps ended as expected\n", d.n)
	return nil
}

// stolenPhone plays the story of a technician's stolen phone: the owner
// revokes every token of jim; alice's routine visit carries the status
// update to rooftop-2, which never goes online; the thief, who holds jim's
// key and token and fetches nothing, is refused there.
func (d *demo) stolenPhone(ctx context.Context, alice, jim *technician) error {
	d.section("a stolen phone: revocation reaches rooftop-2, which never goes online")
	jimTokens, err := d.askToken(ctx, jim, token.ProfileV2, rooftop2.Endpoint, "read-data", granted)
	if err != nil {
		return err
	}
	jimR2, _, err := d.session(ctx, jim, d.r2, jimTokens)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, jim, jimR2, d.r2, op("read-data"), success); err != nil {
		return err
	}

	// The thief has jim's phone: its key and its token source, which holds
	// jim's token and the status update it fetched with it. The thief
	// fetches nothing new, so the phone pushes no newer update.
	thiefTokens := jimTokens
	if err := d.revokeSubject(ctx, jim.name, "phone stolen"); err != nil {
		return err
	}

	aliceTokens, err := d.askToken(ctx, alice, token.ProfileV2, rooftop2.Endpoint, "read-data", granted)
	if err != nil {
		return err
	}
	update, err := d.fetchedUpdate(ctx, alice, aliceTokens, rooftop2)
	if err != nil {
		return err
	}
	aliceR2, aliceWire, err := d.session(ctx, alice, d.r2, aliceTokens)
	if err != nil {
		return err
	}
	if err := d.operate(ctx, alice, aliceR2, d.r2, op("read-data"), installs(aliceWire, update)); err != nil {
		return err
	}

	d.step("the thief: read-data on %s with %s's key and token", d.r2.id.Endpoint, jim.name)
	thiefR2, _, err := d.session(ctx, jim, d.r2, thiefTokens)
	if err != nil {
		return err
	}
	return d.outcome(ctx, thiefR2, d.r2, op("read-data"), revokedBy(d.svc.anchor.Issuer, update.Sequence))
}

// session dials the controller and returns the technician's session over
// the connection, and what the connection recorded; closeConns closes it.
func (d *demo) session(ctx context.Context, t *technician, c *controller, tokens client.TokenProvider) (*client.Session, *recorder, error) {
	s, rec, err := t.connect(ctx, c, tokens)
	if err == nil {
		d.conns = append(d.conns, rec)
	}
	return s, rec, err
}

// closeConns closes the technicians' connections.
func (d *demo) closeConns() {
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// revokeSubject has the owner revoke every token of subject through the
// administration API, and checks that the ledger lists the tokens the
// revocation covers.
func (d *demo) revokeSubject(ctx context.Context, subject, reason string) error {
	d.step("%s's phone is stolen: the owner revokes every token of %s (POST %s)", subject, subject, revocationsPath)
	o := d.svc.owner()
	revs, err := o.revokeSubject(ctx, subject, reason)
	if err != nil {
		return d.unexpected("%v", err)
	}
	if len(revs) != 1 || revs[0].Kind != policy.RevokeSubject || revs[0].Subject != subject {
		return d.unexpected("revoked %+v, want one subject cut-off of %s", revs, subject)
	}
	rev := revs[0]
	records, err := o.issued(ctx, subject)
	if err != nil {
		return d.unexpected("%v", err)
	}
	var covered []string
	for _, r := range records {
		if r.Subject == subject && !r.IssuedAt.After(rev.Before) {
			covered = append(covered, strings.Join(r.Audience, " ")+" "+strings.Join(r.Scope, " "))
		}
	}
	if len(covered) == 0 {
		return d.unexpected("the ledger lists no token of %s that the cut-off covers", subject)
	}
	slices.Sort(covered)
	d.printf("ok: subject cut-off of %s at %s (%s), in status updates until %s\n", rev.Subject,
		rev.Before.UTC().Format(time.RFC3339), rev.ID, rev.Until.UTC().Format(time.RFC3339))
	d.printf("      the ledger lists the %d tokens of %s it covers: %s\n", len(covered), subject, strings.Join(covered, ", "))
	return nil
}

// fetchedUpdate returns the status update for the controller that the
// technician's token source fetched with its token, verified with the
// service's anchor key, and prints what it says.
func (d *demo) fetchedUpdate(ctx context.Context, t *technician, src *client.TokenSource, id token.Identity) (*token.StatusUpdate, error) {
	aud := token.PrefixEndpoint + id.Endpoint
	raw, err := src.StatusUpdate(ctx, aud)
	if err != nil || raw == nil {
		return nil, fmt.Errorf("step %d: no status update for %s cached with the token: %v", d.n, aud, err)
	}
	signed, err := token.ParseStatus(raw)
	if err != nil {
		return nil, fmt.Errorf("step %d: the status update for %s: %w", d.n, aud, err)
	}
	u, err := signed.Verify(d.svc.anchor.Key)
	if err != nil {
		return nil, fmt.Errorf("step %d: the status update for %s: %w", d.n, aud, err)
	}
	d.printf("      %s's app also fetched %s's status update: seq %d of %s, %s\n", t.name, id.Endpoint, u.Sequence,
		u.Time.UTC().Format(time.RFC3339), describeUpdate(u))
	return u, nil
}

// describeUpdate says what a status update revokes.
func describeUpdate(u *token.StatusUpdate) string {
	var parts []string
	for _, c := range u.Subjects {
		parts = append(parts, fmt.Sprintf("subject cut-off of %s at %s", c.Subject, c.Before.UTC().Format(time.RFC3339)))
	}
	if n := len(u.Anchors); n > 0 {
		parts = append(parts, fmt.Sprintf("%d anchor cut-offs", n))
	}
	if n := len(u.Hashes) + len(u.TokenIDs); n > 0 {
		parts = append(parts, fmt.Sprintf("%d revoked tokens", n))
	}
	if len(parts) == 0 {
		return "no revocations"
	}
	return strings.Join(parts, ", ")
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.w, format, args...) }

func (d *demo) section(title string) { d.printf("\n-- %s\n", title) }

// step starts a numbered transcript line; its outcome completes it.
func (d *demo) step(format string, args ...any) {
	d.n++
	d.printf("%2d. %s ... ", d.n, fmt.Sprintf(format, args...))
}

// unexpected ends the current line and returns the error for the step.
func (d *demo) unexpected(format string, args ...any) error {
	d.printf("UNEXPECTED\n")
	return fmt.Errorf("step %d: %s", d.n, fmt.Sprintf(format, args...))
}

func op(name string, args ...token.Arg) token.Operation {
	return token.Operation{Name: name, Args: args}
}

// opString shows an operation as name(arg, ...).
func opString(o token.Operation) string {
	if len(o.Args) == 0 {
		return o.Name
	}
	args := make([]string, len(o.Args))
	for i, a := range o.Args {
		args[i] = a.String()
	}
	return o.Name + "(" + strings.Join(args, ", ") + ")"
}

// Expected outcomes of a token request.
const (
	granted = true
	denied  = false
)

// askToken asks the authorization service for a token, as the technician's
// app does on its first operation, and checks that it is granted or denied
// by policy as expected. A granted token is verified with the anchor the
// technicians trust.
func (d *demo) askToken(ctx context.Context, t *technician, p token.Profile, endpoint, scope string, want bool) (*client.TokenSource, error) {
	via := ""
	if p == token.ProfileV2 {
		via = " (v2)"
	}
	d.step("%s (%s) asks%s for %q on ep:%s", t.name, t.org, via, scope, endpoint)
	anchors, err := d.svc.trustStore()
	if err != nil {
		return nil, err
	}
	statusURL := ""
	if p == token.ProfileV2 {
		statusURL = d.svc.statusURL(p) // v2 apps carry status updates
	}
	src := t.tokenSource(d.svc.tokenURL(p), statusURL, []string{token.PrefixEndpoint + endpoint}, strings.Fields(scope), anchors)
	tok, err := src.Token(ctx)
	var se *client.ServiceError
	switch {
	case err == nil && want:
		if !tok.Verified {
			return nil, d.unexpected("token not verified")
		}
		d.printf("granted %q until %s\n", tok.Scope.String(), tok.Expiry.UTC().Format(time.RFC3339))
		return src, nil
	case err == nil:
		return nil, d.unexpected("granted %q, want a denial by policy", tok.Scope.String())
	case !want && errors.As(err, &se) && se.StatusCode == http.StatusForbidden && se.Type == "access_denied":
		d.printf("denied by policy: %s\n", se.Message)
		return nil, nil
	}
	return nil, d.unexpected("%v", err)
}

// expectation is the expected outcome of an operation: success, or a
// refusal the technician sees as err and the controller's audit decision
// explains with the failed check and its reason.
type expectation struct {
	err    error
	check  device.Check
	reason error

	// carried, on a success, is the connection the request went on: the
	// request must have carried update, and the controller installed it.
	carried *recorder
	update  *token.StatusUpdate
	// revokedBy, on a refusal, is the issuer whose installed status
	// update, with sequence number seq, must have revoked the token.
	revokedBy string
	seq       uint64

	// chain, on a success, is every key of a delegated request's chain,
	// the token's first, which the controller's audit must name.
	chain []crypto.PublicKey
}

var success = expectation{}

func refused(err error, check device.Check, reason error) expectation {
	return expectation{err: err, check: check, reason: reason}
}

// installs expects a success whose request, sent on rec, carried u, which
// the controller installed.
func installs(rec *recorder, u *token.StatusUpdate) expectation {
	return expectation{carried: rec, update: u}
}

// delegatedBy expects a success of a delegated request whose chain holds
// keys, the token's first.
func delegatedBy(keys ...crypto.PublicKey) expectation {
	return expectation{chain: keys}
}

// revokedBy expects a refusal of the token by the status update of issuer
// with sequence number seq, installed on the controller.
func revokedBy(issuer string, seq uint64) expectation {
	e := refused(client.ErrVerification, device.CheckRevocation, device.ErrRevoked)
	e.revokedBy, e.seq = issuer, seq
	return e
}

// operate runs one operation through the technician's session and checks
// its outcome on both sides.
func (d *demo) operate(ctx context.Context, t *technician, s *client.Session, c *controller, o token.Operation, want expectation) error {
	d.step("%s: %s on %s", t.name, opString(o), c.id.Endpoint)
	return d.outcome(ctx, s, c, o, want)
}

// outcome runs the operation of the current step and checks its outcome.
func (d *demo) outcome(ctx context.Context, s *client.Session, c *controller, o token.Operation, want expectation) error {
	mark := c.mark()
	res, err := s.Do(ctx, o)
	dec, ok := c.decisionSince(mark)
	switch {
	case want.err == nil && err != nil:
		return d.unexpected("%v", err)
	case want.err == nil && (!ok || !dec.Allowed() || dec.Nonce != res.Nonce):
		return d.unexpected("the operation succeeded but %s has no matching allowed decision (%+v)", c.id.Endpoint, dec)
	case want.err == nil:
		return d.success(c, res, dec, want)
	case !errors.Is(err, want.err):
		return d.unexpected("got %v, want %v", err, want.err)
	}
	var se *client.StatusError
	if !errors.As(err, &se) {
		return d.unexpected("got %v, want a status from the device", err)
	}
	return d.refusal(c, se.Status.String(), dec, ok, want)
}

// success checks and prints a successful operation, and the status update
// its request carried if one was expected.
func (d *demo) success(c *controller, res *client.Result, dec device.Outcome, want expectation) error {
	added := 0
	if want.carried != nil {
		m, err := wire.DecodeMessage(want.carried.captured())
		if err != nil || m.Status == nil {
			return d.unexpected("the request carried no status update (%v)", err)
		}
		u := dec.Update
		if !u.Installed || u.Issuer != want.update.Issuer || u.Sequence != want.update.Sequence {
			return d.unexpected("%s did not install the status update seq %d the request carried: %+v", c.id.Endpoint, want.update.Sequence, u)
		}
		added = len(want.carried.captured()) - len(wire.EncodeOperationRequest(m.Signed))
	}
	if err := sameChain(dec, want.chain); err != nil {
		return d.unexpected("%s's audit: %v", c.id.Endpoint, err)
	}
	signed := ""
	if res.Verified {
		signed = fmt.Sprintf(" [signed by %s, verified]", res.Device.Endpoint)
	}
	d.printf("ok: %s%s\n", res.Data, signed)
	if len(dec.Chain) > 0 {
		// A delegated request: the audit names every key of the chain.
		keys := []string{fmt.Sprintf("%x (%s's token)", dec.KeyThumbprint(), dec.Subject)}
		for _, l := range dec.Chain {
			keys = append(keys, fmt.Sprintf("%x (%s)", l.Thumbprint(), l.Subject))
		}
		d.printf("      %s's audit log names the chain of keys: %s\n", c.id.Endpoint, strings.Join(keys, " -> "))
	}
	if want.carried != nil {
		d.printf("      %s installed the status update the request carried: seq %d, which added %d bytes to the request\n",
			c.id.Endpoint, dec.Update.Sequence, added)
	}
	return nil
}

// sameChain reports whether the audit decision names exactly the chain
// of keys (none for a request that is not delegated).
func sameChain(dec device.Outcome, keys []crypto.PublicKey) error {
	if len(keys) == 0 {
		if dec.Chain != nil {
			return fmt.Errorf("a chain of %d links, want none", len(dec.Chain))
		}
		return nil
	}
	got := [][]byte{dec.KeyThumbprint()}
	for _, l := range dec.Chain {
		got = append(got, l.Thumbprint())
	}
	if len(got) != len(keys) {
		return fmt.Errorf("%d keys in the chain, want %d", len(got), len(keys))
	}
	for i, k := range keys {
		tp, err := token.Thumbprint(k)
		if err != nil || !bytes.Equal(tp, got[i]) {
			return fmt.Errorf("key %d of the chain is %x, want %x", i, got[i], tp)
		}
	}
	return nil
}

// refusal checks and prints the controller's decision behind a refusal.
func (d *demo) refusal(c *controller, status string, dec device.Outcome, ok bool, want expectation) error {
	if !ok || dec.Check != want.check || !errors.Is(dec.Err, want.reason) {
		return d.unexpected("%s decided %v: %v; want %v: %v", c.id.Endpoint, dec.Check, dec.Err, want.check, want.reason)
	}
	var re *device.RevocationError
	if want.revokedBy != "" && (!errors.As(dec.Err, &re) || re.Issuer != want.revokedBy || re.Sequence != want.seq) {
		return d.unexpected("%s refused the token for %v, want a revocation by the status update seq %d of %s", c.id.Endpoint, dec.Err, want.seq, want.revokedBy)
	}
	d.printf("refused: %s\n      %s's audit log: %s check failed: %v\n", status, c.id.Endpoint, dec.Check, dec.Err)
	return nil
}

// replay re-sends captured request bytes on a new connection, as an
// attacker who recorded them would, and expects the controller to refuse
// them because their nonce was used.
func (d *demo) replay(ctx context.Context, c *controller, captured []byte) error {
	d.step("eve replays the captured request, byte for byte")
	conn, err := transport.Dial(ctx, c.addr, nil)
	if err != nil {
		return d.unexpected("dial: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	mark := c.mark()
	if err := conn.Send(ctx, captured); err != nil {
		return d.unexpected("send: %v", err)
	}
	b, err := conn.Receive(ctx)
	if err != nil {
		return d.unexpected("receive: %v", err)
	}
	// An attacker's tool decodes the response map itself; the demo borrows
	// the SDK's internal decoder.
	resp, err := wire.DecodeResponse(b)
	if err != nil {
		return d.unexpected("response: %v", err)
	}
	if resp.Status != wire.StatusVerificationError {
		return d.unexpected("%s answered %v, want %v", c.id.Endpoint, resp.Status, wire.StatusVerificationError)
	}
	dec, ok := c.decisionSince(mark)
	return d.refusal(c, fmt.Sprintf("%v (nonce %016x)", resp.Status, dec.Nonce), dec, ok,
		refused(nil, device.CheckNonce, device.ErrNonceReplayed))
}

// forge returns a token such as the service issues, naming the service's
// anchor as its issuer but signed by the attacker's own key. It is bound to
// the attacker's key, and asks for everything.
func (d *demo) forge(eve *technician) ([]byte, error) {
	scope, err := token.ParseScope("read-data configure update-firmware")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return token.Issue(&token.Claims{
		Issuer: d.svc.anchor.Issuer, Subject: "mona", Audience: []string{token.PrefixEndpoint + rooftop1.Endpoint},
		Expiry: now.Add(time.Hour), NotBefore: now, IssuedAt: now, Scope: scope, Key: eve.key.Public(),
	}, eve.key, nil)
}
