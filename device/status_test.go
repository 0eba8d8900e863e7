package device_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

// statusUpdates turns on the device's v2 status updates.
func statusUpdates(c *device.Config) { c.StatusUpdates = true }

// status signs a status update of the world's issuer for its device
// (sequence 1, the scenario's time), after edit changes it.
func (w *world) status(edit func(*token.StatusUpdate)) []byte {
	w.t.Helper()
	return w.statusWith(w.anchorKey, edit)
}

func (w *world) statusWith(key crypto.Signer, edit func(*token.StatusUpdate)) []byte {
	w.t.Helper()
	u := &token.StatusUpdate{Issuer: w.anchor.Issuer, Sequence: 1, Time: testNow, Audience: "ep:hvac-1"}
	if edit != nil {
		edit(u)
	}
	b, err := token.SignStatus(u, key, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// carry returns the envelope of an operation request signed with the
// world's PoP key that carries the status update st.
func (w *world) carry(nonce uint64, tok, st []byte, name string, args ...token.Arg) []byte {
	w.t.Helper()
	signed, err := token.SignRequest(&token.Request{Nonce: nonce, Operation: token.Operation{Name: name, Args: args}, Token: tok}, w.pop, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return wire.EncodeOperationRequestWithStatus(signed, st)
}

// doCarry runs a whole exchange whose operation request carries st.
func (w *world) doCarry(tok, st []byte, name string, args ...token.Arg) (wire.Response, device.Outcome) {
	w.t.Helper()
	return w.send(w.carry(w.nonce(), tok, st, name, args...))
}

// installed requires that d's request carried an update that was installed.
func installed(t *testing.T, d device.Outcome) {
	t.Helper()
	if !d.Update.Carried || !d.Update.Installed || d.Update.Err != nil {
		t.Fatalf("update not installed: %+v", d.Update)
	}
}

func TestStatusUpdatesOff(t *testing.T) {
	t.Run("third element refused", func(t *testing.T) {
		w := newWorld(t)
		out, d := w.agent.Handle(context.Background(), w.carry(w.nonce(), w.token(nil), w.status(nil), "read-data"))
		if !bytes.Equal(out, []byte{0xbf, 0x01, 0x04, 0x02, 0x02, 0xff}) {
			t.Errorf("response %x, want bf01040202ff", out)
		}
		if d.Check != device.CheckEnvelope || !errors.Is(d.Err, token.ErrMalformed) || d.Update.Carried {
			t.Errorf("check %v err %v update %+v", d.Check, d.Err, d.Update)
		}
		if w.runs("read-data") != 0 {
			t.Error("operation ran")
		}
	})
	t.Run("no key 7", func(t *testing.T) {
		w := newWorld(t)
		out, _ := w.agent.Handle(context.Background(), wire.NonceRequest)
		if len(out) != 16 || !bytes.Equal(out[:2], []byte{0xbf, 0x03}) || !bytes.Equal(out[11:], []byte{0x01, 0x02, 0x02, 0x00, 0xff}) {
			t.Errorf("nonce response %x is not the v1 layout", out)
		}
		r, _ := w.do(w.token(nil), "read-data")
		if r.HasSequences {
			t.Error("operation response carries key 7")
		}
	})
}

func TestStatusSequencesInResponses(t *testing.T) {
	w := newWorld(t, statusUpdates)
	out, _ := w.agent.Handle(context.Background(), wire.NonceRequest)
	// {_ 3: nonce, 7: {}, 1: 2, 2: 0}
	if len(out) != 18 || !bytes.Equal(out[11:], []byte{0x07, 0xa0, 0x01, 0x02, 0x02, 0x00, 0xff}) {
		t.Fatalf("nonce response %x, want key 7 empty before 1 and 2", out)
	}
	r, d := w.doCarry(w.token(nil), w.status(func(u *token.StatusUpdate) { u.Sequence = 7 }), "read-data")
	installed(t, d)
	want := []wire.Sequence{{Issuer: w.anchor.Issuer, Seq: 7, Time: uint64(testNow.Unix())}}
	if r.Status != wire.StatusSuccess || !r.HasSequences || len(r.Sequences) != 1 || r.Sequences[0] != want[0] {
		t.Fatalf("operation response: status %v sequences %v %+v", r.Status, r.HasSequences, r.Sequences)
	}
	nr, _ := w.send(wire.NonceRequest)
	if !nr.HasSequences || len(nr.Sequences) != 1 || nr.Sequences[0] != want[0] {
		t.Fatalf("nonce response sequences %+v", nr.Sequences)
	}
	// A malformed [3, ...] gets an operation response with key 7 too.
	mr, _ := w.send([]byte{0x82, 0x03, 0x01})
	if mr.Type != wire.TypeOperationResponse || !mr.HasSequences {
		t.Fatalf("malformed operation request: %+v", mr)
	}
}

func TestStatusRevokesThroughAnotherTechnician(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string
		edit  func(u *token.StatusUpdate, thief []byte)
	}{
		{"token hash", "token hash", func(u *token.StatusUpdate, thief []byte) {
			tok, err := token.Parse(thief)
			if err != nil {
				t.Fatal(err)
			}
			u.Hashes = [][32]byte{tok.RevocationHash()}
		}},
		{"token id", "token id", func(u *token.StatusUpdate, _ []byte) { u.TokenIDs = [][]byte{{0x7e, 0xf0}} }},
		{"subject cut-off", "subject cut-off", func(u *token.StatusUpdate, _ []byte) {
			u.Subjects = []token.SubjectCutoff{{Subject: "mallory", Before: testNow}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cached := range []bool{false, true} {
				w := newWorld(t, statusUpdates, func(c *device.Config) {
					if cached {
						c.TokenCacheSize = 4
					}
				})
				thief := w.token(func(c *token.Claims) { c.Subject, c.ID = "mallory", []byte{0x7e, 0xf0} })
				if cached {
					// The thief was here before: his token is in the cache.
					if r, d := w.do(thief, "read-data"); r.Status != wire.StatusSuccess {
						t.Fatalf("thief before the revocation: %v", d.Err)
					}
				}
				bob := w.token(func(c *token.Claims) { c.Subject, c.ID = "bob", []byte{0xb0} })
				st := w.status(func(u *token.StatusUpdate) { tc.edit(u, thief) })
				if r, d := w.doCarry(bob, st, "read-data"); r.Status != wire.StatusSuccess {
					t.Fatalf("bob's visit: %v", d.Err)
				} else {
					installed(t, d)
				}
				r, d := w.do(thief, "read-data")
				expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
				var re *device.RevocationError
				if !errors.As(d.Err, &re) || re.Entry != tc.entry || re.Issuer != w.anchor.Issuer || re.Sequence != 1 {
					t.Errorf("cached %v: revocation error %#v", cached, re)
				}
				if r, d := w.do(bob, "read-data"); r.Status != wire.StatusSuccess {
					t.Errorf("bob after the revocation: %v", d.Err)
				}
			}
		})
	}
}

func TestStatusSubjectCutoff(t *testing.T) {
	w := newWorld(t, statusUpdates)
	before := w.token(func(c *token.Claims) { c.IssuedAt = testNow.Add(-time.Minute) })
	after := w.token(func(c *token.Claims) { c.IssuedAt, c.ID = testNow.Add(time.Second), []byte{2} })
	noTime := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) {
		c.IssuedAt, c.NotBefore, c.ID = time.Time{}, time.Time{}, []byte{3}
	})
	other := w.token(func(c *token.Claims) { c.Subject, c.ID = "bob", []byte{4} })
	_, d := w.doCarry(other, w.status(func(u *token.StatusUpdate) {
		u.Subjects = []token.SubjectCutoff{{Subject: "alice", Before: testNow}}
	}), "read-data")
	installed(t, d)
	r, d := w.do(before, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	r, d = w.do(noTime, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	if r, d := w.do(after, "read-data"); r.Status != wire.StatusSuccess {
		t.Errorf("token issued after the cut-off: %v", d.Err)
	}
}

func TestStatusAnchorCutoff(t *testing.T) {
	for _, withKeyID := range []bool{false, true} {
		w := newWorld(t, statusUpdates)
		kid, err := token.Thumbprint(w.anchor.Key)
		if err != nil {
			t.Fatal(err)
		}
		if withKeyID {
			// The anchor names its key: the cut-off names that key id.
			a := *w.anchor
			a.Issuer, a.KeyID = "keyed-issuer", []byte("k1")
			if err := w.store.Add(a); err != nil {
				t.Fatal(err)
			}
			w.anchor, kid = &a, []byte("k1")
		}
		opts := &token.IssueOptions{}
		if withKeyID {
			opts = &token.IssueOptions{Profile: token.ProfileV2, KeyID: kid}
		}
		early := w.tokenWith(w.anchorKey, opts, func(c *token.Claims) { c.Issuer = w.anchor.Issuer; c.IssuedAt = testNow.Add(-time.Hour) })
		late := w.tokenWith(w.anchorKey, opts, func(c *token.Claims) { c.Issuer = w.anchor.Issuer; c.ID = []byte{9} })
		_, d := w.doCarry(late, w.statusWith(w.anchorKey, func(u *token.StatusUpdate) {
			u.Anchors = []token.AnchorCutoff{{KeyID: kid, Before: testNow.Add(-30 * time.Minute)}}
		}), "read-data")
		installed(t, d)
		r, d := w.do(early, "read-data")
		expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
		var re *device.RevocationError
		if !errors.As(d.Err, &re) || re.Entry != "anchor cut-off" {
			t.Errorf("key id %v: %v", withKeyID, d.Err)
		}
		if r, d := w.do(late, "read-data"); r.Status != wire.StatusSuccess {
			t.Errorf("key id %v: token issued after the cut-off: %v", withKeyID, d.Err)
		}
	}
}

func TestStatusIgnored(t *testing.T) {
	other := newKey(t, "P-256")
	otherAnchor, err := trust.NewAnchor(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		setup  func(w *world) // runs first; may install an update
		update func(w *world) []byte
		reason error
	}{
		{"older", func(w *world) { w.install(w.status(func(u *token.StatusUpdate) { u.Sequence = 5 })) },
			func(w *world) []byte {
				return w.status(func(u *token.StatusUpdate) { u.Sequence = 4; u.Time = testNow.Add(time.Hour) })
			},
			device.ErrStatusOlder},
		{"replayed", func(w *world) { w.install(w.status(func(u *token.StatusUpdate) { u.Sequence = 5 })) },
			func(w *world) []byte { return w.status(func(u *token.StatusUpdate) { u.Sequence = 5 }) },
			device.ErrStatusOlder},
		{"forged", nil,
			func(w *world) []byte { return w.statusWith(other, nil) },
			device.ErrStatusForged},
		{"another device", nil,
			func(w *world) []byte { return w.status(func(u *token.StatusUpdate) { u.Audience = "ep:hvac-2" }) },
			device.ErrStatusWrongDevice},
		{"unknown issuer", nil,
			func(w *world) []byte {
				return w.statusWith(other, func(u *token.StatusUpdate) { u.Issuer = otherAnchor.Issuer })
			},
			device.ErrStatusUnknownIssuer},
		{"malformed", nil,
			func(w *world) []byte { return []byte{0xd2, 0x84} },
			device.ErrStatusMalformed},
		{"anchor constraint", func(w *world) {
			a := *w.anchor
			a.Constraints.Audiences = []string{"ep:other-*"}
			if err := w.store.Remove(a.Issuer, nil); err != nil {
				w.t.Fatal(err)
			}
			if err := w.store.Add(a); err != nil {
				w.t.Fatal(err)
			}
		},
			func(w *world) []byte { return w.status(nil) },
			device.ErrStatusAnchor},
		{"fifth issuer", func(w *world) {
			for i := range device.MaxStatusIssuers {
				k := newKey(w.t, "P-256")
				a, err := trust.NewAnchor(k.Public())
				if err != nil {
					w.t.Fatal(err)
				}
				if err := w.store.Add(*a); err != nil {
					w.t.Fatal(err)
				}
				w.install(w.statusWith(k, func(u *token.StatusUpdate) { u.Issuer = a.Issuer; u.Sequence = uint64(i + 1) }))
			}
		},
			func(w *world) []byte { return w.status(nil) },
			device.ErrStatusIssuers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, statusUpdates)
			if tc.setup != nil {
				tc.setup(w)
			}
			tok := w.token(nil)
			nr, _ := w.send(wire.NonceRequest)
			before := nr.Sequences
			r, d := w.send(w.carry(nr.Nonce, tok, tc.update(w), "read-data"))
			if tc.name != "anchor constraint" && r.Status != wire.StatusSuccess {
				t.Fatalf("request failed with the update ignored: %v", d.Err)
			}
			if !d.Update.Carried || d.Update.Installed || !errors.Is(d.Update.Err, tc.reason) || !errors.Is(d.Update.Err, device.ErrStatusUpdate) {
				t.Fatalf("update outcome %+v, want ignored with %v", d.Update, tc.reason)
			}
			if len(r.Sequences) != len(before) {
				t.Fatalf("sequences %+v, before %+v", r.Sequences, before)
			}
			for i := range before {
				if r.Sequences[i] != before[i] {
					t.Fatalf("sequences %+v, before %+v", r.Sequences, before)
				}
			}
		})
	}
}

// install installs st with Agent.InstallStatus and requires success.
func (w *world) install(st []byte) {
	w.t.Helper()
	if err := w.agent.InstallStatus(st); err != nil {
		w.t.Fatalf("InstallStatus: %v", err)
	}
}

func TestStatusForgedUpdateThrottles(t *testing.T) {
	w := newWorld(t, statusUpdates, func(c *device.Config) { c.Throttle.Failures = 2 })
	forged := w.statusWith(newKey(t, "P-256"), nil)
	tok := w.token(nil)
	for range 2 {
		if r, d := w.doCarry(tok, forged, "read-data"); r.Status != wire.StatusSuccess || !errors.Is(d.Update.Err, device.ErrStatusForged) {
			t.Fatalf("status %v update %+v", r.Status, d.Update)
		}
	}
	r, d := w.send(wire.NonceRequest)
	if r.Status != wire.StatusBusy || !errors.Is(d.Err, device.ErrThrottled) {
		t.Fatalf("after two forged updates: status %v err %v", r.Status, d.Err)
	}
}

// bigStatus returns an update signed by the world's anchor whose encoding
// is exactly n bytes.
func (w *world) bigStatus(n int) []byte {
	w.t.Helper()
	sub := func(i int, l int) string {
		b := bytes.Repeat([]byte{'s'}, l)
		b[0], b[1] = byte('a'+i/26), byte('a'+i%26)
		return string(b)
	}
	var subs []token.SubjectCutoff
	for range 1000 {
		st := w.status(func(u *token.StatusUpdate) { u.Subjects = subs })
		missing := n - len(st)
		switch {
		case missing == 0:
			w.bigSubjects = subs
			return st
		case missing > 300:
			// Each cut-off costs its subject, a few bytes of head and the time.
			subs = append(subs, token.SubjectCutoff{Subject: sub(len(subs), 250), Before: testNow})
		default:
			// Adjust the last subject, away from the lengths where its head
			// grows by a byte.
			last := &subs[len(subs)-1]
			l := len(last.Subject) + missing
			if l > token.MaxStatusSubjectLength-8 || l < 30 {
				subs = append(subs, token.SubjectCutoff{Subject: sub(len(subs), 40), Before: testNow})
				continue
			}
			last.Subject = sub(len(subs)-1, l)
		}
	}
	w.t.Fatalf("no update of %d bytes", n)
	return nil
}

func TestStatusUpdateSizeLimit(t *testing.T) {
	w := newWorld(t, statusUpdates)
	st := w.bigStatus(token.MaxStatusUpdateSize)
	tok := w.token(nil)
	t.Run("largest update through Process", func(t *testing.T) {
		r, d := w.doCarry(tok, st, "read-data")
		if r.Status != wire.StatusSuccess {
			t.Fatalf("status %v: %v", r.Status, d.Err)
		}
		installed(t, d)
	})
	t.Run("largest update through Serve", func(t *testing.T) {
		w := newWorld(t, statusUpdates)
		tok, st := w.token(nil), w.bigStatus(token.MaxStatusUpdateSize)
		devEnd, techEnd := transport.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.agent.Serve(ctx, devEnd) }()
		defer func() { cancel(); <-done }()
		roundTrip := func(req []byte) wire.Response {
			if err := techEnd.Send(ctx, req); err != nil {
				t.Fatal(err)
			}
			out, err := techEnd.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			r, err := wire.DecodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		nr := roundTrip(wire.NonceRequest)
		long := token.Text(strings.Repeat("x", 700))
		req := w.carry(nr.Nonce, tok, st, "read-data", long, long)
		if n := len(req); n <= device.DefaultMaxMessageSize+token.MaxStatusUpdateSize-600 || n > w.agent.MaxRequestSize() {
			t.Fatalf("request of %d bytes, want nearly %d", n, w.agent.MaxRequestSize())
		}
		if r := roundTrip(req); r.Status != wire.StatusSuccess || len(r.Sequences) != 1 {
			t.Fatalf("status %v sequences %+v", r.Status, r.Sequences)
		}
	})
	t.Run("bundle beyond MaxMessageSize", func(t *testing.T) {
		w := newWorld(t, statusUpdates, func(c *device.Config) { c.MaxMessageSize = 400 })
		req := w.carry(w.nonce(), tok, w.status(nil), "read-data", token.Bytes(make([]byte, 300)))
		r, d := w.send(req)
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
		if r.Type != wire.TypeErrorResponse || d.Update.Carried {
			t.Errorf("type %d update %+v", r.Type, d.Update)
		}
	})
	t.Run("two elements beyond MaxMessageSize", func(t *testing.T) {
		req := w.request(w.nonce(), tok, w.pop, "read-data", token.Bytes(make([]byte, 1024)), token.Bytes(make([]byte, 1024)))
		r, d := w.send(req)
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
	})
	t.Run("envelope beyond the limit", func(t *testing.T) {
		req := make([]byte, device.DefaultMaxMessageSize+token.MaxStatusUpdateSize+4)
		req[0] = 0x83
		r, d := w.send(req)
		expect(t, r, d, wire.StatusInvalidRequest, device.CheckSize, device.ErrMessageTooLarge)
	})
}

func TestStatusRaisesTimeLowerBound(t *testing.T) {
	for _, mode := range []device.ClockMode{device.ClockLowerBound, device.ClockStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t, statusUpdates, func(c *device.Config) { c.ClockMode = mode })
			// Expired before the update's time (beyond the leeway), but the
			// device had no idea what time it was.
			stale := w.token(func(c *token.Claims) {
				c.IssuedAt, c.NotBefore, c.Expiry = testNow.Add(-2*time.Hour), testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
			})
			r, d := w.doCarry(stale, w.status(nil), "read-data")
			installed(t, d)
			expect(t, r, d, wire.StatusVerificationError, device.CheckTime, token.ErrExpired)
			if got := w.agent.TimeLowerBound(); !got.Equal(testNow) {
				t.Errorf("lower bound %v, want %v", got, testNow)
			}
			if r, d := w.do(w.token(nil), "read-data"); r.Status != wire.StatusSuccess {
				t.Errorf("valid token: %v", d.Err)
			}
		})
	}
	t.Run("trusted clock caps at now plus leeway", func(t *testing.T) {
		w := newWorld(t, statusUpdates)
		w.install(w.status(func(u *token.StatusUpdate) { u.Time = testNow.Add(24 * time.Hour) }))
		if got, want := w.agent.TimeLowerBound(), testNow.Add(device.DefaultLeeway); !got.Equal(want) {
			t.Errorf("lower bound %v, want %v", got, want)
		}
	})
}

func TestStatusSurvivesRestart(t *testing.T) {
	st, err := device.OpenFileState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, statusUpdates, func(c *device.Config) {
		c.State = st
		c.ClockMode = device.ClockLowerBound
		c.IssuerFreshness = map[string]device.Freshness{}
	})
	w.cfg.IssuerFreshness[w.anchor.Issuer] = device.Freshness{MaxStatusAge: time.Hour}
	w.restart()
	thief := w.token(func(c *token.Claims) { c.Subject, c.ID = "mallory", []byte{0x7e} })
	bob := w.token(func(c *token.Claims) { c.Subject, c.ID = "bob", []byte{0xb0} })
	if r, d := w.doCarry(bob, w.status(func(u *token.StatusUpdate) { u.TokenIDs = [][]byte{{0x7e}} }), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("bob: %v", d.Err)
	}
	w.restart()
	r, d := w.do(thief, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	if got := w.agent.TimeLowerBound(); !got.Equal(testNow) {
		t.Errorf("lower bound after restart %v", got)
	}
	nr, _ := w.send(wire.NonceRequest)
	if len(nr.Sequences) != 1 || nr.Sequences[0].Seq != 1 {
		t.Errorf("sequences after restart %+v", nr.Sequences)
	}
	// The age of the update is unknown after the restart.
	r, d = w.do(bob, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrNotFresh)
	if !errors.Is(d.Err, device.ErrStatusTooOld) {
		t.Errorf("freshness reason %v", d.Err)
	}
	// A newer update makes it known again.
	if r, d := w.doCarry(bob, w.status(func(u *token.StatusUpdate) { u.Sequence = 2 }), "read-data"); r.Status != wire.StatusSuccess {
		t.Fatalf("bob with a new update: %v", d.Err)
	}
	// The newer update revokes nothing: the thief's token works again.
	if r, d := w.do(thief, "read-data"); r.Status != wire.StatusSuccess {
		t.Errorf("update 2 replaces update 1: %v", d.Err)
	}
}

// statusFailingState fails every Store of "status-updates" once armed.
type statusFailingState struct {
	device.MemoryState
	mu    sync.Mutex
	armed bool
}

func (s *statusFailingState) Store(key string, v []byte) error {
	s.mu.Lock()
	armed := s.armed
	s.mu.Unlock()
	if armed && key == "status-updates" {
		return errors.New("flash full")
	}
	return s.MemoryState.Store(key, v)
}

func TestStatusFailedWriteChangesNothing(t *testing.T) {
	st := &statusFailingState{}
	w := newWorld(t, statusUpdates, func(c *device.Config) { c.State = st })
	thief := w.token(func(c *token.Claims) { c.ID = []byte{0x7e} })
	w.install(w.status(func(u *token.StatusUpdate) { u.TokenIDs = [][]byte{{0x7e}} }))
	st.mu.Lock()
	st.armed = true
	st.mu.Unlock()
	bob := w.token(func(c *token.Claims) { c.Subject, c.ID = "bob", []byte{0xb0} })
	r, d := w.doCarry(bob, w.status(func(u *token.StatusUpdate) { u.Sequence = 2 }), "read-data")
	if r.Status != wire.StatusSuccess || d.Update.Installed || !errors.Is(d.Update.Err, device.ErrState) {
		t.Fatalf("status %v update %+v", r.Status, d.Update)
	}
	if len(r.Sequences) != 1 || r.Sequences[0].Seq != 1 {
		t.Errorf("sequences %+v, want update 1 still", r.Sequences)
	}
	r, d = w.do(thief, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
}

func TestStatusStateCorrupt(t *testing.T) {
	for name, v := range map[string][]byte{
		"empty":            {},
		"not cbor":         []byte("{}"),
		"empty array":      {0x80},
		"not an update":    {0x81, 0x41, 0x00},
		"five updates":     {0x85, 0x40, 0x40, 0x40, 0x40, 0x40},
		"trailing":         {0x80, 0x00},
		"not a bytestring": {0x81, 0x01},
	} {
		t.Run(name, func(t *testing.T) {
			st := &device.MemoryState{}
			if err := st.Store("status-updates", v); err != nil {
				t.Fatal(err)
			}
			w := newWorld(t)
			w.cfg.State = st
			if _, err := device.New(w.cfg); !errors.Is(err, device.ErrState) {
				t.Fatalf("New: %v, want ErrState", err)
			}
		})
	}
	t.Run("two updates of one issuer", func(t *testing.T) {
		w := newWorld(t)
		u1, u2 := w.status(nil), w.status(func(u *token.StatusUpdate) { u.Sequence = 2 })
		v := appendBstr(appendBstr([]byte{0x82}, u1), u2)
		st := &device.MemoryState{}
		if err := st.Store("status-updates", v); err != nil {
			t.Fatal(err)
		}
		w.cfg.State = st
		if _, err := device.New(w.cfg); !errors.Is(err, device.ErrState) {
			t.Fatalf("New: %v, want ErrState", err)
		}
	})
}

func TestInstallStatus(t *testing.T) {
	w := newWorld(t)
	thief := w.token(func(c *token.Claims) { c.ID = []byte{0x7e} })
	w.install(w.status(func(u *token.StatusUpdate) { u.TokenIDs = [][]byte{{0x7e}} }))
	if err := w.agent.InstallStatus(w.status(nil)); !errors.Is(err, device.ErrStatusOlder) {
		t.Errorf("replay: %v", err)
	}
	r, d := w.do(thief, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	if r.HasSequences {
		t.Error("a device without Config.StatusUpdates sent key 7")
	}
}

func TestKeepStatusFresh(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.Freshness = device.Freshness{MaxStatusAge: time.Minute} })
	tok := w.token(nil)
	r, d := w.do(tok, "read-data")
	expect(t, r, d, wire.StatusVerificationError, device.CheckFreshness, device.ErrNotFresh)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	fetched := make(chan struct{})
	fetch := func(ctx context.Context) ([]byte, error) {
		calls++
		switch calls {
		case 1:
			return nil, errors.New("offline")
		case 2:
			return w.status(nil), nil
		case 3:
			close(fetched)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	done := make(chan error, 1)
	go func() { done <- device.KeepStatusFresh(ctx, w.agent, fetch, time.Millisecond) }()
	<-fetched
	if r, d := w.do(tok, "read-data"); r.Status != wire.StatusSuccess {
		t.Errorf("after the fetched update: %v", d.Err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("KeepStatusFresh returned %v", err)
	}
}

// The agent keeps no part of a request's buffer: a status update carried
// by a request and held by the device stays as it was verified when the
// caller reuses the buffer, and persists as such with the next update.
func TestCarriedStatusNotAliased(t *testing.T) {
	other := newKey(t, "P-256")
	otherAnchor, err := trust.NewAnchor(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, statusUpdates, func(c *device.Config) { c.State = &device.MemoryState{} })
	if w.cfg.Anchors, err = trust.NewMemoryStore(*w.anchor, *otherAnchor); err != nil {
		t.Fatal(err)
	}
	w.restart()
	req := w.carry(w.nonce(), w.token(nil), w.status(nil), "read-data")
	if r, d := w.send(req); r.Status != wire.StatusSuccess || d.Update.Err != nil || !d.Update.Installed {
		t.Fatalf("carried update: %+v, %+v", r, d.Update)
	}
	for i := range req {
		req[i] = 0xff // the caller reuses its buffer
	}
	// Installing another issuer's update persists the held ones again.
	if err := w.agent.InstallStatus(w.statusWith(other, func(u *token.StatusUpdate) { u.Issuer = otherAnchor.Issuer })); err != nil {
		t.Fatal(err)
	}
	w.restart() // the persisted updates must decode
	nr, _ := w.send(wire.NonceRequest)
	if len(nr.Sequences) != 2 {
		t.Errorf("sequences after restart %+v", nr.Sequences)
	}
}
