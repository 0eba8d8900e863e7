package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestResponseV1Layout pins the responses of deployed v1 devices byte for
// byte: an indefinite-length map, keys 3/4 before 1 and 2.
func TestResponseV1Layout(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Response
		want string
	}{
		{"nonce", Response{Type: TypeNonceResponse, Status: StatusSuccess, Nonce: 0x0102030405060708},
			"bf 03 1b 0102030405060708 01 02 02 00 ff"},
		{"operation with data", Response{Type: TypeOperationResponse, Status: StatusSuccess, Data: []byte("ok")},
			"bf 04 42 6f6b 01 04 02 00 ff"},
		{"operation without data", Response{Type: TypeOperationResponse, Status: StatusAccessDenied},
			"bf 01 04 02 05 ff"},
		{"operation failed", Response{Type: TypeOperationResponse, Status: StatusOperationFailed},
			"bf 01 04 02 1a 0fffffff ff"},
		{"error", Response{Type: TypeErrorResponse, Status: StatusInvalidRequest},
			"bf 01 18 ff 02 02 ff"},
		{"v2 next nonce and signature", Response{Type: TypeOperationResponse, Status: StatusSuccess, Data: []byte{}, NextNonce: 9, Signed: []byte{0xd2}},
			"bf 04 40 05 09 06 41 d2 01 04 02 00 ff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Encode()
			if !bytes.Equal(got, h(tc.want)) {
				t.Fatalf("Encode = %x, want %s", got, tc.want)
			}
			back, err := DecodeResponse(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.Type != tc.r.Type || back.Status != tc.r.Status || back.Nonce != tc.r.Nonce ||
				!bytes.Equal(back.Data, tc.r.Data) || back.NextNonce != tc.r.NextNonce || !bytes.Equal(back.Signed, tc.r.Signed) {
				t.Fatalf("round trip %+v -> %+v", tc.r, back)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		ok   bool
	}{
		{"definite, sorted", "a3 01 02 02 00 03 1a 01020304", true},
		{"definite, any order", "a3 02 00 03 1a 01020304 01 02", true},
		{"indefinite", "bf 02 00 01 02 03 01 ff", true},
		{"unknown key", "a3 01 04 02 00 07 00", false},
		{"duplicate key", "a3 01 04 02 00 01 04", false},
		{"missing status", "a1 01 04", false},
		{"nonce in an operation response", "a3 01 04 02 00 03 01", false},
		{"zero nonce", "a3 01 02 02 00 03 00", false},
		{"successful nonce response without nonce", "a2 01 02 02 00", false},
		{"data in a nonce response", "a4 01 02 02 00 03 01 04 40", false},
		{"device signature in a nonce response", "a4 01 02 02 00 03 01 06 41 d2", false},
		{"device signature in an error response", "a3 01 18 ff 02 02 06 41 d2", false},
		{"device signature in an operation response", "a3 01 04 02 00 06 41 d2", true},
		{"unknown type", "a2 01 09 02 00", false},
		{"status too large", "a2 01 04 02 1b 0000000100000000", false},
		{"nested indefinite", "bf 01 04 02 00 04 5f 41 00 ff ff", false},
		{"array", "82 01 02", false},
		{"trailing", "a2 01 04 02 00 00", false},
		{"tagged type", "a2 01 c1 04 02 00", false},
		{"tagged status", "a2 01 04 02 d8 64 00", false},
		{"tagged data", "a3 01 04 02 00 04 d8 64 40", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeResponse(h(tc.data))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeResponse(%s) = %v, want ok=%v", tc.data, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
		})
	}
}

func TestDecodeMessage(t *testing.T) {
	m, err := DecodeMessage(NonceRequest)
	if err != nil || m.Type != TypeNonceRequest {
		t.Fatalf("nonce request: %+v, %v", m, err)
	}
	m, err = DecodeMessage(EncodeOperationRequest([]byte{0xd2, 0x84}))
	if err != nil || m.Type != TypeOperationRequest || !bytes.Equal(m.Signed, []byte{0xd2, 0x84}) {
		t.Fatalf("operation request: %+v, %v", m, err)
	}
	for _, bad := range []string{
		"", "01", "80", "81 03", "82 01 40", "82 03 60", "82 03 40", "83 03 41 00 00",
		"81 02", "9f 01 ff", "81 01 00", "81 21", "82 03 f6",
		"83 03 41 00 40", "83 03 41 00 61 00", "84 03 41 00 41 00 41 00", "83 01 41 00 41 00",
	} {
		if _, err := DecodeMessage(h(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeMessage(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

// v2: an operation request may carry a status update as a third byte
// string (docs/PROTOCOL.md section 12).
func TestOperationRequestWithStatus(t *testing.T) {
	enc := EncodeOperationRequestWithStatus([]byte{0xd2, 0x84}, []byte{0xd2, 0x85})
	if got, want := fmt.Sprintf("% x", enc), "83 03 42 d2 84 42 d2 85"; got != want {
		t.Fatalf("encoding %s, want %s", got, want)
	}
	m, err := DecodeMessage(enc)
	if err != nil || m.Type != TypeOperationRequest || !bytes.Equal(m.Signed, []byte{0xd2, 0x84}) || !bytes.Equal(m.Status, []byte{0xd2, 0x85}) {
		t.Fatalf("%+v, %v", m, err)
	}
	if m, _ := DecodeMessage(EncodeOperationRequest([]byte{1})); m.Status != nil {
		t.Fatalf("two-element request carries a status: %+v", m)
	}
}

// v2 response key 7: the device's status sequences, in nonce and operation
// responses, empty when it holds none; never in error responses.
func TestResponseSequences(t *testing.T) {
	r := Response{Type: TypeNonceResponse, Status: StatusSuccess, Nonce: 5, HasSequences: true,
		Sequences: []Sequence{{Issuer: "bb", Seq: 2, Time: 3}, {Issuer: "a", Seq: 1, Time: 24}}}
	enc := r.Encode()
	// {_ 3: 5, 7: {"a": [1, 24], "bb": [2, 3]}, 1: 2, 2: 0}
	if got, want := fmt.Sprintf("% x", enc), "bf 03 05 07 a2 61 61 82 01 18 18 62 62 62 82 02 03 01 02 02 00 ff"; got != want {
		t.Fatalf("encoding %s\nwant     %s", got, want)
	}
	got, err := DecodeResponse(enc)
	if err != nil || !got.HasSequences || len(got.Sequences) != 2 || got.Sequences[0] != (Sequence{"a", 1, 24}) || got.Sequences[1] != (Sequence{"bb", 2, 3}) {
		t.Fatalf("%+v, %v", got, err)
	}
	empty := Response{Type: TypeOperationResponse, Status: StatusSuccess, Data: []byte{}, HasSequences: true}.Encode()
	if got := fmt.Sprintf("% x", empty); got != "bf 04 40 07 a0 01 04 02 00 ff" {
		t.Fatalf("empty sequences: %s", got)
	}
	if got, err := DecodeResponse(empty); err != nil || !got.HasSequences || len(got.Sequences) != 0 {
		t.Fatalf("%+v, %v", got, err)
	}
	if got, _ := DecodeResponse(Response{Type: TypeNonceResponse, Nonce: 1}.Encode()); got.HasSequences {
		t.Fatal("key 7 reported present in a response without it")
	}
	for _, bad := range []string{
		"bf 07 a0 01 18 ff 02 02 ff",                // in an error response
		"bf 03 05 07 a1 61 61 81 01 01 02 02 00 ff", // [seq] only
		"bf 03 05 07 a1 61 61 83 01 02 03 01 02 02 00 ff",
		"bf 03 05 07 a1 01 82 01 02 01 02 02 00 ff", // integer issuer
		"bf 03 05 07 80 01 02 02 00 ff",             // not a map
	} {
		if _, err := DecodeResponse(h(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeResponse(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

// An envelope that does not decode but is an array whose first element is
// the unsigned integer 3 reports TypeOperationRequest: the reference device
// chooses the response type from that element alone and answers every
// such envelope with an operation response.
func TestDecodeMessageTypeOfMalformed(t *testing.T) {
	for _, tc := range []struct {
		data string
		typ  uint64
	}{
		{"81 03", TypeOperationRequest},             // [3]
		{"82 03 60", TypeOperationRequest},          // [3, ""]
		{"82 03 01", TypeOperationRequest},          // [3, 1]
		{"82 03 80", TypeOperationRequest},          // [3, []]
		{"82 03 a0", TypeOperationRequest},          // [3, {}]
		{"82 03 f6", TypeOperationRequest},          // [3, null]
		{"82 03 40", TypeOperationRequest},          // [3, h'']
		{"82 03 5f 41 00 ff", TypeOperationRequest}, // [3, (_ h'00')]
		{"83 03 41 00 00", TypeOperationRequest},    // [3, h'00', 0]
		{"82 03 41 00 00", TypeOperationRequest},    // [3, h'00'] 0
		{"9f 03 41 00 ff", TypeOperationRequest},    // [_ 3, h'00']
		{"82 18 03 41", TypeOperationRequest},       // [3 (in two bytes), truncated
		{"82 03", TypeOperationRequest},             // truncated
		{"", 0}, {"01", 0}, {"80", 0}, {"a1 03 40", 0},
		{"82 01 40", 0}, {"81 02", 0}, {"9f 01 ff", 0}, {"81 01 00", 0}, {"81 21", 0},
		{"82 22 41 00", 0},      // [-3, h'00']
		{"82 f9 4200 41 00", 0}, // [3.0, h'00']
		{"82 c1 03 41 00", 0},   // [1(3), h'00']
	} {
		m, err := DecodeMessage(h(tc.data))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeMessage(%s) = %v, want ErrMalformed", tc.data, err)
		}
		if m.Type != tc.typ || m.Signed != nil {
			t.Errorf("DecodeMessage(%s) = %+v, want type %d", tc.data, m, tc.typ)
		}
	}
}

// Decoding an envelope allocates only the copies of its byte strings (the
// device decodes one per request): Signed and Status do not alias the
// input. DecodeMessageView decodes the same without copies.
func TestDecodeMessageAllocs(t *testing.T) {
	m := func(b []byte) Message {
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		max  float64
	}{
		{"nonce request", NonceRequest, 0},
		{"operation request", EncodeOperationRequest(bytes.Repeat([]byte{0xd2}, 400)), 1},
		{"with a status update", EncodeOperationRequestWithStatus(bytes.Repeat([]byte{0xd2}, 400), bytes.Repeat([]byte{0xd3}, 300)), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() {
				if _, err := DecodeMessage(tc.msg); err != nil {
					t.Fatal(err)
				}
			}); n > tc.max {
				t.Errorf("%v allocations, want at most %v", n, tc.max)
			}
			if n := testing.AllocsPerRun(100, func() {
				if _, err := DecodeMessageView(tc.msg); err != nil {
					t.Fatal(err)
				}
			}); n > 0 {
				t.Errorf("DecodeMessageView: %v allocations, want none", n)
			}
			v, _ := DecodeMessageView(tc.msg)
			if !bytes.Equal(v.Signed, m(tc.msg).Signed) || !bytes.Equal(v.Status, m(tc.msg).Status) || v.Type != m(tc.msg).Type {
				t.Errorf("DecodeMessageView: %+v, DecodeMessage: %+v", v, m(tc.msg))
			}
			m, _ := DecodeMessage(tc.msg)
			signed, status := bytes.Clone(m.Signed), bytes.Clone(m.Status)
			for i := range tc.msg {
				tc.msg[i] ^= 0xff
			}
			if !bytes.Equal(m.Signed, signed) || !bytes.Equal(m.Status, status) {
				t.Error("the message aliases the envelope")
			}
		})
	}
}
