package devicetest

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// The identity of a device whose Options leave Identity zero.
const (
	DefaultEndpoint = "test-device"
	DefaultDeviceID = "5da7e57000000000000000000000cafe"
)

// Options configure a device started by [NewDevice].
type Options struct {
	// Identity is the device's endpoint name and device id, as token
	// audiences name it. Zero means DefaultEndpoint and DefaultDeviceID.
	Identity token.Identity
	// TrustAnchors are the trust anchors the device accepts tokens from, for
	// example a trusttest.Issuer's Anchor or a policytest.Server's Anchor.
	// Required, unless Config.TrustAnchors is set.
	TrustAnchors []trust.Anchor
	// Operations maps operation names to handlers ([Reply] makes a handler
	// that answers fixed data).
	Operations map[string]device.HandlerFunc
	// Config sets the other settings of the agent (clock, nonces,
	// throttling, v2 features, ...). Identity, TrustAnchors and Operations above
	// replace Config's fields when they are set. Config.OnOutcome, if set,
	// is called after the device has recorded the decision.
	Config device.Config
}

// Device is an SDA device agent running in the test's process. Its methods
// are safe for concurrent use.
type Device struct {
	t      testing.TB
	agent  *device.Agent
	id     token.Identity
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	decisions []device.Outcome
	conns     []transport.Conn
	closed    bool
	errs      []error
}

// NewDevice starts a device agent configured by opts. The device stops when
// the test ends (or at [Device.Close]).
func NewDevice(t testing.TB, opts Options) *Device {
	t.Helper()
	cfg := opts.Config
	cfg.Identity = opts.Identity
	if cfg.Identity == (token.Identity{}) {
		cfg.Identity = opts.Config.Identity
	}
	if cfg.Identity == (token.Identity{}) {
		cfg.Identity = token.Identity{Endpoint: DefaultEndpoint, DeviceID: DefaultDeviceID}
	}
	if len(opts.TrustAnchors) > 0 {
		s, err := trust.NewMemoryStore(opts.TrustAnchors...)
		if err != nil {
			t.Fatalf("devicetest: trust anchors: %v", err)
		}
		cfg.Anchors = s
	}
	if cfg.Anchors == nil {
		t.Fatal("devicetest: Options.TrustAnchors is empty: the device would trust no one")
	}
	if len(opts.Operations) > 0 {
		reg := &device.Registry{}
		for name, h := range opts.Operations {
			if h == nil {
				t.Fatalf("devicetest: operation %q has a nil handler", name)
			}
			if err := reg.Register(name, h); err != nil {
				t.Fatalf("devicetest: operation %q: %v", name, err)
			}
		}
		cfg.Operations = reg
	}
	d := &Device{t: t, id: cfg.Identity}
	user := cfg.OnOutcome
	cfg.OnOutcome = func(dec device.Outcome) {
		d.mu.Lock()
		d.decisions = append(d.decisions, dec)
		d.mu.Unlock()
		if user != nil {
			user(dec)
		}
	}
	agent, err := device.New(cfg)
	if err != nil {
		t.Fatalf("devicetest: starting the device: %v", err)
	}
	d.agent = agent
	d.ctx, d.cancel = context.WithCancel(context.Background())
	t.Cleanup(d.Close)
	return d
}

// Reply returns a handler that answers every call with data.
func Reply(data string) device.HandlerFunc {
	return func(context.Context, *device.Call) ([]byte, error) {
		return []byte(data), nil
	}
}

// Conn returns a new in-memory connection to the device, for a technician
// app to use: the device serves it until the app closes it or the device
// stops. Conn after [Device.Close] returns a connection that is already
// closed.
func (d *Device) Conn() transport.Conn {
	tech, dev := transport.Pipe()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		tech.Close()
		dev.Close()
		return tech
	}
	d.conns = append(d.conns, tech, dev)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := d.agent.Serve(d.ctx, dev)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, transport.ErrClosed) &&
			!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			d.mu.Lock()
			d.errs = append(d.errs, err)
			d.mu.Unlock()
		}
	}()
	return tech
}

// Agent returns the device agent, for what the other methods do not cover
// (its nonce count, its lower bound of time, calling Handle directly).
func (d *Device) Agent() *device.Agent { return d.agent }

// Identity returns the device's identity.
func (d *Device) Identity() token.Identity { return d.id }

// Audience returns the audience entry that names the device in a token:
// "ep:" and its endpoint name, or "id:" and its device id when it has no
// endpoint name.
func (d *Device) Audience() string {
	if d.id.Endpoint != "" {
		return token.PrefixEndpoint + d.id.Endpoint
	}
	return token.PrefixDeviceID + d.id.DeviceID
}

// Outcomes returns the device's decisions so far, nonce requests included,
// in the order it made them. A decision is recorded before its response is
// sent, so it is there as soon as the app has the answer.
func (d *Device) Outcomes() []device.Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]device.Outcome(nil), d.decisions...)
}

// LastOutcome returns the device's latest outcome on an operation request
// (nonce requests are skipped), or the zero Outcome when there is none.
func (d *Device) LastOutcome() device.Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.decisions) - 1; i >= 0; i-- {
		if d.decisions[i].Request != device.RequestNonce {
			return d.decisions[i]
		}
	}
	return device.Outcome{}
}

// Close stops the device: it closes every connection, waits for them to be
// served to the end and fails the test if one ended with an unexpected
// transport error. It is registered with t.Cleanup; calling it earlier is
// allowed, and later calls do nothing.
func (d *Device) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()

	d.cancel()
	for _, c := range conns {
		c.Close()
	}
	d.wg.Wait()
	d.mu.Lock()
	errs := d.errs
	d.mu.Unlock()
	for _, err := range errs {
		d.t.Errorf("devicetest: serving a connection: %v", err)
	}
}
