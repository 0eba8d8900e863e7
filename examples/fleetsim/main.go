package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/trust"
)

func main() {
	set := Settings{}
	flag.IntVar(&set.Devices, "devices", 10000, "devices, none of which ever goes online")
	flag.IntVar(&set.Technicians, "technicians", 200, "technicians (one of them is robbed)")
	flag.IntVar(&set.Visits, "visits", 8, "visits per technician per day, 1 to 50")
	flag.IntVar(&set.Days, "days", 30, "days simulated after the revocation")
	flag.IntVar(&set.ThiefVisits, "thief-visits", 4, "visits per day by the thief with the stolen token")
	flag.Uint64Var(&set.Seed, "seed", 1, "seed of the random choices")
	flag.Parse()
	if err := report(context.Background(), os.Stdout, set); err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

// report runs the simulation and prints its table and the device's cost
// of installing an update.
func report(ctx context.Context, w io.Writer, set Settings) error {
	perDay := (set.Technicians - 1) * set.Visits
	fmt.Fprintf(w, "fleet: %d devices that never go online and have no clock; %d technicians visit %d devices each a day\n",
		set.Devices, set.Technicians-1, set.Visits)
	fmt.Fprintf(w, "       at random (%d visits a day: a device is visited every %.1f days on average); seed %d\n",
		perDay, float64(set.Devices)/float64(perDay), set.Seed)
	fmt.Fprintf(w, "day 0: technician 0's phone is stolen with a token naming %d devices; the owner revokes\n", min(token.MaxAudiences, set.Devices))
	fmt.Fprintf(w, "       every token of technician 0 (a subject cut-off); the thief tries %d of them a day\n\n", set.ThiefVisits)
	start := time.Now()
	days, err := Run(ctx, set)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%4s  %22s  %24s  %14s  %18s\n", "day", "devices still accepting", "of the stolen token's", "thief in/out", "visits pushing an update")
	for _, d := range days {
		perPush := 0
		if d.Pushes > 0 {
			perPush = d.PushBytes / d.Pushes
		}
		fmt.Fprintf(w, "%4d  %21.1f%%  %23.1f%%  %6d/%-7d  %6.1f%% (%d bytes each)\n", d.Day, 100*d.Unreached, 100*d.UnreachedAudience,
			d.ThiefAccepted, d.ThiefRefused, 100*float64(d.Pushes)/float64(d.Visits), perPush)
	}
	fmt.Fprintf(w, "\nsimulated in %v\n", time.Since(start).Round(time.Millisecond))
	ratio, size, err := installCost(1000)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "installing an update of %d bytes (one subject cut-off) costs %.2f signature verifications (P-256)\n", size, ratio)
	return nil
}

// installCost measures, in one run, the device's cost of installing a
// status update (parse, anchor lookup, signature verification, persisting
// in a MemoryState, publishing) as a ratio to one bare ECDSA P-256
// verification, over n updates.
func installCost(n int) (ratio float64, size int, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, 0, err
	}
	a, err := trust.NewAnchor(key.Public())
	if err != nil {
		return 0, 0, err
	}
	anchors, err := trust.NewMemoryStore(*a)
	if err != nil {
		return 0, 0, err
	}
	agent, err := device.New(device.Config{Identity: token.Identity{Endpoint: "dev-1"}, Anchors: anchors, ClockMode: device.ClockLowerBound})
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	updates := make([][]byte, n)
	for i := range updates {
		u := &token.StatusUpdate{Issuer: a.Issuer, Sequence: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), Audience: "ep:dev-1",
			Subjects: []token.SubjectCutoff{{Subject: "tech-0000", Before: t0}}}
		if updates[i], err = token.SignStatus(u, key, nil); err != nil {
			return 0, 0, err
		}
	}
	digest := sha256.Sum256([]byte("a message"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return 0, 0, err
	}
	// Interleaved in short rounds, so that load on the machine affects
	// both alike.
	const rounds = 10
	var install, verify time.Duration
	for r := range rounds {
		batch := updates[r*n/rounds : (r+1)*n/rounds]
		start := time.Now()
		for range batch {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				return 0, 0, fmt.Errorf("verification failed")
			}
		}
		verify += time.Since(start)
		start = time.Now()
		for _, u := range batch {
			if err := agent.InstallStatus(u); err != nil {
				return 0, 0, err
			}
		}
		if r > 0 { // the first round warms up
			install += time.Since(start)
		} else {
			verify = 0
		}
	}
	return float64(install) / float64(verify), len(updates[0]), nil
}
