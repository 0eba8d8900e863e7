package issuebench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/policyprom"
	"github.com/securedeviceaccess/sda/token"
)

// Service returns a Service on st, signing with anchor, as sdactl
// authserver serves it: Prometheus metrics (package policyprom, on a
// registry of its own), audit logging (a text handler writing to
// io.Discard), a rate limit high enough never to refuse, room for 2^30
// ledger records, and the given MaxStaleness. The Store's ledger is the
// Service's when st is one.
func Service(st policy.Store, anchor crypto.Signer, staleness time.Duration) (*policy.Service, error) {
	m, err := policyprom.New(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	return &policy.Service{
		Store: st, Signer: anchor, MaxIssued: 1 << 30, Metrics: m, MaxStaleness: staleness,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimit: &policy.RateLimit{PerAddress: 1e9, AddressBurst: 1 << 20, PerKey: 1e9, KeyBurst: 1 << 20},
	}, nil
}

// TokenRequest returns the raw HTTP/1.1 token request, for the server at
// addr, of the holder of the API key secret for audience ep:ep-0 and scope
// "read op1" (granted to user u0 by the policies of policy's benchmark
// generator), with a new P-256 proof-of-possession key.
func TokenRequest(addr, secret string) ([]byte, error) {
	pop, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pemBytes, err := token.MarshalPublicKeyPEM(&pop.PublicKey)
	if err != nil {
		return nil, err
	}
	body := fmt.Sprintf(`{"grant_type":"client_credentials","aud":["ep:ep-0"],"scope":"read op1","cnf":%q}`, pemBytes)
	return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		policy.TokenPath, addr, secret, len(body), body)), nil
}
