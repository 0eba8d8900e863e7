package transport

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestTCPRoundTrip(t *testing.T) {
	checkGoroutines(t)
	for _, f := range framings {
		t.Run(f.String(), func(t *testing.T) {
			ctx := context.Background()
			o := &Options{Framing: f}
			l, err := Listen(ctx, "127.0.0.1:0", o)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			type accepted struct {
				c   Conn
				err error
			}
			ch := make(chan accepted, 1)
			go func() {
				c, err := l.Accept(ctx)
				ch <- accepted{c, err}
			}()
			client, err := Dial(ctx, l.Addr().String(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			a := <-ch
			if a.err != nil {
				t.Fatal(a.err)
			}
			defer a.c.Close()
			for _, n := range []int{0, 10, smallFrame + 1, DefaultMaxMessageSize} {
				roundTrip(t, client, a.c, testMessage(n, 5))
				roundTrip(t, a.c, client, testMessage(n, 6))
			}
		})
	}
}

func TestListenerAcceptCancel(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	l, err := Listen(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept(cctx)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Accept: %v", err)
	}
	// The Listener is still usable.
	ch := make(chan Conn, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			t.Errorf("Accept after a cancelled Accept: %v", err)
		}
		ch <- c
	}()
	c, err := Dial(ctx, l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-ch
	if s == nil {
		t.FailNow()
	}
	defer s.Close()
	roundTrip(t, c, s, []byte("accepted after a cancelled Accept"))
}

func TestListenerCloseUnblocks(t *testing.T) {
	checkGoroutines(t)
	l, err := Listen(context.Background(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept(context.Background())
		errc <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept interrupted by Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// noDeadlineListener hides SetDeadline, like a TLS listener.
type noDeadlineListener struct{ net.Listener }

func TestNewListenerWithoutDeadline(t *testing.T) {
	checkGoroutines(t)
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(noDeadlineListener{nl}, &Options{Framing: FramingLength})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept(ctx)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Accept: %v", err)
	}
	if _, err := NewListener(nl, &Options{MaxMessageSize: -5}); err == nil {
		t.Fatal("NewListener accepted a negative MaxMessageSize")
	}
}
