package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// demo plays the story and writes the transcript, one line per step.
type demo struct {
	w      io.Writer
	svc    *authService
	r1, r2 *controller
	n      int // steps so far
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
	d.printf("  policies: service-co may read-data, configure, set-temperature 16..28 C (v2);\n")
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
	var conns []transport.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	session := func(t *technician, c *controller, tokens client.TokenProvider) (*client.Session, *recorder, error) {
		s, rec, err := t.connect(ctx, c, tokens)
		if err == nil {
			conns = append(conns, rec)
		}
		return s, rec, err
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

	d.printf("\nall %d steps ended as expected\n", d.n)
	return nil
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
	src := t.tokenSource(d.svc.tokenURL(p), []string{token.PrefixEndpoint + endpoint}, strings.Fields(scope), anchors)
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
}

var success = expectation{}

func refused(err error, check device.Check, reason error) expectation {
	return expectation{err: err, check: check, reason: reason}
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
		signed := ""
		if res.Verified {
			signed = fmt.Sprintf(" [signed by %s, verified]", res.Device.Endpoint)
		}
		d.printf("ok: %s%s\n", res.Data, signed)
		return nil
	case !errors.Is(err, want.err):
		return d.unexpected("got %v, want %v", err, want.err)
	}
	var se *client.StatusError
	if !errors.As(err, &se) {
		return d.unexpected("got %v, want a status from the device", err)
	}
	return d.refusal(c, se.Status.String(), dec, ok, want)
}

// refusal checks and prints the controller's decision behind a refusal.
func (d *demo) refusal(c *controller, status string, dec device.Outcome, ok bool, want expectation) error {
	if !ok || dec.Check != want.check || !errors.Is(dec.Err, want.reason) {
		return d.unexpected("%s decided %v: %v; want %v: %v", c.id.Endpoint, dec.Check, dec.Err, want.check, want.reason)
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
