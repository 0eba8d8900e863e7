package device_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// revocationKinds are the two kinds of revocation entries.
var revocationKinds = []string{"cti", "hash"}

// revoked is a token and the id that revokes it, by cti or by hash.
type revoked struct {
	tok []byte
	id  []byte
}

// victim returns a new token of the world's technician and its id as a
// revocation of the given kind names it.
func (w *world) victim(kind string) revoked {
	w.t.Helper()
	if kind == "cti" {
		id := make([]byte, 8)
		rand.Read(id)
		return revoked{w.token(func(c *token.Claims) { c.ID = id }), id}
	}
	tok := w.token(func(c *token.Claims) { c.ID = nil })
	sum := sha256.Sum256(tok)
	return revoked{tok, sum[:]}
}

// admin returns a token that may revoke.
func (w *world) admin() []byte {
	return w.token(func(c *token.Claims) {
		c.Subject, c.ID = "admin", []byte{0xad}
		c.Scope, _ = token.ParseScope("sda-revoke")
	})
}

// revoke runs the revocation operation for an entry of kind with id and,
// when until is not zero, that until. It returns the decision.
func (w *world) revoke(admin []byte, kind string, id []byte, until int64) device.Outcome {
	w.t.Helper()
	args := []token.Arg{token.Text(kind), token.Text(hex.EncodeToString(id))}
	if until != 0 {
		args = append(args, token.Int(until))
	}
	_, d := w.do(admin, device.RevokeOperation, args...)
	return d
}

// mustRevoke runs revoke and requires success.
func (w *world) mustRevoke(admin []byte, kind string, id []byte, until int64) {
	w.t.Helper()
	if d := w.revoke(admin, kind, id, until); !d.Allowed() {
		w.t.Fatalf("revoking %s %x until %d: %v", kind, id, until, d.Err)
	}
}

// listFull requires the revocation of a new entry of kind to be refused
// because the list is full.
func (w *world) listFull(admin []byte, kind string) {
	w.t.Helper()
	x := w.victim(kind)
	d := w.revoke(admin, kind, x.id, 0)
	if d.Status != wire.StatusOperationFailed || !errors.Is(d.Err, device.ErrRevocationListFull) {
		w.t.Fatalf("revoking one more %s: %v %v, want the list full", kind, d.Status, d.Err)
	}
	w.isRevoked(x, false)
}

// isRevoked requires v's token to be rejected as revoked, or accepted.
func (w *world) isRevoked(v revoked, want bool) {
	w.t.Helper()
	r, d := w.do(v.tok, "read-data")
	if want {
		expect(w.t, r, d, wire.StatusVerificationError, device.CheckRevocation, device.ErrRevoked)
	} else if !d.Allowed() {
		w.t.Fatalf("token not revoked is rejected: %v %v", d.Check, d.Err)
	}
}

// leewayLimit is the oldest until a revocation entry may have and still be
// kept by a device whose time is testNow: its token (exp = until) is still
// accepted within the default leeway.
var leewayLimit = testNow.Add(-device.DefaultLeeway).Unix()

// An entry is dropped from a full list only if it has an until and the
// device's time is past it plus the leeway, and only when room is needed:
// never a permanent entry, never one still within the leeway, of either
// kind.
func TestRevocationEntriesDroppedOnlyWhenExpiredAndNeeded(t *testing.T) {
	for _, kind := range revocationKinds {
		t.Run(kind+": permanent and within the leeway are kept", func(t *testing.T) {
			w := newWorld(t, func(c *device.Config) { c.MaxRevocations = 2 })
			admin := w.admin()
			perm, edge := w.victim(kind), w.victim(kind)
			w.mustRevoke(admin, kind, perm.id, 0)
			w.mustRevoke(admin, kind, edge.id, leewayLimit)
			w.listFull(admin, kind)
			w.isRevoked(perm, true)
			w.isRevoked(edge, true) // exp + leeway is exactly now: still usable, so still revoked
		})
		t.Run(kind+": expired are dropped only for room", func(t *testing.T) {
			w := newWorld(t, func(c *device.Config) { c.MaxRevocations = 2 })
			admin := w.admin()
			expired, perm := w.victim(kind), w.victim(kind)
			w.mustRevoke(admin, kind, expired.id, leewayLimit-1)
			w.mustRevoke(admin, kind, perm.id, 0)
			w.isRevoked(expired, true) // the list is full, not over
			x := w.victim(kind)
			w.mustRevoke(admin, kind, x.id, 0) // drops the expired entry
			w.isRevoked(expired, false)
			w.isRevoked(perm, true)
			w.isRevoked(x, true)
		})
	}
}

// Revoking an entry again never weakens it: a permanent entry stays
// permanent, an until is only ever extended; and a revocation that changes
// nothing writes nothing.
func TestReRevoking(t *testing.T) {
	past, future := leewayLimit-100, testNow.Add(time.Hour).Unix()
	for _, kind := range revocationKinds {
		for _, tc := range []struct {
			name         string
			first, again int64 // until; 0 is permanent
		}{
			{"permanent, again with a past until", 0, past},
			{"past until, again with a later one", past, future},
			{"future until, again with a past one", future, past},
			{"past until, again permanent", past, 0},
		} {
			t.Run(kind+": "+tc.name, func(t *testing.T) {
				w := newWorld(t, func(c *device.Config) { c.MaxRevocations = 2 })
				admin := w.admin()
				v := w.victim(kind)
				w.mustRevoke(admin, kind, v.id, tc.first)
				w.mustRevoke(admin, kind, v.id, tc.again)
				w.mustRevoke(admin, kind, w.victim(kind).id, 0)
				// The entry is not expired: it is not dropped for room.
				w.listFull(admin, kind)
				w.isRevoked(v, true)
			})
		}
		t.Run(kind+": writes only what changes", func(t *testing.T) {
			st := &countingState{}
			w := newWorld(t, func(c *device.Config) { c.State = st })
			admin := w.admin()
			v := w.victim(kind)
			w.mustRevoke(admin, kind, v.id, future)
			for _, tc := range []struct {
				until  int64
				writes int
			}{
				{future, 0},     // the same
				{future - 1, 0}, // earlier: kept as it is
				{future + 1, 1}, // later: extended
				{0, 1},          // permanent
				{future, 0},     // over a permanent entry
				{0, 0},          // permanent again
			} {
				before := st.writes("revocations")
				w.mustRevoke(admin, kind, v.id, tc.until)
				if got := st.writes("revocations") - before; got != tc.writes {
					t.Fatalf("re-revoking with until %d wrote the list %d times, want %d", tc.until, got, tc.writes)
				}
			}
		})
	}
}

// The bound counts cti and hash entries together.
func TestRevocationListCountsBothKinds(t *testing.T) {
	w := newWorld(t, func(c *device.Config) { c.MaxRevocations = 2 })
	admin := w.admin()
	h, c := w.victim("hash"), w.victim("cti")
	w.mustRevoke(admin, "hash", h.id, 0)
	w.mustRevoke(admin, "cti", c.id, 0)
	w.listFull(admin, "cti")
	w.listFull(admin, "hash")

	// An expired entry of one kind makes room for the other.
	w = newWorld(t, func(c *device.Config) { c.MaxRevocations = 2 })
	admin = w.admin()
	h, c = w.victim("hash"), w.victim("cti")
	w.mustRevoke(admin, "hash", h.id, leewayLimit-1)
	w.mustRevoke(admin, "cti", c.id, 0)
	w.mustRevoke(admin, "cti", w.victim("cti").id, 0)
	w.isRevoked(h, false)
	w.isRevoked(c, true)
}

// The arguments of the revocation operation at their bounds: a cti of 1 to
// 64 bytes, a hash of exactly 32, an until of at least 1, 2 or 3
// arguments.
func TestRevocationArgumentBounds(t *testing.T) {
	w := newWorld(t)
	admin := w.admin()
	hexOf := func(n int) token.Arg { return token.Text(hex.EncodeToString(make([]byte, n))) }
	for _, tc := range []struct {
		name string
		args []token.Arg
		ok   bool
	}{
		{"cti of 1 byte", []token.Arg{token.Text("cti"), hexOf(1)}, true},
		{"cti of 64 bytes", []token.Arg{token.Text("cti"), token.Text(hex.EncodeToString(append(make([]byte, 63), 1)))}, true},
		{"cti of 65 bytes", []token.Arg{token.Text("cti"), hexOf(65)}, false},
		{"empty cti", []token.Arg{token.Text("cti"), token.Text("")}, false},
		{"hash of 32 bytes", []token.Arg{token.Text("hash"), hexOf(32)}, true},
		{"hash of 31 bytes", []token.Arg{token.Text("hash"), hexOf(31)}, false},
		{"hash of 33 bytes", []token.Arg{token.Text("hash"), hexOf(33)}, false},
		{"until 1", []token.Arg{token.Text("cti"), hexOf(2), token.Int(1)}, true},
		{"until 0", []token.Arg{token.Text("cti"), hexOf(3), token.Int(0)}, false},
		{"until as text", []token.Arg{token.Text("cti"), hexOf(3), token.Text("1")}, false},
		{"4 arguments", []token.Arg{token.Text("cti"), hexOf(4), token.Int(1), token.Int(1)}, false},
		{"id as an integer", []token.Arg{token.Text("cti"), token.Int(5)}, false},
		{"kind as an integer", []token.Arg{token.Int(0), hexOf(5)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d := w.do(admin, device.RevokeOperation, tc.args...)
			if tc.ok {
				if !d.Allowed() {
					t.Fatalf("refused: %v", d.Err)
				}
				return
			}
			expect(t, r, d, wire.StatusOperationFailed, device.CheckOperation, device.ErrOperationFailed)
		})
	}
}

// countingState is a MemoryState that counts the writes of each key.
type countingState struct {
	device.MemoryState
	mu sync.Mutex
	n  map[string]int
}

func (s *countingState) Store(key string, value []byte) error {
	s.mu.Lock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	s.mu.Unlock()
	return s.MemoryState.Store(key, value)
}

func (s *countingState) writes(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[key]
}
