package transport

import (
	"encoding/binary"
	"math"
)

// Native v2 fragment header (all integers big-endian):
//
//	byte 0     0x2 in the high nibble (format version); bit 0 first fragment,
//	           bit 1 last fragment; bits 2-3 reserved, zero
//	bytes 1-2  message id, incremented per message, wrapping
//	bytes 3-4  fragment index, 0 for the first fragment, +1 per fragment
//	bytes 5-8  total message length (first fragment only)
//	then       payload: the rest of the packet
const (
	v2Version        = 0x20
	v2FlagFirst      = 0x01
	v2FlagLast       = 0x02
	v2HeaderLen      = 5
	v2FirstHeaderLen = 9
)

// Header of the original SDA BLE example (docs/PROTOCOL.md section
// 10, "Fragmentation"):
//
//	byte 0     sequence number, +1 per fragment, wrapping (not checked on
//	           receipt: the fragment number and lengths are)
//	byte 1     bits 0-1 type (1 = data), bit 2 more fragments, bits 3-5
//	           fragment number (1-based, wrapping to 0 after 7); bits 6-7 zero
//	byte 2     payload length
//	bytes 3-4  total length of the carried bytes, little-endian
//	byte 5     retransmission flag (never set: there is no retransmission)
//	bytes 6-7  reserved, zero
//	then       payload, then one zero byte on fragments sent by the device
const (
	compatHeaderLen = 8
	compatTypeData  = 1
	compatFlagMore  = 0x04
	compatMaxChunk  = 222
)

func appendV2Header(dst []byte, first, last bool, id, idx uint16, total int) []byte {
	b0 := byte(v2Version)
	if first {
		b0 |= v2FlagFirst
	}
	if last {
		b0 |= v2FlagLast
	}
	dst = append(dst, b0)
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, idx)
	if first {
		dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	}
	return dst
}

// appendCompatHeader appends the header of the fragment numbered number
// (1-based) carrying n payload bytes of a total of total.
func appendCompatHeader(dst []byte, seq byte, more bool, number, n, total int) []byte {
	b1 := byte(compatTypeData) | byte(number&7)<<3
	if more {
		b1 |= compatFlagMore
	}
	dst = append(dst, seq, b1, byte(n))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(total))
	return append(dst, 0, 0, 0)
}

// reassembler turns fragments back into messages. It does no I/O and keeps
// no clock, so that it can be fuzzed directly; fragConn enforces the
// reassembly timeout around it.
type reassembler struct {
	format FragmentFormat
	limit  int // bound on the declared total length
	trail  int // bytes after each payload (1: the compat device's zero byte)

	active bool   // a message is being reassembled
	buf    []byte // its bytes so far; cap(buf) is its declared length
	next   int    // fragments received so far
	id     uint16 // v2: its message id

	// After a message ends (completed or abandoned), fragments of it that
	// arrive late are dropped silently: in v2 those carrying lastID, in the
	// compat format (which has no message id) every continuation until the
	// next first fragment.
	ended    bool
	lastID   uint16
	skipping bool
	// delivered reports that the message lastID ended complete (v2): a
	// repeated first fragment of it is dropped too.
	delivered bool
}

func newReassembler(format FragmentFormat, limit int) *reassembler {
	r := &reassembler{format: format, limit: limit}
	switch format {
	case FragmentCompatDevice:
		// Incoming messages are SDA serial frames.
		r.limit = min(limit+sdaOverhead, math.MaxUint16)
	case FragmentCompatTechnician:
		r.trail = 1
	}
	return r
}

func (r *reassembler) inProgress() bool { return r.active }

// abandon discards the message being reassembled.
func (r *reassembler) abandon() {
	if r.active {
		r.ended, r.lastID, r.delivered = true, r.id, false
	}
	r.active, r.buf, r.next = false, nil, 0
	r.skipping = true
}

func (r *reassembler) start(id uint16, total int) error {
	r.abandon()
	if total > r.limit {
		r.ended, r.lastID, r.delivered = true, id, false
		return &MessageTooLargeError{Size: uint64(total), Limit: r.limit}
	}
	r.active, r.id, r.buf, r.next, r.skipping = true, id, make([]byte, 0, total), 0, false
	return nil
}

// feed processes one packet. It returns a whole message when p completes
// one, nil and nil when more fragments are needed (or p was a late fragment
// of a finished message), or an error when p is malformed or inconsistent,
// in which case any partial message is discarded.
func (r *reassembler) feed(p []byte) ([]byte, error) {
	if r.format == FragmentV2 {
		return r.feedV2(p)
	}
	return r.feedCompat(p)
}

func (r *reassembler) feedV2(p []byte) ([]byte, error) {
	if len(p) < v2HeaderLen {
		r.abandon()
		return nil, badFragment("packet of %d bytes is shorter than the header", len(p))
	}
	b0 := p[0]
	if b0&0xF0 != v2Version {
		r.abandon()
		return nil, badFragment("version %d, want 2", b0>>4)
	}
	if b0&^(0xF0|v2FlagFirst|v2FlagLast) != 0 {
		r.abandon()
		return nil, badFragment("reserved flags %#02x set", b0&0x0C)
	}
	first, last := b0&v2FlagFirst != 0, b0&v2FlagLast != 0
	id := binary.BigEndian.Uint16(p[1:3])
	idx := binary.BigEndian.Uint16(p[3:5])
	if first {
		if len(p) < v2FirstHeaderLen {
			r.abandon()
			return nil, badFragment("first fragment of %d bytes is shorter than its header", len(p))
		}
		if idx != 0 {
			r.abandon()
			return nil, badFragment("first fragment has index %d", idx)
		}
		if !r.active && r.delivered && id == r.lastID {
			// A repeated first fragment of the message last delivered:
			// restarting would deliver it twice.
			return nil, nil
		}
		total := binary.BigEndian.Uint32(p[5:9])
		if uint64(total) > uint64(r.limit) {
			r.abandon()
			r.ended, r.lastID, r.delivered = true, id, false
			return nil, &MessageTooLargeError{Size: uint64(total), Limit: r.limit}
		}
		if err := r.start(id, int(total)); err != nil {
			return nil, err
		}
		return r.add(p[v2FirstHeaderLen:], last)
	}
	if !r.active {
		if r.ended && id == r.lastID {
			return nil, nil // late fragment of a finished or broken message
		}
		// The first fragment of message id was lost: report it once and
		// drop the rest of that message's fragments silently.
		r.abandon()
		r.ended, r.lastID, r.delivered = true, id, false
		return nil, badFragment("fragment %d of message %d without its first fragment", idx, id)
	}
	if id != r.id {
		cur := r.id
		r.abandon()
		r.ended, r.lastID, r.delivered = true, id, false
		return nil, badFragment("fragment of message %d while reassembling message %d", id, cur)
	}
	if int(idx) == r.next-1 {
		return nil, nil // duplicate of the previous fragment
	}
	if int(idx) != r.next {
		want := r.next
		r.abandon()
		return nil, badFragment("fragment index %d, want %d", idx, want)
	}
	return r.add(p[v2HeaderLen:], last)
}

func (r *reassembler) feedCompat(p []byte) ([]byte, error) {
	if len(p) < compatHeaderLen {
		r.abandon()
		return nil, badFragment("packet of %d bytes is shorter than the header", len(p))
	}
	b1 := p[1]
	if b1&0x03 != compatTypeData || b1&0xC0 != 0 {
		r.abandon()
		return nil, badFragment("type/flags byte %#02x", b1)
	}
	last := b1&compatFlagMore == 0
	number := int(b1>>3) & 7
	plen := int(p[2])
	total := int(binary.LittleEndian.Uint16(p[3:5]))
	if p[5] != 0 || p[6] != 0 || p[7] != 0 {
		r.abandon()
		return nil, badFragment("retransmission or reserved bytes %x set", p[5:8])
	}
	if len(p) != compatHeaderLen+plen+r.trail {
		r.abandon()
		return nil, badFragment("packet of %d bytes for a payload of %d", len(p), plen)
	}
	if r.trail == 1 && p[len(p)-1] != 0 {
		r.abandon()
		return nil, badFragment("trailing byte %#02x, want 0", p[len(p)-1])
	}
	payload := p[compatHeaderLen : compatHeaderLen+plen]
	if r.active {
		if want := (r.next + 1) & 7; number == want {
			if total != cap(r.buf) {
				r.abandon()
				return nil, badFragment("total length %d changed from %d", total, cap(r.buf))
			}
			return r.add(payload, last)
		}
		if number != 1 {
			want := (r.next + 1) & 7
			r.abandon()
			return nil, badFragment("fragment number %d, want %d", number, want)
		}
		// A new first fragment replaces the unfinished message.
	} else if number != 1 {
		if r.skipping {
			return nil, nil // late fragment of a finished message
		}
		r.abandon()
		return nil, badFragment("fragment number %d without a first fragment", number)
	}
	if err := r.start(0, total); err != nil {
		return nil, err
	}
	return r.add(payload, last)
}

// add appends the payload of the next fragment, checking it against the
// declared total length.
func (r *reassembler) add(payload []byte, last bool) ([]byte, error) {
	rem := cap(r.buf) - len(r.buf)
	switch {
	case len(payload) > rem:
		r.abandon()
		return nil, badFragment("payload of %d bytes with %d bytes left in the message", len(payload), rem)
	case last && len(payload) < rem:
		r.abandon()
		return nil, badFragment("last fragment leaves %d bytes of the message missing", rem-len(payload))
	case !last && len(payload) == rem:
		r.abandon()
		return nil, badFragment("fragment completes the message but is not marked last")
	case !last && len(payload) == 0:
		r.abandon()
		return nil, badFragment("empty fragment")
	}
	r.buf = append(r.buf, payload...)
	r.next++
	if last {
		msg := r.buf
		r.buf = nil
		r.abandon()
		r.delivered = true
		return msg, nil
	}
	if r.format == FragmentV2 && r.next > math.MaxUint16 {
		r.abandon()
		return nil, badFragment("more than %d fragments", math.MaxUint16+1)
	}
	return nil, nil
}
