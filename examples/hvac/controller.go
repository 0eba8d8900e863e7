package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// controller is a simulated rooftop HVAC controller: an SDA device agent
// serving on a loopback TCP port, with a little state its operations read
// and change.
type controller struct {
	id      token.Identity
	profile string             // "SDA v1" or "v2", for the transcript
	signer  ed25519.PrivateKey // v2: the key the controller signs its responses with, or nil
	agent   *device.Agent
	addr    string
	done    chan error // ServeListener's result

	mu        sync.Mutex
	setpoint  int64 // degrees Celsius
	fan       int64 // percent
	firmware  string
	decisions []device.Outcome
}

// startController starts a controller trusting anchors and serving on
// 127.0.0.1. With v2 set it signs its responses (response key 6) and offers
// a fresh nonce in each response; with updates set too, it takes the status
// updates that technicians' requests carry (it never fetches any itself:
// it has no network access but the technicians' visits). ctx stops it;
// wait for stopped.
func startController(ctx context.Context, id token.Identity, anchors trust.Store, v2, updates bool) (*controller, error) {
	c := &controller{
		id:       id,
		profile:  "SDA v1",
		setpoint: 21, fan: 60, firmware: "2.4.0",
		done: make(chan error, 1),
	}
	ops := &device.Registry{}
	for name, f := range map[string]device.HandlerFunc{
		"read-data":       c.readData,
		"configure":       c.configure,
		"set-temperature": c.setTemperature,
		"update-firmware": c.updateFirmware,
	} {
		if err := ops.Register(name, f); err != nil {
			return nil, err
		}
	}
	cfg := device.Config{
		Identity:   c.id,
		Anchors:    anchors,
		Operations: ops,
		OnOutcome:  c.record,
	}
	if v2 {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer, c.profile = key, "v2, signs its responses"
		cfg.SigningKey, cfg.NextNonce = key, true
		if updates {
			c.profile += ", takes status updates, never online"
			cfg.StatusUpdates = true
		}
	}
	agent, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	c.agent = agent
	l, err := transport.Listen(ctx, "127.0.0.1:0", nil) // SDA serial framing, as the original tools use
	if err != nil {
		return nil, err
	}
	c.addr = l.Addr().String()
	go func() { c.done <- agent.ServeListener(ctx, l, 0) }()
	return c, nil
}

// stopped waits until the controller has stopped serving after its context
// ended, or until wait ends.
func (c *controller) stopped(wait context.Context) error {
	select {
	case err := <-c.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", c.id.Endpoint, err)
		}
		return nil
	case <-wait.Done():
		return fmt.Errorf("%s: did not stop: %w", c.id.Endpoint, wait.Err())
	}
}

// record keeps the device's audit decisions (device.Config.OnOutcome).
func (c *controller) record(d device.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decisions = append(c.decisions, d)
}

// mark returns the number of decisions so far, to find the decisions of
// the requests that follow with decisionSince.
func (c *controller) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.decisions)
}

// decisionSince returns the latest decision on an operation request made
// after mark. The agent records it before it sends the response, so it is
// there as soon as the technician has the answer.
func (c *controller) decisionSince(mark int) (device.Outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.decisions) - 1; i >= mark; i-- {
		if c.decisions[i].Request != device.RequestNonce {
			return c.decisions[i], true
		}
	}
	return device.Outcome{}, false
}

func (c *controller) readData(context.Context, *device.Call) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Appendf(nil, "setpoint %d C, supply air 14.2 C, fan %d%%, firmware %s", c.setpoint, c.fan, c.firmware), nil
}

// configure(setting: text, value: int); the one setting is "fan-speed".
func (c *controller) configure(_ context.Context, call *device.Call) ([]byte, error) {
	args := call.Operation.Args
	if len(args) != 2 {
		return nil, errors.New("configure takes a setting and a value")
	}
	setting, ok1 := args[0].Text()
	v, ok2 := args[1].Int()
	if !ok1 || !ok2 || setting != "fan-speed" || v < 0 || v > 100 {
		return nil, fmt.Errorf("configure: want fan-speed 0..100, got %v %v", args[0], args[1])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.fan
	c.fan = v
	return fmt.Appendf(nil, "fan %d%% -> %d%%", old, v), nil
}

// set-temperature(celsius: int). The token's scope bounds the value (v2);
// the controller's own limits are wider.
func (c *controller) setTemperature(_ context.Context, call *device.Call) ([]byte, error) {
	args := call.Operation.Args
	if len(args) != 1 {
		return nil, errors.New("set-temperature takes one value")
	}
	v, ok := args[0].Int()
	if !ok || v < 5 || v > 35 {
		return nil, fmt.Errorf("set-temperature: want 5..35 C, got %v", args[0])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.setpoint
	c.setpoint = v
	return fmt.Appendf(nil, "setpoint %d C -> %d C", old, v), nil
}

// update-firmware(version: text).
func (c *controller) updateFirmware(_ context.Context, call *device.Call) ([]byte, error) {
	args := call.Operation.Args
	if len(args) != 1 {
		return nil, errors.New("update-firmware takes a version")
	}
	v, ok := args[0].Text()
	if !ok || v == "" {
		return nil, fmt.Errorf("update-firmware: want a version, got %v", args[0])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.firmware
	c.firmware = v
	return fmt.Appendf(nil, "firmware %s -> %s", old, v), nil
}
