package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
)

// subcontractorLifetime is how long alice's delegation to the
// subcontractor lasts.
const subcontractorLifetime = 2 * time.Hour

// delegation plays offline delegation on rooftop-2: alice, whose policy
// lets her pass read-data on (one link deep), delegates it for two hours
// to a subcontractor's key, without the service; the subcontractor reads
// the data with the delegated token and his own key, and is refused
// configure by the controller; a delegation widening alice's scope is
// refused, by Delegate and, made by hand, by the controller; and a junior's
// token, which his policy does not let him pass on, cannot be delegated.
func (d *demo) delegation(ctx context.Context, alice, jim *technician) error {
	d.section("offline delegation on rooftop-2: alice passes read-data on to a subcontractor")
	sam, err := newTechnician("sam", "subcontractor", "")
	if err != nil {
		return err
	}
	aliceTokens, err := d.askToken(ctx, alice, token.ProfileV2, rooftop2.Endpoint, "read-data configure", granted)
	if err != nil {
		return err
	}
	held, err := aliceTokens.Token(ctx)
	if err != nil {
		return err
	}
	if err := d.delegable(held); err != nil {
		return err
	}
	readData, err := token.ParseScope("read-data")
	if err != nil {
		return err
	}
	until := time.Now().Add(subcontractorLifetime).Truncate(time.Second)
	spec := &token.DelegationSpec{To: sam.key.Public(), Scope: readData, Expiry: until, Subject: sam.name}

	d.step("%s delegates read-data on %s to %s's key for two hours, offline", alice.name, rooftop2.Endpoint, sam.name)
	delegated, err := client.Delegate(held, alice.key, spec)
	if err != nil {
		return d.unexpected("%v", err)
	}
	d.printf("ok: a delegated token whose link adds %d bytes, until %s\n", len(delegated.Chain.Bytes())-1, until.UTC().Format(time.RFC3339))

	d.step("%s (%s) checks the delegated token with the trust anchor", sam.name, sam.org)
	anchors, err := d.svc.trustStore()
	if err != nil {
		return err
	}
	checked, err := client.CheckToken(delegated.Bytes(), &client.TokenCheck{Key: sam.key.Public(), Anchors: anchors})
	if err != nil {
		return d.unexpected("%v", err)
	}
	d.printf("verified: %q on %v until %s, signed for with %s's own key\n", checked.Scope.String(), checked.Audience,
		checked.Expiry.UTC().Format(time.RFC3339), sam.name)

	samR2, _, err := d.session(ctx, sam, d.r2, client.StaticToken(delegated.Bytes()))
	if err != nil {
		return err
	}
	if err := d.operate(ctx, sam, samR2, d.r2, op("read-data"), delegatedBy(alice.key.Public(), sam.key.Public())); err != nil {
		return err
	}
	if err := d.operate(ctx, sam, samR2, d.r2, op("configure", token.Text("fan-speed"), token.Int(100)),
		refused(client.ErrAccessDenied, device.CheckScope, token.ErrOutOfScope)); err != nil {
		return err
	}

	wider, err := token.ParseScope("read-data update-firmware")
	if err != nil {
		return err
	}
	d.step("%s tries to pass on %q, more than her token's scope", alice.name, wider.String())
	widening := *spec
	widening.Scope = wider
	_, err = client.Delegate(held, alice.key, &widening)
	if err := d.refusedDelegation(err, token.ErrNotNarrower); err != nil {
		return err
	}

	d.step("%s signs a widening link by hand; %s presents it: update-firmware on %s", alice.name, sam.name, rooftop2.Endpoint)
	forged, err := handMadeLink(held, alice, &token.Link{Key: sam.key.Public(), Scope: wider, Expiry: until, Subject: sam.name})
	if err != nil {
		return err
	}
	samForged, _, err := d.session(ctx, sam, d.r2, client.StaticToken(forged))
	if err != nil {
		return err
	}
	if err := d.outcome(ctx, samForged, d.r2, op("update-firmware", token.Text("6.6.6")),
		refused(client.ErrVerification, device.CheckDelegation, token.ErrNotNarrower)); err != nil {
		return err
	}

	jimTokens, err := d.askToken(ctx, jim, token.ProfileV2, rooftop2.Endpoint, "read-data", granted)
	if err != nil {
		return err
	}
	jimHeld, err := jimTokens.Token(ctx)
	if err != nil {
		return err
	}
	d.step("%s (%s) tries to delegate read-data to %s", jim.name, jim.org, sam.name)
	_, err = client.Delegate(jimHeld, jim.key, spec)
	return d.refusedDelegation(err, token.ErrNotDelegable)
}

// delegable prints what the service's token lets its holder pass on.
func (d *demo) delegable(t *client.AccessToken) error {
	parsed, err := token.Parse(t.Raw)
	if err != nil {
		return err
	}
	g := parsed.UnverifiedClaims().Delegation // verified by the token source
	if g == nil {
		return fmt.Errorf("step %d: the token carries no delegation claim", d.n)
	}
	ops := "every operation of its scope"
	if g.Operations != nil {
		ops = fmt.Sprintf("%q", g.Operations)
	}
	d.printf("      the token lets alice pass on %s, %d link deep (the owner's policy)\n", ops, g.Depth)
	return nil
}

// refusedDelegation completes the step of a delegation that must be
// refused with want: it prints the refusal, or marks the step unexpected
// when err is not such a refusal.
func (d *demo) refusedDelegation(err, want error) error {
	var de *token.DelegationError
	if !errors.As(err, &de) || !errors.Is(err, want) {
		return d.unexpected("got %v, want a delegation refusal matching %v", err, want)
	}
	d.printf("refused by the SDK, nothing signed: %v\n", err)
	return nil
}

// handMadeLink adds a link below the holder's token signed with its key,
// as a tool that skips Delegate's checks would (token.SignLink checks the
// encoding only), and returns the delegated token's bytes.
func handMadeLink(holder *client.AccessToken, t *technician, l *token.Link) ([]byte, error) {
	parsed, err := token.Parse(holder.Raw)
	if err != nil {
		return nil, err
	}
	raw, err := token.SignLink(l, parsed.RevocationHash(), t.key, nil)
	if err != nil {
		return nil, err
	}
	chain, err := token.NewChain(raw)
	if err != nil {
		return nil, err
	}
	return (&client.AccessToken{Raw: holder.Raw, Chain: chain}).Bytes(), nil
}
