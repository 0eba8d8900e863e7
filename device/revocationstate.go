package device

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// The revocation list is persisted under stateKeyRevocations as JSON:
//
//	{"cti":[{"id":"<base64>","until":<unix seconds>},...],"hash":[...]}
//
// id is standard base64 with padding (a cti of 1..maxRevokedIDLength
// bytes, a hash of 32 bytes); until is omitted when the entry never
// expires. encodeRevocations writes entries sorted by id, so equal lists
// have equal encodings. decodeRevocations accepts exactly this layout.

type revocationFile struct {
	IDs    []revocationEntry `json:"cti"`
	Hashes []revocationEntry `json:"hash"`
}

type revocationEntry struct {
	ID    []byte `json:"id"`
	Until int64  `json:"until,omitempty"`
}

// encodeRevocations returns the persisted form of a revocation list.
func encodeRevocations(ids map[string]int64, hs map[[32]byte]int64) ([]byte, error) {
	f := revocationFile{IDs: make([]revocationEntry, 0, len(ids)), Hashes: make([]revocationEntry, 0, len(hs))}
	for k, u := range ids {
		f.IDs = append(f.IDs, revocationEntry{ID: []byte(k), Until: u})
	}
	for k, u := range hs {
		f.Hashes = append(f.Hashes, revocationEntry{ID: bytes.Clone(k[:]), Until: u})
	}
	byID := func(a, b revocationEntry) int { return bytes.Compare(a.ID, b.ID) }
	slices.SortFunc(f.IDs, byID)
	slices.SortFunc(f.Hashes, byID)
	return json.Marshal(f)
}

// errStateSyntax is the cause of every decoding failure of the persisted
// revocation list; callers wrap it in ErrState.
var errStateSyntax = errors.New("not the layout the device writes")

// decodeRevocations decodes a persisted revocation list strictly: one JSON
// object with the members "cti" and "hash" exactly once each, in the
// letter case written; each an array of objects with "id" exactly once and
// "until" at most once; no other member, no repeated cti or hash, at most
// max entries in all, nothing after the object. encoding/json alone would
// accept a repeated member (keeping the last), match member names without
// regard to case and ignore a trailing "}", so a damaged list could load
// as another list.
func decodeRevocations(b []byte, max int) (ids map[string]int64, hs map[[32]byte]int64, err error) {
	d := &stateDecoder{dec: json.NewDecoder(bytes.NewReader(b))}
	d.dec.UseNumber()
	ids, hs = map[string]int64{}, map[[32]byte]int64{}
	n := 0
	add := func(id []byte, until int64, isHash bool) error {
		if n++; n > max {
			return fmt.Errorf("more than %d revocations", max)
		}
		if isHash {
			if len(id) != 32 {
				return fmt.Errorf("revoked hash of %d bytes", len(id))
			}
			if _, dup := hs[[32]byte(id)]; dup {
				return fmt.Errorf("hash %x listed twice", id)
			}
			hs[[32]byte(id)] = until
			return nil
		}
		if len(id) == 0 || len(id) > maxRevokedIDLength {
			return fmt.Errorf("revoked id of %d bytes", len(id))
		}
		if _, dup := ids[string(id)]; dup {
			return fmt.Errorf("cti %x listed twice", id)
		}
		ids[string(id)] = until
		return nil
	}
	seen, err := d.object([]string{"cti", "hash"}, func(i int) error {
		isHash := i == 1
		return d.entries(func(id []byte, until int64) error { return add(id, until, isHash) })
	})
	if err == nil && !(seen[0] && seen[1]) {
		err = fmt.Errorf("%w: member \"cti\" or \"hash\" missing", errStateSyntax)
	}
	if err == nil {
		if _, err = d.dec.Token(); err == io.EOF {
			return ids, hs, nil
		}
		err = fmt.Errorf("%w: data after the list", errStateSyntax)
	}
	return nil, nil, err
}

// stateDecoder walks JSON tokens; the json.Decoder checks the syntax.
type stateDecoder struct{ dec *json.Decoder }

func (d *stateDecoder) delim(want json.Delim) error {
	t, err := d.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", errStateSyntax, err)
	}
	if t != want {
		return fmt.Errorf("%w: %v where %v belongs", errStateSyntax, t, want)
	}
	return nil
}

// object reads an object whose member names are among names, compared
// byte for byte after unescaping, each at most once. For each member it
// calls member with the name's index; member reads the value. It returns
// which names were present.
func (d *stateDecoder) object(names []string, member func(i int) error) ([]bool, error) {
	if err := d.delim('{'); err != nil {
		return nil, err
	}
	seen := make([]bool, len(names))
	for d.dec.More() {
		t, err := d.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errStateSyntax, err)
		}
		name, _ := t.(string)
		i := slices.Index(names, name)
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown member %q", errStateSyntax, name)
		}
		if seen[i] {
			return nil, fmt.Errorf("%w: member %q repeated", errStateSyntax, name)
		}
		seen[i] = true
		if err := member(i); err != nil {
			return nil, err
		}
	}
	return seen, d.delim('}')
}

// entries reads an array of {"id": base64, "until": positive integer}
// objects, until optional, calling add with each.
func (d *stateDecoder) entries(add func(id []byte, until int64) error) error {
	if err := d.delim('['); err != nil {
		return err
	}
	for d.dec.More() {
		var id []byte
		var until int64
		seen, err := d.object([]string{"id", "until"}, func(i int) error {
			t, err := d.value()
			if err != nil {
				return err
			}
			if i == 0 {
				id, err = decodeID(t)
			} else {
				until, err = decodeUntil(t)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !seen[0] {
			return fmt.Errorf("%w: entry without id", errStateSyntax)
		}
		if err := add(id, until); err != nil {
			return err
		}
	}
	return d.delim(']')
}

// value reads one scalar token.
func (d *stateDecoder) value() (json.Token, error) {
	t, err := d.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStateSyntax, err)
	}
	if _, ok := t.(json.Delim); ok {
		return nil, fmt.Errorf("%w: %v where a value belongs", errStateSyntax, t)
	}
	return t, nil
}

// decodeID decodes an entry's id, standard base64 with padding as
// encoding/json writes []byte.
func decodeID(t json.Token) ([]byte, error) {
	s, ok := t.(string)
	if !ok {
		return nil, fmt.Errorf("%w: id %v is not a string", errStateSyntax, t)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: id: %v", errStateSyntax, err)
	}
	return b, nil
}

// decodeUntil decodes an entry's until, a positive integer.
func decodeUntil(t json.Token) (int64, error) {
	n, ok := t.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%w: until %v is not a number", errStateSyntax, t)
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: until %s is not a positive integer", errStateSyntax, n)
	}
	return v, nil
}
