package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/token"
)

func h32(b byte) [32]byte {
	var h [32]byte
	for i := range h {
		h[i] = b
	}
	return h
}

func sampleStatus() *token.StatusUpdate {
	return &token.StatusUpdate{
		Issuer: "sda.example", Sequence: 7, Time: time.Unix(1700000000, 0), Audience: "ep:rooftop-2",
		Hashes:   [][32]byte{h32(2), h32(1)},
		TokenIDs: [][]byte{{0x0b}, {0x0a}},
		Subjects: []token.SubjectCutoff{{Subject: "mallory", Before: time.Unix(1700000000, 0)}},
		Anchors:  []token.AnchorCutoff{{KeyID: []byte{0x01}, Before: time.Unix(1600000000, 0)}},
	}
}

// The payload layout, byte by byte (docs/PROTOCOL.md section 12).
func TestStatusUpdateEncoding(t *testing.T) {
	anchor := newKey(t, "P-256")
	signed, err := token.SignStatus(sampleStatus(), anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(signed, []byte{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0}) {
		t.Fatalf("not 18([h'A10126', {}, ...]): % x", signed[:8])
	}
	items, err := codec.ReadArray(signed[1:], nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := codec.ReadBytes(items[2])
	want := "a8" + // map of 8 pairs
		"01" + "6b" + hex.EncodeToString([]byte("sda.example")) + // 1: iss
		"02" + "07" + // 2: seq
		"03" + "1a6553f100" + // 3: time 1700000000
		"04" + "6c" + hex.EncodeToString([]byte("ep:rooftop-2")) + // 4: aud
		"05" + "5840" + strings.Repeat("01", 32) + strings.Repeat("02", 32) + // 5: hashes, ascending
		"06" + "82" + "410a" + "410b" + // 6: token ids, ascending
		"07" + "81" + "82" + "67" + hex.EncodeToString([]byte("mallory")) + "1a6553f100" + // 7: subject cut-offs
		"08" + "81" + "82" + "4101" + "1a5f5e1000" // 8: anchor cut-offs
	if got := hex.EncodeToString(payload); got != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}
	// Deterministic: the encoding the strict decoder of the project gives.
	if err := codec.Check(payload); err != nil {
		t.Fatal(err)
	}
}

func TestStatusUpdateRoundTrip(t *testing.T) {
	for _, kind := range []string{"P-256", "P-384", "Ed25519"} {
		t.Run(kind, func(t *testing.T) {
			anchor := newKey(t, kind)
			in := sampleStatus()
			signed, err := token.SignStatus(in, anchor, &token.StatusOptions{KeyID: []byte("k1")})
			if err != nil {
				t.Fatal(err)
			}
			s, err := token.ParseStatus(signed)
			if err != nil {
				t.Fatal(err)
			}
			if s.UnverifiedIssuer() != "sda.example" || string(s.UnverifiedKeyID()) != "k1" || !bytes.Equal(s.Bytes(), signed) {
				t.Fatalf("issuer %q kid %q", s.UnverifiedIssuer(), s.UnverifiedKeyID())
			}
			got, err := s.Verify(anchor.Public())
			if err != nil {
				t.Fatal(err)
			}
			want := sampleStatus()
			want.Hashes = [][32]byte{h32(1), h32(2)}
			want.TokenIDs = [][]byte{{0x0a}, {0x0b}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			if other := newKey(t, kind); true {
				if _, err := s.Verify(other.Public()); !errors.Is(err, token.ErrSignature) {
					t.Fatalf("verify with another key: %v, want ErrSignature", err)
				}
			}
		})
	}
}

// A token and a status update signed by the same anchor key never pass
// for each other: different external AAD, different payloads.
func TestStatusUpdateDomainSeparation(t *testing.T) {
	anchor := newKey(t, "P-256")
	_, claims := revocationClaims(t)
	tok, err := token.Issue(claims, anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	// The token's COSE_Sign1 read as a status update: its payload is not
	// a status payload.
	if _, err := token.ParseStatus(tok[2:]); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("token parsed as a status update: %v", err)
	}
	signed, err := token.SignStatus(sampleStatus(), anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.Parse(signed); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("status update parsed as a token: %v", err)
	}
	// The signature covers the external AAD: the same bytes signed
	// without it (as a token would be) do not verify.
	items, _ := codec.ReadArray(signed[1:], nil)
	payload, _ := codec.ReadBytes(items[2])
	noAAD, err := token.ExportSignSign1(payload, anchor)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.ParseStatus(noAAD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(anchor.Public()); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("an update signed without the status AAD verified: %v", err)
	}
}

func TestSignStatusBounds(t *testing.T) {
	anchor := newKey(t, "Ed25519")
	tooMany := func(f func(u *token.StatusUpdate)) *token.StatusUpdate {
		u := sampleStatus()
		f(u)
		return u
	}
	cases := map[string]*token.StatusUpdate{
		"hashes": tooMany(func(u *token.StatusUpdate) {
			u.Hashes = nil
			for i := 0; i <= token.MaxStatusHashes; i++ {
				u.Hashes = append(u.Hashes, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
			}
		}),
		"token ids": tooMany(func(u *token.StatusUpdate) {
			u.TokenIDs = nil
			for i := 0; i <= token.MaxStatusTokenIDs; i++ {
				u.TokenIDs = append(u.TokenIDs, []byte{byte(i)})
			}
		}),
		"subjects": tooMany(func(u *token.StatusUpdate) {
			u.Subjects = nil
			for i := 0; i <= token.MaxStatusSubjects; i++ {
				u.Subjects = append(u.Subjects, token.SubjectCutoff{Subject: fmt.Sprint("s", i), Before: time.Unix(1, 0)})
			}
		}),
		"anchors": tooMany(func(u *token.StatusUpdate) {
			u.Anchors = nil
			for i := 0; i <= token.MaxStatusAnchors; i++ {
				u.Anchors = append(u.Anchors, token.AnchorCutoff{KeyID: []byte{byte(i)}, Before: time.Unix(1, 0)})
			}
		}),
		"size": tooMany(func(u *token.StatusUpdate) {
			u.TokenIDs = nil
			for i := 0; i < token.MaxStatusTokenIDs; i++ {
				u.TokenIDs = append(u.TokenIDs, bytes.Repeat([]byte{byte(i)}, token.MaxTokenIDLength))
			}
			u.Subjects = nil
			for i := 0; i < token.MaxStatusSubjects; i++ {
				u.Subjects = append(u.Subjects, token.SubjectCutoff{Subject: fmt.Sprintf("%03d%s", i, strings.Repeat("x", 200)), Before: time.Unix(1, 0)})
			}
		}),
		"empty token id":    tooMany(func(u *token.StatusUpdate) { u.TokenIDs = [][]byte{{}} }),
		"long token id":     tooMany(func(u *token.StatusUpdate) { u.TokenIDs = [][]byte{make([]byte, 65)} }),
		"empty key id":      tooMany(func(u *token.StatusUpdate) { u.Anchors = []token.AnchorCutoff{{Before: time.Unix(1, 0)}} }),
		"no issuer":         tooMany(func(u *token.StatusUpdate) { u.Issuer = "" }),
		"bad audience":      tooMany(func(u *token.StatusUpdate) { u.Audience = "" }),
		"no time":           tooMany(func(u *token.StatusUpdate) { u.Time = time.Time{} }),
		"cut-off sans time": tooMany(func(u *token.StatusUpdate) { u.Subjects[0].Before = time.Time{} }),
	}
	for name, u := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := token.SignStatus(u, anchor, nil); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("SignStatus: %v, want ErrInvalid", err)
			}
		})
	}
	// At the bounds it signs, within MaxStatusUpdateSize.
	u := sampleStatus()
	u.Hashes = nil
	for i := 0; i < token.MaxStatusHashes; i++ {
		u.Hashes = append(u.Hashes, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	}
	signed, err := token.SignStatus(u, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.ParseStatus(signed); err != nil || len(signed) > token.MaxStatusUpdateSize {
		t.Fatalf("%d bytes: %v", len(signed), err)
	}
}

// SignStatus sorts and removes repeats; for cut-offs of the same subject
// or key the latest wins.
func TestSignStatusCanonicalises(t *testing.T) {
	anchor := newKey(t, "P-256")
	u := sampleStatus()
	u.Hashes = append(u.Hashes, h32(1))
	u.TokenIDs = append(u.TokenIDs, []byte{0x0a})
	u.Subjects = append(u.Subjects, token.SubjectCutoff{Subject: "mallory", Before: time.Unix(1800000000, 0)}, token.SubjectCutoff{Subject: "eve", Before: time.Unix(5, 0)})
	signed, err := token.SignStatus(u, anchor, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.ParseStatus(signed)
	if err != nil {
		t.Fatal(err)
	}
	got := s.UnverifiedUpdate()
	if len(got.Hashes) != 2 || len(got.TokenIDs) != 2 || len(got.Subjects) != 2 ||
		got.Subjects[0].Subject != "eve" || !got.Subjects[1].Before.Equal(time.Unix(1800000000, 0)) {
		t.Fatalf("%+v", got)
	}
}

// ParseStatus refuses every deviation from the one encoding SignStatus
// makes.
func TestParseStatusStrict(t *testing.T) {
	anchor := newKey(t, "P-256")
	resign := func(payloadHex string) []byte {
		p, err := hex.DecodeString(payloadHex)
		if err != nil {
			t.Fatal(err)
		}
		b, err := token.ExportSignStatusPayload(p, anchor)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	head := "01" + "6161" + "02" + "01" + "03" + "01" + "04" + "6465703a78" // iss "a", seq 1, time 1, aud "ep:x"
	ok := resign("a4" + head)
	if _, err := token.ParseStatus(ok); err != nil {
		t.Fatalf("minimal update: %v", err)
	}
	cases := map[string][]byte{
		"untagged":             ok[1:],
		"tag 61":               append([]byte{0xd8, 0x3d}, ok...),
		"trailing byte":        append(append([]byte{}, ok...), 0),
		"payload not a map":    resign("80"),
		"missing aud":          resign("a3" + "01" + "6161" + "02" + "01" + "03" + "01"),
		"unknown key":          resign("a5" + head + "09" + "00"),
		"keys out of order":    resign("a4" + "02" + "01" + "01" + "6161" + "03" + "01" + "04" + "6465703a78"),
		"empty issuer":         resign("a4" + "01" + "60" + "02" + "01" + "03" + "01" + "04" + "6465703a78"),
		"bad audience":         resign("a4" + "01" + "6161" + "02" + "01" + "03" + "01" + "04" + "6178"),
		"negative seq":         resign("a4" + "01" + "6161" + "02" + "20" + "03" + "01" + "04" + "6465703a78"),
		"hashes not 32":        resign("a5" + head + "05" + "5821" + strings.Repeat("00", 33)),
		"empty hashes":         resign("a5" + head + "05" + "40"),
		"hashes unsorted":      resign("a5" + head + "05" + "5840" + strings.Repeat("02", 32) + strings.Repeat("01", 32)),
		"hashes repeated":      resign("a5" + head + "05" + "5840" + strings.Repeat("01", 64)),
		"empty cti list":       resign("a5" + head + "06" + "80"),
		"cti unsorted":         resign("a5" + head + "06" + "82" + "4102" + "4101"),
		"empty cti":            resign("a5" + head + "06" + "81" + "40"),
		"cti as text":          resign("a5" + head + "06" + "81" + "6161"),
		"subject as bytes":     resign("a5" + head + "07" + "81" + "82" + "4161" + "01"),
		"subject entry short":  resign("a5" + head + "07" + "81" + "81" + "6161"),
		"subjects repeated":    resign("a5" + head + "07" + "82" + "82" + "6161" + "01" + "82" + "6161" + "02"),
		"anchor key id empty":  resign("a5" + head + "08" + "81" + "82" + "40" + "01"),
		"anchor before absent": resign("a5" + head + "08" + "81" + "82" + "4101" + "f6"),
		"indefinite map":       resign("bf" + head + "ff"),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := token.ParseStatus(b); !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("ParseStatus: %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := token.ParseStatus(make([]byte, token.MaxStatusUpdateSize+1)); !errors.Is(err, token.ErrMalformed) {
		t.Fatal("oversized update accepted")
	}
}

func TestStatusUpdateRevokes(t *testing.T) {
	u := sampleStatus()
	u.Hashes = [][32]byte{h32(1), h32(2)}
	u.TokenIDs = [][]byte{{0x0a}, {0x0b}}
	cut := time.Unix(1700000000, 0)
	base := token.Claims{Subject: "alice", IssuedAt: cut.Add(-time.Hour), ID: []byte{0x0c}}
	with := func(f func(c *token.Claims)) *token.Claims { c := base; f(&c); return &c }
	other, one := h32(9), h32(1)
	cases := []struct {
		name   string
		c      *token.Claims
		hash   *[32]byte
		kid    []byte
		reason string
	}{
		{"not revoked", &base, &other, []byte{0x02}, ""},
		{"hash", &base, &one, nil, "token hash"},
		{"hash not computed", &base, nil, nil, ""},
		{"cti", with(func(c *token.Claims) { c.ID = []byte{0x0b} }), &other, nil, "token id"},
		{"subject before cut-off", with(func(c *token.Claims) { c.Subject = "mallory" }), &other, nil, "subject cut-off"},
		{"subject at cut-off", with(func(c *token.Claims) { c.Subject = "mallory"; c.IssuedAt = cut }), &other, nil, "subject cut-off"},
		{"subject after cut-off", with(func(c *token.Claims) { c.Subject = "mallory"; c.IssuedAt = cut.Add(time.Second) }), &other, nil, ""},
		{"subject by nbf", with(func(c *token.Claims) {
			c.Subject = "mallory"
			c.IssuedAt = time.Time{}
			c.NotBefore = cut.Add(-time.Second)
		}), &other, nil, "subject cut-off"},
		{"subject without times", with(func(c *token.Claims) { c.Subject = "mallory"; c.IssuedAt = time.Time{} }), &other, nil, "subject cut-off"},
		{"anchor before cut-off", with(func(c *token.Claims) { c.IssuedAt = time.Unix(1500000000, 0) }), &other, []byte{0x01}, "anchor cut-off"},
		{"anchor after cut-off", &base, &other, []byte{0x01}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, revoked := u.Revokes(tc.c, tc.hash, tc.kid)
			if reason != tc.reason || revoked != (tc.reason != "") {
				t.Fatalf("Revokes = %q, %v; want %q", reason, revoked, tc.reason)
			}
		})
	}
}

func TestStatusUpdateNewerThan(t *testing.T) {
	u := &token.StatusUpdate{Sequence: 5, Time: time.Unix(100, 0)}
	for _, tc := range []struct {
		seq  uint64
		t    int64
		want bool
	}{{4, 200, true}, {5, 99, true}, {5, 100, false}, {5, 101, false}, {6, 0, false}} {
		if got := u.NewerThan(tc.seq, time.Unix(tc.t, 0)); got != tc.want {
			t.Errorf("NewerThan(%d, %d) = %v", tc.seq, tc.t, got)
		}
	}
}

// The cnonce claim (v2, key 39) round-trips; v1 tokens refuse it.
func TestCNonceClaim(t *testing.T) {
	anchor := newKey(t, "P-256")
	_, c := revocationClaims(t)
	c.CNonce = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	tok, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tok, []byte{0x18, 0x27, 0x48, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("no 39: h'0102030405060708' in % x", tok)
	}
	p, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Verify(anchor.Public())
	if err != nil || !bytes.Equal(got.CNonce, c.CNonce) {
		t.Fatalf("cnonce %x, %v", got.CNonce, err)
	}
	if _, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV1}); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("v1 token with a cnonce: %v, want ErrInvalid", err)
	}
	c.CNonce = make([]byte, token.MaxCNonceLength+1)
	if _, err := token.Issue(c, anchor, &token.IssueOptions{Profile: token.ProfileV2}); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("oversized cnonce: %v, want ErrInvalid", err)
	}
	r := &token.AccessRequest{Audience: []string{"ep:x"}, Scope: []string{"read"}, Key: anchor.Public(), CNonce: []byte{}}
	if err := r.Validate(); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("empty cnonce in a request: %v", err)
	}
}
