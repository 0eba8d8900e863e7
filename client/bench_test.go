package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
)

// operationCrypto is the cryptography one SDA v1 operation cannot avoid,
// on P-256: two ecdsa.VerifyASN1 (the token's signature and the proof of
// possession, on the device) and one ecdsa.SignASN1 (the proof of
// possession, on the client).
type operationCrypto struct {
	key    *ecdsa.PrivateKey
	digest [32]byte
	sig    []byte
}

func newOperationCrypto(b *testing.B) *operationCrypto {
	c := &operationCrypto{key: mustP256(b), digest: sha256.Sum256([]byte("a to-be-signed structure of about a hundred bytes, as COSE_Sign1 builds for a request"))}
	var err error
	if c.sig, err = ecdsa.SignASN1(rand.Reader, c.key, c.digest[:]); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *operationCrypto) run(b *testing.B) {
	for range 2 {
		if !ecdsa.VerifyASN1(&c.key.PublicKey, c.digest[:], c.sig) {
			b.Fatal("verify failed")
		}
	}
	if _, err := ecdsa.SignASN1(rand.Reader, c.key, c.digest[:]); err != nil {
		b.Fatal(err)
	}
}

// processConn is a Conn straight into a device agent, without a
// goroutine: TrySend has the agent process the message at once, Receive
// returns the answers in order. For one session at a time.
type processConn struct {
	agent   *device.Agent
	answers [][]byte
}

func (c *processConn) TrySend(msg []byte) (bool, error) {
	c.answers = append(c.answers, c.agent.Process(context.Background(), msg))
	return true, nil
}

func (c *processConn) Send(_ context.Context, msg []byte) error {
	_, err := c.TrySend(msg)
	return err
}

func (c *processConn) Receive(context.Context) ([]byte, error) {
	if len(c.answers) == 0 {
		return nil, io.EOF
	}
	m := c.answers[0]
	c.answers = c.answers[1:]
	return m, nil
}

func (c *processConn) Close() error { return nil }

// BenchmarkOperationPipe measures one full SDA v1 operation, client <->
// device agent over the in-memory pipe: nonce request and response, the
// client's signature, the device's verification of the token and of the
// proof of possession, the handler, the response. It times, in batches of
// 256 alternating under the same conditions, the operations and as many
// runs of the bare cryptography such an operation cannot avoid (two
// ecdsa.VerifyASN1 plus one ecdsa.SignASN1 on P-256; the operation does
// no other public-key operation), and reports x-crypto, the time of the
// operations over that of the cryptography (target: at most 1.20), and
// crypto-ns/op. ns/op and allocs/op are those of the full operation. To
// tell the cost of the pipe from the rest, each round also times, with
// the timer stopped, as many of the same operations on the same agent by
// a session whose Conn calls Agent.Process on the session's goroutine
// (processConn), and reports their time over that of the cryptography
// (x-crypto(direct)): the difference is the pipe's, mostly the hand-over
// of each of the four messages to another goroutine.
func BenchmarkOperationPipe(b *testing.B) {
	d := newE2EDevice(b, false)
	tech, _, teardown := connect(b, d, links[0], nil)
	defer teardown()
	s := d.session(b, tech)
	direct := d.session(b, &processConn{agent: d.agent})
	ctx := context.Background()
	op := configure(1)
	for _, s := range []*Session{s, direct} {
		if _, err := s.Do(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
	base := newOperationCrypto(b)
	const batch = 256
	var opTime, directTime, cryptoTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		t0 := time.Now()
		for range n {
			if _, err := s.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
		opTime += time.Since(t0)
		b.StopTimer()
		t1 := time.Now()
		for range n {
			if _, err := direct.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for range n {
			base.run(b)
		}
		cryptoTime += time.Since(t2)
		directTime += t2.Sub(t1)
		b.StartTimer()
		done += n
	}
	b.ReportMetric(float64(cryptoTime.Nanoseconds())/float64(b.N), "crypto-ns/op")
	b.ReportMetric(float64(opTime)/float64(cryptoTime), "x-crypto")
	b.ReportMetric(float64(directTime)/float64(cryptoTime), "x-crypto(direct)")
}

// BenchmarkOperationConns measures how the device agent's throughput
// grows with concurrent connections: one agent serves 40 pipe
// connections, each with Agent.Serve and a session of its own (its own key
// and token). Each round performs 120 operations as in
// BenchmarkOperationPipe one after another on one connection, 120 spread
// over 4 connections at once (30 each) and 120 over 40 (3 each), the
// settings taking turns at going first, and
// reports the throughput of each (ops/s(1), ops/s(4), ops/s(40)), that
// with 4 and with 40 connections over that with one (x1(4), x1(40); on 2
// cores at most about 2), and that with 40 over that with 4 (x4(40):
// target close to 1, nothing in the agent serialises its connections).
// b.N counts operations of each setting; ns/op and allocs/op are of the
// three settings together.
func BenchmarkOperationConns(b *testing.B) {
	const round, most = 120, 40
	d := newE2EDevice(b, false)
	sessions := make([]*Session, most)
	for i := range sessions {
		tech, _, teardown := connect(b, d, links[0], nil)
		defer teardown()
		sessions[i] = d.session(b, tech)
	}
	ctx := context.Background()
	op := configure(1)
	run := func(ss []*Session) time.Duration {
		var wg sync.WaitGroup
		errs := make(chan error, len(ss))
		start := time.Now()
		for _, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range round / len(ss) {
					if _, err := s.Do(ctx, op); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		return elapsed
	}
	run(sessions) // every connection's first operation, outside the timing
	conns := []int{1, 4, most}
	took := make([]time.Duration, len(conns))
	b.ReportAllocs()
	b.ResetTimer()
	ops := 0
	for r := 0; ops < b.N; r, ops = r+1, ops+round {
		for j := range conns {
			i := (j + r) % len(conns) // each setting first in turn
			took[i] += run(sessions[:conns[i]])
		}
	}
	b.StopTimer()
	perSecond := func(i int) float64 { return float64(ops) / took[i].Seconds() }
	for i, n := range conns {
		b.ReportMetric(perSecond(i), fmt.Sprintf("ops/s(%d)", n))
	}
	b.ReportMetric(perSecond(1)/perSecond(0), "x1(4)")
	b.ReportMetric(perSecond(2)/perSecond(0), "x1(40)")
	b.ReportMetric(perSecond(2)/perSecond(1), "x4(40)")
}
