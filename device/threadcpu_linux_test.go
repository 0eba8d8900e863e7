package device_test

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD of getrusage(2): the calling thread only.
const rusageThread = 1

// threadCPU returns the CPU time the calling OS thread has used, user and
// system, and true; the caller locks its goroutine to the thread.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
