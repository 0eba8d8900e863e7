package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/securedeviceaccess/sda/client"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

func main() {
	keyFile := flag.String("key", "tech.key", "proof-of-possession private key (PEM)")
	tokenFile := flag.String("token", "token.cbor", "access token (raw bytes)")
	addr := flag.String("device", "127.0.0.1:5683", "device TCP address")
	flag.Parse()

	key, err := client.ReadKeyFile(*keyFile, nil)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, *addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	s := &client.Session{Conn: conn, Key: key, Tokens: client.StaticToken(tok)}
	res, err := s.Do(ctx, token.Operation{Name: "read-data"})
	switch {
	case errors.Is(err, client.ErrAccessDenied):
		log.Fatal("the token does not permit read-data: ", err)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("rooftop-1 says: %s\n", res.Data)
}
