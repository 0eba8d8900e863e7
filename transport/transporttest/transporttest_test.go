package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/transport"
)

// exchange sends msgs through a Conn pair whose sending or receiving end is
// wrapped with cfg, then returns what arrived (after a final "end" marker
// sent unharmed) and the wrapper's stats.
func exchange(t *testing.T, onSend bool, f Faults, msgs ...string) ([]string, Stats) {
	t.Helper()
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	var w *Conn
	if onSend {
		w = NewConn(a, Config{Seed: 1, Send: f})
		a = w
	} else {
		w = NewConn(b, Config{Seed: 1, Receive: f})
		b = w
	}
	for _, m := range msgs {
		if err := a.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// A marker, which flushes a reordered message and which the tests keep
	// from harm with Max.
	if err := a.Send(ctx, []byte("end")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m))
		if string(m) == "end" {
			break
		}
	}
	return got, w.Stats()
}

func TestFaults(t *testing.T) {
	for _, dir := range []string{"send", "receive"} {
		onSend := dir == "send"
		counts := func(s Stats) Counts {
			if onSend {
				return s.Send
			}
			return s.Receive
		}
		t.Run(dir+"/drop", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Drop: 1, Max: 1}, "1", "2")
			if fmt.Sprint(got) != "[2 end]" || counts(s).Drop != 1 || counts(s).Faults() != 1 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
		t.Run(dir+"/skip", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Drop: 1, Skip: 2, Max: 1}, "1", "2", "3", "4")
			if fmt.Sprint(got) != "[1 2 4 end]" || counts(s).Drop != 1 || counts(s).Messages != 5 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
		t.Run(dir+"/duplicate", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Duplicate: 1, Max: 1}, "1", "2")
			if fmt.Sprint(got) != "[1 1 2 end]" || counts(s).Duplicate != 1 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
		t.Run(dir+"/reorder", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Reorder: 1, Max: 1}, "1", "2", "3")
			if fmt.Sprint(got) != "[2 1 3 end]" || counts(s).Reorder != 1 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
		t.Run(dir+"/corrupt", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Corrupt: 1, Max: 1}, "hello")
			if len(got) != 2 || len(got[0]) != 5 || counts(s).Corrupt != 1 {
				t.Fatalf("got %q, %+v", got, s)
			}
			diff := 0
			for i := range 5 {
				diff += bits.OnesCount8(got[0][i] ^ "hello"[i])
			}
			if diff != 1 {
				t.Fatalf("%q differs from %q in %d bits, want 1", got[0], "hello", diff)
			}
		})
		t.Run(dir+"/truncate", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Truncate: 1, Max: 1}, "hello")
			if len(got) != 2 || len(got[0]) >= 5 || got[0] != "hello"[:len(got[0])] || counts(s).Truncate != 1 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
		t.Run(dir+"/delay", func(t *testing.T) {
			got, s := exchange(t, onSend, Faults{Delay: 1, DelayTime: time.Microsecond}, "1", "2")
			if fmt.Sprint(got) != "[1 2 end]" || counts(s).Delay != 3 {
				t.Fatalf("got %q, %+v", got, s)
			}
		})
	}
}

func TestDelayHonoursContext(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	w := NewConn(a, Config{Send: Faults{Delay: 1, DelayTime: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Send(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed Send with a cancelled context: %v", err)
	}
	// A delayed receive that is cancelled keeps its message.
	r := NewConn(b, Config{Receive: Faults{Delay: 1, DelayTime: time.Hour, Max: 1}})
	if err := a.Send(context.Background(), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		for r.Stats().Receive.Delay == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := r.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled delayed Receive: %v", err)
	}
	if m, err := r.Receive(context.Background()); err != nil || string(m) != "kept" {
		t.Fatalf("Receive after a cancelled delay: %q, %v", m, err)
	}
}

func TestSendDoesNotModifyCaller(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	w := NewConn(a, Config{Send: Faults{Corrupt: 1, Truncate: 1}})
	msg := []byte("original")
	if err := w.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if string(msg) != "original" {
		t.Fatalf("Send modified its argument: %q", msg)
	}
}

// TestDeterministic checks that a seed fixes the faults.
func TestDeterministic(t *testing.T) {
	f := Faults{Drop: 0.2, Duplicate: 0.2, Corrupt: 0.2, Truncate: 0.2, Reorder: 0.2}
	run := func(seed uint64) ([]string, Stats) {
		a, b := transport.Pipe()
		defer a.Close()
		defer b.Close()
		w := NewConn(a, Config{Seed: seed, Send: f})
		ctx := context.Background()
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				m, err := b.Receive(ctx)
				if err != nil {
					return // io.EOF once w is closed and drained
				}
				got = append(got, string(m))
			}
		}()
		for i := range 100 {
			if err := w.Send(ctx, []byte(fmt.Sprintf("message %d", i))); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		<-done
		return got, w.Stats()
	}
	got1, s1 := run(42)
	got2, s2 := run(42)
	if fmt.Sprint(got1) != fmt.Sprint(got2) || s1 != s2 {
		t.Fatalf("same seed, different faults:\n%q %+v\n%q %+v", got1, s1, got2, s2)
	}
	if s1.Send.Messages != 100 || s1.Send.Drop == 0 || s1.Send.Duplicate == 0 || s1.Send.Corrupt == 0 || s1.Send.Truncate == 0 || s1.Send.Reorder == 0 {
		t.Fatalf("expected every kind of fault in 100 messages: %+v", s1.Send)
	}
	if s1.Receive != (Counts{}) {
		t.Fatalf("faults counted in the receive direction: %+v", s1.Receive)
	}
}

// TestPacketFaultsSurfaceAsTypedErrors drops one packet under a
// fragmentation Conn: the receiver reports a typed error and then carries on.
func TestPacketFaultsSurfaceAsTypedErrors(t *testing.T) {
	for _, format := range []transport.FragmentFormat{transport.FragmentV2, transport.FragmentCompatTechnician} {
		t.Run(format.String(), func(t *testing.T) {
			x, y := transport.PacketPipe(20)
			fx := NewPacketConn(x, Config{Send: Faults{Drop: 1, Skip: 1, Max: 1}})
			if fx.MTU() != 20 {
				t.Fatalf("MTU %d", fx.MTU())
			}
			a, err := transport.NewFragmentConn(fx, &transport.FragmentOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			peer := transport.FragmentCompatDevice
			if format == transport.FragmentV2 {
				peer = format
			}
			b, err := transport.NewFragmentConn(y, &transport.FragmentOptions{Format: peer, ReassemblyTimeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx := context.Background()
			msg := bytes.Repeat([]byte("x"), 30) // at least 3 fragments in every format
			if err := a.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			_, err = b.Receive(ctx)
			if !errors.Is(err, transport.ErrBadFragment) && !errors.Is(err, transport.ErrReassemblyTimeout) {
				t.Fatalf("Receive of a message missing its second fragment: %v", err)
			}
			if s := fx.Stats(); s.Send.Drop != 1 {
				t.Fatalf("stats %+v", s)
			}
			if err := a.Send(ctx, []byte("next")); err != nil {
				t.Fatal(err)
			}
			if m, err := b.Receive(ctx); err != nil || string(m) != "next" {
				t.Fatalf("Receive after the fault: %q, %v", m, err)
			}
		})
	}
}

// A fault-injecting Conn keeps the capabilities a server relies on: the
// frame timeout and the start of a frame reach the wrapped Conn, started is
// called once per message however many are dropped before it, and the
// peer's address is the wrapped Conn's.
func TestConnKeepsServerCapabilities(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := transport.Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	inner, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(inner, Config{Seed: 1, Receive: Faults{Drop: 1, Max: 2}})
	defer c.Close()

	ra, ok := any(c).(transport.RemoteAddresser)
	if !ok {
		t.Fatal("the wrapper hides RemoteAddr")
	}
	if got, want := ra.RemoteAddr().String(), raw.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %v, want %v", got, want)
	}
	fr, ok := any(c).(transport.FrameReceiver)
	if !ok {
		t.Fatal("the wrapper hides ReceiveFrame")
	}

	// Three whole frames; the first two are dropped by the injector.
	send, err := transport.NewStreamConn(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		if err := send.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	starts := 0
	m, err := fr.ReceiveFrame(ctx, time.Minute, func() { starts++ })
	if err != nil || string(m) != "three" {
		t.Fatalf("ReceiveFrame = %q, %v; want the third message", m, err)
	}
	if starts != 1 {
		t.Fatalf("started called %d times for one message, want 1", starts)
	}

	// A frame begun and never finished is cut off by the frame timeout.
	if _, err := raw.Write([]byte("mbeddbap")); err != nil {
		t.Fatal(err)
	}
	starts = 0
	if _, err := fr.ReceiveFrame(ctx, 50*time.Millisecond, func() { starts++ }); !errors.Is(err, transport.ErrFrameTimeout) {
		t.Fatalf("stalled frame: %v, want ErrFrameTimeout", err)
	}
	if starts != 1 {
		t.Fatalf("started called %d times for a begun frame, want 1", starts)
	}
}

// Over a Conn without the capabilities, the wrapper reports no address and
// calls started when a message has arrived.
func TestConnWithoutServerCapabilities(t *testing.T) {
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(onlyConn{b}, Config{})
	if addr := c.RemoteAddr(); addr != nil {
		t.Fatalf("RemoteAddr %v, want nil", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = a.Send(ctx, []byte("hello")) }()
	starts := 0
	m, err := c.ReceiveFrame(ctx, time.Millisecond, func() { starts++ })
	if err != nil || string(m) != "hello" || starts != 1 {
		t.Fatalf("ReceiveFrame = %q, %v, %d starts", m, err, starts)
	}
}

// onlyConn hides every optional capability of a Conn.
type onlyConn struct{ transport.Conn }
