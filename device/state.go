package device

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/securedeviceaccess/sda/internal/atomicfile"
)

// State is the small persistent memory of a device: the lower bound of time,
// the revocation list and the installed status updates (v2) survive
// restarts through it. Values are at most 1 MiB: a full revocation list of
// MaxMaxRevocations entries takes up to about 516 KB, the default list
// (DefaultMaxRevocations) up to about 32 KB, the status updates of
// MaxStatusIssuers issuers up to about 64 KiB.
// Implementations must be safe for concurrent use, and Store must replace
// a value atomically: after a crash, Load returns the old or the new
// value, never a mix.
//
// The agent never stores an empty value. A value that is present but empty
// (say, a file truncated by a file system that lost its data) is corrupt
// state: [New] fails with [ErrState] rather than start as if nothing had
// been stored, which would reset the lower bound of time and forget every
// revocation.
type State interface {
	// Load returns the value stored under key, or nil and no error when
	// there is none.
	Load(key string) ([]byte, error)
	// Store durably replaces the value under key.
	Store(key string, value []byte) error
}

// State keys used by the agent.
const (
	stateKeyTimeFloor   = "time-floor"
	stateKeyRevocations = "revocations"
	stateKeyStatus      = "status-updates" // v2: the installed status updates
)

// maxStateValue bounds a value FileState stores and reads back. The
// largest value the agent writes is a full revocation list: at most
// MaxMaxRevocations entries of at most maxRevocationEntrySize bytes.
const maxStateValue = 1 << 20

// maxRevocationEntrySize is the persisted size of the largest revocation
// entry, a cti of maxRevokedIDLength bytes (88 characters in base64) with
// an until of 19 digits, and the comma before it:
// ,{"id":"<88>","until":<19>}.
const maxRevocationEntrySize = 1 + len(`{"id":""`) + 88 + len(`,"until":`) + 19 + len(`}`)

// The full list and its frame ({"cti":[],"hash":[]}) fit in a value.
var _ [maxStateValue - MaxMaxRevocations*maxRevocationEntrySize - 32]struct{}

// Compile-time checks.
var (
	_ State = (*MemoryState)(nil)
	_ State = (*FileState)(nil)
)

// MemoryState is a [State] in memory: it survives nothing but is useful in
// tests and for devices that persist elsewhere. The zero value is ready to
// use.
type MemoryState struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Load implements [State].
func (s *MemoryState) Load(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// Store implements [State].
func (s *MemoryState) Store(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string][]byte)
	}
	s.m[key] = append([]byte{}, value...)
	return nil
}

// FileState is a [State] kept as one file per key in a directory. Store
// writes a temporary file in the same directory, syncs it, renames it over
// the key's file and syncs the directory, so a crash leaves the old or the
// new value.
//
// One process owns the directory: [OpenFileState] removes the temporary
// files a crash left behind, which would make a write in progress in
// another process fail.
type FileState struct {
	dir string
	mu  sync.Mutex // serialises writes of the same key
}

// OpenFileState opens the FileState in dir, creating the directory (mode
// 0700) if needed, and removes the temporary files that writes interrupted
// by a crash or a power loss left there, so that they do not pile up on
// the device's flash.
func OpenFileState(dir string) (*FileState, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := atomicfile.RemoveTemps(dir, validKey); err != nil {
		return nil, fmt.Errorf("%w: removing stale temporary files: %v", ErrState, err)
	}
	return &FileState{dir: dir}, nil
}

func validKey(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Load implements [State]. An empty file is an [ErrState] error: FileState
// never writes one.
func (s *FileState) Load(key string) ([]byte, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("%w: invalid key %q", ErrState, key)
	}
	f, err := os.Open(filepath.Join(s.dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateValue+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if len(data) > maxStateValue {
		return nil, fmt.Errorf("%w: %s larger than %d bytes", ErrState, key, maxStateValue)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrState, key)
	}
	return data, nil
}

// Store implements [State]. An empty value is refused ([ErrState]).
func (s *FileState) Store(key string, value []byte) error {
	if !validKey(key) {
		return fmt.Errorf("%w: invalid key %q", ErrState, key)
	}
	if len(value) == 0 || len(value) > maxStateValue {
		return fmt.Errorf("%w: value of %d bytes", ErrState, len(value))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.Write(filepath.Join(s.dir, key), value, 0o600, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	return nil
}
