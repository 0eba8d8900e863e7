package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

const fuzzLimit = 4096

// frameErrors are the errors a frame decoder may return on bad input.
var frameErrors = []error{io.EOF, ErrBadMagic, ErrChecksum, ErrTruncated, ErrMessageTooLarge}

func isOneOf(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func frameSeeds(f *testing.F, framing Framing) {
	msgs := [][]byte{nil, []byte("hi"), testMessage(300, 1), testMessage(fuzzLimit, 2)}
	for _, m := range msgs {
		fr := appendFrame(nil, framing, m)
		f.Add(fr)
		f.Add(fr[:len(fr)-1])
		f.Add(append(bytes.Clone(fr), appendFrame(nil, framing, []byte("second"))...))
	}
	f.Add(appendFrameHeader(nil, framing, fuzzLimit+1))
	f.Add(appendFrameHeader(nil, framing, 0xFFFFFFFF))
	f.Add([]byte("mbeddbaX\x00\x00\x00\x00"))
}

// fuzzFrames reads frames from data until an error, checking each against
// a re-encoding of it.
func fuzzFrames(t *testing.T, data []byte, framing Framing) {
	r := bytes.NewReader(data)
	consumed := 0
	for {
		msg, _, err := readFrame(r, framing, fuzzLimit, nil)
		if err != nil {
			if !isOneOf(err, frameErrors) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(msg) > fuzzLimit {
			t.Fatalf("message of %d bytes above the limit", len(msg))
		}
		fr := appendFrame(nil, framing, msg)
		if !bytes.Equal(fr, data[consumed:consumed+len(fr)]) {
			t.Fatalf("accepted frame %x re-encodes as %x", data[consumed:consumed+len(fr)], fr)
		}
		consumed += len(fr)
	}
}

func FuzzSDAFrame(f *testing.F) {
	frameSeeds(f, FramingSDA)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFrames(t, data, FramingSDA)
		// The whole-buffer decoder (used after fragment reassembly) agrees.
		msg, err := decodeSDAFrame(data, fuzzLimit)
		if err != nil {
			if !isOneOf(err, append(frameErrors, ErrBadFragment)) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(appendFrame(nil, FramingSDA, msg), data) {
			t.Fatalf("decodeSDAFrame accepted %x", data)
		}
	})
}

func FuzzLengthFrame(f *testing.F) {
	frameSeeds(f, FramingLength)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFrames(t, data, FramingLength)
	})
}

// joinPackets encodes packets as the fuzzers read them: each prefixed by
// its length in one byte.
func joinPackets(pkts [][]byte) []byte {
	var b []byte
	for _, p := range pkts {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// splitPackets undoes joinPackets on arbitrary input.
func splitPackets(data []byte) [][]byte {
	var pkts [][]byte
	for len(data) > 0 {
		n := min(int(data[0]), len(data)-1)
		pkts = append(pkts, data[1:1+n])
		data = data[1+n:]
	}
	return pkts
}

var fragmentErrors = []error{ErrBadFragment, ErrMessageTooLarge}

func fragmentSeeds(f *testing.F, sender FragmentFormat, extra ...any) {
	for _, mtu := range []int{MinMTU, 20, 244} {
		for _, msgs := range [][][]byte{
			{nil},
			{[]byte("hello")},
			{testMessage(300, 1), []byte("second")},
			{testMessage(fuzzLimit-sdaOverhead, 2)},
		} {
			pkts := fragments(f, sender, mtu, msgs...)
			f.Add(append([]any{joinPackets(pkts)}, extra...)...)
			if len(pkts) > 2 {
				// Reordered and duplicated fragments.
				pkts[1], pkts[2] = pkts[2], pkts[1]
				f.Add(append([]any{joinPackets(append(pkts, pkts[0]))}, extra...)...)
			}
		}
	}
}

// fuzzReassembly feeds packets to a reassembler and checks what it returns.
func fuzzReassembly(t *testing.T, format FragmentFormat, data []byte) {
	r := newReassembler(format, fuzzLimit)
	for _, p := range splitPackets(data) {
		before := bytes.Clone(p)
		msg, err := r.feed(p)
		if !bytes.Equal(p, before) {
			t.Fatal("feed modified its packet")
		}
		if err != nil {
			if !isOneOf(err, fragmentErrors) {
				t.Fatalf("untyped error %v", err)
			}
			if r.inProgress() {
				t.Fatal("reassembly in progress after an error")
			}
			continue
		}
		if msg != nil && len(msg) > r.limit {
			t.Fatalf("message of %d bytes above the limit of %d", len(msg), r.limit)
		}
		if r.inProgress() && (len(r.buf) > cap(r.buf) || cap(r.buf) > r.limit) {
			t.Fatalf("buffer %d/%d with a limit of %d", len(r.buf), cap(r.buf), r.limit)
		}
	}
}

func FuzzReassemblyV2(f *testing.F) {
	fragmentSeeds(f, FragmentV2)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzReassembly(t, FragmentV2, data)
	})
}

// FuzzReassemblyCompat fuzzes the header format of the original SDA BLE
// example, on the device's end (fragments of serial frames) when device is
// true and on the technician's end (fragments with a trailing zero byte)
// otherwise.
func FuzzReassemblyCompat(f *testing.F) {
	fragmentSeeds(f, FragmentCompatTechnician, true)
	fragmentSeeds(f, FragmentCompatDevice, false)
	f.Fuzz(func(t *testing.T, data []byte, device bool) {
		format := FragmentCompatTechnician
		if device {
			format = FragmentCompatDevice
		}
		fuzzReassembly(t, format, data)
	})
}

// FuzzFragmentRoundTrip checks that what a sender fragments at any MTU, in
// any format, reassembles to the same message.
func FuzzFragmentRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint16(20), uint8(0))
	f.Add(testMessage(500, 3), uint16(MinMTU), uint8(1))
	f.Add(testMessage(1000, 4), uint16(244), uint8(2))
	f.Fuzz(func(t *testing.T, msg []byte, mtu uint16, format uint8) {
		if int(mtu) < MinMTU || len(msg) > fuzzLimit {
			return
		}
		sender := FragmentFormat(format % 3)
		pkts := fragments(t, sender, int(mtu), msg)
		r := newReassembler(peerFormat(sender), fuzzLimit)
		for i, p := range pkts {
			got, err := r.feed(p)
			if err != nil {
				t.Fatalf("fragment %d: %v", i, err)
			}
			if (got != nil) != (i == len(pkts)-1) {
				t.Fatalf("fragment %d of %d: message %v", i, len(pkts), got != nil)
			}
			if got == nil {
				continue
			}
			if sender == FragmentCompatTechnician {
				if got, err = decodeSDAFrame(got, fuzzLimit); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("reassembled %x, sent %x", got, msg)
			}
		}
	})
}
