package pkcs11_test

import (
	"crypto"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
)

// BenchmarkIssue measures token.Issue of one SDA v1 token (ES256) signed in
// a SoftHSM2 token and signed by a P-256 key in memory, in the same run,
// interleaved, and reports both and their ratio.
func BenchmarkIssue(b *testing.B) {
	_, uri := softHSM(b, "anchor")
	hsm := generate(b, uri, token.AlgES256)
	soft, err := client.GenerateKey(client.KeyP256)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	claims := &token.Claims{
		Issuer: "bench-anchor", Subject: "alice", Audience: []string{"ep:hvac-1"}, Scope: scope(b, "read-data"),
		IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), ID: []byte("0123456789abcdef"), Key: pubOfPoP(b),
	}
	issue := func(key crypto.Signer) {
		if _, err := token.Issue(claims, key, nil); err != nil {
			b.Fatal(err)
		}
	}
	var tSoft, tHSM time.Duration
	const batch = 16
	n := 0
	for b.Loop() {
		start := time.Now()
		for range batch {
			issue(soft)
		}
		mid := time.Now()
		for range batch {
			issue(hsm)
		}
		tHSM += time.Since(mid)
		tSoft += mid.Sub(start)
		n += batch
	}
	nsSoft := float64(tSoft.Nanoseconds()) / float64(n)
	nsHSM := float64(tHSM.Nanoseconds()) / float64(n)
	b.ReportMetric(nsSoft, "ns-software/token")
	b.ReportMetric(nsHSM, "ns-pkcs11/token")
	b.ReportMetric(nsHSM/nsSoft, "ratio-pkcs11/software")
}
