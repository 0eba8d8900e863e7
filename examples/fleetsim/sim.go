package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// Settings describe a simulated fleet.
type Settings struct {
	Devices     int    // devices, none of which ever goes online
	Technicians int    // technicians; number 0 is the one whose phone is stolen
	Visits      int    // visits per technician per day, to devices drawn at random
	Days        int    // days simulated after the revocation
	ThiefVisits int    // visits per day by the thief with the stolen token (0: none)
	Seed        uint64 // seed of the random choices
}

// Day is what one day of the simulation ends with.
type Day struct {
	Day int
	// Unreached is the fraction of devices that have not installed an
	// update carrying the revocation: they would still accept a token of
	// the revoked technician naming them.
	Unreached float64
	// UnreachedAudience is that fraction among the devices the stolen
	// token names.
	UnreachedAudience float64
	// ThiefAccepted and ThiefRefused count the thief's requests with the
	// stolen token that day.
	ThiefAccepted, ThiefRefused int
	// Pushes counts the visits whose request carried an update, and
	// PushBytes the bytes those updates added in all.
	Pushes, PushBytes int
	Visits            int
}

// fleet is the simulated world: one authorization service (in process,
// through its Go API), the devices, the technicians' keys and a clock.
type fleet struct {
	set     Settings
	rng     *mrand.Rand
	now     time.Time // simulated wall time
	svc     *policy.Service
	anchors *trust.MemoryStore
	devices []*simDevice
	techs   []*simTech
	revSeq  uint64 // the status sequence number of the revocation
}

type simDevice struct {
	id    token.Identity
	aud   string
	agent *device.Agent
}

type simTech struct {
	name string
	key  *ecdsa.PrivateKey
}

func newFleet(set Settings) (*fleet, error) {
	if set.Devices < 1 || set.Technicians < 2 || set.Visits < 1 || set.Visits > token.MaxAudiences || set.Days < 1 {
		return nil, fmt.Errorf("fleetsim: settings %+v out of range", set)
	}
	f := &fleet{set: set, rng: mrand.New(mrand.NewPCG(set.Seed, 13)), now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	f.svc = &policy.Service{Store: policy.NewMemoryStore(), Signer: key, Profile: token.ProfileV2, Now: func() time.Time { return f.now }}
	a, err := trust.NewAnchor(key.Public())
	if err != nil {
		return nil, err
	}
	if f.anchors, err = trust.NewMemoryStore(*a); err != nil {
		return nil, err
	}
	changes := []policy.Change{policy.PutPolicy(&policy.Policy{
		ID: "technicians", Status: policy.Active, Effect: policy.Allow,
		Subjects:   policy.Subjects{Groups: []string{"technicians"}},
		Operations: []policy.OperationRule{{Name: "read-data"}},
		Devices:    policy.DeviceSelector{All: true},
		// Long enough for the stolen token to outlive the simulation.
		TokenLifetime: time.Duration(set.Days+2) * 24 * time.Hour,
	})}
	for i := range set.Technicians {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		t := &simTech{name: fmt.Sprintf("tech-%04d", i), key: k}
		f.techs = append(f.techs, t)
		changes = append(changes, policy.PutSubject(&policy.Subject{ID: t.name, Kind: policy.User, Groups: []string{"technicians"}}))
	}
	mono := func() time.Time { return f.now }
	reg := &device.Registry{}
	if err := reg.RegisterFunc("read-data", func(context.Context, *device.Call) ([]byte, error) { return []byte("ok"), nil }); err != nil {
		return nil, err
	}
	for i := range set.Devices {
		d := &simDevice{id: token.Identity{Endpoint: fmt.Sprintf("dev-%05d", i), DeviceID: fmt.Sprintf("%032x", i+1)}}
		d.aud = token.PrefixEndpoint + d.id.Endpoint
		// No clock and no network: the device knows the time only from
		// the tokens and updates technicians bring.
		if d.agent, err = device.New(device.Config{
			Identity: d.id, Anchors: f.anchors, Operations: reg, Clock: mono,
			ClockMode: device.ClockLowerBound, StatusUpdates: true, NextNonce: true,
		}); err != nil {
			return nil, err
		}
		f.devices = append(f.devices, d)
		changes = append(changes, policy.PutDevice(&policy.Device{ID: d.id.DeviceID, EndpointName: d.id.Endpoint}))
	}
	for len(changes) > 0 { // in batches the store takes
		n := min(len(changes), 5000)
		if err := f.svc.Apply(context.Background(), changes[:n]...); err != nil {
			return nil, err
		}
		changes = changes[n:]
	}
	return f, nil
}

// serviceFetcher asks the service for tokens and status updates in
// process, as a technician's client asks it over HTTP.
type serviceFetcher struct {
	f       *fleet
	subject string
}

func (s serviceFetcher) Fetch(ctx context.Context, req *token.AccessRequest) (*client.AccessToken, error) {
	tok, err := s.f.svc.Issue(ctx, s.subject, req)
	if err != nil {
		return nil, err
	}
	return client.CheckToken(tok.Token, &client.TokenCheck{Key: req.Key, Audience: req.Audience, Scope: req.Scope, Anchors: s.f.anchors, Now: s.f.now})
}

func (s serviceFetcher) StatusUpdate(ctx context.Context, aud string) ([]byte, error) {
	b, _, err := s.f.svc.StatusUpdate(ctx, aud)
	return b, err
}

// route draws n distinct devices.
func (f *fleet) route(n int) []*simDevice {
	idx := f.rng.Perm(len(f.devices))[:n]
	out := make([]*simDevice, n)
	for i, j := range idx {
		out[i] = f.devices[j]
	}
	return out
}

// tokens returns a token source of t for the devices of route, holding
// the current status updates when withStatus.
func (f *fleet) tokens(ctx context.Context, t *simTech, route []*simDevice, withStatus bool) (*client.TokenSource, error) {
	src := &client.TokenSource{
		Fetcher: serviceFetcher{f, t.name},
		Request: token.AccessRequest{Scope: []string{"read-data"}, Key: t.key.Public()},
		Now:     func() time.Time { return f.now },
	}
	if withStatus {
		src.Status = serviceFetcher{f, t.name}
	}
	for _, d := range route {
		src.Request.Audience = append(src.Request.Audience, d.aud)
	}
	_, err := src.Token(ctx)
	return src, err
}

// visitResult is what one visit did.
type visitResult struct {
	accepted  bool
	pushed    bool
	pushBytes int
}

// visit runs one read-data session of t on d with tokens, pushing the
// updates status caches when it is not nil.
func (f *fleet) visit(ctx context.Context, t *simTech, d *simDevice, tokens client.TokenProvider, status client.StatusProvider) (visitResult, error) {
	tech, dev := transport.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	sctx, cancel := context.WithCancel(ctx)
	go func() { defer wg.Done(); _ = d.agent.Serve(sctx, dev) }()
	defer func() { cancel(); tech.Close(); wg.Wait() }()
	rec := &sizeRecorder{Conn: tech}
	s := &client.Session{Conn: rec, Key: t.key, Tokens: tokens, Status: status, Device: d.id}
	_, err := s.Do(ctx, token.Operation{Name: "read-data"})
	var r visitResult
	switch {
	case err == nil:
		r.accepted = true
	case !isVerification(err):
		return r, fmt.Errorf("%s on %s: %w", t.name, d.id.Endpoint, err)
	}
	if rec.withStatus > 0 {
		r.pushed, r.pushBytes = true, rec.withStatus
	}
	return r, nil
}

// sizeRecorder measures what the updates a session pushes add to its
// requests: the size of a request carrying one less the size it would have
// without.
type sizeRecorder struct {
	transport.Conn
	withStatus int
}

func (r *sizeRecorder) Send(ctx context.Context, msg []byte) error {
	if m, err := wire.DecodeMessage(msg); err == nil && m.Status != nil {
		r.withStatus += len(msg) - len(wire.EncodeOperationRequest(m.Signed))
	}
	return r.Conn.Send(ctx, msg)
}

// reached reports whether d holds an update from the service's issuer at
// or after the revocation: it is asked as a technician's client asks it,
// by a nonce request whose response carries the device's status sequences
// (response key 7). No signature is spent.
func (f *fleet) reached(ctx context.Context, d *simDevice, issuer string) (bool, error) {
	resp, err := wire.DecodeResponse(d.agent.Process(ctx, wire.NonceRequest))
	if err != nil {
		return false, err
	}
	for _, s := range resp.Sequences {
		if s.Issuer == issuer && s.Seq >= f.revSeq {
			return true, nil
		}
	}
	return false, nil
}

// Run simulates the fleet: the technician 0's token for ThiefVisits (or
// Visits) devices is stolen on day -1; on day 0 the owner revokes every
// token of technician 0 (a subject cut-off); every day, each other
// technician fetches a token and the current status updates for the day's
// route and visits it. It returns one Day per simulated day.
func Run(ctx context.Context, set Settings) ([]Day, error) {
	f, err := newFleet(set)
	if err != nil {
		return nil, err
	}
	// The stolen token names as many devices as a token may (or the
	// whole fleet when it is smaller); a thief does not push updates.
	thief := f.techs[0]
	stolenRoute := f.route(min(token.MaxAudiences, set.Devices))
	src, err := f.tokens(ctx, thief, stolenRoute, false)
	if err != nil {
		return nil, err
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return nil, err
	}
	stolen := client.StaticToken(tok.Raw)
	f.now = f.now.Add(time.Hour)
	if _, err := f.svc.Revoke(ctx, policy.RevokeRequest{Kind: policy.RevokeSubject, Subject: thief.name, By: "owner", Reason: "phone stolen"}); err != nil {
		return nil, err
	}
	_, u, err := f.svc.StatusUpdate(ctx, f.devices[0].aud)
	if err != nil {
		return nil, err
	}
	f.revSeq = u.Sequence
	issuer := u.Issuer

	var days []Day
	for day := 1; day <= set.Days; day++ {
		f.now = f.now.Add(24 * time.Hour)
		var dd Day
		dd.Day = day
		for _, t := range f.techs[1:] {
			route := f.route(set.Visits)
			src, err := f.tokens(ctx, t, route, true)
			if err != nil {
				return nil, err
			}
			for _, d := range route {
				r, err := f.visit(ctx, t, d, src, src)
				if err != nil {
					return nil, err
				}
				if !r.accepted {
					return nil, fmt.Errorf("day %d: %s refused on %s", day, t.name, d.id.Endpoint)
				}
				dd.Visits++
				if r.pushed {
					dd.Pushes++
					dd.PushBytes += r.pushBytes
				}
			}
			f.now = f.now.Add(time.Second)
		}
		if set.ThiefVisits > 0 {
			for _, i := range f.rng.Perm(len(stolenRoute))[:min(set.ThiefVisits, len(stolenRoute))] {
				d := stolenRoute[i]
				was, err := f.reached(ctx, d, issuer)
				if err != nil {
					return nil, err
				}
				r, err := f.visit(ctx, thief, d, stolen, nil)
				if err != nil {
					return nil, err
				}
				if r.accepted == was {
					return nil, fmt.Errorf("day %d: the thief was %s by %s, which %s the revocation", day,
						map[bool]string{true: "accepted", false: "refused"}[r.accepted], d.id.Endpoint,
						map[bool]string{true: "holds", false: "does not hold"}[was])
				}
				if r.accepted {
					dd.ThiefAccepted++
				} else {
					dd.ThiefRefused++
				}
			}
		}
		unreached, unreachedAud := 0, 0
		for _, d := range f.devices {
			ok, err := f.reached(ctx, d, issuer)
			if err != nil {
				return nil, err
			}
			if !ok {
				unreached++
			}
		}
		for _, d := range stolenRoute {
			if ok, _ := f.reached(ctx, d, issuer); !ok {
				unreachedAud++
			}
		}
		dd.Unreached = float64(unreached) / float64(len(f.devices))
		dd.UnreachedAudience = float64(unreachedAud) / float64(len(stolenRoute))
		days = append(days, dd)
	}
	return days, nil
}

func isVerification(err error) bool {
	var se *client.StatusError
	return errors.As(err, &se) && se.Status == token.StatusVerificationError
}
