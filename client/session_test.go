package client

import (
	"context"
	"crypto"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

var readData = token.Operation{Name: "read-data"}

func TestSessionSuccess(t *testing.T) {
	f := newFixture(t, nil)
	res, err := f.session.Do(context.Background(), token.Operation{Name: "configure", Args: []token.Arg{token.Int(21), token.Text("eco")}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != "ok:configure" || res.Verified || res.Signed != nil || res.Nonce == 0 {
		t.Errorf("result %+v", res)
	}
	nonces, ops, runs := f.dev.counts()
	if nonces != 1 || ops != 1 || runs != 1 {
		t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1, 1, 1", nonces, ops, runs)
	}
	if got := f.dev.ran[0]; got.Name != "configure" || len(got.Args) != 2 || !got.Args[0].Equal(token.Int(21)) || !got.Args[1].Equal(token.Text("eco")) {
		t.Errorf("device ran %+v", got)
	}
}

// The device's answers map to typed errors, with the status available
// through errors.As.
func TestSessionStatusMapping(t *testing.T) {
	tests := []struct {
		status wire.Status
		want   error
	}{
		{wire.StatusError, ErrDevice},
		{wire.StatusInvalidRequest, ErrInvalidRequest},
		{wire.StatusInternalError, ErrDevice},
		{wire.StatusVerificationError, ErrVerification},
		{wire.StatusAccessDenied, ErrAccessDenied},
		{wire.StatusResponseTooSmall, ErrDevice},
		{wire.StatusNotInitialized, ErrDevice},
		{wire.StatusBusy, ErrBusy},
		{wire.StatusOperationFailed, ErrOperationFailed},
		{wire.Status(77), ErrDevice},
	}
	all := []error{ErrDevice, ErrInvalidRequest, ErrVerification, ErrAccessDenied, ErrBusy, ErrOperationFailed, ErrOutcomeUnknown, ErrBadResponse}
	for _, tc := range tests {
		t.Run(tc.status.String(), func(t *testing.T) {
			f := newFixture(t, func(d *testDevice) {
				d.handler = func(token.Operation) (wire.Status, []byte) { return tc.status, []byte("why") }
			})
			_, err := f.session.Do(context.Background(), readData)
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tc.status || string(se.Data) != "why" || se.ErrorResponse {
				t.Fatalf("error %v, want a *StatusError with status %v", err, tc.status)
			}
			for _, e := range all {
				if errors.Is(err, e) != (e == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, e, errors.Is(err, e))
				}
			}
		})
	}
}

func TestSessionDeviceRejections(t *testing.T) {
	t.Run("scope", func(t *testing.T) {
		f := newFixture(t, nil)
		_, err := f.session.Do(context.Background(), token.Operation{Name: "reboot"})
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("got %v, want ErrAccessDenied", err)
		}
		if _, _, runs := f.dev.counts(); runs != 0 {
			t.Errorf("%d runs", runs)
		}
	})
	t.Run("wrong anchor", func(t *testing.T) {
		f := newFixture(t, func(d *testDevice) { d.anchor = mustP256(t).Public() })
		_, err := f.session.Do(context.Background(), readData)
		if !errors.Is(err, ErrVerification) || errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
	})
	t.Run("error response", func(t *testing.T) {
		// The device could not parse the signed request (type 255): the
		// session reports it and does not retry.
		f := newFixture(t, func(d *testDevice) {
			d.script = func(i int, msg, answer []byte) [][]byte {
				if msg[1] == wire.TypeOperationRequest {
					return [][]byte{wire.Response{Type: wire.TypeErrorResponse, Status: wire.StatusInvalidRequest}.Encode()}
				}
				return [][]byte{answer}
			}
		})
		_, err := f.session.Do(context.Background(), readData)
		var se *StatusError
		if !errors.As(err, &se) || !se.ErrorResponse || !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("got %v, want an error response", err)
		}
		if _, ops, _ := f.dev.counts(); ops != 1 {
			t.Errorf("%d operation requests, want 1", ops)
		}
	})
}

// Byte-exact responses of a deployed v1 device: indefinite-length maps with
// keys 3/4 before 1/2.
func TestSessionV1Bytes(t *testing.T) {
	nonceResp := []byte{
		0xbf,                                                       // map(*)
		0x03, 0x1b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, // 3: nonce 0x0123456789abcdef
		0x01, 0x02, // 1: nonce response
		0x02, 0x00, // 2: success
		0xff,
	}
	opResp := []byte{
		0xbf,                         // map(*)
		0x04, 0x43, 0x32, 0x31, 0x2e, // 4: h'32312e' ("21.")
		0x01, 0x04, // 1: operation response
		0x02, 0x00, // 2: success
		0xff,
	}
	deniedResp := []byte{0xbf, 0x01, 0x04, 0x02, 0x05, 0xff} // type 4, status 5, keys in order
	for _, tc := range []struct {
		name string
		resp []byte
		want error
	}{
		{"success", opResp, nil},
		{"denied", deniedResp, ErrAccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var signedNonce uint64
			f := newFixture(t, func(d *testDevice) {
				d.script = func(i int, msg, answer []byte) [][]byte {
					if i == 0 {
						return [][]byte{nonceResp}
					}
					m, err := wire.DecodeMessage(msg)
					if err != nil {
						t.Error(err)
						return nil
					}
					sr, err := token.ParseRequest(m.Signed)
					if err != nil {
						t.Error(err)
						return nil
					}
					signedNonce = sr.UnverifiedNonce()
					return [][]byte{tc.resp}
				}
			})
			res, err := f.session.Do(context.Background(), readData)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if signedNonce != 0x0123456789abcdef {
				t.Errorf("signed nonce %#x, want the v1 device's nonce", signedNonce)
			}
			if err == nil && string(res.Data) != "21." {
				t.Errorf("data %q", res.Data)
			}
		})
	}
}

// A lost nonce response costs one attempt; the operation still runs once.
// The loss is noticed without waiting for the clock (testDevice.lose), and
// the answers that are not lost have the fixture's generous timeouts, so
// the test does not depend on how fast a loaded machine runs it.
func TestSessionRetriesNonce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  func(d *testDevice, answer []byte) [][]byte
		nonces int
	}{
		{"lost", func(d *testDevice, _ []byte) [][]byte { return d.lose() }, 2},
		{"garbage", func(*testDevice, []byte) [][]byte { return [][]byte{{0xa1, 0x01}} }, 2},
		{"error response", func(*testDevice, []byte) [][]byte {
			return [][]byte{wire.Response{Type: wire.TypeErrorResponse, Status: wire.StatusInvalidRequest}.Encode()}
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(d *testDevice) {
				d.script = func(i int, msg, answer []byte) [][]byte {
					if i == 0 {
						return tc.first(d, answer)
					}
					return [][]byte{answer}
				}
			})
			res, err := f.session.Do(context.Background(), readData)
			if err != nil {
				t.Fatal(err)
			}
			nonces, ops, runs := f.dev.counts()
			if nonces != tc.nonces || ops != 1 || runs != 1 || string(res.Data) != "ok:read-data" {
				t.Errorf("nonce requests %d, operation requests %d, runs %d, data %q", nonces, ops, runs, res.Data)
			}
		})
	}
}

// Each nonce request waits NonceTimeout, not the operation's Timeout, and
// the operation gives up after MaxAttempts. This test needs the real clock
// and is still independent of the machine's speed: nothing ever answers,
// so a slow machine only makes each wait longer, and the operation's
// Timeout is far longer than the attempts together.
func TestSessionNonceAttemptsExhausted(t *testing.T) {
	f := newFixture(t, func(d *testDevice) {
		d.script = func(int, []byte, []byte) [][]byte { return nil } // the device never answers
	})
	f.session.NonceTimeout = 20 * time.Millisecond
	f.session.Timeout = time.Minute
	f.session.MaxAttempts = 4
	_, err := f.session.Do(context.Background(), readData)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("got %v, want a deadline error without ErrOutcomeUnknown", err)
	}
	f.dev.waitReceived(t, 4) // the last request may still be on its way
	if nonces, ops, _ := f.dev.counts(); nonces != 4 || ops != 0 {
		t.Errorf("nonce requests %d, operation requests %d; want 4, 0", nonces, ops)
	}
}

// A failure status in a nonce response ends the operation at once.
func TestSessionNonceBusy(t *testing.T) {
	f := newFixture(t, func(d *testDevice) {
		d.script = func(int, []byte, []byte) [][]byte {
			return [][]byte{wire.Response{Type: wire.TypeNonceResponse, Status: wire.StatusBusy}.Encode()}
		}
	})
	_, err := f.session.Do(context.Background(), readData)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	if nonces, _, _ := f.dev.counts(); nonces != 1 {
		t.Errorf("%d nonce requests, want 1", nonces)
	}
}

// After the signed request is sent, nothing is re-sent: a lost response is
// an unknown outcome.
func TestSessionOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(d *testDevice, answer []byte) [][]byte
		also   error
	}{
		{"lost", func(d *testDevice, _ []byte) [][]byte { return d.lose() }, context.DeadlineExceeded},
		{"garbage", func(*testDevice, []byte) [][]byte { return [][]byte{{0xbf, 0x01}} }, ErrBadResponse},
		{"truncated", func(_ *testDevice, a []byte) [][]byte { return [][]byte{a[:len(a)-1]} }, ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(d *testDevice) {
				d.script = func(i int, msg, answer []byte) [][]byte {
					if i == 1 {
						return tc.answer(d, answer)
					}
					return [][]byte{answer}
				}
			})
			_, err := f.session.Do(context.Background(), readData)
			if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, tc.also) {
				t.Fatalf("got %v, want ErrOutcomeUnknown and %v", err, tc.also)
			}
			if nonces, ops, runs := f.dev.counts(); nonces != 1 || ops != 1 || runs != 1 {
				t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1 each", nonces, ops, runs)
			}
			// The session stays usable.
			f.dev.script = nil
			if _, err := f.session.Do(context.Background(), readData); err != nil {
				t.Fatalf("next operation: %v", err)
			}
		})
	}
}

// Late and duplicated answers of earlier exchanges are discarded.
func TestSessionDiscardsStale(t *testing.T) {
	staleOp := wire.Response{Type: wire.TypeOperationResponse, Status: wire.StatusSuccess, Data: []byte("stale")}.Encode()
	f := newFixture(t, func(d *testDevice) {
		d.script = func(i int, msg, answer []byte) [][]byte {
			switch i {
			case 0: // a stale operation response before the nonce, and the nonce twice
				return [][]byte{staleOp, answer, answer}
			}
			return [][]byte{answer}
		}
	})
	res, err := f.session.Do(context.Background(), readData)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != "ok:read-data" {
		t.Errorf("data %q: a stale response was taken", res.Data)
	}
}

// A v2 device offers the next nonce; the session uses it and skips the
// nonce request.
func TestSessionNextNonce(t *testing.T) {
	f := newFixture(t, func(d *testDevice) { d.nextNonce = true })
	for range 3 {
		if _, err := f.session.Do(context.Background(), readData); err != nil {
			t.Fatal(err)
		}
	}
	if nonces, ops, runs := f.dev.counts(); nonces != 1 || ops != 3 || runs != 3 {
		t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1, 3, 3", nonces, ops, runs)
	}
}

func TestSessionSignedResponses(t *testing.T) {
	devKey := mustKey(t, KeyEd25519)
	setup := func(d *testDevice) { d.key = devKey }
	t.Run("verified", func(t *testing.T) {
		f := newFixture(t, setup)
		f.session.DeviceKey = devKey.Public()
		f.session.Device = f.dev.identity
		res, err := f.session.Do(context.Background(), readData)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified || res.Device != f.dev.identity || res.Signed == nil {
			t.Errorf("result %+v", res)
		}
		dr, err := token.VerifyResponse(res.Signed, devKey.Public())
		if err != nil || dr.Nonce != res.Nonce || string(dr.Data) != "ok:read-data" {
			t.Errorf("signed response %+v, %v", dr, err)
		}
	})
	t.Run("failure status verified", func(t *testing.T) {
		f := newFixture(t, func(d *testDevice) {
			d.key = devKey
			d.handler = func(token.Operation) (wire.Status, []byte) { return wire.StatusOperationFailed, nil }
		})
		f.session.DeviceKey = devKey.Public()
		if _, err := f.session.Do(context.Background(), readData); !errors.Is(err, ErrOperationFailed) {
			t.Fatalf("got %v, want ErrOperationFailed", err)
		}
	})
	t.Run("unsigned success", func(t *testing.T) {
		f := newFixture(t, nil) // the device does not sign
		f.session.DeviceKey = devKey.Public()
		_, err := f.session.Do(context.Background(), readData)
		if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v, want ErrOutcomeUnknown and ErrBadResponse", err)
		}
	})
	t.Run("wrong device key", func(t *testing.T) {
		f := newFixture(t, setup)
		f.session.DeviceKey = mustKey(t, KeyEd25519).Public()
		_, err := f.session.Do(context.Background(), readData)
		if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, token.ErrSignature) {
			t.Fatalf("got %v, want ErrOutcomeUnknown and token.ErrSignature", err)
		}
	})
	t.Run("wrong identity", func(t *testing.T) {
		f := newFixture(t, setup)
		f.session.DeviceKey = devKey.Public()
		f.session.Device = token.Identity{Endpoint: "hvac-2"}
		if _, err := f.session.Do(context.Background(), readData); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v, want ErrBadResponse", err)
		}
	})
	t.Run("tampered status", func(t *testing.T) {
		f := newFixture(t, func(d *testDevice) {
			d.key = devKey
			d.script = func(i int, msg, answer []byte) [][]byte {
				r, err := wire.DecodeResponse(answer)
				if err != nil || r.Type != wire.TypeOperationResponse {
					return [][]byte{answer}
				}
				r.Data = []byte("forged")
				return [][]byte{r.Encode()}
			}
		})
		f.session.DeviceKey = devKey.Public()
		if _, err := f.session.Do(context.Background(), readData); !errors.Is(err, ErrBadResponse) || !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("got %v, want ErrBadResponse", err)
		}
	})
	t.Run("response for another nonce", func(t *testing.T) {
		// A correctly signed response to an earlier request arrives first: it
		// is discarded and the right one is taken.
		var old []byte
		f := newFixture(t, func(d *testDevice) {
			d.key = devKey
			d.script = func(i int, msg, answer []byte) [][]byte {
				if i == 1 {
					old = answer
				}
				if i == 3 {
					return [][]byte{old, answer}
				}
				return [][]byte{answer}
			}
		})
		f.session.DeviceKey = devKey.Public()
		first, err := f.session.Do(context.Background(), readData)
		if err != nil {
			t.Fatal(err)
		}
		second, err := f.session.Do(context.Background(), token.Operation{Name: "configure"})
		if err != nil {
			t.Fatal(err)
		}
		if string(second.Data) != "ok:configure" || second.Nonce == first.Nonce {
			t.Errorf("second result %+v", second)
		}
	})
}

func TestSessionClosedConnection(t *testing.T) {
	f := newFixture(t, nil)
	f.conn.Close()
	_, err := f.session.Do(context.Background(), readData)
	if !isAny(err, transport.ErrClosed, io.EOF) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("got %v, want a closed-connection error", err)
	}
	if nonces, _, _ := f.dev.counts(); nonces != 0 {
		t.Errorf("%d nonce requests", nonces)
	}
}

func TestSessionPeerGone(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	b.Close()
	s := &Session{Conn: a, Key: mustKey(t, KeyP256)}
	s.Tokens = StaticToken(issue(t, mustP256(t), s.Key.Public(), []string{"ep:x"}, "read-data", time.Now().Add(time.Hour)))
	_, err := s.Do(context.Background(), readData)
	if !isAny(err, io.ErrClosedPipe, io.EOF, transport.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// A token bound to another key is refused before anything is sent.
func TestSessionTokenForAnotherKey(t *testing.T) {
	f := newFixture(t, nil)
	f.session.Tokens = StaticToken(issue(t, f.anchor, mustKey(t, KeyP256).Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour)))
	_, err := f.session.Do(context.Background(), readData)
	var ce *TokenCheckError
	if !errors.As(err, &ce) || ce.Check != "cnf" || !errors.Is(err, ErrTokenMismatch) {
		t.Fatalf("got %v, want a cnf TokenCheckError", err)
	}
	f.session.Tokens = StaticToken([]byte{0xd2, 0x80})
	if _, err := f.session.Do(context.Background(), readData); !errors.Is(err, ErrTokenMismatch) || !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("got %v, want ErrTokenMismatch and token.ErrMalformed", err)
	}
	if nonces, ops, _ := f.dev.counts(); nonces+ops != 0 {
		t.Errorf("%d messages sent", nonces+ops)
	}
}

// hardwareKey is a crypto.Signer that is not one of the standard key
// types, as a key in a hardware keystore would be.
type hardwareKey struct{ inner crypto.Signer }

func (h hardwareKey) Public() crypto.PublicKey { return h.inner.Public() }
func (h hardwareKey) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return h.inner.Sign(r, d, o)
}

func TestSessionHardwareKey(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyEd25519} {
		t.Run(kt.String(), func(t *testing.T) {
			f := newFixture(t, nil)
			hw := hardwareKey{mustKey(t, kt)}
			f.session.Key = hw
			f.session.Tokens = StaticToken(issue(t, f.anchor, hw.Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour)))
			if _, err := f.session.Do(context.Background(), readData); err != nil {
				t.Fatal(err)
			}
			if _, err := MarshalPrivateKeyPEM(hw); !errors.Is(err, token.ErrUnsupportedKey) {
				t.Errorf("exporting a hardware key: %v", err)
			}
		})
	}
}

func TestSessionConcurrent(t *testing.T) {
	f := newFixture(t, nil)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := f.session.Do(context.Background(), readData)
			if err == nil && string(res.Data) != "ok:read-data" {
				err = errors.New("wrong data " + string(res.Data))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, ops, runs := f.dev.counts(); ops != n || runs != n {
		t.Errorf("operation requests %d, runs %d; want %d", ops, runs, n)
	}
}

func TestSessionInvalid(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for name, s := range map[string]*Session{
		"no conn":      {Key: f.pop, Tokens: f.session.Tokens},
		"no key":       {Conn: f.conn, Tokens: f.session.Tokens},
		"no tokens":    {Conn: f.conn, Key: f.pop},
		"attempts":     {Conn: f.conn, Key: f.pop, Tokens: f.session.Tokens, MaxAttempts: MaxAttempts + 1},
		"neg attempts": {Conn: f.conn, Key: f.pop, Tokens: f.session.Tokens, MaxAttempts: -1},
		"neg timeout":  {Conn: f.conn, Key: f.pop, Tokens: f.session.Tokens, Timeout: -1},
	} {
		if _, err := s.Do(ctx, readData); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.session.Do(ctx, token.Operation{Name: "1bad"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad operation name: got %v, want ErrInvalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.session.Do(cctx, readData); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
	// A token provider failure is reported as such.
	boom := errors.New("boom")
	f.session.Tokens = tokenFunc(func(context.Context) (*AccessToken, error) { return nil, boom })
	if _, err := f.session.Do(ctx, readData); !errors.Is(err, boom) {
		t.Errorf("token provider failure: got %v", err)
	}
	if _, ops, _ := f.dev.counts(); ops != 0 {
		t.Errorf("%d operation requests sent", ops)
	}
}

type tokenFunc func(context.Context) (*AccessToken, error)

func (f tokenFunc) Token(ctx context.Context) (*AccessToken, error) { return f(ctx) }

// The status of an error response that claims success is still an error.
func TestStatusErrorSentinels(t *testing.T) {
	e := &StatusError{Status: token.StatusSuccess, ErrorResponse: true}
	if !errors.Is(e, ErrInvalidRequest) {
		t.Error("an error response with status 0 must not look like success")
	}
}

// A nonce obtained for a request that could not be signed was never sent:
// the next operation uses it.
func TestSessionKeepsUnsentNonce(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.session.Do(context.Background(), token.Operation{Name: "bad_name"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if _, err := f.session.Do(context.Background(), readData); err != nil {
		t.Fatal(err)
	}
	if nonces, ops, runs := f.dev.counts(); nonces != 1 || ops != 1 || runs != 1 {
		t.Errorf("nonce requests %d, operation requests %d, runs %d; want 1 each", nonces, ops, runs)
	}
}

// tooLargeConn refuses operation requests as too large (nothing sent), but
// only once its second message (the one after the nonce) has been received.
type tooLargeConn struct {
	transport.Conn
	received atomic.Int32
	second   chan struct{}
}

func (c *tooLargeConn) Send(ctx context.Context, msg []byte) error {
	if m, err := wire.DecodeMessage(msg); err != nil || m.Type != wire.TypeOperationRequest {
		return c.Conn.Send(ctx, msg)
	}
	select {
	case <-c.second:
	case <-ctx.Done():
	}
	return &transport.MessageTooLargeError{Size: uint64(len(msg)), Limit: 1}
}

func (c *tooLargeConn) Receive(ctx context.Context) ([]byte, error) {
	b, err := c.Conn.Receive(ctx)
	if err == nil && c.received.Add(1) == 2 {
		close(c.second)
	}
	return b, err
}

// A request the connection refused to send has no answer: an operation
// response that arrives meanwhile (a late one) is not reported as its
// result.
func TestSessionRefusedRequestHasNoResult(t *testing.T) {
	staleOp := wire.Response{Type: wire.TypeOperationResponse, Status: wire.StatusSuccess, Data: []byte("stale")}.Encode()
	f := newFixture(t, func(d *testDevice) {
		d.script = func(i int, msg, answer []byte) [][]byte {
			return [][]byte{answer, staleOp} // the nonce, then a late answer
		}
	})
	f.session.Conn = &tooLargeConn{Conn: f.conn, second: make(chan struct{})}
	res, err := f.session.Do(context.Background(), readData)
	if !errors.Is(err, transport.ErrMessageTooLarge) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("got %+v, %v; want ErrMessageTooLarge", res, err)
	}
	if _, ops, _ := f.dev.counts(); ops != 0 {
		t.Errorf("%d operation requests reached the device", ops)
	}
}

// trySendConn is a fixture's Conn with the transport.TrySender
// capability: try decides what TrySend does (nil: hand the message to the
// pipe at once). It counts the calls of Send and TrySend.
type trySendConn struct {
	transport.Conn
	pipe        transport.TrySender
	try         func(msg []byte) (bool, error)
	sends, trys atomic.Int32
}

func (c *trySendConn) Send(ctx context.Context, msg []byte) error {
	c.sends.Add(1)
	return c.Conn.Send(ctx, msg)
}

func (c *trySendConn) TrySend(msg []byte) (bool, error) {
	c.trys.Add(1)
	if c.try != nil {
		return c.try(msg)
	}
	return c.pipe.TrySend(msg)
}

// On a Conn that can take a message at once, a session hands it over with
// TrySend and needs no Send (nor the goroutine that runs it); when TrySend
// would wait it falls back to Send; a TrySend failure ends the operation
// before anything is sent.
func TestSessionTrySend(t *testing.T) {
	for _, tc := range []struct {
		name         string
		try          func([]byte) (bool, error)
		sends, trys  int32
		err          error
		nonces, runs int
	}{
		{"taken at once", nil, 0, 2, nil, 1, 1},
		{"would wait", func([]byte) (bool, error) { return false, nil }, 2, 2, nil, 1, 1},
		{"fails", func([]byte) (bool, error) { return false, transport.ErrClosed }, 0, 1, transport.ErrClosed, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaks := goroutineCheck(t)
			anchor := mustP256(t)
			dev := newTestDevice(anchor.Public())
			a, b := transport.Pipe()
			stop := dev.serve(b)
			defer func() { a.Close(); stop(); leaks() }()
			conn := &trySendConn{Conn: a, pipe: a.(transport.TrySender), try: tc.try}
			pop := mustKey(t, KeyP256)
			s := &Session{Conn: conn, Key: pop, Tokens: StaticToken(issue(t, anchor, pop.Public(), []string{"ep:hvac-1"}, "read-data", time.Now().Add(time.Hour)))}
			_, err := s.Do(context.Background(), readData)
			if tc.err == nil && err != nil || tc.err != nil && (!errors.Is(err, tc.err) || errors.Is(err, ErrOutcomeUnknown)) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if sends, trys := conn.sends.Load(), conn.trys.Load(); sends != tc.sends || trys != tc.trys {
				t.Errorf("Send called %d times, TrySend %d; want %d, %d", sends, trys, tc.sends, tc.trys)
			}
			if nonces, _, runs := dev.counts(); nonces != tc.nonces || runs != tc.runs {
				t.Errorf("nonce requests %d, runs %d; want %d, %d", nonces, runs, tc.nonces, tc.runs)
			}
		})
	}
}
