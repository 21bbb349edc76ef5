package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/workspace"
)

// starter files written by `envplane init`, relative to the new workspace.
var starter = []struct{ path, content string }{
	{workspace.FileName, `# envplane workspace: https://github.com/envplane/envplane
name: my-app

# Environments in promotion order, lowest first.
#   data:       synthetic | anonymized | production-like | live
#   protection: open | guarded | restricted
environments:
  - name: development
    data: synthetic
    protection: open
  - name: staging
    data: anonymized
    protection: guarded
    promotion: { from: development, auto: true }
  - name: production
    data: live
    protection: restricted
    promotion:
      from: staging
      approvals: { required: 2, allowSelfApproval: false }
      checks: [policy]

# Optional components whose config adds service-specific layers ({service}).
# services: [api, worker]

config:
  # File layers, lowest precedence first. {env} and {service} are substituted;
  # a layer naming {service} applies only when a service is resolved.
  # YAML, JSON (comments and trailing commas allowed) and .env files work.
  layers:
    - config/default.yaml
    - config/environments/{env}.yaml
    # - path: config/agents/{env}.json
    #   at: agents            # mount the file under this key
    # - config/{service}/{env}.yaml
  env:
    # MYAPP_SERVER__PORT=9000 sets server.port (double underscore = nesting).
    prefix: MYAPP
    # Explicit names win over the prefix rule.
    bind:
      PORT: server.port
  # schema: config/schema.json   # JSON Schema every resolved config must satisfy
  # sensitive: [webhook]         # extra key patterns to redact

# Encrypted secrets live in secrets/{env}.enc.yaml; list the age recipients that
# may open each environment's file ("envplane keys generate" prints one).
# secrets:
#   recipients:
#     development: [age1…]
#     staging: [age1…]
#     production: [age1…]

# User rules in CEL over config, env, service and environment (data, protection).
policies:
  - name: production-logging
    environments: [production]
    rule: config.logging.level in ["warn", "error"]
    message: production must not log below warn
    severity: error
`},
	{"config/default.yaml", `# Defaults every environment starts from.
server:
  host: 0.0.0.0
  port: 8080
logging:
  level: info
  format: json
database:
  host: localhost
  port: 5432
  name: my_app
  password: ${DATABASE_PASSWORD:-dev-password}
`},
	{"config/environments/development.yaml", `logging:
  level: debug
  format: pretty
`},
	{"config/environments/staging.yaml", `database:
  host: ${DATABASE_HOST}
  password: ${DATABASE_PASSWORD}
`},
	{"config/environments/production.yaml", `logging:
  level: warn
database:
  host: ${DATABASE_HOST}
  password: ${DATABASE_PASSWORD}
`},
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Start a workspace: a commented envplane.yaml and starter config files",
		Args:  argCount(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.dir
			if len(args) == 1 {
				dir = args[0]
			}
			if dir == "" {
				dir = "."
			}
			// Check every target first so that nothing is half-written, and
			// name every file that is in the way.
			var errs diag.List
			for _, f := range starter {
				p := filepath.Join(dir, filepath.FromSlash(f.path))
				if _, err := os.Stat(p); err == nil {
					errs = append(errs, diag.Errorf(diag.Pos{File: filepath.ToSlash(p)}, "already exists; init never overwrites (pick an empty DIR)"))
				} else if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, diag.Errorf(diag.Pos{File: filepath.ToSlash(p)}, "%v", unwrapPath(err)))
				}
			}
			if len(errs) > 0 {
				return errs
			}
			for _, f := range starter {
				p := filepath.Join(dir, filepath.FromSlash(f.path))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "created %s\n", filepath.ToSlash(filepath.Join(dir, f.path)))
			}
			cd := ""
			if filepath.Clean(dir) != "." {
				cd = "-C " + dir + " "
			}
			fmt.Fprintf(a.stdout, "\nnext: envplane %sresolve --env development\n      envplane %slint\n", cd, cd)
			fmt.Fprintf(a.stdout, "      (staging and production reference DATABASE_HOST and DATABASE_PASSWORD: `envplane keys generate`,\n"+
				"       list the key under secrets.recipients in envplane.yaml, then `envplane %ssecrets set --env staging DATABASE_PASSWORD`)\n", cd)
			return nil
		},
	}
}
