package trust

// SetWriteHook lets tests fail a FileStore write at a given step.
func SetWriteHook(s *FileStore, hook func(step string) error) { s.writeHook = hook }

// MaxFileSize is the largest store file OpenFileStore reads.
const MaxFileSize = maxFileSize

// Dir returns the store's directory, for the external tests that look at
// the file a FileStore keeps.
func (s *FileStore) Dir() string { return s.dir }
