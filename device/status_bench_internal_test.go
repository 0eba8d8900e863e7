package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

// oneVerify is the baseline of the status benchmarks: one bare P-256
// ECDSA verification.
type oneVerify struct {
	pub    *ecdsa.PublicKey
	digest [32]byte
	sig    []byte
}

func newOneVerify(b *testing.B) *oneVerify {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v := &oneVerify{pub: &k.PublicKey, digest: sha256.Sum256([]byte("baseline"))}
	if v.sig, err = ecdsa.SignASN1(rand.Reader, k, v.digest[:]); err != nil {
		b.Fatal(err)
	}
	return v
}

func (v *oneVerify) run() {
	if !ecdsa.VerifyASN1(v.pub, v.digest[:], v.sig) {
		panic("baseline verification failed")
	}
}

// ratio times f and the baseline alternately in batches, under the same
// conditions, and reports the time of f as a ratio of one verification.
func ratio(b *testing.B, f func()) {
	base := newOneVerify(b)
	const batch = 256
	var fDur, baseDur time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		t0 := time.Now()
		for range n {
			f()
		}
		fDur += time.Since(t0)
		b.StopTimer()
		t1 := time.Now()
		for range n {
			base.run()
		}
		baseDur += time.Since(t1)
		b.StartTimer()
	}
	b.ReportMetric(float64(baseDur.Nanoseconds())/float64(b.N), "ns/verify")
	b.ReportMetric(float64(fDur)/float64(baseDur), "ratio")
}

// BenchmarkRevocationCheck times the revocation check (step 11) of a token
// that is not revoked, against the device's list and the status update of
// its issuer holding entries in all (target at the maximum: a ratio below
// 0.02 of one verification).
//
//   - 10: an update of 10 token hashes, an empty list;
//   - 1000: a list of 744 token hashes and an update of 256;
//   - max: a list of MaxMaxRevocations token hashes and an update at every
//     bound (token.MaxStatusHashes hashes, MaxStatusTokenIDs ids,
//     MaxStatusSubjects subject cut-offs, MaxStatusAnchors anchor
//     cut-offs), the anchor without a KeyID (its thumbprint is computed);
//   - max-update-only: the same update and an empty list, the share of the
//     status update.
func BenchmarkRevocationCheck(b *testing.B) {
	for _, tc := range []struct {
		name                          string
		list, hashes, ids, subs, ancs int
	}{
		{"10", 0, 10, 0, 0, 0},
		{"1000", 744, 256, 0, 0, 0},
		{"max", MaxMaxRevocations, token.MaxStatusHashes, token.MaxStatusTokenIDs, token.MaxStatusSubjects, token.MaxStatusAnchors},
		{"max-update-only", 0, token.MaxStatusHashes, token.MaxStatusTokenIDs, token.MaxStatusSubjects, token.MaxStatusAnchors},
	} {
		b.Run(tc.name, func(b *testing.B) {
			a, claims, anchor, tok, tokBytes := benchAgent(b, tc.list)
			u := &token.StatusUpdate{Issuer: claims.Issuer, Sequence: 1, Time: time.Unix(1700000000, 0), Audience: "ep:hvac-1"}
			for i := range tc.hashes {
				u.Hashes = append(u.Hashes, sha256.Sum256(fmt.Appendf(nil, "h%d", i)))
			}
			for i := range tc.ids {
				u.TokenIDs = append(u.TokenIDs, fmt.Appendf(nil, "id-%d", i))
			}
			for i := range tc.subs {
				u.Subjects = append(u.Subjects, token.SubjectCutoff{Subject: fmt.Sprintf("subject-%03d", i), Before: u.Time})
			}
			for i := range tc.ancs {
				u.Anchors = append(u.Anchors, token.AnchorCutoff{KeyID: fmt.Appendf(nil, "kid-%d", i), Before: u.Time})
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			raw, err := token.SignStatus(u, key, nil)
			if err != nil {
				b.Fatal(err)
			}
			s, err := token.ParseStatus(raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.status.install(raw, s.UnverifiedUpdate(), time.Now()); err != nil {
				b.Fatal(err)
			}
			hash := sha256.Sum256(tokBytes)
			ratio(b, func() {
				var revHash [32]byte
				have := false
				rh := func() *[32]byte {
					if !have {
						revHash, have = tok.RevocationHash(), true
					}
					return &revHash
				}
				if err := a.checkRevoked(claims, anchor, tokBytes, func() *[32]byte { return &hash }, rh, nil); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// benchAgent returns an agent whose revocation list holds list token
// hashes, and a verified token of its anchor.
func benchAgent(b testing.TB, list int) (*Agent, *token.Claims, *trust.Anchor, *token.Token, []byte) {
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	anchor, err := trust.NewAnchor(&ak.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	store, err := trust.NewMemoryStore(*anchor)
	if err != nil {
		b.Fatal(err)
	}
	st := &MemoryState{}
	if list > 0 {
		l := []byte(`{"cti":[],"hash":[`)
		for i := range list {
			if i > 0 {
				l = append(l, ',')
			}
			h := sha256.Sum256(fmt.Appendf(nil, "list-%d", i))
			l = append(l, `{"id":"`...)
			l = base64.StdEncoding.AppendEncode(l, h[:])
			l = append(l, `"}`...)
		}
		if err := st.Store(stateKeyRevocations, append(l, `]}`...)); err != nil {
			b.Fatal(err)
		}
	}
	a, err := New(Config{Identity: token.Identity{Endpoint: "hvac-1"}, Anchors: store, State: st, MaxRevocations: MaxMaxRevocations})
	if err != nil {
		b.Fatal(err)
	}
	sc, _ := token.ParseScope("read-data")
	now := time.Now().Truncate(time.Second)
	tokBytes, err := token.Issue(&token.Claims{
		Issuer: anchor.Issuer, Subject: "subject-zzz", Audience: []string{"ep:hvac-1"}, Expiry: now.Add(time.Hour),
		NotBefore: now, IssuedAt: now, ID: []byte("zz-not-revoked"), Scope: sc, Key: &pop.PublicKey,
	}, ak, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := token.Parse(tokBytes)
	if err != nil {
		b.Fatal(err)
	}
	claims, err := tok.Verify(anchor.Key)
	if err != nil {
		b.Fatal(err)
	}
	return a, claims, anchor, tok, tokBytes
}
