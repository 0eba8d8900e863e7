package client

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// Defaults of a [Session].
const (
	// DefaultTimeout bounds one operation ([Session.Do]) when
	// Session.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultNonceTimeout bounds the wait for one nonce response when
	// Session.NonceTimeout is zero.
	DefaultNonceTimeout = 5 * time.Second
	// DefaultMaxAttempts is the number of nonce requests one operation may
	// make when Session.MaxAttempts is zero.
	DefaultMaxAttempts = 3
)

// MaxAttempts bounds Session.MaxAttempts.
const MaxAttempts = 10

// maxStale bounds the messages of earlier exchanges one operation discards
// (late or duplicated responses) before it gives up.
const maxStale = 16

// Session performs operations on one device over one connection, as the
// technician (docs/PROTOCOL.md section 11): a nonce request, the signed operation request, the
// response.
//
// A Session is safe for concurrent use; its operations run one at a time,
// because SDA responses carry no request identifier. It does not own Conn:
// closing it is the caller's business. Its fields must not change once it
// is in use.
//
// # Retries
//
// An operation makes up to MaxAttempts attempts to obtain a nonce. An
// attempt fails, and the next one starts with a fresh nonce request, when
// sending the nonce request fails, when no nonce response arrives within
// NonceTimeout, when the answer cannot be decoded, or when the device
// answers with an error response (type 255: it could not parse the nonce
// request). A nonce response with a failure status (busy, not initialized,
// ...) ends the operation with a [*StatusError]; so do a closed connection
// and the end of the operation's context. None of these failures can have
// run the operation.
//
// Once the signed request has been handed to Conn.Send, there is no retry,
// ever: a signed request is sent at most once. If no valid response to it
// arrives (Send or Receive fails, the timeout passes, the answer cannot be
// decoded, or a device-signed response does not verify) the error matches
// [ErrOutcomeUnknown]: the device may have run the operation. Messages that
// belong to earlier exchanges (a late nonce response, or a device-signed
// response for another nonce) are discarded while waiting.
//
// When an operation response offers a next nonce (v2), the session keeps it
// and the next operation uses it instead of asking for one. If the device
// has forgotten it meanwhile (a restart, the nonce lifetime), that
// operation fails with [ErrVerification] and did not run; the next one asks
// for a fresh nonce.
//
// # Status updates
//
// A v2 device that takes status updates says so in every nonce and
// operation response (response key 7: the [seq, time] of the update it
// holds from each issuer). With Status set, the session carries an update
// in the operation request itself, [3, bundle, update], at no extra round
// trip, when all of these hold: the device's last response carried key 7;
// Status has an update for the device, whose audience is the session's
// Device ("ep:" then "id:", for the fields that are set) or, without
// Device, the token's audience when it names exactly one device; the
// update names that audience; it is newer than what the device holds from
// the update's issuer, or the device holds none; and this session has not
// pushed it (or a newer one) before, so an update the device does not take
// is carried once per session, not with every request. Otherwise the
// request is sent exactly as without Status. A failing Status never fails
// the operation. If the connection refuses the larger request as too large
// (nothing sent), it is sent without the update.
type Session struct {
	// Conn carries messages to and from the device. Required.
	Conn transport.Conn
	// Key is the proof-of-possession key the token is bound to; any
	// crypto.Signer works, including keys in hardware keystores.
	// Required.
	Key crypto.Signer
	// Tokens supplies the access token, e.g. a *TokenSource or
	// StaticToken(raw). Required.
	Tokens TokenProvider
	// DeviceKey, when set, is the device's public key: operation responses
	// must then carry a device-signed response (v2) that verifies with it
	// and agrees with the plain response on status, data and nonce. A
	// success without a valid signature is not reported as a success.
	DeviceKey crypto.PublicKey
	// Device, when set together with DeviceKey, is the identity the
	// device-signed response must name.
	Device token.Identity
	// Timeout bounds each operation; zero means DefaultTimeout. The
	// context given to Do may end it earlier.
	Timeout time.Duration
	// NonceTimeout bounds the wait for each nonce response; zero means
	// DefaultNonceTimeout.
	NonceTimeout time.Duration
	// MaxAttempts bounds the nonce requests of one operation, 1 to
	// MaxAttempts; zero means DefaultMaxAttempts.
	MaxAttempts int
	// Rand is the randomness for signing; nil means crypto/rand.Reader.
	Rand io.Reader

	// Status, when set, supplies the status updates (v2) the session
	// pushes to a device that takes them, usually the *TokenSource of
	// Tokens. See "Status updates" above; it is called during an
	// operation, so it should answer from a cache.
	Status StatusProvider
	// Fresh, when set, is how [Session.DoFresh] obtains a token for each
	// operation, bound to the device's nonce (v2).
	Fresh *FreshTokens

	once         sync.Once
	sem          chan struct{} // held during an operation; guards the fields below
	nextNonce    uint64        // a nonce offered by the device's last response
	checked      []byte        // the token whose cnf key was last checked
	checkedChain []byte        // its delegation chain, or nil
	checkedAud   []string      // its audience
	device       deviceStatus  // what the device's last response said of its updates
	pushed       map[string]seqTime
}

// Result is the outcome of a successful operation.
type Result struct {
	// Data is the application data the device returned (nil if none).
	Data []byte
	// Nonce is the nonce of the request.
	Nonce uint64
	// Signed is the device-signed response (v2), or nil. It is proof of
	// the answer for whoever knows the device's key.
	Signed []byte
	// Verified reports that Signed was verified with Session.DeviceKey and
	// matched the response; Device is then the identity it names.
	Verified bool
	Device   token.Identity
}

// Do performs op on the device and returns its result. A device failure
// status is a [*StatusError] matching one of [ErrInvalidRequest],
// [ErrVerification], [ErrAccessDenied], [ErrOperationFailed], [ErrBusy] and
// [ErrDevice]. See [Session] for retries and [ErrOutcomeUnknown]. Every
// error that does not match ErrOutcomeUnknown or ErrOperationFailed means
// the operation did not run.
func (s *Session) Do(ctx context.Context, op token.Operation) (*Result, error) {
	if s.Tokens == nil {
		return nil, invalid("session needs Conn, Key and Tokens")
	}
	return s.run(ctx, op, nil)
}

// run performs one operation, with a token from s.Tokens or, with fresh,
// a token fetched for the operation's nonce.
func (s *Session) run(ctx context.Context, op token.Operation, fresh *FreshTokens) (*Result, error) {
	if s.Conn == nil || s.Key == nil {
		return nil, invalid("session needs Conn, Key and Tokens")
	}
	attempts := s.MaxAttempts
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	if attempts < 0 || attempts > MaxAttempts {
		return nil, invalid("MaxAttempts %d outside 1..%d", s.MaxAttempts, MaxAttempts)
	}
	if s.Timeout < 0 || s.NonceTimeout < 0 {
		return nil, invalid("negative timeout")
	}
	if fresh != nil {
		if err := fresh.check(s.Key.Public()); err != nil {
			return nil, err
		}
	}
	s.once.Do(func() { s.sem = make(chan struct{}, 1) })
	ctx, cancel := context.WithTimeout(ctx, durationOr(s.Timeout, DefaultTimeout))
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("client: waiting for the session: %w", ctx.Err())
	}
	defer func() { <-s.sem }()

	var tok *AccessToken
	var err error
	if fresh == nil {
		if tok, err = s.Tokens.Token(ctx); err != nil {
			return nil, fmt.Errorf("client: obtaining a token: %w", err)
		}
		if err := s.checkToken(tok); err != nil {
			return nil, err
		}
	}
	stale := 0
	var nonce uint64
	for attempt := 1; ; attempt++ {
		if s.nextNonce != 0 {
			nonce, s.nextNonce = s.nextNonce, 0
			break
		}
		var retry bool
		nonce, retry, err = s.requestNonce(ctx, &stale)
		if err == nil {
			break
		}
		if !retry || attempt >= attempts || ctx.Err() != nil {
			return nil, err
		}
	}
	if fresh != nil {
		if tok, err = s.freshToken(ctx, fresh, nonce); err != nil {
			s.nextNonce = nonce // never sent: the next operation may use it
			return nil, err
		}
	}
	signed, err := token.SignRequest(&token.Request{Nonce: nonce, Operation: op, Token: tok.Raw, Chain: chainBytes(tok.Chain)}, s.Key, &token.SignOptions{Rand: s.Rand})
	if err != nil {
		s.nextNonce = nonce // never sent: the next operation may use it
		if errors.Is(err, token.ErrInvalid) {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, fmt.Errorf("client: signing the request: %w", err)
	}
	if p := s.statusToPush(ctx); p != nil {
		res, err := s.exchange(ctx, wire.EncodeOperationRequestWithStatus(signed, p.raw), nonce, &stale)
		s.pushed[p.issuer] = p.held
		if !errors.Is(err, transport.ErrMessageTooLarge) || errors.Is(err, ErrOutcomeUnknown) {
			return res, err
		}
		// The connection refused the larger message and sent nothing:
		// the request goes without the update.
	}
	return s.exchange(ctx, wire.EncodeOperationRequest(signed), nonce, &stale)
}

func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// checkToken refuses a token bound to another key before it is used: the
// device would refuse it anyway, with a less precise status. For a
// delegated token the key is the chain's last key, which signs the
// request.
func (s *Session) checkToken(tok *AccessToken) error {
	if tok == nil || len(tok.Raw) == 0 {
		return invalid("empty token")
	}
	if bytes.Equal(tok.Raw, s.checked) && bytes.Equal(chainBytes(tok.Chain), s.checkedChain) {
		return nil
	}
	key, aud := tok.Key, tok.Audience
	if key == nil || aud == nil {
		k, a, err := unverifiedKeyAudience(tok)
		switch {
		case err != nil && key == nil:
			return &TokenCheckError{Check: "parse", Reason: "not a well-formed access token", Err: err}
		case key == nil:
			key, aud = k, a
		case aud == nil:
			aud = a
		}
	}
	if !token.EqualKeys(key, s.Key.Public()) {
		what := "the token is bound to another key than the session's"
		if tok.Chain != nil {
			what = "the delegation chain ends with another key than the session's"
		}
		return &TokenCheckError{Check: "cnf", Reason: what}
	}
	s.checked, s.checkedChain = bytes.Clone(tok.Raw), chainBytes(tok.Chain)
	s.checkedAud = slices.Clone(aud)
	return nil
}

// unverifiedKeyAudience reads, without verifying anything, the key that
// signs requests with tok and the audience they go to: the token's cnf
// and aud or, with a chain, its last link's key and the last audience a
// link narrowed to. The device verifies them.
func unverifiedKeyAudience(tok *AccessToken) (crypto.PublicKey, []string, error) {
	t, err := token.Parse(tok.Raw)
	if err != nil {
		return nil, nil, err
	}
	u := t.UnverifiedClaims()
	key, aud := u.Key, u.Audience
	if tok.Chain != nil {
		for _, l := range tok.Chain.UnverifiedLinks() {
			key = l.Key
			if l.Audience != nil {
				aud = l.Audience
			}
		}
	}
	return key, aud, nil
}

// chainBytes returns the encoded chain, or nil for none.
func chainBytes(c *token.Chain) []byte {
	if c == nil {
		return nil
	}
	return c.Bytes()
}

// requestNonce performs one nonce exchange. retry reports whether a new
// attempt may help.
func (s *Session) requestNonce(ctx context.Context, stale *int) (nonce uint64, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, durationOr(s.NonceTimeout, DefaultNonceTimeout))
	defer cancel()
	sendErr, err := s.transact(actx, wire.NonceRequest, func(msg []byte) (bool, error) {
		r, err := wire.DecodeResponse(msg)
		if err != nil {
			retry = true
			return true, fmt.Errorf("%w: nonce response: %w", ErrBadResponse, err)
		}
		switch r.Type {
		case wire.TypeNonceResponse:
			if r.Status != wire.StatusSuccess {
				return true, &StatusError{Status: r.Status}
			}
			nonce = r.Nonce
			s.device.note(r)
			return true, nil
		case wire.TypeErrorResponse:
			// The device could not parse the nonce request: it was damaged
			// on the way. Nothing ran.
			retry = true
			return true, &StatusError{Status: r.Status, ErrorResponse: true}
		}
		// An operation response here belongs to an earlier operation.
		if *stale++; *stale > maxStale {
			return true, badResponse("more than %d stale messages", maxStale)
		}
		return false, nil
	})
	switch {
	case sendErr != nil:
		return 0, retryable(sendErr), fmt.Errorf("client: sending the nonce request: %w", sendErr)
	case err != nil && !retry && !isStatusOrBad(err):
		return 0, retryable(err), fmt.Errorf("client: waiting for a nonce: %w", err)
	}
	return nonce, retry, err
}

func isStatusOrBad(err error) bool {
	var se *StatusError
	return errors.As(err, &se) || errors.Is(err, ErrBadResponse)
}

// transact sends msg and, at the same time, receives messages and passes
// each to accept until accept reports done or fails. Receiving while
// sending matters on links without buffering (net.Pipe, some serial
// adapters): a device blocked writing an earlier answer would otherwise
// never read the request. On a Conn that can hand msg over at once
// (transport.TrySender) it does so and then only receives; otherwise Send
// runs on a goroutine of its own. sendErr is the error of Send; err is the
// error of Receive or of accept. transact returns only once Send has
// returned.
func (s *Session) transact(ctx context.Context, msg []byte, accept func([]byte) (bool, error)) (sendErr, err error) {
	if ts, ok := s.Conn.(transport.TrySender); ok && ctx.Err() == nil {
		sent, serr := ts.TrySend(msg)
		if serr != nil {
			return serr, nil
		}
		if sent {
			return nil, s.receive(ctx, accept)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		err := s.Conn.Send(ctx, msg)
		if err != nil {
			cancel() // stop waiting for an answer to a message that did not go
		}
		sent <- err
	}()
	for {
		b, rerr := s.Conn.Receive(rctx)
		if rerr != nil {
			if serr := <-sent; serr != nil {
				return serr, nil
			}
			return nil, rerr
		}
		done, aerr := accept(b)
		if done || aerr != nil {
			// Let the send finish: cutting it short could leave half a
			// frame on a stream. Its error no longer matters once an
			// answer has been accepted, unless it says that nothing was
			// sent: then the answer cannot be to msg.
			if serr := <-sent; errors.Is(serr, transport.ErrMessageTooLarge) {
				return serr, nil
			}
			return nil, aerr
		}
	}
}

// receive passes the messages received to accept until accept reports
// done or fails, or Receive fails: transact once its message is sent.
func (s *Session) receive(ctx context.Context, accept func([]byte) (bool, error)) error {
	for {
		b, err := s.Conn.Receive(ctx)
		if err != nil {
			return err
		}
		if done, err := accept(b); done || err != nil {
			return err
		}
	}
}

// retryable reports whether a transport error may go away with a new
// attempt on the same connection.
func retryable(err error) bool {
	return !errorsIsAny(err, transport.ErrClosed, io.EOF, io.ErrClosedPipe, transport.ErrMessageTooLarge, context.Canceled)
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// exchange sends the signed operation request (once) and waits for its
// response.
func (s *Session) exchange(ctx context.Context, msg []byte, nonce uint64, stale *int) (*Result, error) {
	var res *Result
	sendErr, err := s.transact(ctx, msg, func(b []byte) (bool, error) {
		r, err := wire.DecodeResponse(b)
		if err != nil {
			return true, fmt.Errorf("%w: %w: %w", ErrOutcomeUnknown, ErrBadResponse, err)
		}
		switch r.Type {
		case wire.TypeErrorResponse:
			return true, &StatusError{Status: r.Status, ErrorResponse: true}
		case wire.TypeOperationResponse:
			res, err = s.operationResponse(r, nonce)
			if err != errStale {
				return true, err
			}
		}
		// A nonce response (late or duplicated) or a device-signed response
		// to another request: not ours.
		if *stale++; *stale > maxStale {
			return true, fmt.Errorf("%w: %w", ErrOutcomeUnknown, badResponse("more than %d stale messages", maxStale))
		}
		return false, nil
	})
	switch {
	case sendErr != nil && errors.Is(sendErr, transport.ErrMessageTooLarge):
		return nil, fmt.Errorf("client: operation request refused by the connection: %w", sendErr) // nothing was sent
	case sendErr != nil:
		return nil, fmt.Errorf("%w: sending the request: %w", ErrOutcomeUnknown, sendErr)
	case err != nil && !isStatusOrBad(err) && !errors.Is(err, ErrOutcomeUnknown):
		return nil, fmt.Errorf("%w: waiting for the response: %w", ErrOutcomeUnknown, err)
	}
	return res, err
}

var errStale = errors.New("stale response")

// operationResponse checks an operation response against the request and,
// when the device key is known, against its device-signed form.
func (s *Session) operationResponse(r wire.Response, nonce uint64) (*Result, error) {
	res := &Result{Data: r.Data, Nonce: nonce, Signed: r.Signed}
	if s.DeviceKey != nil {
		if r.Signed == nil {
			if r.Status == wire.StatusSuccess {
				return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, badResponse("success without a device-signed response"))
			}
			// An unauthenticated failure: report it; it claims nothing ran
			// that could be wrongly believed.
			return nil, &StatusError{Status: r.Status, Data: r.Data}
		}
		dr, err := token.VerifyResponse(r.Signed, s.DeviceKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %w: device-signed response: %w", ErrOutcomeUnknown, ErrBadResponse, err)
		}
		if dr.Nonce != nonce {
			return nil, errStale
		}
		if dr.Status != uint32(r.Status) || !bytes.Equal(dr.Data, r.Data) {
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, badResponse("device-signed response (status %d) disagrees with the response (status %d)", dr.Status, uint32(r.Status)))
		}
		if s.Device != (token.Identity{}) && dr.Device != s.Device {
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, badResponse("device-signed response names device %+v, want %+v", dr.Device, s.Device))
		}
		res.Verified, res.Device = true, dr.Device
	}
	if r.NextNonce != 0 {
		s.nextNonce = r.NextNonce
	}
	s.device.note(r)
	if r.Status != wire.StatusSuccess {
		return nil, &StatusError{Status: r.Status, Data: r.Data}
	}
	return res, nil
}
