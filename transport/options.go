package transport

import (
	"fmt"
	"math"
	"time"
)

// DefaultMaxMessageSize is the maximum message size used when an option
// leaves it zero: 64 KiB. Devices usually configure much less (the device
// agent's default is 2048 bytes).
const DefaultMaxMessageSize = 64 << 10

// DefaultReassemblyTimeout is the reassembly timeout used when
// [FragmentOptions] leaves it zero.
const DefaultReassemblyTimeout = 10 * time.Second

// MinMTU is the smallest packet size [NewFragmentConn] accepts: a header
// plus at least one byte of payload in every format.
const MinMTU = 10

// maxStreamMessage is the largest length a stream frame header can declare.
const maxStreamMessage = math.MaxUint32

// Framing selects how a stream Conn delimits messages. The zero value is
// [FramingSDA].
type Framing uint8

const (
	// FramingSDA is the serial frame of the original SDA tools:
	// "mbeddbap" (8 bytes), the message length (uint32, big-endian), the
	// message, and the SHA-256 of the message (32 bytes). The hash detects
	// line noise; it authenticates nothing.
	FramingSDA Framing = iota
	// FramingLength is a bare length prefix: the message length (uint32,
	// big-endian) then the message. Use it on links that already check
	// integrity, such as TCP.
	FramingLength
)

// String returns the name of the framing.
func (f Framing) String() string {
	switch f {
	case FramingSDA:
		return "sda"
	case FramingLength:
		return "length"
	}
	return fmt.Sprintf("Framing(%d)", uint8(f))
}

// Options configure stream Conns ([NewStreamConn], [Dial], [Listen],
// [NewListener]). The zero value (and a nil *Options) is usable: SDA serial
// framing and a 64 KiB message limit.
type Options struct {
	// Framing selects the frame format. The zero value is FramingSDA.
	Framing Framing
	// MaxMessageSize bounds messages in both directions, in bytes. Zero
	// means DefaultMaxMessageSize; negative values are invalid.
	MaxMessageSize int
}

// Validate reports whether the stream Conns would accept o, with an error
// matching [ErrInvalidOptions] when they would not. An adapter that opens a
// link of its own before framing it with [NewStreamConn] calls it first, so
// that options it cannot use leave the link untouched. A nil *Options is
// valid.
func (o *Options) Validate() error {
	_, err := o.resolve()
	return err
}

func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch r.Framing {
	case FramingSDA, FramingLength:
	default:
		return r, fmt.Errorf("%w: unknown framing %v", ErrInvalidOptions, r.Framing)
	}
	var err error
	r.MaxMessageSize, err = resolveMax(r.MaxMessageSize, maxStreamMessage)
	return r, err
}

func resolveMax(n int, ceiling uint64) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: negative MaxMessageSize %d", ErrInvalidOptions, n)
	case n == 0:
		n = DefaultMaxMessageSize
	}
	if uint64(n) > ceiling {
		n = int(ceiling)
	}
	return n, nil
}

// FragmentFormat selects the header format of a fragmentation Conn. The
// zero value is [FragmentV2].
type FragmentFormat uint8

const (
	// FragmentV2 is the native format of this SDK: a 5-byte header (9 bytes
	// on the first fragment) with a message id and a 16-bit fragment index.
	// It is symmetric. See the package documentation.
	FragmentV2 FragmentFormat = iota
	// FragmentCompatTechnician is the 8-byte header format of the original
	// SDA BLE example, on the technician's end: outgoing messages are wrapped
	// in an SDA serial frame before fragmentation, and incoming fragments
	// carry a bare message with one zero byte after each fragment's payload.
	FragmentCompatTechnician
	// FragmentCompatDevice is the same format on the device's end: incoming
	// messages arrive as fragmented SDA serial frames, outgoing ones are bare
	// with a zero byte after each fragment's payload.
	FragmentCompatDevice
)

// String returns the name of the format.
func (f FragmentFormat) String() string {
	switch f {
	case FragmentV2:
		return "v2"
	case FragmentCompatTechnician:
		return "compat-technician"
	case FragmentCompatDevice:
		return "compat-device"
	}
	return fmt.Sprintf("FragmentFormat(%d)", uint8(f))
}

// FragmentOptions configure [NewFragmentConn]. The zero value (and a nil
// *FragmentOptions) is usable: the v2 format, a 64 KiB message limit and a
// 10-second reassembly timeout.
type FragmentOptions struct {
	// Format selects the fragment header format.
	Format FragmentFormat
	// MaxMessageSize bounds messages in both directions, in bytes. Zero
	// means DefaultMaxMessageSize; negative values are invalid. The compat
	// formats cannot carry more than 65535 bytes (including the 44 bytes of
	// the SDA serial frame in the technician-to-device direction), and the
	// limit is lowered to fit.
	MaxMessageSize int
	// ReassemblyTimeout bounds the time between the first fragment of a
	// message and its last. Zero means DefaultReassemblyTimeout; negative
	// values are invalid.
	ReassemblyTimeout time.Duration
}
