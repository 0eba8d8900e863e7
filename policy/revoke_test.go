package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// revokeEnv is a service with alice's tokens on hvac-1 (one through
// "ep:", one through "id:") and on hvac-2.
func revokeEnv(t *testing.T) (*testEnv, []*IssuedToken) {
	t.Helper()
	env := newTestEnv(t, token.ProfileV2, pol("p1"))
	var toks []*IssuedToken
	for _, aud := range []string{"ep:hvac-1", "id:" + dev1, "ep:hvac-2"} {
		tok, err := env.svc.Issue(context.Background(), "alice", env.issueReq(aud))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	return env, toks
}

func revHash(t *testing.T, tok *IssuedToken) string {
	h, err := token.RevocationHash(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h[:])
}

func countEvents(env *testEnv, msg string) int {
	return strings.Count(env.audit.String(), `"msg":"`+msg+`"`)
}

func TestRevokeToken(t *testing.T) {
	ctx := context.Background()
	env, toks := revokeEnv(t)
	cti := hex.EncodeToString(toks[0].Claims.ID)
	revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: cti, Reason: "phone stolen", By: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 {
		t.Fatalf("%d revocations", len(revs))
	}
	r := revs[0]
	if r.Kind != RevokeToken || r.TokenID != cti || r.Hash != revHash(t, toks[0]) || !slices.Equal(r.Audience, []string{"ep:hvac-1"}) ||
		!r.Until.Equal(toks[0].Claims.Expiry) || r.CreatedBy != "root" || r.Reason != "phone stolen" || !r.CreatedAt.Equal(t0.Truncate(time.Second)) {
		t.Errorf("revocation %+v", *r)
	}
	if n := countEvents(env, "sda.token.revoked"); n != 1 {
		t.Errorf("%d audit events, want 1", n)
	}

	t.Run("the status entries of the device name it", func(t *testing.T) {
		for aud, want := range map[string]int{"ep:hvac-1": 1, "id:" + dev1: 1, "ep:hvac-2": 0} {
			st, err := env.svc.statusEntries(ctx, aud, t0)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Hashes) != want || len(st.TokenIDs) != 0 || (want == 1 && hex.EncodeToString(st.Hashes[0]) != r.Hash) {
				t.Errorf("%s: entries %+v", aud, st)
			}
			if st.Seq != env.svc.seq {
				t.Errorf("seq %d, want %d", st.Seq, env.svc.seq)
			}
		}
		if _, err := env.svc.statusEntries(ctx, "ep:nowhere", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown device: %v, want ErrNotFound", err)
		}
	})
	t.Run("revoking again is idempotent", func(t *testing.T) {
		seq := env.svc.seq
		for _, req := range []RevokeRequest{
			{Kind: RevokeToken, TokenID: strings.ToUpper(cti)},
			{Kind: RevokeToken, Hash: r.Hash},
			{Kind: RevokeToken, Hash: hex.EncodeToString(sha256Of(toks[0].Token))},
		} {
			again, err := env.svc.Revoke(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 1 || again[0].ID != r.ID || again[0].Reason != "phone stolen" {
				t.Errorf("%+v: %+v", req, again)
			}
		}
		if env.svc.seq != seq {
			t.Errorf("the store was written: seq %d, was %d", env.svc.seq, seq)
		}
		all, _ := env.svc.Revocations(ctx)
		if len(all) != 1 {
			t.Errorf("%d revocations held", len(all))
		}
		if n := strings.Count(env.audit.String(), `"existing":true`); n != 3 {
			t.Errorf("%d audit events of existing revocations, want 3", n)
		}
	})
	t.Run("a token the ledger does not know", func(t *testing.T) {
		revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: "00ff"})
		if err != nil {
			t.Fatal(err)
		}
		if r := revs[0]; r.Hash != "" || r.TokenID != "00ff" || len(r.Audience) != 0 || !r.Until.Equal(t0.Truncate(time.Second).Add(MaxTokenLifetime)) {
			t.Errorf("revocation %+v", *r)
		}
		st, _ := env.svc.statusEntries(ctx, "ep:hvac-2", t0)
		if len(st.TokenIDs) != 1 || hex.EncodeToString(st.TokenIDs[0]) != "00ff" {
			t.Errorf("hvac-2's entries %+v", st)
		}
	})
}

func sha256Of(b []byte) []byte {
	h := sha256Sum(b)
	return h[:]
}

func TestRevokeCutoffs(t *testing.T) {
	ctx := context.Background()
	env, toks := revokeEnv(t)
	now := t0.Add(time.Hour)
	env.svc.Now = func() time.Time { return now }
	revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r := revs[0]
	if r.Kind != RevokeSubject || r.Subject != "alice" || !r.Before.Equal(now) || !r.Until.Equal(toks[2].Claims.Expiry) {
		t.Errorf("subject cut-off %+v", *r)
	}
	t.Run("an earlier cut-off keeps the later", func(t *testing.T) {
		again, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "alice", Before: t0})
		if err != nil || len(again) != 1 || !again[0].Before.Equal(now) {
			t.Fatalf("%+v, %v", again, err)
		}
	})
	t.Run("a later cut-off replaces it", func(t *testing.T) {
		now = now.Add(time.Hour)
		later, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "alice"})
		if err != nil || len(later) != 1 || !later[0].Before.Equal(now) || later[0].ID != r.ID {
			t.Fatalf("%+v, %v", later, err)
		}
		all, _ := env.svc.Revocations(ctx)
		if len(all) != 1 || !all[0].Before.Equal(now) {
			t.Errorf("held %+v", all)
		}
	})
	t.Run("a subject without tokens", func(t *testing.T) {
		revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "carol", Before: t0})
		if err != nil || !revs[0].Until.Equal(t0.Add(MaxTokenLifetime)) {
			t.Fatalf("%+v, %v", revs, err)
		}
	})
	t.Run("an anchor", func(t *testing.T) {
		tp, _ := token.Thumbprint(env.anchor.Public())
		revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeAnchor, Anchor: hex.EncodeToString(tp), Before: t0})
		if err != nil {
			t.Fatal(err)
		}
		if r := revs[0]; r.Anchor != hex.EncodeToString(tp) || !r.Before.Equal(t0.Truncate(time.Second)) || !r.Until.Equal(toks[2].Claims.Expiry) {
			t.Errorf("anchor cut-off %+v", *r)
		}
		st, err := env.svc.statusEntries(ctx, "ep:pump-1", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Subjects) != 2 || st.Subjects[0].Subject != "alice" || st.Subjects[1].Subject != "carol" ||
			len(st.Anchors) != 1 || !slices.Equal(st.Anchors[0].KeyID, tp) {
			t.Errorf("entries %+v", st)
		}
	})
	t.Run("a cut-off in the future is refused", func(t *testing.T) {
		_, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "bob", Before: now.Add(time.Second)})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Name != "before" {
			t.Fatalf("Revoke = %v, want a validation error on before", err)
		}
	})
	t.Run("expired revocations are dropped and pruned", func(t *testing.T) {
		now = toks[2].Claims.Expiry.Add(IssuedRetention + time.Second)
		all, _ := env.svc.Revocations(ctx)
		if len(all) != 1 || all[0].Subject != "carol" {
			t.Fatalf("held %+v", all)
		}
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: "01"}); err != nil {
			t.Fatal(err)
		}
		if snap, _ := env.store.Snapshot(ctx); len(snap.Revocations) != 2 {
			t.Errorf("the store holds %d revocations, want 2 (carol's and the new one)", len(snap.Revocations))
		}
	})
}

func TestRevokeDevice(t *testing.T) {
	ctx := context.Background()
	env, toks := revokeEnv(t)
	for _, dev := range []string{dev1, "ep:hvac-1"} {
		revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeDevice, Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range revs {
			got = append(got, r.Hash)
		}
		want := []string{revHash(t, toks[0]), revHash(t, toks[1])}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: revoked %v, want %v", dev, got, want)
		}
	}
	all, _ := env.svc.Revocations(ctx)
	if len(all) != 2 {
		t.Errorf("%d revocations held, want 2", len(all))
	}
	if revs, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeDevice, Device: "ep:pump-1"}); err != nil || len(revs) != 0 {
		t.Errorf("a device without tokens: %v, %v", revs, err)
	}
}

func TestRevokeBounds(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv(t, token.ProfileV2, pol("p1"))
	for i := range maxStatusTokenIDs {
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: fmt.Sprintf("%04x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seq := env.svc.seq
	_, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: "ffff"})
	var be *RevocationBoundError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &be) || be.Entries != "token ids" || be.Count != maxStatusTokenIDs+1 {
		t.Fatalf("Revoke = %v, want a RevocationBoundError on token ids", err)
	}
	if env.svc.seq != seq {
		t.Error("the refused revocation was written")
	}
	// Revoking one again is no addition.
	if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: "0000"}); err != nil {
		t.Errorf("revoking a held token again: %v", err)
	}
	for i := range maxStatusSubjects {
		env.svc.Apply(ctx, PutSubject(&Subject{ID: fmt.Sprintf("s%d", i), Kind: User}))
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: fmt.Sprintf("s%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeSubject, Subject: "alice"}); !errors.As(err, &be) || be.Entries != "subject cut-offs" {
		t.Fatalf("the 65th subject cut-off: %v", err)
	}
	for i := range maxStatusAnchors {
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeAnchor, Anchor: fmt.Sprintf("%02x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeAnchor, Anchor: "ff"}); !errors.As(err, &be) || be.Entries != "anchor cut-offs" {
		t.Fatalf("the 17th anchor cut-off: %v", err)
	}
}

func TestCheckStatusBounds(t *testing.T) {
	key := func(a string) string { return a }
	tokenRev := func(i int, aud ...string) *Revocation {
		h := sha256Sum([]byte{byte(i), byte(i >> 8)})
		return &Revocation{Kind: RevokeToken, Hash: hex.EncodeToString(h[:]), Audience: aud}
	}
	var revs []*Revocation
	for i := range maxStatusHashes {
		revs = append(revs, tokenRev(i, "ep:a"))
	}
	if err := checkStatusBounds(revs, key); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	// Another device's hashes do not count for ep:a, every device's do.
	if err := checkStatusBounds(append(revs, tokenRev(1000, "ep:b")), key); err != nil {
		t.Fatalf("another device: %v", err)
	}
	var be *RevocationBoundError
	if err := checkStatusBounds(append(revs, tokenRev(1000)), key); !errors.As(err, &be) || be.Audience != "ep:a" || be.Entries != "token hashes" {
		t.Fatalf("one for every device more: %v", err)
	}
	// Long subjects reach the byte bound first.
	var subs []*Revocation
	for i := range maxStatusSubjects {
		subs = append(subs, &Revocation{Kind: RevokeSubject, Subject: fmt.Sprintf("%0128d", i)})
	}
	if err := checkStatusBounds(append(subs, revs...), key); !errors.As(err, &be) || be.Entries != "bytes" {
		t.Fatalf("64 long subjects and 256 hashes: %v", err)
	}
}

// TestRevocationsReplicate: revocations are records of the store that
// other instances and a reopened file store see.
func TestRevocationsReplicate(t *testing.T) {
	ctx := context.Background()
	t.Run("memory store shared", func(t *testing.T) {
		env, toks := revokeEnv(t)
		other := &Service{Store: env.store, Signer: env.anchor, Profile: token.ProfileV2, Now: env.svc.Now}
		if _, err := other.Revocations(ctx); err != nil { // loaded before the revocation
			t.Fatal(err)
		}
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: hex.EncodeToString(toks[0].Claims.ID)}); err != nil {
			t.Fatal(err)
		}
		st, err := other.statusEntries(ctx, "ep:hvac-1", t0)
		if err != nil || len(st.Hashes) != 1 || hex.EncodeToString(st.Hashes[0]) != revHash(t, toks[0]) {
			t.Fatalf("the other instance's entries %+v, %v", st, err)
		}
	})
	t.Run("file store reopened", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.json")
		fs := openTestFileStore(t, path)
		env := newTestEnv(t, token.ProfileV2, pol("p1"))
		snap, _ := env.store.Snapshot(ctx)
		if _, err := fs.Apply(ctx, snap.changes()...); err != nil {
			t.Fatal(err)
		}
		env.svc.Store = fs
		tok, err := env.svc.Issue(ctx, "alice", env.issueReq())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.svc.Revoke(ctx, RevokeRequest{Kind: RevokeToken, TokenID: hex.EncodeToString(tok.Claims.ID)}); err != nil {
			t.Fatal(err)
		}
		fs.Close()
		fs2 := openTestFileStore(t, path)
		svc := &Service{Store: fs2, Signer: env.anchor, Now: env.svc.Now}
		revs, err := svc.Revocations(ctx)
		if err != nil || len(revs) != 1 || revs[0].Hash != revHash(t, tok) {
			t.Fatalf("after reopening: %+v, %v", revs, err)
		}
	})
}

func TestRevokeValidation(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1"))
	for _, tc := range []struct {
		req   RevokeRequest
		field string
	}{
		{RevokeRequest{Kind: "all"}, "kind"},
		{RevokeRequest{Kind: RevokeToken}, "cti"},
		{RevokeRequest{Kind: RevokeToken, TokenID: "0g"}, "cti"},
		{RevokeRequest{Kind: RevokeToken, Hash: "00"}, "hash"},
		{RevokeRequest{Kind: RevokeToken, TokenID: "00", Hash: strings.Repeat("0", 64)}, "hash"},
		{RevokeRequest{Kind: RevokeToken, TokenID: "00", Subject: "alice"}, "subject"},
		{RevokeRequest{Kind: RevokeSubject}, "subject"},
		{RevokeRequest{Kind: RevokeDevice, Device: "hvac-1"}, "device"},
		{RevokeRequest{Kind: RevokeAnchor, Anchor: "x"}, "anchor"},
		{RevokeRequest{Kind: RevokeToken, TokenID: "00", Reason: strings.Repeat("x", maxDescriptionLen+1)}, "reason"},
	} {
		_, err := env.svc.Revoke(context.Background(), tc.req)
		var ve *ValidationError
		if !errors.As(err, &ve) || !slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Name == tc.field }) {
			t.Errorf("%+v: %v, want a validation error on %s", tc.req, err, tc.field)
		}
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
