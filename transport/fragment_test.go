package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// scriptConn is a PacketConn for tests: it records what is sent and
// returns the packets queued with push.
type scriptConn struct {
	mtu    int
	mu     sync.Mutex
	sent   [][]byte
	in     chan []byte
	got    chan struct{} // one token per packet returned by ReceivePacket
	once   sync.Once
	closed chan struct{}
}

func newScriptConn(mtu int) *scriptConn {
	return &scriptConn{mtu: mtu, in: make(chan []byte, 1024), got: make(chan struct{}, 1024), closed: make(chan struct{})}
}

func (s *scriptConn) SendPacket(ctx context.Context, p []byte) error {
	if len(p) > s.mtu {
		return fmt.Errorf("packet of %d bytes above MTU %d", len(p), s.mtu)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, bytes.Clone(p))
	return nil
}

func (s *scriptConn) ReceivePacket(ctx context.Context) ([]byte, error) {
	select {
	case p := <-s.in:
		select {
		case s.got <- struct{}{}:
		default: // nobody counts
		}
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, ErrClosed
	}
}

func (s *scriptConn) MTU() int { return s.mtu }

func (s *scriptConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *scriptConn) push(pkts ...[]byte) {
	for _, p := range pkts {
		s.in <- p
	}
}

func (s *scriptConn) takeSent() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sent
	s.sent = nil
	return p
}

// fragments returns the packets a Conn of the given format sends for msg.
func fragments(t testing.TB, format FragmentFormat, mtu int, msgs ...[]byte) [][]byte {
	t.Helper()
	sc := &scriptConn{mtu: mtu} // send only
	c, err := NewFragmentConn(sc, &FragmentOptions{Format: format})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return sc.takeSent()
}

// peerFormat returns the format of the other end of a link.
func peerFormat(f FragmentFormat) FragmentFormat {
	switch f {
	case FragmentCompatTechnician:
		return FragmentCompatDevice
	case FragmentCompatDevice:
		return FragmentCompatTechnician
	}
	return f
}

func fragPair(t testing.TB, format FragmentFormat, mtu int, o *FragmentOptions) (Conn, Conn) {
	t.Helper()
	x, y := PacketPipe(mtu)
	var oa, ob FragmentOptions
	if o != nil {
		oa, ob = *o, *o
	}
	oa.Format, ob.Format = format, peerFormat(format)
	a, err := NewFragmentConn(x, &oa)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFragmentConn(y, &ob)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

var fragmentFormats = []FragmentFormat{FragmentV2, FragmentCompatTechnician}

func TestFragmentRoundTrip(t *testing.T) {
	checkGoroutines(t)
	for _, f := range fragmentFormats {
		for _, mtu := range []int{MinMTU, 20, 244, 512} {
			t.Run(fmt.Sprintf("%v/mtu%d", f, mtu), func(t *testing.T) {
				a, b := fragPair(t, f, mtu, nil)
				for _, n := range []int{0, 1, 11, 12, 13, 221, 222, 223, 444, 2048, 5000} {
					roundTrip(t, a, b, testMessage(n, byte(n)))
					roundTrip(t, b, a, testMessage(n, byte(n+1)))
				}
			})
		}
	}
}

func TestFragmentLargestMessage(t *testing.T) {
	for _, f := range fragmentFormats {
		t.Run(f.String(), func(t *testing.T) {
			a, b := fragPair(t, f, 244, &FragmentOptions{MaxMessageSize: 1 << 20})
			// The compat formats carry at most 65535 bytes, frame included.
			n := 100000
			if f != FragmentV2 {
				n = 65535 - sdaOverhead
			}
			roundTrip(t, a, b, testMessage(n, 9))
			if f == FragmentV2 {
				return
			}
			if err := a.Send(context.Background(), make([]byte, n+1)); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("Send above the format's limit: %v", err)
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFragmentCompatWireFormat pins the headers of the original SDA BLE
// example at MTU 244: 222-byte chunks, the device's trailing zero byte, the
// technician's serial frame.
func TestFragmentCompatWireFormat(t *testing.T) {
	msg := testMessage(300, 0)

	dev := fragments(t, FragmentCompatDevice, 244, msg)
	wantDev := [][]byte{
		append(append(mustHex(t, ""+
			"00"+ // sequence number
			"0d"+ // type 1 (data) | more fragments (0x04) | fragment number 1 << 3
			"de"+ // payload length 222
			"2c01"+ // total length 300, little-endian
			"00"+ // not a retransmission
			"0000"), // reserved
			msg[:222]...), 0), // payload, trailing zero byte
		append(append(mustHex(t, ""+
			"01"+ // sequence number
			"11"+ // type 1 | fragment number 2 << 3, last
			"4e"+ // payload length 78
			"2c01"+
			"00"+
			"0000"),
			msg[222:]...), 0),
	}
	if !equalPackets(dev, wantDev) {
		t.Fatalf("device fragments:\n%x\nwant\n%x", dev, wantDev)
	}

	tech := fragments(t, FragmentCompatTechnician, 244, msg)
	frame := appendFrame(nil, FramingSDA, msg) // 344 bytes
	wantTech := [][]byte{
		append(mustHex(t, "00"+"0d"+"de"+"5801"+"00"+"0000"), frame[:222]...),
		append(mustHex(t, "01"+"11"+"7a"+"5801"+"00"+"0000"), frame[222:]...),
	}
	if !equalPackets(tech, wantTech) {
		t.Fatalf("technician fragments:\n%x\nwant\n%x", tech, wantTech)
	}
}

// TestFragmentCompatNumberWraps checks the 3-bit fragment number at MTU 20:
// a 100-byte message becomes a 144-byte serial frame in 12 fragments of 12
// bytes numbered 1..7, 0, 1..4.
func TestFragmentCompatNumberWraps(t *testing.T) {
	pkts := fragments(t, FragmentCompatTechnician, 20, testMessage(100, 0), testMessage(1, 0))
	if len(pkts) != 12+4 { // the second message is a 45-byte frame
		t.Fatalf("%d fragments, want 12 + 4", len(pkts))
	}
	for i, p := range pkts[:12] {
		number := (i + 1) & 7
		more := i < 11
		if p[0] != byte(i) || int(p[1]>>3) != number || (p[1]&compatFlagMore != 0) != more || p[2] != 12 || len(p) != 20 {
			t.Errorf("fragment %d: header %x, want sequence %d, number %d, more %v", i, p[:8], i, number, more)
		}
	}
	if p := pkts[12]; p[0] != 12 || p[1] != 0x0d {
		t.Errorf("next message: header %x, want sequence 12, number 1, more", p[:8])
	}
	// And the receiver follows the wrap.
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, &FragmentOptions{Format: FragmentCompatDevice})
	if err != nil {
		t.Fatal(err)
	}
	sc.push(pkts...)
	for _, want := range [][]byte{testMessage(100, 0), testMessage(1, 0)} {
		if m, err := c.Receive(context.Background()); err != nil || !bytes.Equal(m, want) {
			t.Fatalf("Receive: %x, %v", m, err)
		}
	}
}

// TestFragmentV2WireFormat pins the native header.
func TestFragmentV2WireFormat(t *testing.T) {
	msg := testMessage(20, 0)
	pkts := fragments(t, FragmentV2, 20, msg, nil)
	want := [][]byte{
		append(mustHex(t, ""+
			"21"+ // version 2 | first
			"0000"+ // message id 0
			"0000"+ // fragment index 0
			"00000014"), // total length 20
			msg[:11]...),
		append(mustHex(t, ""+
			"22"+ // version 2 | last
			"0000"+ // message id 0
			"0001"), // fragment index 1
			msg[11:]...),
		mustHex(t, "23"+"0001"+"0000"+"00000000"), // message 1: empty, first and last
	}
	if !equalPackets(pkts, want) {
		t.Fatalf("fragments:\n%x\nwant\n%x", pkts, want)
	}
}

func equalPackets(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func v2Packet(flags byte, id, idx uint16, total uint32, payload string) []byte {
	p := []byte{v2Version | flags}
	p = binary.BigEndian.AppendUint16(p, id)
	p = binary.BigEndian.AppendUint16(p, idx)
	if flags&v2FlagFirst != 0 {
		p = binary.BigEndian.AppendUint32(p, total)
	}
	return append(p, payload...)
}

func compatPacket(seq, b1 byte, total int, payload string, trail bool) []byte {
	p := []byte{seq, b1, byte(len(payload))}
	p = binary.LittleEndian.AppendUint16(p, uint16(total))
	p = append(p, 0, 0, 0)
	p = append(p, payload...)
	if trail {
		p = append(p, 0)
	}
	return p
}

func TestFragmentBadInput(t *testing.T) {
	const first, last = v2FlagFirst, v2FlagLast
	const more = compatFlagMore
	n1, n2, n3 := byte(1<<3|1), byte(2<<3|1), byte(3<<3|1) // compat fragment numbers, type data
	frame := appendFrame(nil, FramingSDA, []byte("hello")) // 49 bytes
	badSum := bytes.Clone(frame)
	badSum[len(badSum)-1] ^= 0x80
	for _, tc := range []struct {
		name   string
		format FragmentFormat // of the receiver
		pkts   [][]byte
		want   error
	}{
		{"v2/short packet", FragmentV2, [][]byte{{0x21, 0, 0}}, ErrBadFragment},
		{"v2/short first header", FragmentV2, [][]byte{{0x21, 0, 0, 0, 0, 0, 0}}, ErrBadFragment},
		{"v2/version", FragmentV2, [][]byte{{0x13, 0, 0, 0, 0, 0, 0, 0, 0}}, ErrBadFragment},
		{"v2/reserved flags", FragmentV2, [][]byte{v2Packet(first|last|0x04, 0, 0, 0, "")}, ErrBadFragment},
		{"v2/first with index", FragmentV2, [][]byte{v2Packet(first|last, 0, 1, 1, "a")}, ErrBadFragment},
		{"v2/too large", FragmentV2, [][]byte{v2Packet(first, 0, 0, DefaultMaxMessageSize+1, "a")}, ErrMessageTooLarge},
		{"v2/huge", FragmentV2, [][]byte{v2Packet(first, 0, 0, 0xFFFFFFFF, "a")}, ErrMessageTooLarge},
		{"v2/payload beyond total", FragmentV2, [][]byte{v2Packet(first|last, 0, 0, 1, "ab")}, ErrBadFragment},
		{"v2/last too short", FragmentV2, [][]byte{v2Packet(first|last, 0, 0, 3, "ab")}, ErrBadFragment},
		{"v2/full but not last", FragmentV2, [][]byte{v2Packet(first, 0, 0, 2, "ab")}, ErrBadFragment},
		{"v2/empty middle", FragmentV2, [][]byte{v2Packet(first, 0, 0, 3, "a"), v2Packet(0, 0, 1, 0, "")}, ErrBadFragment},
		{"v2/overflow", FragmentV2, [][]byte{v2Packet(first, 0, 0, 3, "a"), v2Packet(last, 0, 1, 0, "bcd")}, ErrBadFragment},
		{"v2/gap", FragmentV2, [][]byte{v2Packet(first, 0, 0, 3, "a"), v2Packet(last, 0, 2, 0, "bc")}, ErrBadFragment},
		{"v2/other message", FragmentV2, [][]byte{v2Packet(first, 0, 0, 3, "a"), v2Packet(last, 1, 1, 0, "bc")}, ErrBadFragment},
		{"v2/orphan", FragmentV2, [][]byte{v2Packet(last, 7, 1, 0, "bc")}, ErrBadFragment},

		{"compat/short packet", FragmentCompatTechnician, [][]byte{{0, n1, 0, 0, 0, 0, 0}}, ErrBadFragment},
		{"compat/type", FragmentCompatTechnician, [][]byte{compatPacket(0, 1<<3|2, 1, "a", true)}, ErrBadFragment},
		{"compat/high bits", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|0x40, 1, "a", true)}, ErrBadFragment},
		{"compat/retransmission", FragmentCompatTechnician, [][]byte{func() []byte {
			p := compatPacket(0, n1, 1, "a", true)
			p[5] = 1
			return p
		}()}, ErrBadFragment},
		{"compat/reserved", FragmentCompatTechnician, [][]byte{func() []byte {
			p := compatPacket(0, n1, 1, "a", true)
			p[7] = 1
			return p
		}()}, ErrBadFragment},
		{"compat/payload length beyond packet", FragmentCompatTechnician, [][]byte{func() []byte {
			p := compatPacket(0, n1, 1, "a", true)
			p[2] = 200
			return p
		}()}, ErrBadFragment},
		{"compat/bytes after payload", FragmentCompatTechnician, [][]byte{append(compatPacket(0, n1, 1, "a", true), 0)}, ErrBadFragment},
		{"compat/missing trailing zero", FragmentCompatTechnician, [][]byte{compatPacket(0, n1, 1, "a", false)}, ErrBadFragment},
		{"compat/nonzero trailing byte", FragmentCompatTechnician, [][]byte{func() []byte {
			p := compatPacket(0, n1, 1, "a", true)
			p[len(p)-1] = 7
			return p
		}()}, ErrBadFragment},
		{"compat/unexpected trailing byte", FragmentCompatDevice, [][]byte{compatPacket(0, n1, 1, "a", true)}, ErrBadFragment},
		{"compat/too large", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 0xFFFF, "a", true)}, ErrMessageTooLarge},
		{"compat/orphan", FragmentCompatTechnician, [][]byte{compatPacket(0, n2, 2, "a", true)}, ErrBadFragment},
		{"compat/skipped number", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 3, "a", true), compatPacket(1, n3, 3, "bc", true)}, ErrBadFragment},
		{"compat/total changed", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 3, "a", true), compatPacket(1, n2, 4, "bc", true)}, ErrBadFragment},
		{"compat/overflow", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 3, "a", true), compatPacket(1, n2, 3, "bcd", true)}, ErrBadFragment},
		{"compat/last too short", FragmentCompatTechnician, [][]byte{compatPacket(0, n1, 3, "ab", true)}, ErrBadFragment},
		{"compat/full but more", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 2, "ab", true)}, ErrBadFragment},
		{"compat/empty middle", FragmentCompatTechnician, [][]byte{compatPacket(0, n1|more, 2, "", true)}, ErrBadFragment},
		{"compat/bad checksum", FragmentCompatDevice, [][]byte{compatPacket(0, n1, len(badSum), string(badSum), false)}, ErrChecksum},
		{"compat/bad magic", FragmentCompatDevice, [][]byte{compatPacket(0, n1, 5, "hello", false)}, ErrBadMagic},
		{"compat/short frame", FragmentCompatDevice, [][]byte{compatPacket(0, n1, 20, string(frame[:20]), false)}, ErrTruncated},
		{"compat/frame with trailing bytes", FragmentCompatDevice, [][]byte{compatPacket(0, n1, len(frame)+1, string(frame)+"x", false)}, ErrBadFragment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			sc := newScriptConn(512)
			c, err := NewFragmentConn(sc, &FragmentOptions{Format: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc.push(tc.pkts...)
			if _, err := c.Receive(context.Background()); !errors.Is(err, tc.want) {
				t.Fatalf("Receive: %v, want %v", err, tc.want)
			}
			// The Conn is still usable: a well-formed message arrives.
			next := fragments(t, peerFormat(tc.format), 512, []byte("next"))
			sc.push(next...)
			m, err := c.Receive(context.Background())
			if err != nil || string(m) != "next" {
				t.Fatalf("Receive after the error: %q, %v", m, err)
			}
		})
	}
}

func TestFragmentLateAndDuplicateFragments(t *testing.T) {
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := testMessage(40, 1)
	pkts := fragments(t, FragmentV2, 20, msg)
	if len(pkts) != 3 {
		t.Fatalf("%d fragments", len(pkts))
	}
	// A duplicated fragment is ignored; so is a late copy of a finished
	// message's fragment.
	sc.push(pkts[0], pkts[1], pkts[1], pkts[2], pkts[2], pkts[1])
	sc.push(fragments(t, FragmentV2, 20, nil, []byte("second"))[1])
	for _, want := range []string{string(msg), "second"} {
		if m, err := c.Receive(context.Background()); err != nil || string(m) != want {
			t.Fatalf("Receive: %q, %v; want %q", m, err, want)
		}
	}
}

func TestFragmentFirstReplacesPartial(t *testing.T) {
	for _, f := range fragmentFormats {
		t.Run(f.String(), func(t *testing.T) {
			sc := newScriptConn(20)
			c, err := NewFragmentConn(sc, &FragmentOptions{Format: peerFormat(f)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			pkts := fragments(t, f, 20, testMessage(100, 1))
			// The first two fragments of the first message, then its sender
			// gives up and sends the second message.
			sc.push(pkts[0], pkts[1])
			sc.push(fragments(t, f, 20, []byte("whole"))...)
			if m, err := c.Receive(context.Background()); err != nil || string(m) != "whole" {
				t.Fatalf("Receive: %q, %v", m, err)
			}
		})
	}
}

func TestFragmentReassemblyTimeout(t *testing.T) {
	checkGoroutines(t)
	for _, f := range fragmentFormats {
		t.Run(f.String(), func(t *testing.T) {
			sc := newScriptConn(20)
			c, err := NewFragmentConn(sc, &FragmentOptions{Format: peerFormat(f), ReassemblyTimeout: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// At most 8 fragments: beyond, the compat format's fragment number
			// wraps to 1 and a stale fragment would look like a first one.
			pkts := fragments(t, f, 20, testMessage(40, 1), []byte("next"))
			sc.push(pkts[0])
			if _, err := c.Receive(context.Background()); !errors.Is(err, ErrReassemblyTimeout) {
				t.Fatalf("Receive of an incomplete message: %v", err)
			}
			// The rest of the stale message is dropped; the next one arrives.
			sc.push(pkts[1:]...)
			if m, err := c.Receive(context.Background()); err != nil || string(m) != "next" {
				t.Fatalf("Receive after a timeout: %q, %v", m, err)
			}
		})
	}
}

// TestFragmentReassemblyTimeoutIsPerMessage checks that a peer trickling
// fragments cannot stretch a reassembly beyond its timeout: fragments keep
// arriving faster than the timeout, the message never completes.
func TestFragmentReassemblyTimeoutIsPerMessage(t *testing.T) {
	checkGoroutines(t)
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, &FragmentOptions{ReassemblyTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pkts := fragments(t, FragmentV2, 20, testMessage(200, 1))
	sc.push(pkts[0])
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc.push(pkts[1])
		for {
			// A repeat of the previous fragment: valid, ignored, and
			// never completing the message.
			select {
			case sc.in <- pkts[1]:
			case <-stop:
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	// The outer deadline only turns a hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Receive(ctx)
	close(stop)
	<-done
	c.Close()
	if !errors.Is(err, ErrReassemblyTimeout) {
		t.Fatalf("Receive: %v, want ErrReassemblyTimeout", err)
	}
}

func TestStreamDeadline(t *testing.T) {
	checkGoroutines(t)
	a, b := streamPair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := b.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive past its deadline: %v", err)
	}
	roundTrip(t, a, b, []byte("still usable"))
}

func TestFragmentCancelKeepsPartial(t *testing.T) {
	checkGoroutines(t)
	for _, f := range fragmentFormats {
		t.Run(f.String(), func(t *testing.T) {
			sc := newScriptConn(20)
			c, err := NewFragmentConn(sc, &FragmentOptions{Format: peerFormat(f)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := testMessage(100, 1)
			pkts := fragments(t, f, 20, msg)
			ctx, cancel := context.WithCancel(context.Background())
			ch := receiveAsync(ctx, c)
			sc.push(pkts[:2]...)
			<-sc.got
			<-sc.got
			cancel()
			if r := <-ch; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled Receive: %v", r.err)
			}
			sc.push(pkts[2:]...)
			if m, err := c.Receive(context.Background()); err != nil || !bytes.Equal(m, msg) {
				t.Fatalf("Receive after cancel: %x, %v", m, err)
			}
		})
	}
}

func TestFragmentClose(t *testing.T) {
	checkGoroutines(t)
	a, b := fragPair(t, FragmentV2, 20, nil)
	ch := receiveAsync(context.Background(), a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Receive interrupted by Close: %v", r.err)
	}
	if err := a.Send(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Receive(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive from a closed peer: %v", err)
	}
}

func TestFragmentOptions(t *testing.T) {
	small, _ := PacketPipe(MinMTU)
	tiny := newScriptConn(MinMTU - 1)
	for _, tc := range []struct {
		pc PacketConn
		o  FragmentOptions
	}{
		{tiny, FragmentOptions{}},
		{small, FragmentOptions{Format: 9}},
		{small, FragmentOptions{MaxMessageSize: -1}},
		{small, FragmentOptions{ReassemblyTimeout: -time.Second}},
	} {
		if _, err := NewFragmentConn(tc.pc, &tc.o); err == nil {
			t.Errorf("NewFragmentConn(MTU %d, %+v) succeeded", tc.pc.MTU(), tc.o)
		}
	}
	// The limit applies to sending too.
	a, b := fragPair(t, FragmentV2, 20, &FragmentOptions{MaxMessageSize: 10})
	if err := a.Send(context.Background(), make([]byte, 11)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send above MaxMessageSize: %v", err)
	}
	roundTrip(t, a, b, make([]byte, 10))
}

// TestFragmentLostFirstIsOneError: when the first fragment of a message is
// lost, the receiver reports one error for that message, not one for each
// of its remaining fragments, and the next message arrives intact.
func TestFragmentLostFirstIsOneError(t *testing.T) {
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkts := fragments(t, FragmentV2, 20, testMessage(200, 1), []byte("next"))
	if len(pkts) < 10 {
		t.Fatalf("%d fragments", len(pkts))
	}
	sc.push(pkts[1:]...) // the first fragment of the first message is lost
	errs := 0
	for {
		m, err := c.Receive(context.Background())
		if err != nil {
			if !errors.Is(err, ErrBadFragment) {
				t.Fatalf("Receive: %v, want ErrBadFragment", err)
			}
			errs++
			continue
		}
		if string(m) != "next" {
			t.Fatalf("Receive: %q, want \"next\"", m)
		}
		break
	}
	if errs != 1 {
		t.Fatalf("%d errors for one broken message, want 1", errs)
	}
}

// TestFragmentDuplicateSingleFragmentMessage: a repeated first fragment of
// the message last finished is a late fragment of it, ignored like the
// others, even when it is also its last fragment: otherwise a link that
// repeats one packet makes the Conn deliver a whole message twice.
func TestFragmentDuplicateSingleFragmentMessage(t *testing.T) {
	sc := newScriptConn(20)
	c, err := NewFragmentConn(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkts := fragments(t, FragmentV2, 20, []byte("once"), []byte("next"))
	if len(pkts) != 2 {
		t.Fatalf("%d fragments", len(pkts))
	}
	sc.push(pkts[0], pkts[0], pkts[1])
	for _, want := range []string{"once", "next"} {
		if m, err := c.Receive(context.Background()); err != nil || string(m) != want {
			t.Fatalf("Receive: %q, %v; want %q", m, err, want)
		}
	}
}
