package device

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

func signedStatus(t testing.TB, iss string, seq uint64) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := token.SignStatus(&token.StatusUpdate{Issuer: iss, Sequence: seq, Time: time.Unix(1700000000, 0), Audience: "ep:x",
		TokenIDs: [][]byte{{1}}, Hashes: [][32]byte{{2}}}, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzStatusState feeds arbitrary bytes to the decoder of the persisted
// status updates: it must never panic, and what it accepts it must write
// back byte for byte.
func FuzzStatusState(f *testing.F) {
	a, b := signedStatus(f, "a", 1), signedStatus(f, "b", 2)
	one := encodeStatusState([]*heldStatus{{raw: a}})
	two := encodeStatusState([]*heldStatus{{raw: a}, {raw: b}})
	for _, s := range [][]byte{one, two, {0x80}, {0x81, 0x40}, {0x85}, two[:len(two)-1], append(bytes.Clone(one), 0)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		held, err := decodeStatusState(data)
		if err != nil {
			return
		}
		if len(held) == 0 || len(held) > MaxStatusIssuers {
			t.Fatalf("%d updates accepted", len(held))
		}
		if out := encodeStatusState(held); !bytes.Equal(out, data) {
			t.Fatalf("accepted %x, writes back %x", data, out)
		}
	})
}

func TestStatusStateRoundTrip(t *testing.T) {
	a, b := signedStatus(t, "a", 1), signedStatus(t, "b", 2)
	st := &MemoryState{}
	if err := st.Store(stateKeyStatus, encodeStatusState([]*heldStatus{{raw: a}, {raw: b}})); err != nil {
		t.Fatal(err)
	}
	s, err := loadStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	if h := s.get("b"); h == nil || h.update.Sequence != 2 || !h.installed.IsZero() || !bytes.Equal(h.raw, b) {
		t.Fatalf("loaded %+v", h)
	}
	// Out of order: b before a.
	if err := st.Store(stateKeyStatus, encodeStatusState([]*heldStatus{{raw: b}, {raw: a}})); err != nil {
		t.Fatal(err)
	}
	if _, err := loadStatus(st); !errors.Is(err, ErrState) {
		t.Fatalf("out of order: %v", err)
	}
}
