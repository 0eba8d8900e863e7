package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// repeatReader yields msg n times as one plain byte stream.
type repeatReader struct {
	msg []byte
	n   int
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 && r.n > 0 {
		c := copy(p, r.msg[r.off:])
		p, total, r.off = p[c:], total+c, r.off+c
		if r.off == len(r.msg) {
			r.off, r.n = 0, r.n-1
		}
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// BenchmarkFramingVsCopy measures the throughput of stream framing over a
// net.Pipe (one goroutine sends b.N messages, another receives them) and,
// in the same run, two baselines over a net.Pipe: the same messages
// written unframed, one Write each, and read with a plain io.Copy
// ("framed/copy", the cost of the framing layer; target >= 0.8 for
// FramingLength), and a bulk io.Copy of the same bytes in 32 KiB writes
// ("framed/bulk-copy", the pipe's upper bound). SDA framing hashes every
// message twice (SHA-256 on each side, required by the frame format), so
// its ratio is bounded by SHA-256 throughput, not by the framing code.
// The framed receiver reuses one buffer ([BufferReceiver]), as the
// baselines do. ns/op, B/op and allocs/op are those of the framed transfer.
func BenchmarkFramingVsCopy(b *testing.B) {
	ctx := context.Background()
	for _, f := range framings {
		for _, size := range []int{1 << 10, 16 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%v/%dKiB", f, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				msg := testMessage(size, 0)
				o := &Options{Framing: f}
				x, y := net.Pipe()
				src, _ := NewStreamConn(x, o)
				dst, _ := NewStreamConn(y, o)
				errc := make(chan error, 1)

				b.ResetTimer()
				start := time.Now()
				go func() {
					for range b.N {
						if err := src.Send(ctx, msg); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				br := dst.(BufferReceiver)
				buf := make([]byte, 0, size)
				for range b.N {
					if _, err := br.ReceiveBuffer(ctx, buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				framed := time.Since(start)
				b.StopTimer()
				src.Close()
				dst.Close()

				// Baseline 1: the same messages written one Write each,
				// unframed, and read with a plain io.Copy: what the
				// application would move without a framing layer.
				copied := copyThroughPipe(b, b.N, func(w io.Writer) error {
					for range b.N {
						if _, err := w.Write(msg); err != nil {
							return err
						}
					}
					return nil
				}, int64(size)*int64(b.N))
				// Baseline 2: a bulk io.Copy of the same bytes (32 KiB
				// writes), the upper bound of the pipe itself.
				bulk := copyThroughPipe(b, b.N, func(w io.Writer) error {
					_, err := io.Copy(w, &repeatReader{msg: msg, n: b.N})
					return err
				}, int64(size)*int64(b.N))

				total := float64(size) * float64(b.N) / 1e6
				framedMBs, copyMBs, bulkMBs := total/framed.Seconds(), total/copied.Seconds(), total/bulk.Seconds()
				b.ReportMetric(framedMBs, "framed-MB/s")
				b.ReportMetric(copyMBs, "copy-MB/s")
				b.ReportMetric(framedMBs/copyMBs, "framed/copy")
				b.ReportMetric(framedMBs/bulkMBs, "framed/bulk-copy")
			})
		}
	}
}

// countingConn is a send-only PacketConn that hands each packet to a
// reassembler, counting packets and bytes.
type countingConn struct {
	mtu     int
	r       *reassembler
	packets int
	bytes   int
	got     []byte
}

func (c *countingConn) SendPacket(_ context.Context, p []byte) error {
	c.packets++
	c.bytes += len(p)
	m, err := c.r.feed(p)
	if m != nil {
		c.got = m
	}
	return err
}

func (c *countingConn) ReceivePacket(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *countingConn) MTU() int     { return c.mtu }
func (c *countingConn) Close() error { return nil }

// BenchmarkFragmentOverhead fragments and reassembles messages, and reports
// the bytes each message costs on the link beyond its own length
// (overhead-B/msg, headers plus, in the compat formats, the serial frame or
// the trailing zero bytes) and the packets it takes.
func BenchmarkFragmentOverhead(b *testing.B) {
	ctx := context.Background()
	for _, f := range []FragmentFormat{FragmentV2, FragmentCompatTechnician, FragmentCompatDevice} {
		for _, mtu := range []int{20, 244} {
			for _, size := range []int{64, 512, 2048} {
				b.Run(fmt.Sprintf("%v/mtu%d/%dB", f, mtu, size), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(size))
					msg := testMessage(size, 0)
					cc := &countingConn{mtu: mtu, r: newReassembler(peerFormat(f), DefaultMaxMessageSize)}
					c, err := NewFragmentConn(cc, &FragmentOptions{Format: f})
					if err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						if err := c.Send(ctx, msg); err != nil {
							b.Fatal(err)
						}
					}
					if cc.got == nil {
						b.Fatal("nothing reassembled")
					}
					b.ReportMetric(float64(cc.bytes-b.N*size)/float64(b.N), "overhead-B/msg")
					b.ReportMetric(float64(cc.packets)/float64(b.N), "packets/msg")
				})
			}
		}
	}
}

// copyThroughPipe runs write on one end of a fresh net.Pipe and a plain
// io.Copy from the other end into a sink, and returns the elapsed time.
func copyThroughPipe(b *testing.B, _ int, write func(io.Writer) error, want int64) time.Duration {
	b.Helper()
	x, y := net.Pipe()
	defer y.Close()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		err := write(x)
		x.Close()
		errc <- err
	}()
	n, err := io.Copy(sinkWriter{}, y)
	if err != nil || n != want {
		b.Fatalf("io.Copy: %d bytes, %v", n, err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// sinkWriter discards what it is given; unlike io.Discard it has no
// ReadFrom, so io.Copy moves the bytes through its own buffer as it would
// for a real destination.
type sinkWriter struct{}

func (sinkWriter) Write(p []byte) (int, error) { return len(p), nil }
