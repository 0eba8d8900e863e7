package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// The offline diff and tests read store files ("sdactl authserver -store")
// and documents of "sdactl store export" without opening them as stores:
// opening a store file would clean its directory and rewrite its ledger,
// and the file may be a running service's.

// maxSnapshotFile bounds a store file or export document, as the store
// bounds its file.
const maxSnapshotFile = 1 << 30

// Formats of the files read, as the policy package writes them.
const (
	storeFormat  = "sda-policy-store/1"
	exportFormat = "sda-policy-export/1"
)

// readSnapshotFile reads the records of a store file or an export
// document, strictly; the policy package validates them when it loads
// them.
func (e *env) readSnapshotFile(path string) (*policy.Snapshot, error) {
	data, err := e.readFile(path, maxSnapshotFile)
	if err != nil {
		return nil, err
	}
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, inputErr(fmt.Errorf("%s: not a store file or export document: %w", path, err))
	}
	switch {
	case head.Format == storeFormat || head.Format == exportFormat:
	case strings.HasPrefix(head.Format, "sda-policy-store/"), strings.HasPrefix(head.Format, "sda-policy-export/"):
		return nil, inputErr(fmt.Errorf("%s: format %q is newer than this sdactl knows (%s, %s)", path, head.Format, storeFormat, exportFormat))
	default:
		return nil, inputErr(fmt.Errorf("%s: format %q: not a store file (%s) or export document (%s)", path, head.Format, storeFormat, exportFormat))
	}
	var doc struct {
		Format string `json:"format"`
		policy.Snapshot
		Issued json.RawMessage `json:"issued"` // the ledger of an export: not needed
	}
	if err := strictJSON(data, &doc); err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	return &doc.Snapshot, nil
}

// offlineDiff prints the impact of going from the records of file a to
// those of file b (policy.Compare). Without -profile it counts the grants
// of the v2 profile, those allowed only under argument constraints too.
func offlineDiff(e *env, a, b string, at *time.Time, profile string, details int, asJSON bool) error {
	before, err := e.readSnapshotFile(a)
	if err != nil {
		return err
	}
	after, err := e.readSnapshotFile(b)
	if err != nil {
		return err
	}
	t := e.now().UTC().Truncate(time.Second)
	if at != nil {
		t = *at
	}
	opts := &policy.ImpactOptions{Structured: profile != "v1", Limit: details}
	imp, err := policy.Compare(before, after, t, opts)
	if err != nil {
		return inputErr(fmt.Errorf("diff %s %s: %w", a, b, err))
	}
	raw, err := json.Marshal(imp)
	if err != nil {
		return err
	}
	return printImpactAnswer(e.stdout, raw, details, asJSON)
}
