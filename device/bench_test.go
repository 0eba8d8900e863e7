package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// twoVerifies is the baseline: two bare P-256 ECDSA verifications (a token
// signature and a PoP signature), all the cryptography a request needs.
type twoVerifies struct {
	pub    [2]*ecdsa.PublicKey
	digest [2][]byte
	sig    [2][]byte
}

func newTwoVerifies(b *testing.B) *twoVerifies {
	v := &twoVerifies{}
	for i := range 2 {
		k, _ := ecdsa.GenerateKey(newKey(b, "P-256").(*ecdsa.PrivateKey).Curve, rand.Reader)
		d := sha256.Sum256([]byte{byte(i)})
		sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
		if err != nil {
			b.Fatal(err)
		}
		v.pub[i], v.digest[i], v.sig[i] = &k.PublicKey, d[:], sig
	}
	return v
}

func (v *twoVerifies) run() {
	if !ecdsa.VerifyASN1(v.pub[0], v.digest[0], v.sig[0]) || !ecdsa.VerifyASN1(v.pub[1], v.digest[1], v.sig[1]) {
		panic("baseline verification failed")
	}
}

// benchProcess times Process on valid operation requests, in batches whose
// nonces and signatures are prepared with the timer stopped, and times the
// same number of bare verification pairs in between, so both run under the
// same conditions. It reports the ratio of the two.
func benchProcess(b *testing.B, configure func(*device.Config), warm bool) {
	w := newWorld(b, func(c *device.Config) {
		c.MaxNonces = device.MaxMaxNonces
		c.NonceLifetime = time.Hour
		c.Throttle.Failures = -1
		configure(c)
	})
	ctx := context.Background()
	tok := w.token(nil)
	if warm {
		w.do(tok, "read-data")
	}
	base := newTwoVerifies(b)
	const batch = 512
	reqs := make([][]byte, batch)
	var procDur, baseDur time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		b.StopTimer()
		for i := range n {
			reqs[i] = w.request(w.nonce(), tok, w.pop, "read-data")
		}
		b.StartTimer()
		t0 := time.Now()
		for i := range n {
			out := w.agent.Process(ctx, reqs[i])
			if len(out) < 16 { // success responses carry data; failures are 6 bytes
				b.Fatalf("request failed: %x", out)
			}
		}
		procDur += time.Since(t0)
		b.StopTimer()
		t1 := time.Now()
		for range n {
			base.run()
		}
		baseDur += time.Since(t1)
		b.StartTimer()
		done += n
	}
	b.ReportMetric(float64(baseDur.Nanoseconds())/float64(b.N), "ns/2verify")
	b.ReportMetric(float64(procDur)/float64(baseDur), "ratio")
}

// BenchmarkProcess: a full Process of a valid operation request (target:
// ratio <= 1.10 of two bare verifies).
func BenchmarkProcess(b *testing.B) {
	benchProcess(b, func(*device.Config) {}, false)
}

// BenchmarkProcessCachedToken: a later operation with a token already in
// the v2 cache, so only the PoP signature is verified (target: ratio <=
// 0.60).
func BenchmarkProcessCachedToken(b *testing.B) {
	benchProcess(b, func(c *device.Config) { c.TokenCacheSize = 16 }, true)
}

// BenchmarkNonceRequest: answering [1].
func BenchmarkNonceRequest(b *testing.B) {
	w := newWorld(b, func(c *device.Config) { c.MaxNonces = 1; c.NonceLifetime = time.Nanosecond })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		w.clock.Advance(time.Millisecond)
		w.agent.Process(ctx, wire.NonceRequest)
	}
}

// BenchmarkProcessHashRevocations: BenchmarkProcess with a revocation list
// of DefaultMaxRevocations token hashes (none of them the token's), so
// every request computes the hashes it is looked up under.
func BenchmarkProcessHashRevocations(b *testing.B) {
	list := []byte(`{"cti":[],"hash":[`)
	for i := range device.DefaultMaxRevocations {
		if i > 0 {
			list = append(list, ',')
		}
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		list = append(list, `{"id":"`...)
		list = base64.StdEncoding.AppendEncode(list, h[:])
		list = append(list, `"}`...)
	}
	list = append(list, `]}`...)
	st := &device.MemoryState{}
	if err := st.Store("revocations", list); err != nil {
		b.Fatal(err)
	}
	benchProcess(b, func(c *device.Config) { c.State = st }, false)
}

// BenchmarkInstallStatus: installing a carried status update with
// Agent.InstallStatus (strict parse, one signature verification, persist
// to a MemoryState, publish), as a ratio to one bare verification, for an
// update of 10 token hashes and for one of nearly
// token.MaxStatusUpdateSize bytes (8 fewer, for the growing sequence
// number). Updates are signed beforehand with the timer stopped.
func BenchmarkInstallStatus(b *testing.B) {
	for _, size := range []string{"small", "max"} {
		b.Run(size, func(b *testing.B) {
			w := newWorld(b)
			var big []token.SubjectCutoff
			if size == "max" {
				_ = w.bigStatus(token.MaxStatusUpdateSize)
				big = w.bigSubjects
				// Room for a sequence number of up to 8 more bytes.
				last := &big[len(big)-1]
				last.Subject = last.Subject[:len(last.Subject)-8]
			}
			base := newTwoVerifies(b)
			const batch = 64
			ups := make([][]byte, batch)
			var dur, baseDur time.Duration
			seq := uint64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				b.StopTimer()
				for i := range n {
					seq++
					ups[i] = w.status(func(u *token.StatusUpdate) {
						u.Sequence = seq
						u.Subjects = big
						if big == nil {
							for j := range 10 {
								u.Hashes = append(u.Hashes, sha256.Sum256([]byte{byte(j)}))
							}
						}
					})
				}
				b.StartTimer()
				t0 := time.Now()
				for i := range n {
					if err := w.agent.InstallStatus(ups[i]); err != nil {
						b.Fatal(err)
					}
				}
				dur += time.Since(t0)
				b.StopTimer()
				t1 := time.Now()
				for range n {
					base.run()
				}
				baseDur += time.Since(t1)
				b.StartTimer()
			}
			// base.run does two verifications.
			b.ReportMetric(float64(dur)/float64(baseDur/2), "ratio")
		})
	}
}

// BenchmarkProcessDelegated: the cost of a delegation link on the device.
// Each round times Process on a small batch of valid requests with no
// chain, a chain of one link and a chain of two (ES256 throughout), and as
// many bare ES256 verifications, so all run under the same conditions; the
// nonces and signatures are prepared with the timer stopped. It reports
// verifications/link, (T(n) - T(0)) / n / T(verify) for n = 1 and 2, the
// median over the rounds (a shared machine's load spikes hit single
// rounds; target: at most 1.05), the same ratio for token.ParseChain of a
// one-link chain, and the bytes a link adds to the request (B/link(1): one
// link of depth 0, B/link(2): the chain of two, per link).
func BenchmarkProcessDelegated(b *testing.B) {
	w := newWorld(b, func(c *device.Config) {
		c.MaxNonces = device.MaxMaxNonces
		c.NonceLifetime = time.Hour
		c.Throttle.Failures = -1
	})
	ctx := context.Background()
	bob, carol := newKey(b, "P-256"), newKey(b, "P-256")
	tok := w.delegable(2, nil, nil)
	dt1 := w.delegate(tok, w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.Depth = 1; s.Subject = "" })
	dt2 := w.delegate(dt1, bob, carol, "read-data", func(s *token.DelegationSpec) { s.Subject = "" })
	build := [3]func() []byte{
		func() []byte { return w.request(w.nonce(), tok, w.pop, "read-data") },
		func() []byte { return w.delegatedRequest(w.nonce(), dt1, bob, "read-data") },
		func() []byte { return w.delegatedRequest(w.nonce(), dt2, carol, "read-data") },
	}
	var size [3]int
	for i, f := range build {
		size[i] = len(f())
	}
	// A link that allows none below it (dt1's allows one: 2 bytes more),
	// with a selection and no nbf, aud or sub: the size the issue bounds.
	last := w.delegate(tok, w.pop, bob, "read-data", func(s *token.DelegationSpec) { s.Subject = "" })
	size[1] = len(w.delegatedRequest(w.nonce(), last, bob, "read-data"))
	base := newTwoVerifies(b) // its first verification is the bare one
	d1, err := token.ParseDelegatedToken(dt1)
	if err != nil {
		b.Fatal(err)
	}
	chain1 := d1.Chain.Bytes()
	const batch = 16
	var reqs [3][batch][]byte
	var perLink [2][]float64 // per round, for 1 and 2 links
	var parse []float64      // per round, token.ParseChain of one link
	var total [3]time.Duration
	var verifyTotal time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		b.StopTimer()
		for links := range 3 {
			for i := range n {
				reqs[links][i] = build[links]()
			}
		}
		b.StartTimer()
		var dur [3]time.Duration
		for links := range 3 {
			t0 := time.Now()
			for i := range n {
				if out := w.agent.Process(ctx, reqs[links][i]); len(out) < 16 {
					b.Fatalf("request with %d links failed: %x", links, out)
				}
			}
			dur[links] = time.Since(t0)
			total[links] += dur[links]
		}
		b.StopTimer()
		t1 := time.Now()
		for range n {
			if !ecdsa.VerifyASN1(base.pub[0], base.digest[0], base.sig[0]) {
				b.Fatal("baseline verification failed")
			}
		}
		v := time.Since(t1)
		verifyTotal += v
		t2 := time.Now()
		for range n {
			if _, err := token.ParseChain(chain1); err != nil {
				b.Fatal(err)
			}
		}
		parse = append(parse, float64(time.Since(t2))/float64(v))
		b.StartTimer()
		perLink[0] = append(perLink[0], float64(dur[1]-dur[0])/float64(v))
		perLink[1] = append(perLink[1], float64(dur[2]-dur[0])/2/float64(v))
		done += n
	}
	b.StopTimer()
	median := func(x []float64) float64 {
		slices.Sort(x)
		return x[len(x)/2]
	}
	b.ReportMetric(float64(verifyTotal)/float64(b.N), "ns/verify")
	b.ReportMetric(float64(total[0])/float64(verifyTotal), "verifications/request")
	b.ReportMetric(median(perLink[0]), "verifications/link(1)")
	b.ReportMetric(median(perLink[1]), "verifications/link(2)")
	// Part of a link's cost: parsing it (the agent parses a request's chain
	// with token.ParseChain after token.ParseRequest has checked it).
	b.ReportMetric(median(parse), "verifications/ParseChain(1)")
	b.ReportMetric(float64(size[1]-size[0]), "B/link(1)")
	b.ReportMetric(float64(size[2]-size[0])/2, "B/link(2)")
}
