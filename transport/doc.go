// Package transport moves opaque messages between a technician and a
// device: it frames them over byte streams, fragments them over small-packet
// links, and provides in-memory pipes for tests. Both sides use it: a
// technician app connects to a device ([Dial] for TCP, [NewStreamConn] over
// any byte stream, [NewFragmentConn] over BLE) and hands the [Conn] to a
// client.Session; a device agent serves a Conn or what [Listen] accepts.
// It never looks inside a message (it parses no CBOR); authenticity is the
// business of the layers above, which sign what they send.
//
// A [Conn] sends and receives whole messages. The implementations are:
//
//   - [Pipe]: an in-memory pair, for tests and single-process setups.
//   - [NewStreamConn]: framing over any io.ReadWriteCloser (serial port, USB
//     CDC, TCP, net.Pipe), with the SDA serial frame of the original tools
//     ([FramingSDA], the default) or a bare length prefix ([FramingLength]).
//   - [Dial], [Listen] and [NewListener]: TCP (or any net.Listener) with
//     stream framing.
//   - [NewFragmentConn]: fragmentation over a [PacketConn] of bounded MTU,
//     such as a BLE GATT characteristic, in the native v2 format or in the
//     8-byte header format of the original SDA BLE example. [PacketPipe] is
//     an in-memory PacketConn.
//
// Serial ports (USB serial adapters, USB CDC devices, UARTs) on Linux,
// Windows and macOS are opened by the adapter package transport/serial,
// which keeps its dependency out of this package; its Dial returns a stream
// Conn. Package transporttest wraps a Conn or a PacketConn to inject
// faults.
//
// # Concurrency
//
// One Send and one Receive may run at the same time on a Conn; concurrent
// calls of the same method are serialised, so messages never interleave.
// Close may be called at any time, from any goroutine: it unblocks pending
// calls, which return an error matching [ErrClosed] (net.ErrClosed).
//
// Every call takes a context. When it ends, a pending call returns an error
// wrapping ctx.Err(). A Pipe, a fragmentation Conn and a stream Conn that had
// not yet moved a byte of the current frame stay usable afterwards. A stream
// Conn whose frame was cut halfway closes itself: it could not find the
// start of the next frame. A stream without deadline support (an
// io.ReadWriteCloser with no working SetReadDeadline and SetWriteDeadline)
// can only be interrupted by closing it, so cancellation closes it. No call
// leaves a goroutine behind.
//
// Ownership follows net/http's RoundTripper: Send does not retain or modify
// its argument after returning; Receive returns a slice the caller owns.
// A loop that is done with each message before the next can avoid that
// allocation through the optional [BufferReceiver] (stream Conns implement
// it): the message is read into the caller's buffer.
//
// Two more optional capabilities serve servers. [FrameReceiver] (stream,
// fragmentation and pipe Conns) tells when a message has begun and bounds
// the time its rest may take, so that a server can tell an idle peer from a
// slow one. [RemoteAddresser] (stream Conns) tells the peer's network
// address, so that a server can tell sources apart. [TrySender] (pipe
// Conns) sends a message only when that needs no wait for the peer, so
// that a peer that must keep receiving while it sends (client.Session, the
// device's Serve) needs no second goroutine, nor a timer, for the send.
//
// # Errors
//
// Bad input gets a typed error, never a panic: [ErrMessageTooLarge] (a
// [*MessageTooLargeError]), [ErrBadMagic], [ErrChecksum], [ErrTruncated],
// [ErrBadFragment], [ErrReassemblyTimeout] and [ErrFrameTimeout], all to be
// tested with errors.Is. A clean end of stream between messages returns
// io.EOF. On a stream Conn, [ErrChecksum] drops the message and keeps the
// Conn; the other framing errors close it. On a fragmentation Conn, every
// error drops the partial message and keeps the Conn.
//
// # Security considerations
//
// Every reader bounds the message size ([Options.MaxMessageSize],
// [FragmentOptions.MaxMessageSize], default [DefaultMaxMessageSize]; the
// device agent configures 2048 bytes). A declared length is checked against
// the bound before anything is allocated for it, so a peer cannot make a
// reader allocate more than the bound per connection. Fragment reassembly
// checks every header field against the packet that carries it and against
// the message being reassembled, and bounds the time a partial message is
// kept ([FragmentOptions.ReassemblyTimeout]), so a peer cannot hold a buffer
// open by trickling fragments. A stream Conn bounds the time a frame takes
// once begun when asked to ([FrameReceiver]); a server should ask, or a peer
// trickling one byte now and then holds the Conn for ever. The decoders are
// fuzzed.
//
// The SHA-256 in the SDA serial frame detects line noise; anyone can compute
// it, so it proves nothing about the sender. Nothing in this package
// encrypts or authenticates: messages are protected end to end by the COSE
// signatures of the layers above, and links that need confidentiality must
// provide it (TLS through [NewListener] and [NewStreamConn], BLE pairing).
//
// # Compatibility
//
// [FramingSDA] is the serial frame of the original SDA tools, byte for byte:
// "mbeddbap" (6d 62 65 64 64 62 61 70), the message length as a big-endian
// uint32, the message, and the SHA-256 of the message.
//
// [FragmentCompatTechnician] and [FragmentCompatDevice] are the two ends of
// the BLE fragmentation of the original example. Each packet has an 8-byte
// header: byte 0 a sequence number (+1 per fragment, wrapping); byte 1 bits
// 0-1 the type (1, data), bit 2 "more fragments", bits 3-5 the fragment
// number (1-based, wrapping to 0 after 7); byte 2 the payload length; bytes
// 3-4 the total length of the carried bytes, little-endian; byte 5 the
// retransmission flag; bytes 6-7 reserved. A payload is at most 222 bytes,
// and at most the MTU less the header (and less the device's zero byte). The
// technician carries SDA serial frames; the device carries bare messages and
// appends one zero byte after each fragment's payload (not counted in the
// payload length). The total length field limits a carried message to 65535
// bytes.
//
// Where the original left room, this implementation is strict: the type must
// be 1, the retransmission flag and the reserved bits and bytes zero (the
// original never retransmits), the packet exactly as long as its header says,
// the trailing byte zero, the total length the same in every fragment. The
// sequence number is sent but not checked, since the fragment number and
// lengths already place each fragment. The format has no message identifier:
// after a reassembly failure, the ninth fragment of the abandoned message
// carries number 1 again and starts a new (doomed) reassembly, which then
// fails on its length. Prefer [FragmentV2] where both ends allow it.
//
// # Native fragment format (v2)
//
// [FragmentV2] is symmetric and identifies each message, so that late,
// duplicated and foreign fragments are recognised. All integers are
// big-endian:
//
//	byte 0     0x2 in the high nibble (format version); bit 0 first
//	           fragment; bit 1 last fragment; bits 2-3 reserved, zero
//	bytes 1-2  message id, +1 per message, wrapping
//	bytes 3-4  fragment index: 0 for the first fragment, +1 for each next
//	bytes 5-8  total message length, in the first fragment only
//	then       the payload, up to the end of the packet
//
// The header costs 9 bytes on the first fragment and 5 on the others; a
// message needs at most 65536 fragments. The receiver requires fragments in
// order (GATT writes and notifications are ordered), ignores a repeated
// fragment, fragments of the message it last finished and a repeated first
// fragment of the message it last delivered, and restarts on any other
// first fragment.
package transport
