//go:build unix

package web_test

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time so far. On this shared,
// loaded machine wall-clock time mostly measures waiting for a core; CPU
// time does not (as internal/secrets/cputime_test.go measures).
func cpuTime() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano()) + time.Duration(u.Stime.Nano())
}
