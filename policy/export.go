package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// exportFile is the document of [Export] and [Import]: the records of a
// Snapshot (its seq is the source's, for information) and the ledger.
type exportFile struct {
	Format string `json:"format"`
	Snapshot
	Issued []*IssuedRecord `json:"issued,omitempty"`
}

// exportPage is how many ledger records Export reads per query.
const exportPage = 1000

// ImportStats counts what [Import] wrote.
type ImportStats struct {
	Records int // policies, subjects, devices, API keys and revocations
	Issued  int // ledger records
}

// Export writes the records of s (policies, subjects, devices, API keys,
// revocations) and, when s is a [Ledger], its records of issued tokens, as
// one JSON document that [Import] reads into another store: to move from
// a [FileStore] on one node to a database that several instances share,
// or back. The records are one [Store.Snapshot]; the ledger is read after
// it, page by page, so a service issuing tokens meanwhile may add ledger
// records that the snapshot's records do not explain, which is harmless.
// API keys are exported as their hashes, as they are stored: the document
// holds no secret, but it names every subject, device and policy and
// should be kept as carefully as the store.
func Export(ctx context.Context, s Store, w io.Writer) error {
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	doc := exportFile{Format: exportFormatPrefix + strconv.Itoa(exportFormatVersion), Snapshot: *snap}
	if l, ok := s.(Ledger); ok {
		f := &IssuedFilter{Limit: exportPage}
		for {
			list, err := l.Issued(ctx, f)
			if err != nil {
				return err
			}
			doc.Issued = append(doc.Issued, list.Records...)
			if !list.HasMore || len(list.Records) == 0 {
				break
			}
			f.After = list.Records[len(list.Records)-1].TokenID
		}
	}
	b, err := json.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("policy: encode export: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("policy: write export: %w", err)
	}
	return nil
}

// Import reads a document written by [Export] into s, which must hold no
// record (else [ErrConflict]): its records and, when s is a [Ledger], its
// ledger records that are not yet prunable (see [IssuedRetention]). A
// document with ledger records for a store that keeps no ledger fails with
// [ErrConfig]. The document is decoded strictly and validated in full
// before anything is written (a failure matches [ErrInvalid]; a newer
// format is a *[FormatVersionError]); it is read up to the size bound of a
// FileStore's file. The records keep their ids and content; s numbers the
// batches that write them with its own sequence numbers.
//
// The records are written with [Store.Apply] as creations, in batches of
// at most 10,000 changes; a store with more records than one batch takes
// is written in several. When a batch or a ledger record fails, Import
// deletes the records it wrote and returns the error: the store is left
// without records again, except for tombstones (the deletions that other
// instances follow) and the ledger records already written, which
// describe tokens that were issued and are written again, in place, by
// the next import. A crash during an import can leave part of it: import
// again into a new store (a new file or schema).
func Import(ctx context.Context, s Store, r io.Reader) (ImportStats, error) {
	var st ImportStats
	b, err := io.ReadAll(io.LimitReader(r, int64(maxStoreFileBytes)+1))
	if err != nil {
		return st, fmt.Errorf("policy: read import: %w", err)
	}
	if len(b) > maxStoreFileBytes {
		return st, fmt.Errorf("%w: import larger than %d bytes", ErrInvalid, maxStoreFileBytes)
	}
	if err := checkFormat(b, exportFormatName, exportFormatVersion); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	var doc exportFile
	if err := strictUnmarshal(b, &doc); err != nil {
		return st, fmt.Errorf("%w: import: %w", ErrInvalid, err)
	}
	prepared, err := prepareSnapshot(&doc.Snapshot)
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if err := newState().check(prepared); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	now := time.Now()
	var issued []*IssuedRecord
	for i, rec := range doc.Issued {
		if rec == nil {
			return st, fmt.Errorf("%w: import: issued[%d] is null", ErrInvalid, i)
		}
		if err := rec.Validate(); err != nil {
			return st, fmt.Errorf("import: issued[%d]: %w", i, err)
		}
		if !rec.prunable(now) {
			issued = append(issued, rec)
		}
	}
	ledger, ok := s.(Ledger)
	if len(issued) > 0 && !ok {
		return st, fmt.Errorf("%w: import: the document holds %d ledger records and the store keeps no ledger", ErrConfig, len(issued))
	}
	cur, err := s.Snapshot(ctx)
	if err != nil {
		return st, err
	}
	if n := len(cur.Policies) + len(cur.Subjects) + len(cur.Devices) + len(cur.APIKeys) + len(cur.Revocations); n > 0 {
		return st, fmt.Errorf("%w: import: the store holds %d records; import into an empty store", ErrConflict, n)
	}
	var written []Change
	undo := func(err error) (ImportStats, error) {
		if uerr := deleteRecords(context.WithoutCancel(ctx), s, written); uerr != nil {
			return ImportStats{}, fmt.Errorf("import: %w; and deleting the %d records written failed, delete them by hand: %w", err, len(written), uerr)
		}
		return ImportStats{}, fmt.Errorf("import: %w", err)
	}
	for start := 0; start < len(prepared); start += maxChangesPerApply {
		batch := prepared[start:min(start+maxChangesPerApply, len(prepared))]
		for i := range batch {
			batch[i].Create = true // a record created meanwhile fails the batch
		}
		if _, err := s.Apply(ctx, batch...); err != nil {
			return undo(err)
		}
		written = append(written, batch...)
	}
	st.Records = len(written)
	for _, rec := range issued {
		// The ledger's bound is the service's to enforce at issuance:
		// every record of the document is taken.
		if err := ledger.RecordIssued(ctx, rec, now, math.MaxInt32); err != nil {
			return undo(err)
		}
		st.Issued++
	}
	return st, nil
}

// deleteRecords deletes the records of changes, in batches.
func deleteRecords(ctx context.Context, s Store, changes []Change) error {
	var errs []error
	for start := 0; start < len(changes); start += maxChangesPerApply {
		var batch []Change
		for _, c := range changes[start:min(start+maxChangesPerApply, len(changes))] {
			batch = append(batch, DeleteRecord(c.Kind, c.ID))
		}
		if _, err := s.Apply(ctx, batch...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
