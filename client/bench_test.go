package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkOperationPipe measures one full SDA v1 operation, client <->
// device agent over the in-memory pipe: nonce request and response, the
// client's signature, the device's verification of the token and of the
// proof of possession, the handler, the response. The same benchmark then
// times the bare cryptography such an operation cannot avoid, two
// ecdsa.VerifyASN1 plus one ecdsa.SignASN1 on P-256, for as many
// iterations, and reports both and their ratio (x-crypto): the cost of
// everything that is not cryptography. ns/op and allocs/op are those of the
// full operation.
func BenchmarkOperationPipe(b *testing.B) {
	d := newE2EDevice(b, false)
	tech, _, teardown := connect(b, d, links[0], nil)
	defer teardown()
	s := d.session(b, tech)
	ctx := context.Background()
	op := configure(1)
	if _, err := s.Do(ctx, op); err != nil {
		b.Fatal(err)
	}

	key := mustP256(b)
	digest := sha256.Sum256([]byte("a to-be-signed structure of about a hundred bytes, as COSE_Sign1 builds for a request"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := s.Do(ctx, op); err != nil {
			b.Fatal(err)
		}
		n++
	}
	opTime := b.Elapsed()

	start := time.Now()
	for range n {
		for range 2 {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("verify failed")
			}
		}
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
	cryptoTime := time.Since(start)
	b.ReportMetric(float64(cryptoTime.Nanoseconds())/float64(n), "crypto-ns/op")
	b.ReportMetric(float64(opTime)/float64(cryptoTime), "x-crypto")
}
