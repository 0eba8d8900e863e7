package main

import (
	"context"
	"fmt"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

// pushedUpdate is the status update of "sdactl status push": the session's
// status provider, and the connection it watches to tell what became of
// the update.
type pushedUpdate struct {
	transport.Conn
	conn   transport.Conn
	raw    []byte
	update *token.StatusUpdate // as parsed, not verified: the device verifies it
	device token.Identity      // the update's audience, the device pushed to

	carried bool
	held    *wire.Sequence // the device's update of the issuer, as it last said
	takes   bool           // the device sent response key 7
}

// readUpdate reads a signed status update, base64 or raw, and parses it
// strictly.
func (e *env) readUpdate(path string) (*pushedUpdate, error) {
	data, err := e.readFile(path, 2*token.MaxStatusUpdateSize+8)
	if err != nil {
		return nil, err
	}
	raw, err := decodeToken(data)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	s, err := token.ParseStatus(raw)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: not a status update: %w", path, err))
	}
	u := s.UnverifiedUpdate()
	id, err := parseIdentity(u.Audience)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	return &pushedUpdate{raw: raw, update: u, device: id}, nil
}

// StatusUpdate implements client.StatusProvider: the update, for its own
// device only.
func (p *pushedUpdate) StatusUpdate(_ context.Context, aud string) ([]byte, error) {
	if aud != p.update.Audience {
		return nil, nil
	}
	return p.raw, nil
}

// Send notes whether a request carries the update.
func (p *pushedUpdate) Send(ctx context.Context, msg []byte) error {
	if m, err := wire.DecodeMessage(msg); err == nil && m.Status != nil {
		p.carried = true
	}
	return p.conn.Send(ctx, msg)
}

// Receive notes what the device says it holds (response key 7).
func (p *pushedUpdate) Receive(ctx context.Context) ([]byte, error) {
	b, err := p.conn.Receive(ctx)
	if err == nil {
		if r, err := wire.DecodeResponse(b); err == nil && r.HasSequences {
			p.takes, p.held = true, nil
			for i := range r.Sequences {
				if r.Sequences[i].Issuer == p.update.Issuer {
					p.held = &r.Sequences[i]
				}
			}
		}
	}
	return b, err
}

// report says on stderr what became of the update.
func (p *pushedUpdate) report(e *env) {
	held := "none of its issuer"
	if p.held != nil {
		held = fmt.Sprintf("seq %d", p.held.Seq)
	}
	switch {
	case !p.takes:
		e.status("status update not carried: the device does not take status updates")
	case p.carried:
		e.status("status update seq %d carried; the device now holds %s", p.update.Sequence, held)
	default:
		e.status("status update seq %d not carried: the device holds %s, not older", p.update.Sequence, held)
	}
}
