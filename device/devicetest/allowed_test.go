package devicetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/device/devicetest"
	"github.com/securedeviceaccess/sda/trust"
	"github.com/securedeviceaccess/sda/trust/trusttest"
)

// TestLastOutcomeAllowed calls Allowed on the Decision that LastOutcome
// returns by value, as a test written from the documentation does.
func TestLastOutcomeAllowed(t *testing.T) {
	iss := trusttest.NewIssuer(t)
	dev := devicetest.NewDevice(t, devicetest.Options{
		TrustAnchors: []trust.Anchor{iss.Anchor},
		Operations:   map[string]device.HandlerFunc{"read-data": devicetest.Reply("ok")},
	})
	if dev.LastOutcome().Allowed() {
		t.Fatal("a decision is allowed before any request")
	}
	if _, err := session(t, iss, dev, "read-data").Do(context.Background(), readData()); err != nil {
		t.Fatal(err)
	}
	if !dev.LastOutcome().Allowed() {
		t.Fatalf("read-data with a token for it: not allowed: %+v", dev.LastOutcome())
	}
	if _, err := session(t, iss, dev, "configure").Do(context.Background(), readData()); !errors.Is(err, client.ErrAccessDenied) {
		t.Fatalf("read-data with a token for configure: %v", err)
	}
	if dev.LastOutcome().Allowed() {
		t.Fatal("read-data with a token for configure: allowed")
	}
}
