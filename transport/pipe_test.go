package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

func TestPipeRoundTrip(t *testing.T) {
	checkGoroutines(t)
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	for _, n := range []int{0, 1, 100, DefaultMaxMessageSize} {
		roundTrip(t, a, b, testMessage(n, 1))
		roundTrip(t, b, a, testMessage(n, 2))
	}
}

func TestPipeOwnership(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	msg := []byte("hello")
	if err := a.Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'J' // Send must not have retained msg
	got, err := b.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Fatalf("got %q, want %q", got, "hello")
	}
}

func TestPipeTooLarge(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	err := a.Send(context.Background(), make([]byte, DefaultMaxMessageSize+1))
	var tl *MessageTooLargeError
	if !errors.Is(err, ErrMessageTooLarge) || !errors.As(err, &tl) || tl.Limit != DefaultMaxMessageSize {
		t.Fatalf("Send of an oversized message: %v", err)
	}
}

func TestPipeCancel(t *testing.T) {
	checkGoroutines(t)
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch := receiveAsync(ctx, b)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled Receive: %v, want context.Canceled", r.err)
	}
	// Fill the buffer, then a cancelled Send gives up.
	for i := range pipeBuffer {
		if err := a.Send(context.Background(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Send(ctx, []byte("blocked")) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Send: %v, want context.Canceled", err)
	}
	// Nothing was lost.
	for i := range pipeBuffer {
		m, err := b.Receive(context.Background())
		if err != nil || len(m) != 1 || m[0] != byte(i) {
			t.Fatalf("message %d: %x, %v", i, m, err)
		}
	}
}

func TestPipeClose(t *testing.T) {
	checkGoroutines(t)
	a, b := Pipe()
	ctx := context.Background()
	ch := receiveAsync(ctx, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; !errors.Is(r.err, ErrClosed) || !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Receive interrupted by Close: %v", r.err)
	}
	if err := a.Send(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The other end fails to send and sees EOF.
	if err := b.Send(ctx, nil); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Send to a closed peer: %v", err)
	}
	if _, err := b.Receive(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive from a closed peer: %v", err)
	}
	b.Close()
}

func TestPipeDrainsAfterPeerClose(t *testing.T) {
	a, b := Pipe()
	ctx := context.Background()
	for i := range 3 {
		if err := a.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	for i := range 3 {
		m, err := b.Receive(ctx)
		if err != nil || m[0] != byte(i) {
			t.Fatalf("message %d: %x, %v", i, m, err)
		}
	}
	if _, err := b.Receive(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive after draining: %v, want io.EOF", err)
	}
	b.Close()
}

func TestPacketPipeMTU(t *testing.T) {
	a, b := PacketPipe(20)
	defer a.Close()
	defer b.Close()
	if a.MTU() != 20 || b.MTU() != 20 {
		t.Fatalf("MTU %d, %d, want 20", a.MTU(), b.MTU())
	}
	ctx := context.Background()
	if err := a.SendPacket(ctx, make([]byte, 21)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("SendPacket above the MTU: %v", err)
	}
	if err := a.SendPacket(ctx, testMessage(20, 3)); err != nil {
		t.Fatal(err)
	}
	p, err := b.ReceivePacket(ctx)
	if err != nil || len(p) != 20 {
		t.Fatalf("ReceivePacket: %d bytes, %v", len(p), err)
	}
	if a, _ := PacketPipe(1); a.MTU() != MinMTU {
		t.Fatalf("PacketPipe(1).MTU() = %d, want %d", a.MTU(), MinMTU)
	}
}

func TestPipeTrySend(t *testing.T) {
	checkGoroutines(t)
	a, b := Pipe()
	defer b.Close()
	ts, ok := a.(TrySender)
	if !ok {
		t.Fatal("a Pipe end is not a TrySender")
	}
	ctx := context.Background()
	t.Run("sends while the buffer has room, then refuses without sending", func(t *testing.T) {
		msg := []byte("m0")
		for i := range pipeBuffer {
			msg[1] = byte('0' + i)
			if sent, err := ts.TrySend(msg); !sent || err != nil {
				t.Fatalf("TrySend %d: %v, %v", i, sent, err)
			}
		}
		msg[1] = 'x' // TrySend must not have retained msg
		if sent, err := ts.TrySend([]byte("full")); sent || err != nil {
			t.Fatalf("TrySend on a full buffer: %v, %v; want false, nil", sent, err)
		}
		for i := range pipeBuffer {
			got, err := b.Receive(ctx)
			if err != nil || string(got) != "m"+string(rune('0'+i)) {
				t.Fatalf("message %d: %q, %v", i, got, err)
			}
		}
	})
	t.Run("keeps the order of Send", func(t *testing.T) {
		if err := a.Send(ctx, []byte("one")); err != nil {
			t.Fatal(err)
		}
		if sent, err := ts.TrySend([]byte("two")); !sent || err != nil {
			t.Fatalf("TrySend: %v, %v", sent, err)
		}
		for _, want := range []string{"one", "two"} {
			if got, err := b.Receive(ctx); err != nil || string(got) != want {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
	})
	t.Run("refuses a message too large", func(t *testing.T) {
		sent, err := ts.TrySend(make([]byte, DefaultMaxMessageSize+1))
		if sent || !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("got %v, %v; want false, ErrMessageTooLarge", sent, err)
		}
	})
	t.Run("fails once the peer has closed", func(t *testing.T) {
		c, d := Pipe()
		defer c.Close()
		d.Close()
		if sent, err := c.(TrySender).TrySend([]byte("x")); sent || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("got %v, %v; want false, io.ErrClosedPipe", sent, err)
		}
	})
	t.Run("fails once closed", func(t *testing.T) {
		a.Close()
		if sent, err := ts.TrySend([]byte("x")); sent || !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, %v; want false, ErrClosed", sent, err)
		}
	})
}
