package client

import (
	"context"
	"math"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// seqTime is the [seq, time] of a status update.
type seqTime struct {
	seq  uint64
	time time.Time
}

// deviceStatus is what the device's last nonce or operation response said
// of the status updates it holds (v2, response key 7).
type deviceStatus struct {
	takes bool            // the response carried key 7: the device takes updates
	held  []wire.Sequence // by issuer
}

// note records key 7 of a response: present (possibly empty) or absent.
func (d *deviceStatus) note(r wire.Response) {
	d.takes = r.HasSequences
	d.held = append(d.held[:0], r.Sequences...)
}

// holds returns the [seq, time] the device holds from issuer.
func (d *deviceStatus) holds(issuer string) (seqTime, bool) {
	for _, h := range d.held {
		if h.Issuer == issuer {
			t := int64(math.MaxInt64)
			if h.Time < math.MaxInt64 {
				t = int64(h.Time)
			}
			return seqTime{h.Seq, time.Unix(t, 0)}, true
		}
	}
	return seqTime{}, false
}

// statusPush is an update to push, and what it is.
type statusPush struct {
	raw    []byte
	issuer string
	held   seqTime
}

// statusToPush returns the update to carry with the next request, or nil
// (docs/PROTOCOL.md section 12, "Carrying updates"): only to a device whose
// last response carried key 7, only an update for the device (see
// statusAudiences), only when it is newer than what the device holds from
// the update's issuer (or it holds none), and never one the session has
// already pushed, or an older one. The update is read unverified: the
// device verifies it, and ignores one that does not verify.
func (s *Session) statusToPush(ctx context.Context) *statusPush {
	if s.Status == nil || !s.device.takes {
		return nil
	}
	for _, aud := range s.statusAudiences() {
		raw, err := s.Status.StatusUpdate(ctx, aud)
		if err != nil || raw == nil {
			continue
		}
		p, u, err := parseStatusFor(raw, aud)
		if err != nil || u == nil {
			continue
		}
		if h, ok := s.device.holds(u.Issuer); ok && !u.NewerThan(h.seq, h.time) {
			continue
		}
		if h, ok := s.pushed[u.Issuer]; ok && !u.NewerThan(h.seq, h.time) {
			continue
		}
		if s.pushed == nil {
			s.pushed = map[string]seqTime{}
		}
		return &statusPush{raw: p.Bytes(), issuer: u.Issuer, held: seqTime{u.Sequence, u.Time}}
	}
	return nil
}

// statusAudiences names the device for its status update: with
// Session.Device set, its "ep:" and "id:" audiences (those of its fields
// that are set); otherwise the token's audience when it has exactly one
// entry; otherwise none, and nothing is pushed.
func (s *Session) statusAudiences() []string {
	if s.Device != (token.Identity{}) {
		var out []string
		if s.Device.Endpoint != "" {
			out = append(out, token.PrefixEndpoint+s.Device.Endpoint)
		}
		if s.Device.DeviceID != "" {
			out = append(out, token.PrefixDeviceID+s.Device.DeviceID)
		}
		return out
	}
	if len(s.checkedAud) == 1 {
		return s.checkedAud
	}
	return nil
}
