package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/render"
)

// forwarded are the signals run passes on to the child instead of dying.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func (a *app) runCommand() *cobra.Command {
	var env, service string
	cmd := &cobra.Command{
		Use:   "run --env E [--service S] -- COMMAND [ARGS...]",
		Short: "Run a program with the resolved config in its environment",
		Long: `Run resolves the config and starts COMMAND with it exported as environment variables
(flattened like the dotenv format: server.port → SERVER_PORT) on top of the current
environment, plus every secret under its own name, plus FEATURE_<KEY>=true|false for
every boolean flag as it evaluates without a context. Signals are forwarded to the
program and its exit code is returned. Nothing is written to disk.`,
		Args: argCount(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, env, err := a.loadFor(env, service)
			if err != nil {
				return err
			}
			res, req, err := a.resolveStrictWith(l, env, service)
			if err != nil {
				return err
			}
			o := l.RenderOptions(env, service, true)
			vars, err := render.Flatten(res.Tree, o)
			if err != nil {
				return err
			}
			environ := os.Environ()
			fv, err := a.flagVars(l, env)
			if err != nil {
				return err
			}
			environ = append(environ, fv...)
			for _, v := range vars {
				environ = append(environ, v.Name+"="+v.Value)
			}
			// Secrets under their own names, after the config: exec keeps the
			// last of duplicate names, so DATABASE_PASSWORD is the secret.
			names := make([]string, 0, len(req.Secrets))
			for n := range req.Secrets {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				environ = append(environ, n+"="+req.Secrets[n].Value)
			}
			return a.exec(args, environ)
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&service, "service", "", "service")
	// Flags after COMMAND are its own: `envplane run --env dev ls -l` works
	// without `--`.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// exec runs the child with forwarded signals and returns its exit status.
func (a *app) exec(args []string, environ []string) error {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("run: cannot find %q: %v", args[0], errors.Unwrap(err))
	}
	c := exec.Command(path, args[1:]...)
	c.Env = environ
	c.Stdin, c.Stdout, c.Stderr = a.stdin, a.stdout, a.stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		return fmt.Errorf("run: cannot start %s: %v", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = c.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return &exitError{code: 128 + int(st.Signal())}
				}
				return &exitError{code: ee.ExitCode()}
			}
			if err != nil {
				return err
			}
			return nil
		}
	}
}
