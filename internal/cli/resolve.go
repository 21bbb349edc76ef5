package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/lint"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
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
			l, env, err := a.loadFor(env, service)
			if err != nil {
				return err
			}
			if len(l.Check(env, service)) == 0 {
				if note := lint.MissingFileNote(l.Workspace, env); note != "" {
					fmt.Fprintf(a.stderr, "envplane: note: %s\n", note)
				}
			}
			res, err := a.resolveStrict(l, env, service)
			if err != nil {
				return err
			}
			var out bytes.Buffer
			opts := l.RenderOptions(env, service, reveal)
			if err := render.Write(&out, format, res.Tree, opts); err != nil {
				return err
			}
			if _, err := a.stdout.Write(out.Bytes()); err != nil {
				return err
			}
			if format == "k8s" {
				a.noteK8sWithheld(res.Tree, opts)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&service, "service", "", "service whose layers to add")
	cmd.Flags().StringVar(&format, "format", "json", "output format: "+strings.Join(render.Formats, ", "))
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print sensitive and secret values")
	return cmd
}

// noteK8sWithheld says on stderr which values the k8s output left out.
//
// Without --reveal, `--format k8s` prints the ConfigMap alone (exit 0)
// rather than refusing: the ConfigMap is right and complete, and it is what
// a pipeline that keeps its Secret elsewhere (External Secrets, Sealed
// Secrets, a vault operator) applies. Refusing would push users to --reveal
// just to get the ConfigMap, printing credentials into CI logs; a Secret of
// "<redacted>" placeholders would overwrite the real one on `kubectl apply`.
func (a *app) noteK8sWithheld(root *tree.Value, o render.Options) {
	names, secret := render.K8sWithheld(root, o)
	if len(names) == 0 {
		return
	}
	fmt.Fprintf(a.stderr, "envplane: note: Secret %s left out (%d sensitive %s: %s): without --reveal it would hold "+
		"%q placeholders that overwrite the real values on apply; add --reveal to print it\n",
		secret, len(names), plural(len(names), "value"), strings.Join(names, ", "), render.Redacted)
}

func checkFormat(format string, allowed []string) error {
	for _, f := range allowed {
		if f == format {
			return nil
		}
	}
	return fmt.Errorf("--format %q: use one of %s", format, strings.Join(allowed, ", "))
}
