package devicetest_test

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

// setFanSpeed is the technician app under test: it configures the fan speed
// of a device with the token it holds.
func setFanSpeed(ctx context.Context, conn transport.Conn, key crypto.Signer, tok []byte, percent int64) error {
	s := &client.Session{Conn: conn, Key: key, Tokens: client.StaticToken(tok), Timeout: 10 * time.Second}
	_, err := s.Do(ctx, token.Operation{Name: "configure", Args: []token.Arg{token.Text("fan-speed"), token.Int(percent)}})
	return err
}

// The test of a technician app against an in-process device: a technician
// whose token permits only read-data is refused configure, and the device's
// decision says why. In a test file, the body of the function given to
// faketb.RunExample is the body of func TestReadOnlyToken(t *testing.T).
func Example() {
	faketb.RunExample(func(t testing.TB) {
		iss := trusttest.NewIssuer(t)
		dev := devicetest.NewDevice(t, devicetest.Options{
			TrustAnchors: []trust.Anchor{iss.Anchor},
			Operations:   map[string]device.HandlerFunc{"configure": devicetest.Reply("ok")},
		})
		key := trusttest.NewPoPKey(t)
		readOnly := iss.Token(t, dev.Audience(), "read-data", key.Public(), trusttest.Subject("jim"))

		err := setFanSpeed(t.Context(), dev.Conn(), key, readOnly, 80)
		if d := dev.LastOutcome(); !errors.Is(err, client.ErrAccessDenied) || !errors.Is(d.Err, token.ErrOutOfScope) {
			t.Fatalf("setFanSpeed = %v, device decided %v; want access denied by scope", err, d.Err)
		}
		fmt.Println("refused by the device's", dev.LastOutcome().Check, "check; subject", dev.LastOutcome().Subject)
	})
	// Output:
	// refused by the device's scope check; subject jim
}
