package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// TestTokenRequestStrictness pins the rules by which the token endpoint
// reads its JSON body, whichever decoder reads it: unknown fields,
// trailing data and wrong types are refused with a *JSONError naming
// them, members are matched as encoding/json matches them (a later
// duplicate wins, names equal under case folding match), and the body's
// size is bounded.
func TestTokenRequestStrictness(t *testing.T) {
	pemBytes := newCnfPEM(t)
	cnf, _ := json.Marshal(string(pemBytes))
	good := `{"grant_type":"client_credentials","aud":["ep:a"],"scope":"read op1","cnf":` + string(cnf) + `}`
	refused := []struct {
		name, body string
		problem    JSONProblem
		path       string
	}{
		{"unknown field", `{"grant_type":"client_credentials","aud":["ep:a"],"scope":"read","cnf":` + string(cnf) + `,"extra":1}`, JSONUnknownField, "extra"},
		{"trailing data", good + `{}`, JSONTrailingData, ""},
		{"trailing bracket", good + `]`, JSONTrailingData, ""},
		{"aud of numbers", `{"aud":[1]}`, JSONWrongType, "aud[0]"},
		{"scope a number", `{"scope":1}`, JSONWrongType, "scope"},
		{"not an object", `[]`, JSONWrongType, ""},
		{"cut short", good[:len(good)-1], JSONSyntax, ""},
		{"bad escape", `{"scope":"\q"}`, JSONSyntax, ""},
		{"control character", "{\"scope\":\"a\x01\"}", JSONSyntax, ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeTokenRequest([]byte(c.body))
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("got %v (%T), want a *JSONError", err, err)
			}
			if je.Problem != c.problem || je.Path != c.path {
				t.Fatalf("got problem %v at %q, want %v at %q", je.Problem, je.Path, c.problem, c.path)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		body := `{"scope":"` + strings.Repeat("a", maxTokenBodyBytes) + `"}`
		if _, err := decodeTokenRequest([]byte(body)); !errors.Is(err, errTooLarge) {
			t.Fatalf("got %v, want errTooLarge", err)
		}
	})
	accepted := []struct {
		name, body string
		want       wire.TokenRequest
	}{
		{"duplicate: the last wins", `{"scope":"a","scope":"read"}`, wire.TokenRequest{Scope: "read"}},
		{"case folded name", `{"SCOPE":"read","Grant_Type":"x"}`, wire.TokenRequest{Scope: "read", GrantType: "x"}},
		{"escapes", `{"scope":"r\u0065ad\/\"\\\b\f\n\r\t"}`, wire.TokenRequest{Scope: "read/\"\\\b\f\n\r\t"}},
		{"null", `{"scope":null,"aud":null,"cnonce":null}`, wire.TokenRequest{}},
		{"empty aud", ` { "aud" : [ ] } `, wire.TokenRequest{Aud: []string{}}},
		{"invalid UTF-8 replaced", "{\"scope\":\"a\xffb\"}", wire.TokenRequest{Scope: "a\ufffdb"}},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			var got wire.TokenRequest
			if err := decodeTokenRequestJSON([]byte(c.body), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

// newCnfPEM returns the PEM of a new P-256 public key.
func newCnfPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := token.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes
}

// TestDecodeTokenRequestAllocations checks that reading a well-formed
// token request body allocates only its values: it is read once per token.
func TestDecodeTokenRequestAllocations(t *testing.T) {
	pemBytes := newCnfPEM(t)
	body, err := json.Marshal(wire.TokenRequest{GrantType: "client_credentials", Aud: []string{"ep:a"}, Scope: "read op1", Cnf: string(pemBytes)})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		var j wire.TokenRequest
		if err := decodeTokenRequestJSON(body, &j); err != nil {
			t.Fatal(err)
		}
	})
	// The four strings and the slice of audiences.
	if allocs > 5 {
		t.Errorf("decoding a token request allocates %.0f times, want at most 5", allocs)
	}
}

// FuzzDecodeTokenRequestJSON checks decodeTokenRequestJSON against
// strictUnmarshal: the same value or the same refusal for every body, and
// the hand-written reader accepts only bodies strictUnmarshal decodes to
// the same value.
func FuzzDecodeTokenRequestJSON(f *testing.F) {
	f.Add([]byte(`{"grant_type":"client_credentials","aud":["ep:a","id:b"],"scope":"read op1","cnf":"-----BEGIN PUBLIC KEY-----\nAB/+\n-----END PUBLIC KEY-----\n","cnonce":"0a"}`))
	f.Add([]byte(` { "aud" : [ ] , "scope" : "" } `))
	f.Add([]byte(`{"scope":"a","scope":"b"}`))
	f.Add([]byte(`{"Scope":"a"}`))
	f.Add([]byte(`{"scope":"\u0041\t"}`))
	f.Add([]byte(`{"aud":["a",]}`))
	f.Add([]byte(`{"aud":null,"cnonce":null}`))
	f.Add([]byte(`{}{}`))
	f.Add([]byte("{\"scope\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast wire.TokenRequest
		ok := tokenRequestFast(body, &fast)
		var strict wire.TokenRequest
		serr := strictUnmarshal(body, &strict)
		if ok && (serr != nil || !reflect.DeepEqual(fast, strict)) {
			t.Fatalf("the reader decoded %#v, strictUnmarshal %#v, %v", fast, strict, serr)
		}
		var got wire.TokenRequest
		err := decodeTokenRequestJSON(body, &got)
		if !reflect.DeepEqual(err, serr) {
			t.Fatalf("decodeTokenRequestJSON: %v, strictUnmarshal: %v", err, serr)
		}
		if err == nil && !reflect.DeepEqual(got, strict) {
			t.Fatalf("decodeTokenRequestJSON: %#v, strictUnmarshal: %#v", got, strict)
		}
	})
}
