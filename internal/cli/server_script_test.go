package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/envplane/envplane/internal/cli"
)

// scriptAdminToken is the bootstrap token of servers started by scripts.
const scriptAdminToken = "ep_scriptadmintoken000000000000000000"

var servingOn = regexp.MustCompile(`envplane: serving on (http://\S+)`)

// running holds each script's server stop functions, newest last, for
// stopserver.
var running = struct {
	sync.Mutex
	stops map[*testscript.TestScript][]func()
}{stops: map[*testscript.TestScript][]func(){}}

// cmdStopServer stops the script's newest server (a SQLite database serves
// one process: offline admin commands run with the server stopped).
func cmdStopServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 0 {
		ts.Fatalf("usage: stopserver")
	}
	running.Lock()
	stops := running.stops[ts]
	if len(stops) == 0 {
		running.Unlock()
		ts.Fatalf("stopserver: no server running")
	}
	stop := stops[len(stops)-1]
	running.stops[ts] = stops[:len(stops)-1]
	running.Unlock()
	stop()
}

// cmdStartServer runs `envplane serve` in this process for the rest of the
// script, on a free port with its database in $WORK/.envplane, and points
// $ENVPLANE_SERVER and $ENVPLANE_TOKEN (the bootstrap admin token) at it.
// Its stderr goes to $WORK/serve.log (serve2.log for a second one). Extra arguments go to serve:
//
//	startserver --workspace $WORK
func cmdStartServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! startserver")
	}
	// serve reads its variables while it starts, concurrently with the
	// script: give it a copy.
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": scriptAdminToken}
	for _, k := range []string{"ENVPLANE_LOG_FORMAT", "ENVPLANE_LOG_LEVEL"} {
		env[k] = ts.Getenv(k)
	}
	if v := ts.Getenv("ENVPLANE_BOOTSTRAP_TOKEN"); v != "" {
		env["ENVPLANE_BOOTSTRAP_TOKEN"] = v
	}
	logPath := ts.MkAbs("serve.log")
	for i := 2; ; i++ { // a second server logs to serve2.log
		if _, err := os.Stat(logPath); os.IsNotExist(err) {
			break
		}
		logPath = ts.MkAbs(fmt.Sprintf("serve%d.log", i))
	}
	log, err := os.Create(logPath)
	ts.Check(err)
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--database", ts.MkAbs(filepath.Join(".envplane", "envplane.db"))}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	code := 0
	go func() {
		code = cli.Run(ctx, argv, func(k string) string { return env[k] }, nil, log, log)
		close(done)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				ts.Logf("serve did not stop")
			}
			log.Close()
		})
	}
	running.Lock()
	running.stops[ts] = append(running.stops[ts], stop)
	running.Unlock()
	ts.Defer(func() {
		stop()
		running.Lock()
		delete(running.stops, ts)
		running.Unlock()
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		b, _ := os.ReadFile(logPath)
		if m := servingOn.FindSubmatch(b); m != nil {
			ts.Setenv("ENVPLANE_SERVER", string(m[1]))
			ts.Setenv("ENVPLANE_TOKEN", env["ENVPLANE_BOOTSTRAP_TOKEN"])
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			ts.Fatalf("serve exited with %d:\n%s", code, b)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(logPath)
	ts.Fatalf("serve did not start:\n%s", b)
}
