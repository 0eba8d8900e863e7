package sqlstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/sqlstore"
	"github.com/securedeviceaccess/sda/token"
)

// An authorization service keeping its policies in PostgreSQL. Every
// instance that opens the same schema shares the policies: a change applied
// through one is seen by the others at their next decision.
//
// This example is compiled but not run by go test, because it needs a
// PostgreSQL server (the package's tests use the one SDA_TEST_POSTGRES_DSN
// names; see .ci/postgres.sh). ExampleOpen_errors runs without one.
func ExampleOpen() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL")) // postgres://user:password@host/database
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.Open(ctx, db, "sda") // creates the schema and its tables if needed
	if err != nil {
		log.Fatal(err) // errors.Is(err, policy.ErrUnavailable) while the database cannot be used
	}

	anchorKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in production: from a key store
	svc := &policy.Service{Store: store, Signer: anchorKey}
	err = svc.Apply(ctx,
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1"}),
		policy.PutPolicy(&policy.Policy{
			ID: "p1", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Users: []string{"alice"}},
			Operations:    []policy.OperationRule{{Name: "read-data"}},
			Devices:       policy.DeviceSelector{All: true},
			TokenLifetime: 8 * time.Hour,
		}),
	)
	if err != nil {
		log.Fatal(err)
	}

	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the technician's
	tok, err := svc.Issue(ctx, "alice", &token.AccessRequest{Audience: []string{"ep:hvac-1"}, Scope: []string{"read-data"}, Key: pop.Public()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issued:", len(tok.Token) > 0)
}

// Errors that need no database: a schema name that is not a lower-case SQL
// identifier is refused before the database is used (policy.ErrInvalid), and
// a failure to use the database, here a context that has ended, matches
// policy.ErrUnavailable, which the authorization service answers with HTTP
// 503. sql.Open only checks the DSN; it connects when a connection is needed.
func ExampleOpen_errors() {
	db, err := sql.Open("pgx", "postgres://sda@127.0.0.1/sda")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = sqlstore.Open(context.Background(), db, "Policies")
	fmt.Println("invalid schema name:", errors.Is(err, policy.ErrInvalid))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sqlstore.Open(ctx, db, "sda")
	fmt.Println("unavailable:", errors.Is(err, policy.ErrUnavailable), errors.Is(err, context.Canceled))
	// Output:
	// invalid schema name: true
	// unavailable: true true
}
