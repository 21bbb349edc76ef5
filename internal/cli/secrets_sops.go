package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/fsutil"
	"github.com/envplane/envplane/internal/lint"
	"github.com/envplane/envplane/internal/secrets"
)

// secretsMigrateCommand rewrites secrets files into SOPS format.
func (a *app) secretsMigrateCommand(env *string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate [--env E]",
		Short: "Rewrite secrets files as SOPS files bound to their environment (one environment, or all)",
		Long: `Migrate rewrites secrets/ENV.enc.yaml files that are in envplane's old format, or
that plain sops made without envplane's environment binding, as SOPS files that
envplane and sops both open. Values keep their data key. Every file is opened
before any is written, and each is replaced atomically: a file that does not open
leaves every file as it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.load()
			if err != nil {
				return err
			}
			envs := []string{*env}
			if *env == "" {
				envs = envs[:0]
				for _, e := range l.Workspace.Environments {
					envs = append(envs, e.Name)
				}
			} else if err := l.Check(*env, "").Err(); err != nil {
				return err
			}
			type job struct {
				path, rel string
				data      []byte
			}
			var jobs []job
			for _, e := range envs {
				f, path, err := a.readSecretsFile(l, e)
				if err != nil {
					return err
				}
				if f == nil || (f.SOPS && f.Bound()) {
					continue
				}
				ids, err := a.identities()
				if err != nil {
					return err
				}
				o, err := f.Open(ids)
				if err != nil {
					return err
				}
				data, err := o.Marshal()
				if err != nil {
					return err
				}
				jobs = append(jobs, job{path, f.Path, data})
			}
			for _, j := range jobs {
				if err := fsutil.WriteFile(j.path, j.data, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "envplane: %s is now a SOPS file bound to its environment\n", j.rel)
			}
			if len(jobs) == 0 {
				fmt.Fprintln(a.stderr, "envplane: nothing to migrate: every secrets file is a SOPS file bound to its environment")
			}
			return nil
		},
	}
}

// sopsConfigMarker starts a .sops.yaml that envplane wrote, and may rewrite.
const sopsConfigMarker = "# Written by `envplane secrets sops-config`"

// sopsConfigCommand writes .sops.yaml with a creation rule per environment.
func (a *app) sopsConfigCommand() *cobra.Command {
	var toStdout bool
	cmd := &cobra.Command{
		Use:   "sops-config [--stdout]",
		Short: "Write .sops.yaml: one creation rule per environment, so plain sops encrypts for its recipients",
		Long: `sops-config writes .sops.yaml next to envplane.yaml with one creation rule per
environment that has recipients in envplane.yaml: path_regex matching
secrets/ENV.enc.yaml and the environment's age recipients. It rewrites a
.sops.yaml it wrote before and refuses to replace one written by hand; --stdout
prints the rules instead, to merge them by hand.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := a.load()
			if err != nil {
				return err
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "%s from envplane.yaml's secrets.recipients.\n", sopsConfigMarker)
			b.WriteString("# Run it again after changing recipients; edits here are overwritten.\n")
			b.WriteString("creation_rules:\n")
			n := 0
			dir := strings.TrimSuffix(filepath.ToSlash(l.Workspace.Secrets.Dir), "/")
			for _, e := range l.Workspace.Environments {
				rs := slices.Clone(l.Workspace.Secrets.Recipients[e.Name])
				if len(rs) == 0 {
					fmt.Fprintf(a.stderr, "envplane: %s has no recipients in envplane.yaml; no rule for it\n", e.Name)
					continue
				}
				slices.Sort(rs)
				n++
				fmt.Fprintf(&b, "    - path_regex: (^|/)%s$\n", regexp.QuoteMeta(dir+"/"+secrets.FileName(e.Name)))
				fmt.Fprintf(&b, "      age: %s\n", strings.Join(rs, ","))
			}
			if n == 0 {
				return fmt.Errorf("no environment has recipients: list them under secrets.recipients in envplane.yaml")
			}
			if toStdout {
				_, err := a.stdout.Write(b.Bytes())
				return err
			}
			path := filepath.Join(l.dir, ".sops.yaml")
			old, err := os.ReadFile(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return err
			case !bytes.HasPrefix(old, []byte(sopsConfigMarker)):
				return fmt.Errorf("%s exists and was not written by envplane; not replacing it: merge the rules from `envplane secrets sops-config --stdout` into it by hand, or remove it", ".sops.yaml")
			case bytes.Equal(old, b.Bytes()):
				return nil
			}
			if err := fsutil.WriteFile(path, b.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "envplane: wrote .sops.yaml with %d creation rule(s)\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&toStdout, "stdout", false, "print the rules instead of writing .sops.yaml")
	return cmd
}

// secretsFormatFindings warns about secrets files that migrate would
// rewrite: in envplane's old format, or made by sops without the binding.
func (a *app) secretsFormatFindings(l *loaded, envs []string) []lint.Finding {
	var out []lint.Finding
	for _, e := range l.Workspace.Environments {
		if len(envs) > 0 && !slices.Contains(envs, e.Name) {
			continue
		}
		f, _, err := a.readSecretsFile(l, e.Name)
		if err != nil || f == nil {
			continue // reported when the secrets are loaded
		}
		var msg string
		switch {
		case !f.SOPS:
			msg = fmt.Sprintf("%s is in envplane's old secrets format, which sops cannot open; `envplane secrets migrate --env %s` rewrites it as a SOPS file", f.Path, e.Name)
		case !f.Bound():
			msg = fmt.Sprintf("%s has no envplane_environment entry, so a copy of it would open as another environment; `envplane secrets migrate --env %s` binds it", f.Path, e.Name)
		default:
			continue
		}
		out = append(out, lint.Finding{Rule: "secrets-format", Severity: "warning", Environment: e.Name, Message: msg, Source: f.Path})
	}
	return out
}
