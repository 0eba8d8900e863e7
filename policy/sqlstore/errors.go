package sqlstore

import (
	"errors"
	"fmt"

	"github.com/securedeviceaccess/sda/policy"
)

// ErrSchemaTooNew reports a database schema migrated by a newer version of
// this package than the running one: [Open] leaves it untouched. Errors
// that match it are a *[SchemaVersionError]. Opening again does not help;
// run the newer version, or restore the database from before its upgrade.
var ErrSchemaTooNew = errors.New("sqlstore: database schema newer than this version knows")

// SchemaVersionError names a schema whose version [Open] does not know.
// It matches [ErrSchemaTooNew].
type SchemaVersionError struct {
	Schema string // the schema's name
	Found  int    // the version recorded in the database
	Known  int    // the latest version this package knows: [SchemaVersion]
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("sqlstore: schema %q is at version %d; this version knows versions up to %d", e.Schema, e.Found, e.Known)
}

// Is reports whether target is [ErrSchemaTooNew].
func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaTooNew }

// ErrIssuedQueueFull reports a call of [Store.RecordIssued] refused because
// 4,096 records already wait to be written (the database is
// slower than the calls arrive). It matches [policy.ErrUnavailable]: the
// record was not written, and a later call may succeed.
var ErrIssuedQueueFull = fmt.Errorf("%w: sqlstore: too many ledger records waiting to be written", policy.ErrUnavailable)
