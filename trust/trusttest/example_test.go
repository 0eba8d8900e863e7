package trusttest_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// readData is the technician app under test: it reads the device's data
// with the token it holds.
func readData(ctx context.Context, conn transport.Conn, key crypto.Signer, tok []byte) (string, error) {
	s := &client.Session{Conn: conn, Key: key, Tokens: client.StaticToken(tok), Timeout: 10 * time.Second}
	res, err := s.Do(ctx, token.Operation{Name: "read-data"})
	if err != nil {
		return "", err
	}
	return string(res.Data), nil
}

// The test of a technician app with tokens minted in the test: a fresh token
// reads the device, an expired one is refused. In a test file, the body of
// the function given to faketb.RunExample is the body of func
// TestReadData(t *testing.T).
func Example() {
	faketb.RunExample(func(t testing.TB) {
		iss := trusttest.NewIssuer(t)
		dev := devicetest.NewDevice(t, devicetest.Options{
			TrustAnchors: []trust.Anchor{iss.Anchor},
			Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
		})
		key := trusttest.NewPoPKey(t)
		fresh := iss.Token(t, dev.Audience(), "read-data", key.Public())
		expired := iss.Token(t, dev.Audience(), "read-data", key.Public(), trusttest.IssuedAt(time.Now().Add(-3*time.Hour)))

		got, err := readData(t.Context(), dev.Conn(), key, fresh)
		fmt.Println(got, err)
		_, err = readData(t.Context(), dev.Conn(), key, expired)
		fmt.Println(errors.Is(err, client.ErrVerification), errors.Is(dev.LastOutcome().Err, token.ErrExpired))
	})
	// Output:
	// 21.5 C <nil>
	// true true
}
