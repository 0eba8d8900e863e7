package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
	"github.com/securedeviceaccess/sda/trust"
)

func main() {
	anchorFile := flag.String("anchor", "anchor.pem", "trust anchor public key (PEM)")
	listen := flag.String("listen", "127.0.0.1:5683", "TCP address to serve")
	flag.Parse()

	pemBytes, err := os.ReadFile(*anchorFile)
	if err != nil {
		log.Fatal(err)
	}
	anchor, err := trust.ParsePEM(pemBytes) // named mbed.ta.<SHA-256 of the key>, as SDA issuers name it
	if err != nil {
		log.Fatal(err)
	}
	anchors, err := trust.NewMemoryStore(*anchor)
	if err != nil {
		log.Fatal(err)
	}
	ops := &device.Registry{}
	ops.RegisterFunc("read-data", func(_ context.Context, call *device.Call) ([]byte, error) {
		return []byte(`{"setpoint_c": 21, "fan_pct": 60}`), nil
	})
	agent, err := device.New(device.Config{
		Identity:   token.Identity{Endpoint: "rooftop-1"},
		Anchors:    anchors,
		Operations: ops,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)), // one audit event per decision
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := transport.Listen(ctx, *listen, nil) // SDA serial framing over TCP
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("rooftop-1 listening on %v", ln.Addr())
	if err := agent.ServeListener(ctx, ln, 0); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
