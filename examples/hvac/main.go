package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// runTimeout bounds the whole demo; it takes well under a second.
const runTimeout = 20 * time.Second

// stopTimeout bounds the shutdown of the service and the controllers.
const stopTimeout = 5 * time.Second

func main() {
	os.Exit(mainCode())
}

func mainCode() int {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hvac: unexpected outcome:", err)
		return 1
	}
	return 0
}

// run starts the authorization service and the controllers, plays the
// story, writes the transcript to w and stops everything. It returns an
// error if any step's outcome is not the expected one.
func run(ctx context.Context, w io.Writer) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	svc, err := startService(ctx)
	if err != nil {
		return fmt.Errorf("starting the authorization service: %w", err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer scancel()
		err = errors.Join(err, svc.stop(sctx))
	}()

	var ctrls []*controller
	defer func() {
		cancel() // ends ServeListener and the connections it serves
		sctx, scancel := context.WithTimeout(context.Background(), stopTimeout)
		defer scancel()
		for _, c := range ctrls {
			err = errors.Join(err, c.stopped(sctx))
		}
	}()
	for _, c := range []struct {
		id token.Identity
		v2 bool
	}{{rooftop1, false}, {rooftop2, true}} {
		anchors, err := svc.trustStore()
		if err != nil {
			return err
		}
		ctrl, err := startController(ctx, c.id, anchors, c.v2, c.v2)
		if err != nil {
			return fmt.Errorf("starting controller %s: %w", c.id.Endpoint, err)
		}
		ctrls = append(ctrls, ctrl)
	}

	d := &demo{w: w, svc: svc, r1: ctrls[0], r2: ctrls[1]}
	return d.play(ctx)
}
