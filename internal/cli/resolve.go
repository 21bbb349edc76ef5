package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/render"
)

func (a *app) resolveCommand() *cobra.Command {
	var env, service, format string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "resolve --env E [--service S] [--format json|yaml|dotenv|shell|k8s|properties] [--reveal]",
		Short: "Print the configuration a service gets in an environment",
		Long: `Resolve merges schema defaults, the file layers, the environment's secrets and runtime
variables, and prints the result. Sensitive values and values from secrets print as
"<redacted>" unless --reveal. Every problem (unresolved reference, parse error,
coercion failure, schema violation) is reported at once and nothing is printed.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, render.Formats); err != nil {
				return err
			}
			l, err := a.load()
			if err != nil {
				return err
			}
			env, err := a.environment(l, env, service)
			if err != nil {
				return err
			}
			res, err := a.resolveStrict(l, env, service)
			if err != nil {
				return err
			}
			var out bytes.Buffer
			if err := render.Write(&out, format, res.Tree, l.RenderOptions(env, service, reveal)); err != nil {
				return err
			}
			_, err = a.stdout.Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&service, "service", "", "service whose layers to add")
	cmd.Flags().StringVar(&format, "format", "json", "output format: "+strings.Join(render.Formats, ", "))
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print sensitive and secret values")
	return cmd
}

func checkFormat(format string, allowed []string) error {
	for _, f := range allowed {
		if f == format {
			return nil
		}
	}
	return fmt.Errorf("--format %q: use one of %s", format, strings.Join(allowed, ", "))
}
