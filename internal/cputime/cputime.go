// Package cputime reports the CPU time a benchmark spends per operation
// (cpu-ns/op): the process's user and system time, which — unlike
// wall-clock ns/op — waiting for a core on a shared, loaded machine does
// not inflate. It includes work on other threads, the GC's among them.
package cputime

import "testing"

// Meter is the process's CPU time when a measurement began.
type Meter struct{ start int64 }

// Start begins a measurement.
func Start() Meter { return Meter{start: used()} }

// Report adds cpu-ns/op for b's iterations since Start.
func (m Meter) Report(b *testing.B) {
	if b.N == 0 || m.start < 0 {
		return
	}
	if end := used(); end >= 0 {
		b.ReportMetric(float64(end-m.start)/float64(b.N), "cpu-ns/op")
	}
}
