// Package startup tunes the runtime before the heavy package initialisers run
// (a JSON Schema library compiles its meta-schemas at init, ~10 ms of
// allocation): short-lived CLI commands should not spend that time in the
// garbage collector. Long-running commands restore the default with
// RestoreGC.
package startup

import (
	"os"
	"runtime/debug"
)

const cliGCPercent = 800

// init reads GOGC itself: it runs before main can pass anything in, and an
// explicit GOGC from the user always wins.
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cliGCPercent)
	}
}

// RestoreGC returns the collector to Go's default pacing (or $GOGC).
func RestoreGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return // init left an explicit GOGC alone
	}
	debug.SetGCPercent(100)
}
