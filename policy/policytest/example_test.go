package policytest_test

import (
	"context"
	"crypto"
	"fmt"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/internal/faketb"
	"github.com/securedeviceaccess/sda/policy/policytest"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// readData is the technician app under test: it asks the authorization
// service for a token and reads the device's data.
func readData(ctx context.Context, tokenURL, credential string, key crypto.Signer, aud string, conn transport.Conn) (string, error) {
	tokens := &client.TokenSource{
		Fetcher: &client.TokenClient{Endpoint: tokenURL, Credential: credential},
		Request: token.AccessRequest{Audience: []string{aud}, Scope: []string{"read-data"}, Key: key.Public()},
	}
	s := &client.Session{Conn: conn, Key: key, Tokens: tokens, Timeout: 10 * time.Second}
	res, err := s.Do(ctx, token.Operation{Name: "read-data"})
	if err != nil {
		return "", err
	}
	return string(res.Data), nil
}

// The test of a technician app against an in-process authorization service
// and device. In a test file, the body of the function given to
// faketb.RunExample is the body of func TestReadData(t *testing.T).
func Example() {
	faketb.RunExample(func(t testing.TB) {
		srv := policytest.NewServer(t, nil)
		alice := srv.AddUser(t, "alice", "technicians")
		dev := devicetest.NewDevice(t, devicetest.Options{
			TrustAnchors: []trust.Anchor{srv.Anchor()},
			Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("21.5 C")},
		})
		srv.AddDevice(t, dev.Identity())
		srv.Allow(t, "group:technicians", "read-data", dev.Audience())

		got, err := readData(t.Context(), srv.TokenURL(), alice, trusttest.NewPoPKey(t), dev.Audience(), dev.Conn())
		if err != nil || got != "21.5 C" {
			t.Fatalf("readData = %q, %v; want 21.5 C", got, err)
		}
		fmt.Println(got, "read by", dev.LastOutcome().Subject)
	})
	// Output:
	// 21.5 C read by alice
}
