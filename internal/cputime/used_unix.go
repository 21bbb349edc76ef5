//go:build unix

package cputime

import "syscall"

// used is the process's user plus system CPU time in nanoseconds, or -1.
func used() int64 {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return -1
	}
	return u.Utime.Nano() + u.Stime.Nano()
}
