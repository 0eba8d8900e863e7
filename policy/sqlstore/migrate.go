package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// SchemaVersion is the version of the database schema that this version
// of the package creates and uses: the number of its migrations.
const SchemaVersion = 1

// migrationFiles holds the migrations, named NNNN_description.sql and
// numbered 1, 2, ... without gaps. A migration, once released, is never
// changed: a change of the schema is a new migration.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// schemaPlaceholder stands for the store's schema (a quoted identifier)
// in the migrations.
const schemaPlaceholder = "{{schema}}"

// migrationLock is the pg_advisory_xact_lock key that serializes the
// migrations of concurrent instances.
const migrationLock = 0x5d4a_0001

type migration struct {
	version int
	name    string
	sql     string
}

var (
	migrationsOnce sync.Once
	migrations     []migration
	migrationsErr  error
)

// loadMigrations returns the embedded migrations in order.
func loadMigrations() ([]migration, error) {
	migrationsOnce.Do(func() {
		files := map[string]string{}
		migrationsErr = fs.WalkDir(migrationFiles, "migrations", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := migrationFiles.ReadFile(p)
			files[path.Base(p)] = string(b)
			return err
		})
		if migrationsErr == nil {
			migrations, migrationsErr = parseMigrations(files)
		}
	})
	return migrations, migrationsErr
}

// parseMigrations orders the migrations named by their files' names and
// checks that they are numbered 1, 2, ... without gaps.
func parseMigrations(files map[string]string) ([]migration, error) {
	var out []migration
	for name, text := range files {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("sqlstore: migration file %q: want NNNN_description.sql", name)
		}
		out = append(out, migration{version: v, name: name, sql: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %s: want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// migrationHook, when set by a test, is called after each migration that
// Open applies (before its transaction commits).
var migrationHook func(schema string, version int)

// migrate brings schema to SchemaVersion, in one transaction that holds
// an advisory lock: concurrent callers wait for each other, and the
// first one applies what is missing while the others find it applied.
// PostgreSQL's DDL is transactional, so a migration that fails leaves
// the schema as it was. A schema whose recorded version is newer than
// SchemaVersion fails with a *SchemaVersionError, and is not changed.
func migrate(ctx context.Context, db *sql.DB, schema string) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	q := `"` + schema + `"`
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(fmt.Errorf("migrate: %w", err))
	}
	defer tx.Rollback()
	for _, stmt := range []string{
		`SELECT pg_advisory_xact_lock(` + strconv.Itoa(migrationLock) + `)`,
		`CREATE SCHEMA IF NOT EXISTS ` + q,
		// One row per migration applied. A schema that has the store's
		// tables but not this one was created before versions were
		// recorded: migration 1 is its schema, and recognises it.
		`CREATE TABLE IF NOT EXISTS ` + q + `.sda_schema_migrations (
			version integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return mapErr(fmt.Errorf("migrate: %w", err))
		}
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.sda_schema_migrations`).Scan(&current); err != nil {
		return mapErr(fmt.Errorf("migrate: %w", err))
	}
	if current > len(ms) {
		return &SchemaVersionError{Schema: schema, Found: current, Known: len(ms)}
	}
	if current == len(ms) {
		return nil // nothing to write: the rollback ends the transaction
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, strings.ReplaceAll(m.sql, schemaPlaceholder, q)); err != nil {
			return mapErr(fmt.Errorf("migrate: migration %s: %w", m.name, err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+q+`.sda_schema_migrations (version) VALUES ($1)`, m.version); err != nil {
			return mapErr(fmt.Errorf("migrate: migration %s: %w", m.name, err))
		}
		if migrationHook != nil {
			migrationHook(schema, m.version)
		}
	}
	// A commit whose outcome is unknown is reported: the migrations and
	// their version rows committed together or not at all, and opening
	// again finds which.
	if err := tx.Commit(); err != nil {
		return mapErr(fmt.Errorf("migrate: %w", err))
	}
	return nil
}
