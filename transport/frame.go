package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
)

// SDA serial frame (docs/PROTOCOL.md section 10):
//
//	offset 0   "mbeddbap"         6d 62 65 64 64 62 61 70
//	offset 8   length n           uint32, big-endian
//	offset 12  message            n bytes
//	offset 12+n SHA-256(message)  32 bytes
const (
	sdaMagic     = "mbeddbap"
	sdaHeaderLen = len(sdaMagic) + 4
	sdaOverhead  = sdaHeaderLen + sha256.Size
	lenHeaderLen = 4
)

func (f Framing) headerLen() int {
	if f == FramingSDA {
		return sdaHeaderLen
	}
	return lenHeaderLen
}

// appendFrameHeader appends the header of a frame carrying n bytes. Callers
// have checked n against a limit no larger than maxStreamMessage.
func appendFrameHeader(dst []byte, f Framing, n uint32) []byte {
	if f == FramingSDA {
		dst = append(dst, sdaMagic...)
	}
	return binary.BigEndian.AppendUint32(dst, n)
}

// appendFrame appends a whole frame carrying msg.
func appendFrame(dst []byte, f Framing, msg []byte) []byte {
	dst = appendFrameHeader(dst, f, uint32(len(msg)))
	dst = append(dst, msg...)
	if f == FramingSDA {
		sum := sha256.Sum256(msg)
		dst = append(dst, sum[:]...)
	}
	return dst
}

// readFrame reads one frame from r and returns its message, read into buf
// when its capacity suffices and allocated fresh otherwise. It never
// allocates more than limit bytes for the message: a larger declared length
// fails with a *MessageTooLargeError before reading on.
//
// started reports whether any byte of the frame was consumed, which tells a
// stream Conn whether an interrupted read left it out of step. A clean end
// of stream before the first byte returns io.EOF.
func readFrame(r io.Reader, f Framing, limit int, buf []byte) (msg []byte, started bool, err error) {
	var s frameScratch
	return s.readFrame(r, f, limit, buf)
}

// hashChunk is the size of the pieces in which a large SDA frame's message
// is read and hashed, or hashed and written: hashing each piece as it
// arrives (or before it leaves) lets the two ends of a link hash at the same
// time instead of one after the other.
const hashChunk = 16 << 10

// frameScratch holds the fixed-size parts of a frame while it is read, so
// that a Conn that keeps one reads frames without allocating.
type frameScratch struct {
	hdr [sdaHeaderLen]byte
	sum [sha256.Size]byte
	got [sha256.Size]byte
	h   hash.Hash // for messages over hashChunk; made on first use
}

func (s *frameScratch) readFrame(r io.Reader, f Framing, limit int, buf []byte) (msg []byte, started bool, err error) {
	h := s.hdr[:f.headerLen()]
	n, err := io.ReadFull(r, h)
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, false, io.EOF
		}
		return nil, n > 0, truncated(err)
	}
	if f == FramingSDA && string(h[:len(sdaMagic)]) != sdaMagic {
		return nil, true, ErrBadMagic
	}
	size := binary.BigEndian.Uint32(h[len(h)-4:])
	if uint64(size) > uint64(limit) {
		return nil, true, &MessageTooLargeError{Size: uint64(size), Limit: limit}
	}
	if cap(buf) >= int(size) {
		msg = buf[:size]
	} else {
		msg = make([]byte, size)
	}
	if f != FramingSDA || len(msg) <= hashChunk {
		if _, err := io.ReadFull(r, msg); err != nil {
			return nil, true, truncated(err)
		}
		if f == FramingSDA {
			s.got = sha256.Sum256(msg)
		}
	} else {
		if s.h == nil {
			s.h = sha256.New()
		}
		s.h.Reset()
		for p := msg; len(p) > 0; {
			chunk := p[:min(len(p), hashChunk)]
			if _, err := io.ReadFull(r, chunk); err != nil {
				return nil, true, truncated(err)
			}
			s.h.Write(chunk)
			p = p[len(chunk):]
		}
		s.h.Sum(s.got[:0])
	}
	if f == FramingSDA {
		if _, err := io.ReadFull(r, s.sum[:]); err != nil {
			return nil, true, truncated(err)
		}
		if s.got != s.sum {
			return nil, true, ErrChecksum
		}
	}
	return msg, true, nil
}

// truncated maps an end of stream inside a frame to errTruncated and
// passes other errors through.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return err
}

// decodeSDAFrame decodes b, which must hold exactly one SDA serial frame
// and nothing else, as the fragmentation layer reassembles it.
func decodeSDAFrame(b []byte, limit int) ([]byte, error) {
	if len(b) < sdaHeaderLen {
		if !bytes.HasPrefix([]byte(sdaMagic), b[:min(len(b), len(sdaMagic))]) {
			return nil, ErrBadMagic
		}
		return nil, errTruncated
	}
	if string(b[:len(sdaMagic)]) != sdaMagic {
		return nil, ErrBadMagic
	}
	size := binary.BigEndian.Uint32(b[len(sdaMagic):sdaHeaderLen])
	if uint64(size) > uint64(limit) {
		return nil, &MessageTooLargeError{Size: uint64(size), Limit: limit}
	}
	rest := b[sdaHeaderLen:]
	switch {
	case uint64(len(rest)) < uint64(size)+sha256.Size:
		return nil, errTruncated
	case uint64(len(rest)) > uint64(size)+sha256.Size:
		return nil, badFragment("%d bytes after the SDA serial frame", uint64(len(rest))-uint64(size)-sha256.Size)
	}
	msg, sum := rest[:size], rest[size:]
	if got := sha256.Sum256(msg); !bytes.Equal(got[:], sum) {
		return nil, ErrChecksum
	}
	return msg, nil
}
