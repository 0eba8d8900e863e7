package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody bounds the body of an answer that [Conn.RoundTrip] reads.
const maxBody = 1 << 20

// ErrResponse matches every answer that [Conn.RoundTrip] cannot read:
// a malformed status line or header, no Content-Length, or a body larger
// than 1 MiB.
var ErrResponse = errors.New("loadgen: malformed answer")

// Conn is one persistent HTTP/1.1 client connection.
type Conn struct {
	c    net.Conn
	r    *bufio.Reader
	body []byte
}

// Dial opens a Conn to the TCP address addr.
func Dial(addr string) (*Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, r: newReader(c)}, nil
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4096) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// RoundTrip writes raw, one complete HTTP/1.1 request, and reads one
// answer. It returns the answer's status code and its body, which stays
// valid until the next call.
func (c *Conn) RoundTrip(raw []byte) (status int, body []byte, err error) {
	if _, err := c.c.Write(raw); err != nil {
		return 0, nil, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " {
		return 0, nil, fmt.Errorf("%w: status line %q", ErrResponse, line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, fmt.Errorf("%w: status line %q", ErrResponse, line)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(line) <= 2 {
			break
		}
		const name = "content-length:"
		if len(line) > len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			v := string(trimSpace(line[len(name):]))
			if length, err = strconv.Atoi(v); err != nil || length < 0 || length > maxBody {
				return 0, nil, fmt.Errorf("%w: Content-Length %q", ErrResponse, v)
			}
		}
	}
	if length < 0 {
		return 0, nil, fmt.Errorf("%w: no Content-Length", ErrResponse)
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return 0, nil, err
	}
	return status, c.body, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == '\r' || b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Run calls f total times from clients goroutines, each passing its own
// index in [0, clients), and returns the time it took. It stops at the
// first error and returns it.
func Run(clients, total int, f func(client int) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(total))
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// Interleave calls a batch times and b batch times, each spread over
// clients goroutines by [Run], for as long as more returns true, and
// returns the time the calls of a and of b took in all and the number of
// calls of each. Taking the two in turn, batch by batch, exposes them to
// the same load from the rest of the machine, so that the ratio of their
// rates holds on shared cores; which of the two goes first alternates
// from round to round (a in the first), so that neither gains from its
// position. It stops at the first error and returns it.
func Interleave(clients, batch int, more func() bool, a, b func(client int) error) (ta, tb time.Duration, calls int, err error) {
	for round := 0; more(); round++ {
		first, second, tFirst, tSecond := a, b, &ta, &tb
		if round%2 == 1 {
			first, second, tFirst, tSecond = b, a, &tb, &ta
		}
		d, err := Run(clients, batch, first)
		*tFirst += d
		if err != nil {
			return ta, tb, calls, err
		}
		d, err = Run(clients, batch, second)
		*tSecond += d
		if err != nil {
			return ta, tb, calls, err
		}
		calls += batch
	}
	return ta, tb, calls, nil
}
