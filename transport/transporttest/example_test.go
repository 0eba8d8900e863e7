package transporttest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport/transporttest"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// The test of a technician session on a lossy link. A lost nonce request
// costs only a retry; a lost operation response leaves the outcome unknown
// (client.ErrOutcomeUnknown), although the device ran the operation, as its
// outcome shows. Max bounds the faults to one, so the test says exactly
// which message is lost. In a test file, the body of the function given to
// faketb.RunExample is the body of func TestLossyLink(t *testing.T).
func Example() {
	faketb.RunExample(func(t testing.TB) {
		iss := trusttest.NewIssuer(t)
		dev := devicetest.NewDevice(t, devicetest.Options{
			TrustAnchors: []trust.Anchor{iss.Anchor},
			Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
		})
		key := trusttest.NewPoPKey(t)
		tok := iss.Token(t, dev.Audience(), "read-data", key.Public())
		read := token.Operation{Name: "read-data"}

		// The first message the technician sends, a nonce request, is
		// lost: the session asks again once NonceTimeout has passed.
		lossy := transporttest.NewConn(dev.Conn(), transporttest.Config{
			Send: transporttest.Faults{Drop: 1, Max: 1},
		})
		s := &client.Session{Conn: lossy, Key: key, Tokens: client.StaticToken(tok), NonceTimeout: time.Second}
		res, err := s.Do(t.Context(), read)
		if err != nil {
			t.Fatalf("read-data after a lost nonce request: %v", err)
		}
		fmt.Printf("%s; dropped %d sent message\n", res.Data, lossy.Stats().Send.Drop)

		// The second message the technician receives, the operation
		// response, is lost: a signed request is never sent twice.
		lossy = transporttest.NewConn(dev.Conn(), transporttest.Config{
			Receive: transporttest.Faults{Skip: 1, Drop: 1, Max: 1},
		})
		s = &client.Session{Conn: lossy, Key: key, Tokens: client.StaticToken(tok), Timeout: 2 * time.Second}
		_, err = s.Do(t.Context(), read)
		fmt.Println("outcome unknown:", errors.Is(err, client.ErrOutcomeUnknown))
		fmt.Printf("device answered %v; dropped %d received message\n", dev.LastOutcome().Status, lossy.Stats().Receive.Drop)
	})
	// Output:
	// 21.5 C; dropped 1 sent message
	// outcome unknown: true
	// device answered success; dropped 1 received message
}
