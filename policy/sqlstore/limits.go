package sqlstore

import "time"

// Bounds of learning the outcome of a commit whose answer was lost (see
// [Store.Apply]).
const (
	// commitOutcomeTimeout bounds the time spent asking the database.
	commitOutcomeTimeout = 10 * time.Second
	// commitSettleTime is how long a transaction may stay in progress
	// before its server process is terminated to settle the outcome: a
	// COMMIT that reached the server completes within it.
	commitSettleTime = 500 * time.Millisecond
	// commitPollMin and commitPollMax bound the wait before each question.
	commitPollMin = 5 * time.Millisecond
	commitPollMax = 100 * time.Millisecond
)

// Upkeep of the ledger of issued tokens (see [Store.RecordIssued]).
const (
	// recountEvery is how many records a Store adds between two counts
	// of the ledger's table.
	recountEvery = 1024
	// pruneEvery is how often a Store that adds records deletes the
	// expired ones.
	pruneEvery = time.Minute
	// maxIssuedBatch bounds the records of one batch, one INSERT of
	// 9 parameters each (PostgreSQL takes at most 65,535).
	maxIssuedBatch = 256
	// maxIssuedWriters bounds the batches of records written at once.
	maxIssuedWriters = 4
	// maxIssuedQueued bounds the records waiting for a batch: beyond
	// it, RecordIssued fails at once with ErrIssuedQueueFull.
	maxIssuedQueued = 4 * maxIssuedBatch * maxIssuedWriters
	// issuedWriteTimeout bounds the INSERT of one batch of records.
	issuedWriteTimeout = 30 * time.Second
)

// snapshotChunkRecords is how many records Snapshot hands to one decoding
// goroutine at a time.
const snapshotChunkRecords = 512
