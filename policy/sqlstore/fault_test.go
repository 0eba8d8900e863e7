package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/securedeviceaccess/sda/policy"
)

// The tests in this file break the connection to PostgreSQL at chosen
// points of a write, deterministically: through the store's test hook,
// which runs inside Apply's transaction, and a dialer whose connections
// can be cut (faultNet).

// fault is what a faultNet does to the next write on one of its connections.
type fault int

const (
	noFault   fault = iota
	dropWrite       // the write seems to succeed, but the connection is closed instead: the server never sees it
	loseReply       // the write reaches the server; its reply is read and dropped, then the connection is closed
	blackhole       // the write is dropped and the client's reads fail, but the server's end stays open, as in a network partition
)

// faultNet dials PostgreSQL and can break the connections it made.
type faultNet struct {
	mu     sync.Mutex
	next   fault // applied to the next write on any connection, then reset
	refuse bool  // dials fail
	conns  []net.Conn
}

func (n *faultNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	refuse := n.refuse
	n.mu.Unlock()
	if refuse {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = append(n.conns, c)
	return &faultConn{Conn: c, net: n}, nil
}

// arm makes the next write on any connection fail with f.
func (n *faultNet) arm(f fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next = f
}

func (n *faultNet) setRefuse(refuse bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refuse = refuse
}

// cutAll closes every connection it made, as a network failure would.
func (n *faultNet) cutAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

type faultConn struct {
	net.Conn
	net *faultNet

	mu      sync.Mutex
	swallow bool // drop the reply in progress, then fail
	held    bool // blackholed: the client sees a dead connection, the server an idle one
}

func (c *faultConn) isHeld() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// Close leaves a blackholed connection open for the server; the test's
// cleanup (cutAll) closes it.
func (c *faultConn) Close() error {
	if c.isHeld() {
		return nil
	}
	return c.Conn.Close()
}

func (c *faultConn) Write(p []byte) (int, error) {
	c.net.mu.Lock()
	f := c.net.next
	c.net.next = noFault
	c.net.mu.Unlock()
	if c.isHeld() {
		return len(p), nil
	}
	switch f {
	case blackhole:
		c.mu.Lock()
		c.held = true
		c.mu.Unlock()
		return len(p), nil
	case dropWrite:
		c.Conn.Close()
		return len(p), nil
	case loseReply:
		c.mu.Lock()
		c.swallow = true
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

func (c *faultConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	swallow, held := c.swallow, c.held
	c.mu.Unlock()
	if held {
		return 0, io.ErrUnexpectedEOF
	}
	if !swallow {
		return c.Conn.Read(p)
	}
	// Read the server's messages (type byte, length including itself,
	// body) up to ReadyForQuery ('Z'): the server has then answered the
	// write completely. Drop them and close the connection.
	defer c.Conn.Close()
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
			return 0, err
		}
		if _, err := io.CopyN(io.Discard, c.Conn, int64(binary.BigEndian.Uint32(hdr[1:]))-4); err != nil {
			return 0, err
		}
		if hdr[0] == 'Z' {
			return 0, io.ErrUnexpectedEOF
		}
	}
}

// faultDB opens the test database through a faultNet, with a fresh schema.
func faultDB(t *testing.T) (*sql.DB, *faultNet, string) {
	t.Helper()
	_, schema := testDB(t) // skips or fails without a database; drops the schema at the end
	cfg, err := pgx.ParseConfig(os.Getenv("SDA_TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	fn := &faultNet{}
	cfg.DialFunc = fn.dial
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() {
		db.Close()
		fn.cutAll()
	})
	return db, fn, schema
}

// terminate ends the server process of tx's connection from another
// connection, and waits until it has exited.
func terminate(t *testing.T, ctx context.Context, tx *sql.Tx) {
	t.Helper()
	var pid int
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin := openDB(t, os.Getenv("SDA_TEST_POSTGRES_DSN"))
	var ok bool
	if err := admin.QueryRowContext(ctx, `SELECT pg_terminate_backend($1, 30000)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

// once returns a hook that runs f at step, the first time only.
func once(step string, f func(ctx context.Context, tx *sql.Tx)) func(context.Context, *sql.Tx, string) {
	var done bool
	return func(ctx context.Context, tx *sql.Tx, s string) {
		if s == step && !done {
			done = true
			f(ctx, tx)
		}
	}
}

// seeded opens a store through a faultNet and writes a first record.
func seeded(t *testing.T) (*Store, *faultNet) {
	t.Helper()
	db, fn, schema := faultDB(t)
	s, err := Open(context.Background(), db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), policy.PutPolicy(allowAll("p0", "alice"))); err != nil {
		t.Fatal(err)
	}
	return s, fn
}

func snapshot(t *testing.T, s *Store) *policy.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return snap
}

// TestConnectionLostDuringWrite breaks the connection at each point of a
// write. Before the commit, and when the commit did not reach the server,
// Apply fails with ErrUnavailable and nothing is written. When the commit
// was applied but its answer lost, Apply learns it and succeeds. When it
// cannot learn the outcome, it says so (ErrOutcomeUnknown), never
// ErrUnavailable, which promises that nothing was written.
func TestConnectionLostDuringWrite(t *testing.T) {
	notWritten := []struct {
		name string
		step string
		do   func(t *testing.T, fn *faultNet, ctx context.Context, tx *sql.Tx, cancel context.CancelFunc)
	}{
		{"backend terminated mid-transaction", "bumped", func(t *testing.T, _ *faultNet, ctx context.Context, tx *sql.Tx, _ context.CancelFunc) {
			terminate(t, ctx, tx)
		}},
		{"connection cut mid-transaction", "bumped", func(t *testing.T, fn *faultNet, _ context.Context, _ *sql.Tx, _ context.CancelFunc) {
			fn.cutAll()
		}},
		{"next statement lost", "bumped", func(t *testing.T, fn *faultNet, _ context.Context, _ *sql.Tx, _ context.CancelFunc) {
			fn.arm(dropWrite)
		}},
		{"backend terminated before the commit", "commit", func(t *testing.T, _ *faultNet, ctx context.Context, tx *sql.Tx, _ context.CancelFunc) {
			terminate(t, ctx, tx)
		}},
		{"commit lost on the way", "commit", func(t *testing.T, fn *faultNet, _ context.Context, _ *sql.Tx, _ context.CancelFunc) {
			fn.arm(dropWrite)
		}},
		{"commit lost, the server still waiting for it", "commit", func(t *testing.T, fn *faultNet, _ context.Context, _ *sql.Tx, _ context.CancelFunc) {
			fn.arm(blackhole)
		}},
		{"context cancelled at the commit", "commit", func(t *testing.T, _ *faultNet, _ context.Context, _ *sql.Tx, cancel context.CancelFunc) {
			cancel()
		}},
	}
	for _, tc := range notWritten {
		t.Run(tc.name, func(t *testing.T) {
			s, fn := seeded(t)
			before := snapshot(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.hook = once(tc.step, func(ctx context.Context, tx *sql.Tx) { tc.do(t, fn, ctx, tx, cancel) })
			seq, err := s.Apply(ctx, policy.PutPolicy(allowAll("p1", "bob")), policy.DeleteRecord(policy.KindPolicy, "p0"))
			if !errors.Is(err, policy.ErrUnavailable) || errors.Is(err, policy.ErrOutcomeUnknown) {
				t.Fatalf("Apply = %d, %v; want ErrUnavailable", seq, err)
			}
			if diff := cmp.Diff(before, snapshot(t, s)); diff != "" {
				t.Fatalf("the failed write changed the store:\n%s", diff)
			}
			// The store works again once the database does.
			if _, err := s.Apply(context.Background(), policy.PutPolicy(allowAll("p2", "carol"))); err != nil {
				t.Fatalf("Apply after the failure: %v", err)
			}
		})
	}

	t.Run("commit applied, answer lost", func(t *testing.T) {
		s, fn := seeded(t)
		before := snapshot(t, s)
		s.hook = once("commit", func(context.Context, *sql.Tx) { fn.arm(loseReply) })
		seq, err := s.Apply(context.Background(), policy.PutPolicy(allowAll("p1", "bob")))
		if err != nil {
			t.Fatalf("Apply = %v; the commit was applied, want success", err)
		}
		after := snapshot(t, s)
		if seq != before.Seq+1 || after.Seq != seq || len(after.Policies) != 2 {
			t.Fatalf("Apply = %d; store at %d with %d policies; want %d and 2", seq, after.Seq, len(after.Policies), before.Seq+1)
		}
	})

	t.Run("commit applied, answer lost, database unreachable", func(t *testing.T) {
		s, fn := seeded(t)
		before := snapshot(t, s)
		s.db.SetMaxIdleConns(0)                   // no idle connection to ask on
		s.outcomeTimeout = 300 * time.Millisecond // it waits that long for the database
		s.hook = once("commit", func(context.Context, *sql.Tx) {
			fn.arm(loseReply)
			fn.setRefuse(true)
		})
		seq, err := s.Apply(context.Background(), policy.PutPolicy(allowAll("p1", "bob")))
		if !errors.Is(err, policy.ErrOutcomeUnknown) || errors.Is(err, policy.ErrUnavailable) {
			t.Fatalf("Apply = %d, %v; want ErrOutcomeUnknown and not ErrUnavailable", seq, err)
		}
		fn.setRefuse(false)
		// It was in fact written: ErrUnavailable would have been a lie.
		if after := snapshot(t, s); after.Seq != before.Seq+1 {
			t.Fatalf("store at %d, want %d", after.Seq, before.Seq+1)
		}
	})

	t.Run("database unreachable", func(t *testing.T) {
		s, fn := seeded(t)
		fn.setRefuse(true)
		fn.cutAll()
		if _, err := s.Apply(context.Background(), policy.PutPolicy(allowAll("p1", "bob"))); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("Apply = %v, want ErrUnavailable", err)
		}
		if _, err := s.Snapshot(context.Background()); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("Snapshot = %v, want ErrUnavailable", err)
		}
		if _, err := s.Changes(context.Background(), 0); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("Changes = %v, want ErrUnavailable", err)
		}
		if _, err := Open(context.Background(), s.db, "t_unreachable"); !errors.Is(err, policy.ErrUnavailable) {
			t.Errorf("Open = %v, want ErrUnavailable", err)
		}
	})
}

// TestServiceAnswersUnavailable: the HTTP service answers 503 to a write
// whose connection broke, and nothing was written; a write whose commit
// was applied but whose answer was lost is answered as a success.
func TestServiceAnswersUnavailable(t *testing.T) {
	ctx := context.Background()
	s, fn := seeded(t)
	anchor, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret, key, err := policy.NewAPIKey(nil, "admin", "root", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "root", Kind: policy.User}), policy.PutAPIKey(key)); err != nil {
		t.Fatal(err)
	}
	svc := &policy.Service{Store: s, Signer: anchor}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+secret)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		return w
	}
	body, err := json.Marshal(allowAll("p1", "bob"))
	if err != nil {
		t.Fatal(err)
	}

	s.hook = once("bumped", func(ctx context.Context, tx *sql.Tx) { terminate(t, ctx, tx) })
	w := do("PUT", policy.AdminPathPrefix+"policies/p1", string(body))
	var e struct {
		Type string `json:"type"`
	}
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Type != "service_unavailable" {
		t.Fatalf("PUT with the connection terminated: %d %s, want 503 service_unavailable", w.Code, w.Body)
	}
	if w := do("GET", policy.AdminPathPrefix+"policies/p1", ""); w.Code != http.StatusNotFound {
		t.Fatalf("GET after the failed PUT: %d %s, want 404", w.Code, w.Body)
	}

	// An API key whose creation committed although the answer was lost: the
	// caller gets its secret, which works.
	s.hook = once("commit", func(context.Context, *sql.Tx) { fn.arm(loseReply) })
	w = do("POST", policy.AdminPathPrefix+"api-keys", `{"id":"k2","subject":"root","admin":true}`)
	var created struct {
		Secret string `json:"secret"`
	}
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &created) != nil {
		t.Fatalf("POST api-keys with the answer of the commit lost: %d %s, want 201", w.Code, w.Body)
	}
	secret = created.Secret
	if w := do("GET", policy.AdminPathPrefix+"api-keys/k2", ""); w.Code != http.StatusOK {
		t.Fatalf("GET with the new key: %d %s", w.Code, w.Body)
	}
}

// TestMapErr classifies driver errors without a database: answers about
// the data are ErrConflict or ErrInvalid, everything else that stops a
// write (the connection, the server's state, the context) ErrUnavailable.
func TestMapErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{&pgconn.PgError{Code: "23505"}, policy.ErrConflict},
		{&pgconn.PgError{Code: "22P05"}, policy.ErrInvalid},
		{&pgconn.PgError{Code: "57P01", Severity: "FATAL"}, policy.ErrUnavailable}, // admin_shutdown
		{&pgconn.PgError{Code: "08006"}, policy.ErrUnavailable},                    // connection_failure
		{&pgconn.PgError{Code: "53300"}, policy.ErrUnavailable},                    // too_many_connections
		{&pgconn.PgError{Code: "40001"}, policy.ErrUnavailable},                    // serialization_failure
		{&pgconn.PgError{Code: "25006"}, policy.ErrUnavailable},                    // read_only_sql_transaction (a standby)
		{&pgconn.PgError{Code: "42P01"}, policy.ErrUnavailable},                    // undefined_table: the schema was dropped
		{io.ErrUnexpectedEOF, policy.ErrUnavailable},
		{fmt.Errorf("failed to receive message: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), policy.ErrUnavailable},
		{driver.ErrBadConn, policy.ErrUnavailable},
		{sql.ErrConnDone, policy.ErrUnavailable},
		{sql.ErrTxDone, policy.ErrUnavailable},
		{pgconn.ErrConnClosed, policy.ErrUnavailable},
		{context.Canceled, policy.ErrUnavailable},
		{context.DeadlineExceeded, policy.ErrUnavailable},
	} {
		if got := mapErr(tc.err); !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("mapErr(%v) = %v, want %v wrapping the cause", tc.err, got, tc.want)
		}
	}
}
