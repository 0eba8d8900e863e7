// Package sqlstore keeps policies, directories and API keys in PostgreSQL,
// as a [policy.Store] that several authorization service instances share.
// An authorization server opens it with [Open] and gives it to its
// [policy.Service] as the Store.
//
// It uses database/sql; open the database with the pgx driver:
//
//	db, err := sql.Open("pgx", dsn) // import _ "github.com/jackc/pgx/v5/stdlib"
//	store, err := sqlstore.Open(ctx, db, "sda")
//
// # Schema and change tracking
//
// Records live in one table, keyed by (kind, id), with their JSON encoding,
// the sequence number of the batch that last wrote them, and a tombstone
// flag for deletions. A one-row table holds the latest sequence number.
// Every [Store.Apply] runs in one transaction that first increments that
// row: the row lock serializes writers, so batches commit in sequence
// order and a reader that sees batch N also sees every batch before it.
// [Store.Changes] is then an index range scan on the sequence number, cheap
// enough for a [policy.Service] to run before every decision. Tombstones
// are kept so that deletions reach every instance.
//
// Endpoint names of devices and hashes of API keys are unique, enforced by
// a partial unique index; a violation is reported as [policy.ErrConflict].
// It needs PostgreSQL 13 or later.
//
// # Ledger of issued tokens
//
// [Store.RecordIssued] group-commits: concurrent calls queue, and up to
// four batches at once, each the oldest queued records (at most 256) in
// one multi-row INSERT committed on its own, are written on connections of
// their own. A call returns only once its batch is committed. Batches are
// formed oldest first, but those under way commit in any order: a call
// waits for at most the batches formed before its own and its own. At
// most 4,096 records wait; a call beyond them fails at once with
// [ErrIssuedQueueFull], and a call whose context ends takes its record
// out of the queue. A batch that fails with an error matching
// [policy.ErrUnavailable] fails every call in it (its records may then
// exist, but the service returns no token for them); a batch that fails
// otherwise, because PostgreSQL refused one of its records, is written
// again one record at a time, so that only that record's call fails.
//
// # Snapshots
//
// [Store.Snapshot] reads the live records in one repeatable-read
// transaction, in the table's order, and decodes them on several
// goroutines as they arrive; each kind is then sorted by id, bytewise, as
// the other stores list them.
//
// # Schema versions and migrations
//
// The schema's version is recorded in a table of its own,
// sda_schema_migrations, one row per migration applied. The package embeds
// its migrations, numbered from 1 ([SchemaVersion] is the last), and [Open]
// applies those that the database lacks, in order, in one transaction that
// holds an advisory lock: instances starting at once against one database
// migrate it exactly once, the others waiting and then finding it current,
// and a migration that fails leaves the schema as it was (PostgreSQL's DDL
// is transactional). Migration 1 is the schema of the versions that did
// not record one: a database they created is recognised as version 1 and
// keeps its records. A database migrated by a newer version is refused
// with a *[SchemaVersionError] matching [ErrSchemaTooNew] and left
// untouched: downgrading means restoring a backup taken before the
// upgrade. Migrations are embedded SQL files, not a library's: the schema
// name is the caller's, and the existing advisory lock and transaction
// already give what a library would.
//
// # Failures
//
// Every failure to use the database (a connection that fails, is closed or
// times out, a context that ends, a server shutting down, refusing
// connections, read-only or out of resources, a transaction it cancelled)
// matches [policy.ErrUnavailable], which the service answers with HTTP 503;
// a write that fails so was not applied. A commit is the exception: when
// the connection fails while the COMMIT is in flight, the server may have
// applied it and lost only its answer. [Store.Apply] then asks the
// database on another connection (pg_xact_status) whether the transaction
// committed, and succeeds if it did. A transaction still in progress after
// half a second belongs to a connection the server has not yet seen fail,
// whose COMMIT may still arrive: its server process is terminated, which
// settles the outcome. If the database cannot be asked within 10 seconds,
// Apply reports [policy.ErrOutcomeUnknown]: the write may or may not have
// been applied.
//
// # Security considerations
//
// The store holds API key hashes, never secrets. Records read back are
// decoded strictly and validated again before use; a record that fails
// makes Snapshot and Changes fail, and the service fails closed.
package sqlstore
