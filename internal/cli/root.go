// Package cli is envplane's command line. Run executes one invocation with
// every dependency passed in, so tests drive it exactly as main does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/usercache"
	"github.com/envplane/envplane/internal/workspace"
	envplane "github.com/envplane/envplane/sdk"
)

// Exit codes of the command-line contract.
const (
	ExitOK      = 0
	ExitFinding = 1
	ExitFailure = errs.ExitFailure
)

// exitError ends a command with a code; a nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func findings() error { return &exitError{code: ExitFinding} }

// app is the state shared by the commands of one invocation.
type app struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dir    string // -C
}

// Run executes envplane with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := &app{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	err = unknownCommand(root, err)
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			a.printError(ee.err)
		}
		return ee.code
	}
	a.printError(err)
	return exitCode(err)
}

// exitCode is the exit code of a failed command: the one errs' table gives
// its kind — an API answer's kind comes from its error code.
func exitCode(err error) int {
	var se *envplane.Error
	if errors.As(err, &se) {
		return errs.KindOfCode(se.Code).ExitCode()
	}
	return errs.KindOf(err).ExitCode()
}

// printError writes one "envplane: ..." line per problem, the first
// diag.MaxReported of them.
func (a *app) printError(err error) {
	var se *envplane.Error
	if errors.As(err, &se) {
		for _, line := range serverErrorLines(se) {
			fmt.Fprintf(a.stderr, "envplane: %s\n", line)
		}
		return
	}
	var l diag.List
	if errors.As(err, &l) {
		for _, d := range l.Capped(diag.MaxReported) {
			fmt.Fprintf(a.stderr, "envplane: %s\n", d.Error())
		}
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(a.stderr, "envplane: %s\n", line)
	}
}

var unknownCommandRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^unknown command "(.*)" for "envplane"$`) })

// unknownCommand rewrites cobra's multi-line "unknown command … Did you
// mean this?" error into one line, so every problem stays one
// "envplane: …" line on stderr.
func unknownCommand(root *cobra.Command, err error) error {
	m := unknownCommandRE().FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	msg := fmt.Sprintf("unknown command %q", m[1])
	if s := root.SuggestionsFor(m[1]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return &exitError{code: ExitFailure, err: errors.New(msg + "; run `envplane --help` for the list of commands")}
}

// argCount checks the number of positional arguments, naming the command and
// its usage instead of cobra's terse "accepts 2 arg(s), received 1".
func argCount(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		switch {
		case hi >= 0 && n > hi:
			return fmt.Errorf("%s: unexpected argument %q (usage: envplane %s)", cmd.Name(), args[hi], cmd.Use)
		case n < lo:
			want := fmt.Sprintf("%d argument%s", lo, pluralS(lo))
			if hi < 0 {
				want = "at least " + want
			}
			return fmt.Errorf("%s: expects %s, got %d (usage: envplane %s)", cmd.Name(), want, n, cmd.Use)
		}
		return nil
	}
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "envplane",
		Short: "Layered per-environment configuration, secrets and releases in one tool",
		Long: `envplane owns a team's environments: the layered configuration each service gets
in each environment (with provenance), encrypted secrets, and releases served to
applications. Offline commands (resolve, explain, diff, lint, run) work on the
workspace: the nearest directory upwards with an envplane.yaml; so do the feature
flags (flags list, flags eval). Releases move into gated environments through
promotions (promote, approve, rollback).`,
		Version:                    version(),
		SilenceErrors:              true,
		SilenceUsage:               true,
		DisableSuggestions:         true, // unknownCommand adds them, on one line
		SuggestionsMinimumDistance: 2,
		CompletionOptions:          cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetVersionTemplate("envplane {{.Version}}\n")
	root.PersistentFlags().StringVarP(&a.dir, "dir", "C", "", "workspace directory (default: the nearest parent with envplane.yaml)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitFailure, err: err}
	})
	root.AddCommand(
		a.initCommand(),
		a.resolveCommand(),
		a.explainCommand(),
		a.diffCommand(),
		a.lintCommand(),
		a.varsCommand(),
		a.runCommand(),
		a.serveCommand(),
		a.serverCommand(),
		a.releaseCommand(),
		a.envCommand(),
		a.tokenCommand(),
		a.auditCommand(),
		a.keysCommand(),
		a.secretsCommand(),
		a.flagsCommand(),
		a.dataCommand(),
		a.versionCommand(),
	)
	root.AddCommand(a.promotionCommands()...)
	return root
}

// workspaceDir finds the workspace root: -C, else the nearest parent of the
// working directory holding envplane.yaml.
func (a *app) workspaceDir() (string, error) {
	if a.dir != "" {
		st, err := os.Stat(a.dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("-C %s: no such directory", a.dir)
		case err != nil:
			return "", fmt.Errorf("-C %s: %v", a.dir, errors.Unwrap(err))
		case !st.IsDir():
			return "", fmt.Errorf("-C %s: not a directory", a.dir)
		}
		return a.dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, workspace.FileName)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in %s or any parent directory: run `envplane init` or pass -C DIR", workspace.FileName, wd)
		}
		dir = parent
	}
}

// loaded is a workspace ready for resolution and where it is on disk.
type loaded struct {
	dir string
	*config.Compiled
}

// load reads the workspace and compiles it, reporting every problem in
// envplane.yaml, the schema and the policies at once (config.Compile). The
// policies are only checked: l.Policies is nil when the user cache knows
// they compile (loadWithPolicies compiles them for evaluation).
func (a *app) load() (*loaded, error) { return a.loadOptions(true) }

// loadWithPolicies is load for commands that evaluate the policies (lint).
func (a *app) loadWithPolicies() (*loaded, error) { return a.loadOptions(false) }

func (a *app) loadOptions(checkPoliciesOnly bool) (*loaded, error) {
	dir, err := a.workspaceDir()
	if err != nil {
		return nil, err
	}
	// The user cache lets a run skip re-checking the schema and policies
	// this binary has already compiled without error (docs/PERFORMANCE.md §8).
	o := config.Options{CheckPoliciesOnly: checkPoliciesOnly}
	if uc := usercache.Open(a.getenv); uc != nil {
		o.Cache = uc
	}
	c, err := config.CompileWith(os.DirFS(dir), o)
	if err != nil {
		return nil, err
	}
	return &loaded{dir: dir, Compiled: c}, nil
}

// appendErr adds err's diagnostics to errs.
func appendErr(errs *diag.List, err error) { *errs = append(*errs, diag.Of(err)...) }

func (a *app) lookup() resolve.Lookup { return resolve.GetenvLookup(a.getenv) }

// resolveStrict resolves and fails with every problem, including schema
// violations, when the config is not usable as it is.
func (a *app) resolveStrict(l *loaded, env, service string) (*resolve.Result, error) {
	res, _, err := a.resolveStrictWith(l, env, service)
	return res, err
}

// resolveStrictWith is resolveStrict that also returns the request (with the
// environment's opened secrets) it resolved.
func (a *app) resolveStrictWith(l *loaded, env, service string) (*resolve.Result, resolve.Request, error) {
	if err := l.Check(env, service).Err(); err != nil {
		return nil, resolve.Request{}, err
	}
	req, err := a.request(l, env, service, true)
	if err != nil {
		return nil, resolve.Request{}, err
	}
	res, err := l.Strict(req)
	if err != nil {
		return nil, resolve.Request{}, err
	}
	return res, req, nil
}
