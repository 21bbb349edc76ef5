//go:build unix

package flags

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU adds cpu-ns/op: the process's user+system CPU time per
// iteration since start. On a shared, loaded machine wall-clock ns/op
// mostly measures waiting for a core; CPU time per op does not.
func reportCPU(b *testing.B, start syscall.Rusage) {
	var end syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &end) != nil || b.N == 0 {
		return
	}
	used := time.Duration(end.Utime.Nano()-start.Utime.Nano()) + time.Duration(end.Stime.Nano()-start.Stime.Nano())
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func rusage() syscall.Rusage {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return u
}
