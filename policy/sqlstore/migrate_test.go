package sqlstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/securedeviceaccess/sda/policy"
)

// unversionedDDL is the schema that Open created before schema versions
// existed, statement for statement: a database made by that code has no
// version table, and migration 1 must recognise it.
func unversionedDDL(schema string) []string {
	t := `"` + schema + `".`
	return []string{
		`CREATE SCHEMA IF NOT EXISTS "` + schema + `"`,
		`CREATE TABLE IF NOT EXISTS ` + t + `sda_meta (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL)`,
		`INSERT INTO ` + t + `sda_meta (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS ` + t + `sda_records (
			kind text NOT NULL,
			id text NOT NULL,
			seq bigint NOT NULL,
			deleted boolean NOT NULL,
			body jsonb,
			uniq text,
			PRIMARY KEY (kind, id))`,
		`CREATE INDEX IF NOT EXISTS sda_records_seq ON ` + t + `sda_records (seq)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS sda_records_uniq ON ` + t + `sda_records (kind, uniq) WHERE NOT deleted AND uniq IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS ` + t + `sda_issued (
			cti text COLLATE "C" PRIMARY KEY, -- bytewise: the listing's order is Go's
			token_hash text NOT NULL,
			revocation_hash text NOT NULL,
			subject text NOT NULL,
			aud text[] NOT NULL,
			anchor text NOT NULL,
			issued_at timestamptz NOT NULL,
			expires_at timestamptz NOT NULL,
			body jsonb NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS sda_issued_expiry ON ` + t + `sda_issued (expires_at)`,
		`CREATE INDEX IF NOT EXISTS sda_issued_token_hash ON ` + t + `sda_issued (token_hash)`,
		`CREATE INDEX IF NOT EXISTS sda_issued_revocation_hash ON ` + t + `sda_issued (revocation_hash)`,
		`CREATE INDEX IF NOT EXISTS sda_issued_subject ON ` + t + `sda_issued (subject, cti)`,
		`CREATE INDEX IF NOT EXISTS sda_issued_aud ON ` + t + `sda_issued USING gin (aud)`,
	}
}

func createUnversioned(t *testing.T, db *sql.DB, schema string) {
	t.Helper()
	for _, q := range unversionedDDL(schema) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// schemaShape describes the tables, columns and indexes of schema, with
// the schema's name left out, for comparing two schemas.
func schemaShape(t *testing.T, db *sql.DB, schema string) []string {
	t.Helper()
	var out []string
	rows, err := db.Query(`SELECT table_name, column_name, data_type, is_nullable, coalesce(collation_name, ''), coalesce(column_default, '')
		FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'sda_schema_migrations' ORDER BY table_name, ordinal_position`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a [6]string
		if err := rows.Scan(&a[0], &a[1], &a[2], &a[3], &a[4], &a[5]); err != nil {
			t.Fatal(err)
		}
		out = append(out, "column "+strings.Join(a[:], " "))
	}
	rows, err = db.Query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'sda_schema_migrations' ORDER BY indexname`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		out = append(out, "index "+strings.ReplaceAll(def, schema, "S"))
	}
	rows, err = db.Query(`SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = $1::regnamespace AND conrelid::regclass::text NOT LIKE '%sda_schema_migrations' ORDER BY 1, 2`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var rel, def string
		if err := rows.Scan(&rel, &def); err != nil {
			t.Fatal(err)
		}
		out = append(out, "constraint "+strings.ReplaceAll(rel, schema, "S")+" "+def)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func schemaVersions(t *testing.T, db *sql.DB, schema string) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM "` + schema + `".sda_schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("schema versions: %v", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestMigrationOneIsTheUnversionedSchema: a new database gets the very
// tables, columns, indexes and constraints that the unversioned code made.
func TestMigrationOneIsTheUnversionedSchema(t *testing.T) {
	ctx := context.Background()
	db, old := testDB(t)
	_, fresh := testDB(t)
	createUnversioned(t, db, old)
	if _, err := Open(ctx, db, fresh); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(schemaShape(t, db, old), schemaShape(t, db, fresh)); d != "" {
		t.Fatalf("migration 1 differs from the unversioned schema (-unversioned +migrated):\n%s", d)
	}
	if got := schemaVersions(t, db, fresh); !cmp.Equal(got, []int{1}) {
		t.Fatalf("versions %v, want [1]", got)
	}
}

// TestUpgradeUnversioned: a database that the unversioned code created and
// filled is recognised as version 1 and keeps every record.
func TestUpgradeUnversioned(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	createUnversioned(t, db, schema)
	old := newStore(db, schema) // the unversioned code's queries over its tables
	_, key, err := policy.NewAPIKey(rand.Reader, "k1", "alice", true, lt0)
	if err != nil {
		t.Fatal(err)
	}
	batches := [][]policy.Change{
		{policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"techs"}}),
			policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User})},
		{policy.PutDevice(&policy.Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
			policy.PutDevice(&policy.Device{ID: dev2})},
		{policy.PutPolicy(allowAll("p1", "alice")), policy.PutPolicy(allowAll("p2", "bob"))},
		{policy.PutAPIKey(key)},
		{policy.DeleteRecord(policy.KindPolicy, "p2")},
	}
	for _, b := range batches {
		if _, err := old.Apply(ctx, b...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := old.RecordIssued(ctx, ledgerRecord(i, "alice", lt0), lt0, 100); err != nil {
			t.Fatal(err)
		}
	}
	// A revocation, written through the service as in production: one
	// batch more.
	anchor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := &policy.Service{Store: old, Signer: anchor, Now: func() time.Time { return lt0.Add(time.Minute) }}
	if _, err := svc.Revoke(ctx, policy.RevokeRequest{Kind: policy.RevokeSubject, Subject: "bob", Reason: "lost phone", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	wantSnap, err := old.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantIssued, err := old.Issued(ctx, &policy.IssuedFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if got := schemaVersions(t, db, schema); !cmp.Equal(got, []int{1}) {
		t.Fatalf("versions %v, want [1]", got)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantSnap, snap); d != "" {
		t.Fatalf("records after the upgrade (-before +after):\n%s", d)
	}
	if snap.Seq != int64(len(batches)+1) || len(snap.Policies) != 1 || len(snap.Revocations) != 1 || len(snap.APIKeys) != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	issued, err := s.Issued(ctx, &policy.IssuedFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantIssued, issued); d != "" || issued.Total != 3 {
		t.Fatalf("ledger after the upgrade (-before +after):\n%s", d)
	}
	// The change log survives too: a follower at seq 0 gets every batch,
	// the deletion included.
	changes, err := s.Changes(ctx, 0)
	if err != nil || len(changes) == 0 || changes[len(changes)-1].Seq != int64(len(batches)+1) {
		t.Fatalf("changes %v, %v", changes, err)
	}
	// And the store is writable.
	if _, err := s.Apply(ctx, policy.PutPolicy(allowAll("p3", "alice"))); err != nil {
		t.Fatal(err)
	}
}

// TestOpenConcurrently: instances opening one new database at once
// migrate it exactly once, and all of them succeed.
func TestOpenConcurrently(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	var mu sync.Mutex
	applied := map[int]int{}
	setMigrationHook(t, func(s string, version int) {
		if s == schema {
			mu.Lock()
			applied[version]++
			mu.Unlock()
		}
	})
	const n = 8
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := Open(ctx, db, schema)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	want := map[int]int{}
	for v := 1; v <= SchemaVersion; v++ {
		want[v] = 1
	}
	if !cmp.Equal(applied, want) {
		t.Fatalf("migrations applied %v, want each once: %v", applied, want)
	}
	if got := schemaVersions(t, db, schema); len(got) != SchemaVersion {
		t.Fatalf("versions %v", got)
	}
}

// TestOpenRefusesNewerSchema: a schema migrated by newer code is not
// touched, and Open says which version it found.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	db, schema := testDB(t)
	s, err := Open(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User})); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO "`+schema+`".sda_schema_migrations (version, applied_at) VALUES ($1, now())`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	before := schemaShape(t, db, schema)
	_, err = Open(ctx, db, schema)
	var ve *SchemaVersionError
	if !errors.As(err, &ve) || !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want a *SchemaVersionError matching ErrSchemaTooNew", err)
	}
	if ve.Found != SchemaVersion+1 || ve.Known != SchemaVersion || ve.Schema != schema {
		t.Fatalf("error %+v", ve)
	}
	if errors.Is(err, policy.ErrUnavailable) {
		t.Fatalf("%v matches ErrUnavailable: retrying will not help", err)
	}
	if d := cmp.Diff(before, schemaShape(t, db, schema)); d != "" {
		t.Fatalf("schema changed:\n%s", d)
	}
	if snap, err := s.Snapshot(ctx); err != nil || len(snap.Subjects) != 1 {
		t.Fatalf("records %v, %v", snap, err)
	}
}

// TestMigrationsEmbedded: the embedded migrations are numbered 1, 2, ...
// without gaps, the last is SchemaVersion, and each names the schema only
// through the placeholder.
func TestMigrationsEmbedded(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(ms), SchemaVersion)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %d has version %d", i, m.version)
		}
		if !strings.Contains(m.sql, schemaPlaceholder) || strings.Contains(m.sql, `"sda".`) {
			t.Errorf("migration %d does not name its schema through %s", m.version, schemaPlaceholder)
		}
	}
	if _, err := parseMigrations(map[string]string{"0001_a.sql": "x", "0003_b.sql": "y"}); err == nil {
		t.Error("a gap in the numbering is accepted")
	}
	if _, err := parseMigrations(map[string]string{"0001_a.sql": "x", "1_b.sql": "y"}); err == nil {
		t.Error("two migrations with one number are accepted")
	}
}

func setMigrationHook(t *testing.T, f func(schema string, version int)) {
	migrationHook = f
	t.Cleanup(func() { migrationHook = nil })
}
