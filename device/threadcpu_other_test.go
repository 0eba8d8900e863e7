//go:build !linux

package device_test

import "time"

// threadCPU reports false: the time a thread used is read on Linux only.
func threadCPU() (time.Duration, bool) { return 0, false }
