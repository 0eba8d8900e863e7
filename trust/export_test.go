package trust

// SetWriteHook lets tests fail a FileStore write at a given step.
func SetWriteHook(s *FileStore, hook func(step string) error) { s.writeHook = hook }

// MaxFileSize is the largest store file OpenFileStore reads.
const MaxFileSize = maxFileSize
