package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
	"github.com/securedeviceaccess/sda/token"
)

// FileName is the name of the file a [FileStore] keeps in its directory.
const FileName = "anchors.json"

// maxFileSize caps what OpenFileStore reads: MaxAnchors anchors of a few
// kilobytes each at most.
const maxFileSize = 1 << 20

// FileStore is a [Store] kept in a directory, in the JSON file [FileName]
// with each key as PEM. It behaves as a [MemoryStore] whose changes are
// durable: each change writes a complete new file to a temporary name in
// the same directory, syncs it, renames it over the old file and syncs the
// directory, and only then becomes visible to lookups. A crash leaves either
// the old or the new file, never a half-written one; a failed write leaves
// the store unchanged.
//
// One process should own a directory: FileStore does not lock it against
// other processes, and [OpenFileStore] removes the temporary files of the
// store file it finds there (left by writes a crash interrupted), which
// would make a write in progress in another process fail.
type FileStore struct {
	mem MemoryStore
	dir string

	// writeHook, when set by tests, is called between the steps of a write
	// ("write", "sync", "rename") and can fail it.
	writeHook func(step string) error
}

// OpenFileStore opens the store in dir, creating the directory (mode 0700)
// if it does not exist, removes the temporary files that writes
// interrupted by a crash left there, and loads the anchors from its file if
// there is one. A file that cannot be read back completely is an error
// matching [ErrCorrupt]: a device must not start with half its anchors.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	if err := atomicfile.RemoveTemps(dir, func(base string) bool { return base == FileName }); err != nil {
		return nil, fmt.Errorf("trust: removing stale temporary files: %w", err)
	}
	s := &FileStore{dir: dir}
	data, err := readLimited(filepath.Join(dir, FileName), maxFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		snap, err := decodeFile(data)
		if err != nil {
			return nil, err
		}
		s.mem.cur.Store(snap)
	}
	s.mem.persist = s.write
	return s, nil
}

// Lookup implements [Store], as [MemoryStore.Lookup].
func (s *FileStore) Lookup(issuer string, kid []byte) ([]Anchor, error) {
	return s.mem.Lookup(issuer, kid)
}

// Anchors returns copies of all anchors, as [MemoryStore.Anchors].
func (s *FileStore) Anchors() []Anchor { return s.mem.Anchors() }

// Len returns the number of anchors, revoked ones included.
func (s *FileStore) Len() int { return s.mem.Len() }

// Version implements [Versioned].
func (s *FileStore) Version() uint64 { return s.mem.Version() }

// Add adds a copy of a and writes the file, as [MemoryStore.Add]; when the
// write fails the anchor is not added.
func (s *FileStore) Add(a Anchor) error { return s.mem.Add(a) }

// Retire retires anchors and writes the file, as [MemoryStore.Retire].
func (s *FileStore) Retire(issuer string, kid []byte, at time.Time) error {
	return s.mem.Retire(issuer, kid, at)
}

// Revoke revokes anchors and writes the file, as [MemoryStore.Revoke]; it
// returns once the revocation is durable.
func (s *FileStore) Revoke(issuer string, kid []byte) error { return s.mem.Revoke(issuer, kid) }

// Remove deletes anchors and writes the file, as [MemoryStore.Remove].
func (s *FileStore) Remove(issuer string, kid []byte) error { return s.mem.Remove(issuer, kid) }

func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s larger than %d bytes", ErrCorrupt, name, limit)
	}
	return data, nil
}

// fileFormat is the JSON layout of the store file.
type fileFormat struct {
	Version int          `json:"version"`
	Anchors []fileAnchor `json:"anchors"`
}

type fileAnchor struct {
	Issuer      string          `json:"issuer"`
	KeyID       []byte          `json:"kid,omitempty"`
	PublicKey   string          `json:"public_key"`
	Algorithm   token.Algorithm `json:"algorithm,omitempty"`
	NotBefore   *time.Time      `json:"not_before,omitempty"`
	NotAfter    *time.Time      `json:"not_after,omitempty"`
	Operations  []string        `json:"operations,omitempty"`
	Audiences   []string        `json:"audiences,omitempty"`
	MaxLifetime string          `json:"max_lifetime,omitempty"`
	RetiredAt   *time.Time      `json:"retired_at,omitempty"`
	Revoked     bool            `json:"revoked,omitempty"`
}

const fileVersion = 1

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func encodeFile(snap *snapshot) ([]byte, error) {
	f := fileFormat{Version: fileVersion, Anchors: []fileAnchor{}}
	for _, a := range snap.anchors() {
		pemKey, err := token.MarshalPublicKeyPEM(a.Key)
		if err != nil {
			return nil, err
		}
		fa := fileAnchor{
			Issuer: a.Issuer, KeyID: a.KeyID, PublicKey: string(pemKey), Algorithm: a.Algorithm,
			NotBefore: timePtr(a.NotBefore), NotAfter: timePtr(a.NotAfter),
			Operations: a.Constraints.Operations, Audiences: a.Constraints.Audiences,
			RetiredAt: timePtr(a.RetiredAt), Revoked: a.Revoked,
		}
		if a.Constraints.MaxLifetime > 0 {
			fa.MaxLifetime = a.Constraints.MaxLifetime.String()
		}
		f.Anchors = append(f.Anchors, fa)
	}
	return json.MarshalIndent(f, "", "  ")
}

func decodeFile(data []byte) (*snapshot, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileFormat
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, f.Version, fileVersion)
	}
	snap := &snapshot{byIssuer: map[string][]*entry{}}
	for i, fa := range f.Anchors {
		key, err := token.ParsePublicKeyPEM([]byte(fa.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("%w: anchor %d: %v", ErrCorrupt, i, err)
		}
		a := Anchor{
			Issuer: fa.Issuer, KeyID: fa.KeyID, Key: key, Algorithm: fa.Algorithm,
			NotBefore: timeVal(fa.NotBefore), NotAfter: timeVal(fa.NotAfter),
			Constraints: Constraints{Operations: fa.Operations, Audiences: fa.Audiences},
			RetiredAt:   timeVal(fa.RetiredAt), Revoked: fa.Revoked,
		}
		if fa.MaxLifetime != "" {
			if a.Constraints.MaxLifetime, err = time.ParseDuration(fa.MaxLifetime); err != nil {
				return nil, fmt.Errorf("%w: anchor %d: %v", ErrCorrupt, i, err)
			}
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w: anchor %d: %v", ErrCorrupt, i, err)
		}
		e := &entry{a: a}
		if e.id, err = a.keyID(); err != nil {
			return nil, fmt.Errorf("%w: anchor %d: %v", ErrCorrupt, i, err)
		}
		if err := snap.add(e); err != nil {
			return nil, fmt.Errorf("%w: anchor %d: %v", ErrCorrupt, i, err)
		}
	}
	snap.index()
	return snap, nil
}

// write makes snap the content of the store file atomically.
func (s *FileStore) write(snap *snapshot) error {
	data, err := encodeFile(snap)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, FileName), data, 0o644, s.writeHook); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	return nil
}
