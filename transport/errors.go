package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// Errors returned by this package. Test for them with errors.Is; the
// returned errors wrap them with detail.
var (
	// ErrClosed is returned by calls on a closed Conn, PacketConn or
	// Listener, and by calls that a Close interrupted. It is net.ErrClosed,
	// so errors.Is(err, net.ErrClosed) holds too.
	ErrClosed = net.ErrClosed

	// ErrInvalidOptions reports a configuration the package cannot use:
	// an unknown framing or fragment format, a negative size or timeout, an
	// MTU below [MinMTU] (and, from package transport/serial, a baud rate
	// it does not support). Nothing was opened or sent.
	ErrInvalidOptions = errors.New("transport: invalid options")

	// ErrMessageTooLarge reports a message above the configured maximum,
	// whether the local caller tried to send it or a peer declared it. A
	// reader checks a declared length before allocating anything for it.
	// The error is a [*MessageTooLargeError].
	ErrMessageTooLarge = errors.New("transport: message too large")

	// ErrBadMagic reports an SDA serial frame that does not start with
	// "mbeddbap". The stream is out of step, so the Conn closes itself.
	ErrBadMagic = errors.New("transport: bad frame magic")

	// ErrChecksum reports an SDA serial frame whose SHA-256 trailer does not
	// match its message. The frame boundaries were intact, so a stream Conn
	// stays usable and the message is discarded.
	ErrChecksum = errors.New("transport: frame checksum mismatch")

	// ErrTruncated reports a frame or reassembled message that ended before
	// its declared length. It also matches io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("transport: truncated frame")

	// ErrBadFragment reports a fragment whose header is malformed or
	// inconsistent with the message being reassembled (wrong number, wrong
	// length, reserved bits set, payload longer than the packet, ...). The
	// partial message is discarded; the Conn stays usable.
	ErrBadFragment = errors.New("transport: bad fragment")

	// ErrReassemblyTimeout reports that the fragments of a message did not
	// all arrive within the reassembly timeout counted from the first one.
	// The partial message is discarded; the Conn stays usable.
	ErrReassemblyTimeout = errors.New("transport: reassembly timeout")

	// ErrFrameTimeout reports that a frame whose first byte had arrived was
	// not complete within the timeout given to
	// [FrameReceiver.ReceiveFrame]. The stream is out of step, so a stream
	// Conn closes itself. (A fragmentation Conn reports the same condition
	// as [ErrReassemblyTimeout] and stays usable.)
	ErrFrameTimeout = errors.New("transport: frame not complete in time")
)

// MessageTooLargeError is the error behind [ErrMessageTooLarge].
type MessageTooLargeError struct {
	// Size is the length that was sent or declared by the peer. It is not
	// trusted: nothing of that size was allocated.
	Size uint64
	// Limit is the largest length allowed.
	Limit int
}

// Error implements the error interface.
func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("transport: message of %d bytes exceeds the limit of %d", e.Size, e.Limit)
}

// Is reports whether target is [ErrMessageTooLarge].
func (e *MessageTooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// errTruncated is the error for a frame cut short.
var errTruncated = fmt.Errorf("%w: %w", ErrTruncated, io.ErrUnexpectedEOF)

func badFragment(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadFragment, fmt.Sprintf(format, args...))
}
