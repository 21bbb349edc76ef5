package cli

import (
	"bytes"
	"fmt"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/lint"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/diag"
)

func (a *app) lintCommand() *cobra.Command {
	var envs []string
	var format string
	cmd := &cobra.Command{
		Use:   "lint [--env E]... [--format text|json|sarif]",
		Short: "Check every environment's config (exit 1 when an error is found)",
		Long: `Lint resolves every environment, alone and for every service, and reports:
parse errors, unresolved references, coercion failures, schema violations, type
drift of a key across environments, keys missing from some environments (warning),
sensitive keys holding literals in committed files outside synthetic-data
environments, credentials copied from a synthetic-data environment into a higher
one, layers that match no file (warning), environments no {env} layer gives a file
(warning), process variables carrying the prefix that set no key (warning), and the
workspace's CEL policies.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, []string{"text", "json", "sarif"}); err != nil {
				return err
			}
			l, err := a.loadWithPolicies()
			if err != nil {
				return err
			}
			if err := a.checkEnvironments(l, envs...); err != nil {
				return err
			}
			var errs diag.List
			for _, e := range envs {
				appendErr(&errs, l.Check(e, "").Err())
			}
			if len(errs) > 0 {
				return errs
			}
			// Each environment's secrets: opened when a key here can, else sealed
			// (names only). A file that does not parse or fails its MAC is an error.
			envSecrets := map[string]map[string]domain.Secret{}
			for _, e := range l.Workspace.Environments {
				sec, err := a.envSecrets(l, e.Name, false)
				if err != nil {
					errs = append(errs, diag.Of(err)...)
					continue
				}
				envSecrets[e.Name] = sec
			}
			if len(errs) > 0 {
				return errs
			}
			fs := lint.Run(l.Resolver, l.Policies, lint.Options{Environments: envs, Getenv: a.lookup(), Environ: a.environNames(),
				Secrets: func(env string) map[string]domain.Secret { return envSecrets[env] }})
			fs = append(fs, a.secretsFormatFindings(l, envs)...)
			var b bytes.Buffer
			switch format {
			case "json":
				if fs == nil {
					fs = []lint.Finding{}
				}
				if err := encodeJSON(&b, struct {
					Findings []lint.Finding `json:"findings"`
				}{fs}); err != nil {
					return err
				}
			case "sarif":
				if err := lint.WriteSARIF(&b, fs, version()); err != nil {
					return err
				}
			default:
				writeLintText(&b, fs)
			}
			if _, err := a.stdout.Write(b.Bytes()); err != nil {
				return err
			}
			for _, f := range fs {
				if f.Severity == lint.SeverityError {
					return findings()
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&envs, "env", nil, "only report findings for this environment (repeatable)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json or sarif")
	return cmd
}

func writeLintText(b *bytes.Buffer, fs []lint.Finding) {
	var errs, warns int
	for _, f := range fs {
		if f.Severity == lint.SeverityError {
			errs++
		} else {
			warns++
		}
		where := f.Source
		if where == "" {
			where = "envplane.yaml"
		}
		scope := f.Environment
		if f.Service != "" {
			scope += "/" + f.Service
		}
		if scope != "" {
			scope = "[" + scope + "] "
		}
		fmt.Fprintf(b, "%s: %s: %s%s (%s)\n", where, f.Severity, scope, f.Message, f.Rule)
	}
	if len(fs) == 0 {
		b.WriteString("no findings\n")
		return
	}
	fmt.Fprintf(b, "%d %s, %d %s\n", errs, plural(errs, "error"), warns, plural(warns, "warning"))
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
