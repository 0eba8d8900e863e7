package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/sqlstore"
)

// storeFlags declares the flags that name a policy store, as authserver's.
func storeFlags(fs *flag.FlagSet) (file, dsn, schema *string) {
	file = fs.String("store", "", "JSON store `file`")
	dsn = fs.String("postgres", "", "PostgreSQL `DSN` (instead of -store)")
	schema = fs.String("schema", "sda", "PostgreSQL schema `name` (with -postgres)")
	return
}

const storeCmdDetails = `The store is a JSON store file (-store) or a PostgreSQL schema (-postgres,
-schema), as for authserver; stop the service that uses a JSON store file
first (the file is the service's own). Opening a PostgreSQL schema migrates
it to the schema version this sdactl knows; a schema or file of a newer
version is refused (exit 3) and left untouched.
`

var storeExportCmd = &command{
	name:    "store export",
	args:    "[file]",
	summary: "export a policy store's records and ledger as one JSON document",
	details: `Writes the store's policies, subjects, devices, API keys (their hashes,
never secrets), revocations and ledger of issued tokens to file (a new file;
stdout without one or with "-"), in the document that "sdactl store import"
reads: to move from a JSON store file on one node to PostgreSQL shared by
several instances, or back, or to keep a copy. The document names every
subject, device and policy: keep it as carefully as the store.
` + storeCmdDetails + `For example:
  sdactl store export -store store.json export.json
  sdactl store import -postgres "$DSN" export.json
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		file, dsn, schema := storeFlags(fs)
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 1, "file"); err != nil {
				return err
			}
			out := "-"
			if len(args) == 1 {
				out = args[0]
			}
			if out != "-" {
				if _, err := os.Lstat(out); err == nil {
					return ioErr(fmt.Errorf("%s exists; sdactl does not overwrite files", out))
				}
			}
			store, closeStore, err := e.openStoreForTransfer(ctx, *file, *dsn, *schema)
			if err != nil {
				return err
			}
			defer closeStore()
			var buf bytes.Buffer
			if err := policy.Export(ctx, store, &buf); err != nil {
				return transferError(err)
			}
			return e.writeNewFile(out, buf.Bytes())
		}
	},
}

var storeImportCmd = &command{
	name:    "store import",
	args:    "file",
	summary: "import a document of \"sdactl store export\" into an empty policy store",
	details: `Reads the document in file ("-": stdin), checks all of it, and writes its
records and its ledger records that have not expired long ago into the
store, which must hold no record (exit 1 otherwise: a store is never merged).
A JSON store file that does not exist is created. When a write fails the
records written are deleted again, and the store holds none (exit 4).
Prints what it imported.
` + storeCmdDetails,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		file, dsn, schema := storeFlags(fs)
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 1, 1, "file"); err != nil {
				return err
			}
			var r *os.File
			if args[0] == "-" {
				r = nil
			} else {
				f, err := os.Open(args[0])
				if err != nil {
					return ioErr(err)
				}
				defer f.Close()
				r = f
			}
			store, closeStore, err := e.openStoreForTransfer(ctx, *file, *dsn, *schema)
			if err != nil {
				return err
			}
			defer closeStore()
			var st policy.ImportStats
			if r == nil {
				st, err = policy.Import(ctx, store, e.stdin)
			} else {
				st, err = policy.Import(ctx, store, r)
			}
			if err != nil {
				return transferError(err)
			}
			_, err = fmt.Fprintf(e.stdout, "imported %d records and %d ledger records\n", st.Records, st.Issued)
			return ioErr(err)
		}
	},
}

// openStoreForTransfer opens the store named by the flags, closing a JSON
// store's ledger file when done.
func (e *env) openStoreForTransfer(ctx context.Context, file, dsn, schema string) (policy.Store, func(), error) {
	if (file == "") == (dsn == "") {
		return nil, nil, usageErrorf("give exactly one of -store and -postgres")
	}
	s, closeStore, err := e.openPolicyStore(ctx, file, dsn, schema)
	if err != nil {
		return nil, nil, transferError(err)
	}
	if fs, ok := s.(*policy.FileStore); ok {
		return s, func() { fs.Close(); closeStore() }, nil
	}
	return s, closeStore, nil
}

// transferError maps the errors of opening, exporting and importing a
// store to exit codes: a store or document that cannot be read (invalid,
// newer format or schema) is 3, a store that is not empty 1, the rest 4.
func transferError(err error) error {
	switch {
	case errors.Is(err, policy.ErrFormatTooNew), errors.Is(err, sqlstore.ErrSchemaTooNew), errors.Is(err, policy.ErrInvalid):
		return &cliError{code: exitInput, err: err} // over the code openPolicyStore gave
	case errors.Is(err, policy.ErrConflict), errors.Is(err, policy.ErrConfig):
		return &cliError{code: exitFailed, err: err}
	}
	return storeError(err)
}
