package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// cachedUpdates is a StatusProvider holding updates by audience; it
// records the audiences asked for.
type cachedUpdates struct {
	mu      sync.Mutex
	updates map[string][]byte
	asked   []string
}

func (c *cachedUpdates) StatusUpdate(_ context.Context, aud string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, aud)
	return bytes.Clone(c.updates[aud]), nil
}

// opRequests returns the operation requests the device received, decoded.
func (d *testDevice) opRequests(t *testing.T) []wire.Message {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []wire.Message
	for _, b := range d.opMsgs {
		m, err := wire.DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// heldSeq returns the sequence number the device holds from the anchor's
// issuer.
func (d *testDevice) heldSeq(t *testing.T, f *fixture) uint64 {
	t.Helper()
	iss, _ := token.AnchorName(f.anchor.Public())
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held[iss].Seq
}

// plainRequest reports whether the operation request received was the v1
// form, byte for byte: [3, signed bundle] and nothing else.
func plainRequest(t *testing.T, d *testDevice, i int) bool {
	t.Helper()
	d.mu.Lock()
	raw := d.opMsgs[i]
	d.mu.Unlock()
	m, err := wire.DecodeMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m.Status == nil && bytes.Equal(raw, wire.EncodeOperationRequest(m.Signed))
}

// pushFixture is a fixture whose session has a cached update of seq for
// ep:hvac-1 and whose device takes updates, holding held (0: none).
func pushFixture(t *testing.T, seq, held uint64, setup func(*testDevice)) (*fixture, *cachedUpdates, []byte) {
	t.Helper()
	f := newFixture(t, func(d *testDevice) {
		d.takesStatus = true
		if setup != nil {
			setup(d)
		}
	})
	update := signUpdate(t, f.anchor, "ep:hvac-1", seq, testNow)
	if held != 0 {
		iss, _ := token.AnchorName(f.anchor.Public())
		f.dev.held = map[string]wire.Sequence{iss: {Issuer: iss, Seq: held, Time: uint64(testNow.Unix())}}
	}
	c := &cachedUpdates{updates: map[string][]byte{"ep:hvac-1": update}}
	f.session.Status = c
	return f, c, update
}

func TestSessionPushesStatusUpdate(t *testing.T) {
	for _, tc := range []struct {
		name string
		held uint64
	}{{"device holds none", 0}, {"device holds an older one", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, update := pushFixture(t, 5, tc.held, nil)
			if _, err := f.session.Do(context.Background(), readData); err != nil {
				t.Fatal(err)
			}
			reqs := f.dev.opRequests(t)
			if len(reqs) != 1 || !bytes.Equal(reqs[0].Status, update) {
				t.Fatalf("operation request carried %x, want the cached update", reqs[0].Status)
			}
			if got := f.dev.heldSeq(t, f); got != 5 {
				t.Errorf("device holds seq %d, want 5", got)
			}
			// Pushing cost no extra round trip.
			if nonces, ops, runs := f.dev.counts(); nonces != 1 || ops != 1 || runs != 1 {
				t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1 each", nonces, ops, runs)
			}
		})
	}
	t.Run("same seq, later time", func(t *testing.T) {
		f, _, _ := pushFixture(t, 5, 0, nil)
		iss, _ := token.AnchorName(f.anchor.Public())
		f.dev.held = map[string]wire.Sequence{iss: {Issuer: iss, Seq: 5, Time: uint64(testNow.Unix()) - 1}}
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		if plainRequest(t, f.dev, 0) {
			t.Error("an update of the same seq and a later time was not pushed")
		}
	})
}

// A device that is up to date gets the request exactly as without an
// update; so does a device that never sent key 7.
func TestSessionDoesNotPush(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seq, held uint64
		takes     bool
	}{
		{"up to date", 5, 5, true},
		{"device newer", 5, 9, true},
		{"device without key 7", 5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _ := pushFixture(t, tc.seq, tc.held, func(d *testDevice) { d.nextNonce, d.takesStatus = true, tc.takes })
			for i := range 3 {
				if _, err := f.session.Do(context.Background(), readData); err != nil {
					t.Fatal(err)
				}
				if !plainRequest(t, f.dev, i) {
					t.Errorf("operation %d: the request is not the plain form", i)
				}
			}
		})
	}
}

// Once the device shows the new seq, the update is not pushed again; an
// update the device did not take is not pushed again either.
func TestSessionPushesOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nextNonce bool
		taken     bool
	}{
		{"nonce requests", false, true},
		{"next nonces", true, true},
		{"update ignored by the device", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c, _ := pushFixture(t, 5, 0, func(d *testDevice) { d.nextNonce = tc.nextNonce })
			if !tc.taken {
				// Signed by a key the device does not trust: it ignores it.
				c.updates["ep:hvac-1"] = signUpdate(t, mustP256(t), "ep:hvac-1", 5, testNow)
			}
			for range 3 {
				if _, err := f.session.Do(context.Background(), readData); err != nil {
					t.Fatal(err)
				}
			}
			pushed := 0
			for i := range 3 {
				if !plainRequest(t, f.dev, i) {
					pushed++
				}
			}
			if pushed != 1 || plainRequest(t, f.dev, 0) {
				t.Errorf("pushed %d times, want once, with the first operation", pushed)
			}
			if got, want := f.dev.heldSeq(t, f), map[bool]uint64{true: 5, false: 0}[tc.taken]; got != want {
				t.Errorf("device holds seq %d, want %d", got, want)
			}
		})
	}
	t.Run("a newer update later is pushed", func(t *testing.T) {
		f, c, _ := pushFixture(t, 5, 0, nil)
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		c.updates["ep:hvac-1"] = signUpdate(t, f.anchor, "ep:hvac-1", 6, testNow)
		c.mu.Unlock()
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		if plainRequest(t, f.dev, 1) || f.dev.heldSeq(t, f) != 6 {
			t.Errorf("the newer update was not pushed (device holds %d)", f.dev.heldSeq(t, f))
		}
	})
}

// Only an update for the device the session talks to is pushed, chosen by
// the documented rule: the session's Device, else the token's only
// audience.
func TestSessionPushAudience(t *testing.T) {
	t.Run("update for another audience", func(t *testing.T) {
		f, c, _ := pushFixture(t, 5, 0, nil)
		c.updates["ep:hvac-1"] = signUpdate(t, f.anchor, "ep:hvac-2", 5, testNow)
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		if !plainRequest(t, f.dev, 0) {
			t.Error("an update for ep:hvac-2 was pushed to ep:hvac-1")
		}
	})
	t.Run("token for several devices", func(t *testing.T) {
		f, c, _ := pushFixture(t, 5, 0, nil)
		f.session.Tokens = StaticToken(issue(t, f.anchor, f.pop.Public(), []string{"ep:hvac-1", "ep:hvac-2"}, "read-data", time.Now().Add(time.Hour)))
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		if !plainRequest(t, f.dev, 0) || len(c.asked) != 0 {
			t.Errorf("pushed, or asked for %q, without knowing the device", c.asked)
		}
	})
	t.Run("session's device identity", func(t *testing.T) {
		f, c, _ := pushFixture(t, 5, 0, nil)
		id := "id:" + f.dev.identity.DeviceID
		c.updates[id] = signUpdate(t, f.anchor, id, 7, testNow)
		f.session.Tokens = StaticToken(issue(t, f.anchor, f.pop.Public(), []string{"ep:hvac-1", "ep:hvac-2"}, "read-data", time.Now().Add(time.Hour)))
		f.session.Device = token.Identity{DeviceID: f.dev.identity.DeviceID}
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
		if plainRequest(t, f.dev, 0) || f.dev.heldSeq(t, f) != 7 {
			t.Errorf("the update for %s was not pushed; asked for %q", id, c.asked)
		}
		if slices.Contains(c.asked, "ep:hvac-1") {
			t.Errorf("asked for %q: the session's device has no endpoint name", c.asked)
		}
	})
}

// A provider that fails or holds garbage never fails the operation.
func TestSessionPushProviderFailure(t *testing.T) {
	for name, p := range map[string]StatusProvider{
		"error":   statusFunc(func(context.Context, string) ([]byte, error) { return nil, errors.New("boom") }),
		"garbage": statusFunc(func(context.Context, string) ([]byte, error) { return []byte{0xd2, 0x84}, nil }),
	} {
		t.Run(name, func(t *testing.T) {
			f, _, _ := pushFixture(t, 5, 0, nil)
			f.session.Status = p
			if _, err := f.session.Do(context.Background(), readData); err != nil {
				t.Fatal(err)
			}
			if !plainRequest(t, f.dev, 0) {
				t.Error("something was pushed")
			}
		})
	}
}

// A request with an update that the connection refuses as too large was
// never sent: it goes without the update, at no extra round trip.
func TestSessionPushTooLarge(t *testing.T) {
	f, _, _ := pushFixture(t, 5, 0, nil)
	f.session.Conn = &limitConn{Conn: f.conn, limit: 1024}
	big := &token.StatusUpdate{Issuer: mustIssuer(t, f), Sequence: 5, Time: testNow, Audience: "ep:hvac-1"}
	for i := range 64 {
		big.Hashes = append(big.Hashes, [32]byte{byte(i), 1})
	}
	raw, err := token.SignStatus(big, f.anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.session.Status.(*cachedUpdates).updates["ep:hvac-1"] = raw
	if _, err := f.session.Do(context.Background(), readData); err != nil {
		t.Fatal(err)
	}
	if nonces, ops, runs := f.dev.counts(); nonces != 1 || ops != 1 || runs != 1 || !plainRequest(t, f.dev, 0) {
		t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1 each, without the update", nonces, ops, runs)
	}
}

func mustIssuer(t *testing.T, f *fixture) string {
	t.Helper()
	iss, err := token.AnchorName(f.anchor.Public())
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// limitConn refuses to send messages longer than limit, sending nothing.
type limitConn struct {
	transport.Conn
	limit int
}

func (c *limitConn) Send(ctx context.Context, msg []byte) error {
	if len(msg) > c.limit {
		return &transport.MessageTooLargeError{Size: uint64(len(msg)), Limit: c.limit}
	}
	return c.Conn.Send(ctx, msg)
}
