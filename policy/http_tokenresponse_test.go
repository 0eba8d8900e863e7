package policy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/internal/wire"
)

// TestAppendTokenResponse: the token endpoint's answer, built by hand,
// is byte for byte what encoding/json makes of wire.TokenResponse, for
// tokens of every length modulo 3 (base64 padding) and expiries in any
// time zone.
func TestAppendTokenResponse(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	for _, n := range []int{1, 2, 3, 200, 301, 302, 1000} {
		tok := make([]byte, n)
		rand.Read(tok)
		for _, until := range []time.Time{
			time.Date(2026, 12, 2, 1, 2, 3, 0, time.UTC),
			time.Date(2026, 12, 2, 1, 2, 3, 999, east),
			time.Unix(0, 0),
		} {
			want, err := json.Marshal(wire.TokenResponse{
				AccessToken:  base64.StdEncoding.EncodeToString(tok),
				GrantedUntil: until.UTC().Format(time.RFC3339),
			})
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("x")
			got := appendTokenResponse(prefix, tok, until)
			if !bytes.Equal(got[1:], want) || got[0] != 'x' {
				t.Fatalf("%d bytes, %v:\n got %s\nwant %s", n, until, got[1:], want)
			}
		}
	}
}
