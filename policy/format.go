package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Formats of the JSON documents this package writes: a name and a
// version, "name/N". A reader takes every version up to its own and
// refuses a newer one with a *[FormatVersionError], before it decodes
// anything else (a newer version may have fields it does not know).
const (
	storeFormatName     = "sda-policy-store" // a FileStore's file
	storeFormatVersion  = 1
	exportFormatName    = "sda-policy-export" // Export's document
	exportFormatVersion = 1

	storeFormatPrefix  = storeFormatName + "/"
	exportFormatPrefix = exportFormatName + "/"
)

// checkFormat checks the "format" member of the JSON object b against the
// format name and the latest version known.
func checkFormat(b []byte, name string, known int) error {
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	num, ok := strings.CutPrefix(head.Format, name+"/")
	v, err := strconv.Atoi(num)
	switch {
	case !ok || err != nil || v < 1 || num != strconv.Itoa(v):
		return fmt.Errorf("%w: unknown format %q, want %s/%d", ErrInvalid, head.Format, name, known)
	case v > known:
		return &FormatVersionError{Format: name, Found: v, Known: known}
	}
	return nil
}
