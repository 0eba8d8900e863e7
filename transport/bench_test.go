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
// in the same run, that of a plain io.Copy of the same bytes over a
// net.Pipe. It reports both in MB/s and their ratio (framed/copy). ns/op,
// B/op and allocs/op are those of the framed transfer.
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
				for range b.N {
					if _, err := dst.Receive(ctx); err != nil {
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

				// Baseline: io.Copy of the same bytes through a net.Pipe.
				x, y = net.Pipe()
				start = time.Now()
				go func() {
					_, err := io.Copy(x, &repeatReader{msg: msg, n: b.N})
					x.Close()
					errc <- err
				}()
				n, err := io.Copy(io.Discard, y)
				if err != nil || n != int64(size)*int64(b.N) {
					b.Fatalf("io.Copy: %d bytes, %v", n, err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				copied := time.Since(start)
				y.Close()

				total := float64(size) * float64(b.N) / 1e6
				framedMBs, copyMBs := total/framed.Seconds(), total/copied.Seconds()
				b.ReportMetric(framedMBs, "framed-MB/s")
				b.ReportMetric(copyMBs, "copy-MB/s")
				b.ReportMetric(framedMBs/copyMBs, "framed/copy")
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
