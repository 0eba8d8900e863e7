package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func request(addr, path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
}

func TestRoundTrip(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "hello")
		case "/missing":
			http.NotFound(w, r)
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			io.WriteString(w, "x")
		}
	})
	c, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 { // the connection is reused
		status, body, err := c.RoundTrip(request(addr, "/ok"))
		if err != nil || status != 200 || string(body) != "hello" {
			t.Fatalf("RoundTrip(/ok) = %d, %q, %v; want 200, hello", status, body, err)
		}
	}
	status, _, err := c.RoundTrip(request(addr, "/missing"))
	if err != nil || status != 404 {
		t.Fatalf("RoundTrip(/missing) = %d, %v; want 404", status, err)
	}
	if _, _, err := c.RoundTrip(request(addr, "/chunked")); !errors.Is(err, ErrResponse) {
		t.Fatalf("RoundTrip(/chunked) error = %v; want ErrResponse", err)
	}
}

func TestRun(t *testing.T) {
	var calls atomic.Int64
	if _, err := Run(4, 1000, func(i int) error {
		if i < 0 || i >= 4 {
			return fmt.Errorf("client index %d", i)
		}
		calls.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1000 {
		t.Fatalf("%d calls; want 1000", calls.Load())
	}
	boom := errors.New("boom")
	calls.Store(0)
	_, err := Run(4, 1000, func(int) error {
		if calls.Add(1) == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run error = %v; want boom", err)
	}
	if n := calls.Load(); n >= 1000 {
		t.Fatalf("Run went on after an error: %d calls", n)
	}
}

// FuzzRoundTrip reads arbitrary answers: an error or a body within the
// bound, never a panic.
func FuzzRoundTrip(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	f.Add("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
	f.Add("HTTP/1.0 2")
	f.Fuzz(func(t *testing.T, answer string) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			buf := make([]byte, 64)
			if _, err := server.Read(buf); err != nil {
				return
			}
			io.Copy(server, strings.NewReader(answer))
		}()
		c := &Conn{c: client, r: newReader(client)}
		_, body, err := c.RoundTrip([]byte("GET / HTTP/1.1\r\n\r\n"))
		if err == nil && len(body) > maxBody {
			t.Fatalf("body of %d bytes", len(body))
		}
	})
}

func TestInterleave(t *testing.T) {
	t.Run("in turn, batch by batch", func(t *testing.T) {
		var inA, inB, a, b atomic.Int64
		side := func(in, other, n *atomic.Int64) func(int) error {
			return func(int) error {
				in.Add(1)
				defer in.Add(-1)
				if other.Load() != 0 {
					return errors.New("the two sides ran at once")
				}
				n.Add(1)
				return nil
			}
		}
		rounds := 0
		ta, tb, calls, err := Interleave(3, 10, func() bool { rounds++; return rounds <= 4 },
			side(&inA, &inB, &a), side(&inB, &inA, &b))
		if err != nil || calls != 40 || a.Load() != 40 || b.Load() != 40 || ta <= 0 || tb <= 0 {
			t.Fatalf("Interleave = %v, %v, %d, %v; a ran %d times, b %d", ta, tb, calls, err, a.Load(), b.Load())
		}
	})
	t.Run("alternates which side goes first", func(t *testing.T) {
		var mu sync.Mutex
		var firsts []string // the side that ran first in each round
		newRound := false
		side := func(name string) func(int) error {
			return func(int) error {
				mu.Lock()
				defer mu.Unlock()
				if newRound {
					firsts = append(firsts, name)
					newRound = false
				}
				return nil
			}
		}
		rounds := 0
		more := func() bool {
			mu.Lock()
			defer mu.Unlock()
			newRound = true
			rounds++
			return rounds <= 4
		}
		if _, _, calls, err := Interleave(2, 6, more, side("a"), side("b")); err != nil || calls != 24 {
			t.Fatalf("Interleave = %d calls, %v", calls, err)
		}
		if got := strings.Join(firsts, ""); got != "abab" {
			t.Fatalf("first sides of the rounds %q, want %q", got, "abab")
		}
	})
	t.Run("stops at an error", func(t *testing.T) {
		boom := errors.New("boom")
		rounds := 0
		_, _, _, err := Interleave(2, 5, func() bool { rounds++; return rounds < 100 },
			func(int) error { return nil },
			func(int) error { return boom })
		if !errors.Is(err, boom) || rounds != 1 {
			t.Fatalf("err %v after %d rounds; want boom after 1", err, rounds)
		}
	})
}
