package devicetest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

const opTimeout = 10 * time.Second

func readData() token.Operation { return token.Operation{Name: "read-data"} }

// session returns a technician session over a fresh connection to dev with
// a token of the given scope.
func session(t *testing.T, iss *trusttest.Issuer, dev *devicetest.Device, scope string) *client.Session {
	t.Helper()
	key := trusttest.NewPoPKey(t)
	tok := iss.Token(t, dev.Audience(), scope, key.Public(), trusttest.Subject("alice"))
	return &client.Session{Conn: dev.Conn(), Key: key, Tokens: client.StaticToken(tok), Timeout: opTimeout}
}

func TestDeviceServesAndRecords(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	var hooked []device.Outcome
	dev := devicetest.NewDevice(t, devicetest.Options{
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
		Config:       device.Config{OnOutcome: func(d device.Outcome) { hooked = append(hooked, d) }},
	})
	def := token.Identity{Endpoint: devicetest.DefaultEndpoint, DeviceID: devicetest.DefaultDeviceID}
	if dev.Identity() != def || dev.Audience() != "ep:"+devicetest.DefaultEndpoint {
		t.Errorf("identity %+v audience %q, want the default", dev.Identity(), dev.Audience())
	}
	if d := dev.LastOutcome(); d.Request != device.RequestUnknown || len(dev.Outcomes()) != 0 {
		t.Errorf("decisions before any request: %+v", dev.Outcomes())
	}
	s := session(t, iss, dev, "read-data")
	res, err := s.Do(context.Background(), readData())
	if err != nil || string(res.Data) != "21.5 C" {
		t.Fatalf("read-data = %v, %v", res, err)
	}
	ds := dev.Outcomes()
	if len(ds) != 2 || ds[0].Request != device.RequestNonce || ds[1].Request != device.RequestOperation || !ds[1].Allowed() {
		t.Fatalf("decisions %+v, want a nonce and an allowed operation", ds)
	}
	if d := dev.LastOutcome(); d.Subject != "alice" || d.Operation != "read-data" || d.Nonce != res.Nonce {
		t.Errorf("last decision %+v", d)
	}
	if len(hooked) != 2 {
		t.Errorf("Config.OnOutcome saw %d decisions, want 2", len(hooked))
	}

	// A refusal is recorded with its reason; LastOutcome skips the nonce
	// request that came after it.
	if _, err := s.Do(context.Background(), token.Operation{Name: "configure"}); !errors.Is(err, client.ErrAccessDenied) {
		t.Fatalf("configure = %v, want ErrAccessDenied", err)
	}
	if d := dev.LastOutcome(); d.Check != device.CheckScope || !errors.Is(d.Err, token.ErrOutOfScope) {
		t.Errorf("last decision %v %v, want a scope refusal", d.Check, d.Err)
	}
	if _, err := dev.Agent().Handle(context.Background(), []byte{0x81, 0x01}); err.Request != device.RequestNonce {
		t.Fatalf("Handle(nonce request): %+v", err)
	}
	if d := dev.LastOutcome(); d.Check != device.CheckScope {
		t.Errorf("LastOutcome after a nonce request: %v, want the scope refusal", d.Check)
	}
}

func TestDeviceIdentityAndConfig(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := token.Identity{DeviceID: "0123456789abcdef0123456789abcdef"}
	dev := devicetest.NewDevice(t, devicetest.Options{
		Identity:     id,
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("x")},
		Config:       device.Config{SigningKey: priv, Identity: token.Identity{Endpoint: "ignored"}},
	})
	if dev.Identity() != id || dev.Audience() != "id:"+id.DeviceID {
		t.Errorf("identity %+v audience %q", dev.Identity(), dev.Audience())
	}
	s := session(t, iss, dev, "read-data")
	s.DeviceKey, s.Device = pub, id
	res, err := s.Do(context.Background(), readData())
	if err != nil || !res.Verified || res.Device != id {
		t.Fatalf("read-data with a signed response = %+v, %v", res, err)
	}
}

func TestConcurrentConns(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	dev := devicetest.NewDevice(t, devicetest.Options{
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("ok")},
	})
	const n = 4
	sessions := make([]*client.Session, n)
	for i := range sessions {
		sessions[i] = session(t, iss, dev, "read-data")
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*3)
	for _, s := range sessions {
		wg.Go(func() {
			for range 3 {
				if _, err := s.Do(context.Background(), readData()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	allowed := 0
	for _, d := range dev.Outcomes() {
		if d.Request == device.RequestOperation && d.Allowed() {
			allowed++
		}
	}
	if allowed != n*3 {
		t.Errorf("%d allowed operations recorded, want %d", allowed, n*3)
	}
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	iss := trusttest.NewIssuer(t)
	dev := devicetest.NewDevice(t, devicetest.Options{TrustAnchors: []trust.Anchor{iss.Anchor}})
	conns := []transport.Conn{dev.Conn(), dev.Conn(), dev.Conn()}
	dev.Close()
	dev.Close() // idempotent
	for i, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := c.Receive(ctx)
		cancel()
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("conn %d after Close: Receive = %v, want a closed connection", i, err)
		}
	}
	c := dev.Conn()
	if err := c.Send(context.Background(), []byte{0x81, 0x01}); err == nil {
		t.Error("Conn after Close: Send succeeded")
	}
	// Every Serve goroutine has ended.
	var now int
	for range 200 {
		if now = runtime.NumGoroutine(); now <= before {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("%d goroutines before the device, %d after Close", before, now)
}

func TestNewDeviceFailsTheTest(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	cases := []struct {
		name, want string
		opts       devicetest.Options
	}{
		{"no anchors", "trust no one", devicetest.Options{}},
		{"reserved operation", "sda-x", devicetest.Options{TrustAnchors: []trust.Anchor{iss.Anchor},
			Operations: map[string]device.HandlerFunc{"sda-x": devicetest.Reply("")}}},
		{"nil handler", "nil handler", devicetest.Options{TrustAnchors: []trust.Anchor{iss.Anchor},
			Operations: map[string]device.HandlerFunc{"read-data": nil}}},
		{"invalid anchor", "anchors", devicetest.Options{TrustAnchors: []trust.Anchor{{Issuer: "x"}}}},
		{"invalid identity", "starting", devicetest.Options{TrustAnchors: []trust.Anchor{iss.Anchor},
			Identity: token.Identity{DeviceID: "not hex"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			faketb.ExpectFatal(t, c.want, func(tb testing.TB) { devicetest.NewDevice(tb, c.opts) })
		})
	}
}

func TestReply(t *testing.T) {
	got, err := devicetest.Reply("hello")(context.Background(), &device.Call{})
	if err != nil || string(got) != "hello" {
		t.Errorf("Reply = %q, %v", got, err)
	}
}
