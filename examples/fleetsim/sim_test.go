package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// The short setting run in CI: 500 devices, 10 honest technicians visiting
// 8 devices a day (a device is visited every 6.25 days on average, as in
// the long setting of 10,000 devices and 200 technicians), 7 days. Run
// itself checks every thief's visit against the device's state: accepted
// exactly when the device had not installed the revocation.
func TestFleetShort(t *testing.T) {
	set := Settings{Devices: 500, Technicians: 11, Visits: 8, Days: 7, ThiefVisits: 4, Seed: 7}
	days, err := Run(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != set.Days {
		t.Fatalf("%d days", len(days))
	}
	// A device is missed by one technician's day with probability
	// 1 - 8/500, by all ten with p = (1 - 8/500)^10: after d days p^d of
	// the devices have not been visited since the revocation.
	p := math.Pow(1-float64(set.Visits)/float64(set.Devices), float64(set.Technicians-1))
	prev := 1.0
	for _, d := range days {
		want := math.Pow(p, float64(d.Day))
		if math.Abs(d.Unreached-want) > 0.08 {
			t.Errorf("day %d: %.3f of the devices unreached, expected about %.3f", d.Day, d.Unreached, want)
		}
		if d.Unreached > prev {
			t.Errorf("day %d: unreached grew from %.3f to %.3f", d.Day, prev, d.Unreached)
		}
		prev = d.Unreached
		if d.ThiefAccepted+d.ThiefRefused != set.ThiefVisits {
			t.Errorf("day %d: thief %d in, %d out", d.Day, d.ThiefAccepted, d.ThiefRefused)
		}
		if d.Visits != (set.Technicians-1)*set.Visits || d.Pushes == 0 || d.PushBytes/d.Pushes > token.MaxStatusUpdateSize {
			t.Errorf("day %d: %d visits, %d pushes of %d bytes", d.Day, d.Visits, d.Pushes, d.PushBytes)
		}
	}
	if days[len(days)-1].ThiefRefused == 0 {
		t.Error("the thief was never refused")
	}
}

// The printed report holds the table and the install cost.
func TestReport(t *testing.T) {
	var b bytes.Buffer
	if err := report(context.Background(), &b, Settings{Devices: 60, Technicians: 3, Visits: 5, Days: 2, ThiefVisits: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"devices still accepting", "\n   2 ", "signature verifications"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSettingsOutOfRange(t *testing.T) {
	for _, set := range []Settings{{}, {Devices: 10, Technicians: 1, Visits: 1, Days: 1}, {Devices: 10, Technicians: 2, Visits: 51, Days: 1}} {
		if _, err := Run(context.Background(), set); err == nil {
			t.Errorf("%+v accepted", set)
		}
	}
}
