package cli_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/envplane/envplane/internal/cli"
	"github.com/envplane/envplane/internal/secrets"
)

// update rewrites the expected files inside testdata/*.txtar from the actual
// output: go test ./internal/cli -run TestScripts -update
var update = flag.Bool("update", false, "update the golden files of testdata/*.txtar from the actual output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"envplane": func() {
			// A fixed version keeps golden outputs (SARIF) independent of
			// how the test binary was built.
			cli.Version = "v0.0.0-test"
			os.Exit(cli.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the end-to-end scripts in testdata. Scripts run the real
// binary (this test binary, as `envplane`) in a fresh directory; $EXAMPLES is
// the repository's examples directory, which scripts must only read.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":       cmdExits,
			"capture":     cmdCapture,
			"keygen":      cmdKeygen,
			"startserver": cmdStartServer,
			"stopserver":  cmdStopServer,
			"subst":       cmdSubst,
			"swapvalues":  cmdSwapValues,
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			// One user cache for every script, outside $WORK: later
			// commands and scripts run with what earlier ones cached.
			env.Setenv("XDG_CACHE_HOME", cache)
			return nil
		},
	})
}

// cmdExits runs a program and checks its exact exit code, which the plain
// `exec` / `! exec` pair cannot tell apart (1 = finding, 2 = failure):
//
//	exits 2 envplane resolve --env nope
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad exit code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdKeygen writes a fresh age identity to FILE and sets $VAR to its
// recipient: `keygen DEV dev.key`.
func cmdKeygen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: keygen VAR FILE")
	}
	identity, recipient, err := secrets.GenerateIdentity()
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(identity+"\n"), 0o600))
	ts.Setenv(args[0], recipient)
}

// cmdCapture sets VAR to the first group REGEXP matches in the last
// command's stdout: `capture ID 'promotion (pro_\w+)'`.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: %q matches nothing in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdSubst expands $VARS in files in place, so archives can hold keys made
// by keygen: `subst envplane.yaml`.
func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: subst FILE...")
	}
	for _, f := range args {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(os.Expand(string(b), ts.Getenv)), 0o644))
	}
}

// cmdSwapValues swaps the sealed values of two names in a secrets file, as
// an attacker with write access could: `swapvalues FILE A B`.
func cmdSwapValues(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: swapvalues FILE NAME_A NAME_B")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	lines := strings.Split(string(b), "\n")
	ia, ib := -1, -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, args[1]+": "):
			ia = i
		case strings.HasPrefix(l, args[2]+": "):
			ib = i
		}
	}
	if ia < 0 || ib < 0 {
		ts.Fatalf("names not found in %s", args[0])
	}
	va := strings.TrimPrefix(lines[ia], args[1]+": ")
	vb := strings.TrimPrefix(lines[ib], args[2]+": ")
	lines[ia], lines[ib] = args[1]+": "+vb, args[2]+": "+va
	ts.Check(os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600))
}
