package policy

import (
	"context"
	"errors"
)

// Store keeps policies, directories and API keys durably. The embedded
// [MemoryStore] (optionally backed by a JSON file) is the default; package
// sqlstore keeps them in PostgreSQL, shared by several service instances.
//
// A Store numbers each applied batch with a sequence number that grows in
// commit order; [Service] follows these numbers to pick up changes made by
// other instances without restarting.
type Store interface {
	// Apply validates the batch (see [PrepareChanges]) and writes it
	// atomically: all changes or none. It returns the batch's sequence
	// number. Uniqueness violations match [ErrConflict], and so does a
	// change with Create set whose record exists (counting the batch's
	// earlier changes), even when another writer created it concurrently;
	// so does a change with IfMatch set whose record, at commit, is not
	// the one IfMatch holds.
	// An error means that nothing was written, except [ErrOutcomeUnknown],
	// which a store returns when it cannot tell whether its commit took
	// effect; a failure to reach the storage should match [ErrUnavailable].
	Apply(ctx context.Context, changes ...Change) (seq int64, err error)

	// Snapshot returns the whole content and its sequence number.
	Snapshot(ctx context.Context) (*Snapshot, error)

	// Changes returns the changes committed after sequence number since, in
	// commit order, each carrying its batch's Seq; the changes of one batch
	// are returned together. It returns [ErrChangesTruncated] when it no
	// longer has all of them: the caller then loads a Snapshot.
	Changes(ctx context.Context, since int64) ([]Change, error)
}

// ErrChangesTruncated is returned by [Store.Changes] when the store no
// longer holds the changes asked for.
var ErrChangesTruncated = errors.New("policy: change log truncated")
