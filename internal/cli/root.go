// Package cli is envplane's command line. Run executes one invocation with
// every dependency passed in, so tests drive it exactly as main does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/policy"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/workspace"
)

// Exit codes of the command-line contract.
const (
	ExitOK      = 0
	ExitFinding = 1
	ExitFailure = 2
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
	return ExitFailure
}

// printError writes one "envplane: ..." line per problem, the first
// diag.MaxReported of them.
func (a *app) printError(err error) {
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

var unknownCommandRE = regexp.MustCompile(`^unknown command "(.*)" for "envplane"$`)

// unknownCommand rewrites cobra's multi-line "unknown command … Did you
// mean this?" error into one line, so every problem stays one
// "envplane: …" line on stderr.
func unknownCommand(root *cobra.Command, err error) error {
	m := unknownCommandRE.FindStringSubmatch(err.Error())
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
		Short: "Layered per-environment configuration, secrets, flags and promotion in one tool",
		Long: `envplane owns a team's environments: the layered configuration each service gets
in each environment (with provenance), encrypted secrets, feature flags, and gated
promotion of releases. Offline commands (resolve, explain, diff, lint, run) work on
the workspace: the nearest directory upwards with an envplane.yaml.`,
		SilenceErrors:              true,
		SilenceUsage:               true,
		DisableSuggestions:         true, // unknownCommand adds them, on one line
		SuggestionsMinimumDistance: 2,
		CompletionOptions:          cobra.CompletionOptions{DisableDefaultCmd: true},
	}
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
		a.runCommand(),
		a.serveCommand(),
		a.serverCommand(),
		a.releaseCommand(),
		a.envCommand(),
		a.tokenCommand(),
		a.auditCommand(),
		a.keysCommand(),
		a.secretsCommand(),
		a.versionCommand(),
	)
	return root
}

// workspaceDir finds the workspace root: -C, else the nearest parent of the
// working directory holding envplane.yaml.
func (a *app) workspaceDir() (string, error) {
	if a.dir != "" {
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

// loaded is a workspace ready for resolution.
type loaded struct {
	dir      string // the workspace root on disk
	ws       *workspace.Workspace
	resolver *resolve.Resolver
	policies *policy.Compiled
}

// withPolicies asks load to compile the workspace's CEL policies too. Only
// lint needs them, and building a CEL environment costs milliseconds that
// `resolve` and `run` should not pay.
type loadOption bool

const withPolicies loadOption = true

// load reads the workspace and compiles what the command needs, reporting
// every problem in envplane.yaml, the schema and (withPolicies) the policies
// at once.
func (a *app) load(opts ...loadOption) (*loaded, error) {
	dir, err := a.workspaceDir()
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("-C %s: not a directory", dir)
	}
	ws, err := workspace.Load(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	var errs diag.List
	r, err := resolve.New(ws)
	appendErr(&errs, err)
	var pol *policy.Compiled
	if len(opts) > 0 && bool(opts[0]) {
		pol, err = policy.Compile(ws.Policies)
		appendErr(&errs, err)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &loaded{dir: dir, ws: ws, resolver: r, policies: pol}, nil
}

// asDiags turns any error into diagnostics.
func asDiags(err error) diag.List {
	var l diag.List
	appendErr(&l, err)
	return l
}

func appendErr(errs *diag.List, err error) {
	if err == nil {
		return
	}
	var l diag.List
	if errors.As(err, &l) {
		*errs = append(*errs, l...)
		return
	}
	*errs = append(*errs, diag.Diagnostic{Message: err.Error()})
}

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
	if err := checkEnv(l.ws, env, service); err != nil {
		return nil, resolve.Request{}, err
	}
	req, err := a.request(l, env, service, true)
	if err != nil {
		return nil, resolve.Request{}, err
	}
	res := l.resolver.Resolve(req)
	var errs diag.List
	appendErr(&errs, res.Err())
	if len(errs) == 0 {
		for _, v := range policy.SchemaViolations(l.resolver, res.Tree) {
			errs = append(errs, diag.Errorf(v.Pos, "%s", schemaMessage(v)))
		}
	}
	if len(errs) > 0 {
		return nil, resolve.Request{}, errs
	}
	return res, req, nil
}

// blockingProblems fails with the resolution problems of results that make
// them unusable for diff and explain: everything but references nothing
// sets, which those commands show as written.
func blockingProblems(results ...*resolve.Result) error {
	var errs diag.List
	for _, res := range results {
		for _, p := range res.Problems {
			if p.Rule != resolve.RuleUnresolved {
				errs = append(errs, p.Diagnostic)
			}
		}
	}
	return errs.Sort().Err()
}

// schemaMessage is "KEY: schema: message", as resolve errors print it.
func schemaMessage(v policy.SchemaViolation) string {
	key, msg, _ := strings.Cut(v.Message, ": ")
	return key + ": schema: " + msg
}

// checkEnv rejects unknown environment and service names up front.
func checkEnv(ws *workspace.Workspace, env, service string) error {
	var errs diag.List
	if _, ok := ws.Environment(env); !ok {
		errs = append(errs, diag.Errorf(diag.Pos{File: workspace.FileName}, "unknown environment %q (known: %s)", env, strings.Join(ws.EnvironmentNames(), ", ")))
	}
	if service != "" && !ws.HasService(service) {
		known := strings.Join(ws.Services, ", ")
		if known == "" {
			known = "none declared"
		}
		errs = append(errs, diag.Errorf(diag.Pos{File: workspace.FileName}, "unknown service %q (known: %s)", service, known))
	}
	return errs.Err()
}
