package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// FuzzProcess feeds arbitrary bytes to Process: it must never panic (not
// even a panic Process recovers from), and its answer must always be a
// well-formed response of a type that fits the request. Its seeds include
// delegated requests (v2), whose chains mutate too.
func FuzzProcess(f *testing.F) {
	w := newWorld(f, func(c *device.Config) {
		c.MaxNonces = 32 // room for the seeds' nonces and those kept outstanding
		c.TokenCacheSize = 4
		c.NextNonce = true
		c.SigningKey = newKey(f, "P-256")
		c.Throttle.Failures = -1
	})
	tok := w.token(nil)
	v2, err := token.NewScope(token.Permission{Operation: "set-temperature", Constraints: []token.Constraint{token.InRange(0, 16, 28)}})
	if err != nil {
		f.Fatal(err)
	}
	tok2 := w.tokenWith(w.anchorKey, &token.IssueOptions{Profile: token.ProfileV2}, func(c *token.Claims) { c.Scope = v2 })
	// Delegated tokens (v2): chains of one and two links, and a link
	// signed by a key that is not its parent's.
	bob, carol := newKey(f, "P-256"), newKey(f, "Ed25519")
	tok3 := w.delegable(2, nil, nil)
	dt1 := w.delegate(tok3, w.pop, bob, "read-data configure", func(s *token.DelegationSpec) { s.Depth = 1 })
	dt2 := w.delegate(dt1, bob, carol, "read-data", nil)
	_, rh := w.parent(tok3)
	forged := w.chainOf(tok3, w.link(&token.Link{Key: carol.Public(), Selection: 1, Expiry: testNow.Add(time.Hour)}, rh, bob))
	seeds := [][]byte{
		w.delegatedRequest(w.nonce(), dt1, bob, "configure"),
		w.delegatedRequest(w.nonce(), dt2, carol, "read-data", token.Int(3)),
		w.delegatedRequest(w.nonce(), dt2, bob, "read-data"),
		w.delegatedRequest(w.nonce(), forged, carol, "read-data"),
		wire.NonceRequest,
		w.request(w.nonce(), tok, w.pop, "read-data", token.Int(1), token.Text("x")),
		w.request(w.nonce(), tok2, w.pop, "set-temperature", token.Int(20)),
		w.request(w.nonce(), tok, w.pop, device.RevokeOperation, token.Text("cti"), token.Text("00")),
		w.request(1, tok, newKey(f, "Ed25519"), "configure", token.Bytes([]byte{1, 2})),
		{0x82, 0x03, 0x40},
		{0x9f, 0x01, 0xff},
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// Keep some nonces outstanding so mutated seeds can get deep.
	for range 5 {
		w.nonce()
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		out, d := w.agent.Handle(context.Background(), req)
		r, err := wire.DecodeResponse(out)
		if err != nil {
			t.Fatalf("response %x does not decode: %v", out, err)
		}
		if d.Check == device.CheckInternal {
			t.Fatalf("recovered panic: %v", d.Err)
		}
		want := map[device.RequestKind]uint64{
			device.RequestUnknown:   wire.TypeErrorResponse,
			device.RequestNonce:     wire.TypeNonceResponse,
			device.RequestOperation: wire.TypeOperationResponse,
		}[d.Request]
		if r.Type != want || r.Status != d.Status {
			t.Fatalf("response type %d status %v for a %v request decided %v", r.Type, r.Status, d.Request, d.Status)
		}
		if (d.Err == nil) != (d.Status == token.StatusSuccess) {
			t.Fatalf("status %v with error %v", d.Status, d.Err)
		}
		// A chain is named only once verified, and is never longer than
		// a token may allow.
		if d.Chain != nil && (d.Check != device.CheckNone && d.Check <= device.CheckDelegation || len(d.Chain) > token.MaxDelegationDepth || d.KeyThumbprint() == nil) {
			t.Fatalf("chain of %d links named with check %v", len(d.Chain), d.Check)
		}
	})
}

// FuzzProcessStatusUpdates is FuzzProcess for a device that takes status
// updates (v2): its seeds carry updates as the third envelope element,
// valid, forged, for another device and cut short.
func FuzzProcessStatusUpdates(f *testing.F) {
	w := newWorld(f, statusUpdates, func(c *device.Config) {
		c.TokenCacheSize = 4
		c.Throttle.Failures = -1
		c.Freshness = device.Freshness{CNonce: true, MaxStatusAge: time.Hour}
	})
	tok := w.token(nil)
	valid := w.status(func(u *token.StatusUpdate) {
		u.Sequence = 9
		u.TokenIDs = [][]byte{{0x7e}}
		u.Subjects = []token.SubjectCutoff{{Subject: "mallory", Before: testNow}}
	})
	seeds := [][]byte{
		w.carry(w.nonce(), tok, valid, "read-data"),
		w.carry(w.nonce(), tok, w.statusWith(newKey(f, "P-256"), nil), "read-data"),
		w.carry(w.nonce(), tok, w.status(func(u *token.StatusUpdate) { u.Audience = "ep:other" }), "configure"),
		w.carry(w.nonce(), tok, valid[:len(valid)-1], "read-data"),
		w.carry(w.nonce(), w.cnonceToken(1, nil), valid, "read-data"),
		{0x83, 0x03, 0x41, 0x00, 0x41, 0x00},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	for range 5 {
		w.nonce()
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		out, d := w.agent.Handle(context.Background(), req)
		r, err := wire.DecodeResponse(out)
		if err != nil {
			t.Fatalf("response %x does not decode: %v", out, err)
		}
		if d.Check == device.CheckInternal {
			t.Fatalf("recovered panic: %v", d.Err)
		}
		if r.Status != d.Status || (d.Err == nil) != (d.Status == token.StatusSuccess) {
			t.Fatalf("status %v, decision %v with error %v", r.Status, d.Status, d.Err)
		}
		if r.HasSequences != (r.Type != wire.TypeErrorResponse) {
			t.Fatalf("key 7 %v in a response of type %d", r.HasSequences, r.Type)
		}
		if d.Update.Carried && d.Update.Installed == (d.Update.Err != nil) {
			t.Fatalf("update outcome %+v", d.Update)
		}
	})
}
