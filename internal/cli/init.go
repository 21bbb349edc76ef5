package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/workspace"
)

// starter files written by `envplane init`, relative to the new workspace.
var starter = []struct{ path, content string }{
	{workspace.FileName, `# envplane workspace: https://github.com/envplane/envplane
name: {{NAME}}

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
    # {{PREFIX}}_SERVER__PORT=9000 sets server.port (double underscore = nesting).
    prefix: {{PREFIX}}
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
  name: {{DBNAME}}
`},
	{"config/environments/development.yaml", `logging:
  level: debug
  format: pretty
`},
	{"config/environments/staging.yaml", `database:
  # ${NAME:-fallback}: the variable when it is set, else the fallback.
  host: ${DATABASE_HOST:-db.staging.internal}
  # Credentials come from the environment's encrypted secrets (or the process
  # environment). Once secrets/staging.enc.yaml has it
  # (envplane secrets set --env staging DATABASE_PASSWORD), uncomment:
  # password: ${DATABASE_PASSWORD}
`},
	{"config/environments/production.yaml", `logging:
  level: warn
database:
  host: ${DATABASE_HOST:-db.production.internal}
  # password: ${DATABASE_PASSWORD}   # from secrets/production.enc.yaml
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
		Short: "Start a workspace: adopt the config files in DIR, or write a commented starter",
		Long: `Init writes envplane.yaml. In a folder that already holds configuration files —
config/environments/{env}.*, config/{env}.*, config/<dir>/{env}.* (mounted under
<dir>), {env}.yaml, .env.{env}, with a default/base/common file as the base layer —
it adopts them: environments come from the file names and envplane.yaml only points
at the files. In an empty folder it writes a commented starter workspace that lints
clean and resolves in every environment. The name and the variable prefix come from
the directory name. Init never overwrites a file.`,
		Args: argCount(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.dir
			if len(args) == 1 {
				dir = args[0]
			}
			if dir == "" {
				dir = "."
			}
			name := workspaceName(dir)
			ws := filepath.Join(dir, workspace.FileName)
			if _, err := os.Stat(ws); err == nil {
				return diag.List{diag.Errorf(diag.Pos{File: filepath.ToSlash(ws)}, "already exists; init never overwrites (edit it, or pick another DIR)")}
			}
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				if ad := workspace.Detect(os.DirFS(dir)); ad.Found() {
					return a.adopt(dir, name, ad)
				}
			}
			return a.writeStarter(dir, name)
		},
	}
}

// workspaceName is the name a workspace in dir gets: the directory's name.
func workspaceName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	n := filepath.Base(abs)
	if n == "." || n == string(filepath.Separator) || n == "" {
		return "my-app"
	}
	return n
}

// cdHint is the -C flag the next commands need.
func cdHint(dir string) string {
	if filepath.Clean(dir) == "." {
		return ""
	}
	if strings.ContainsAny(dir, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		dir = "'" + strings.ReplaceAll(dir, "'", `'\''`) + "'"
	}
	return "-C " + dir + " "
}

func (a *app) writeStarter(dir, name string) error {
	prefix := workspace.EnvPrefix(name)
	dbName := strings.ToLower(prefix)
	// Check every target first so that nothing is half-written, and name
	// every file that is in the way.
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
	fill := strings.NewReplacer("{{NAME}}", yamlScalar(name), "{{PREFIX}}", prefix, "{{DBNAME}}", yamlScalar(dbName))
	for _, f := range starter {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(fill.Replace(f.content)), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "created %s\n", filepath.ToSlash(filepath.Join(dir, f.path)))
	}
	cd := cdHint(dir)
	fmt.Fprintf(a.stdout, "\nnext: envplane %sresolve --env development\n      envplane %slint\n", cd, cd)
	fmt.Fprintf(a.stdout, "      (to give staging and production a database password: `envplane keys generate`, list the key\n"+
		"       under secrets.recipients in envplane.yaml, `envplane %ssecrets set --env staging DATABASE_PASSWORD`,\n"+
		"       then uncomment `password: ${DATABASE_PASSWORD}` in config/environments/staging.yaml)\n", cd)
	return nil
}

// adopt writes an envplane.yaml for the files Detect found, and says what
// it found.
func (a *app) adopt(dir, name string, ad workspace.Adoption) error {
	prefix := workspace.EnvPrefix(name)
	envs := ad.Environments
	if len(envs) == 0 {
		envs = []string{"development"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# envplane workspace: https://github.com/envplane/envplane\n")
	fmt.Fprintf(&b, "# Written by `envplane init` for the config files already here; they are read as they are.\n")
	fmt.Fprintf(&b, "name: %s\n\n", yamlScalar(name))
	b.WriteString("# Environments in promotion order, lowest first (from the file names).\n")
	b.WriteString("# Unless set, data and protection follow the position: the first is synthetic/open,\n")
	b.WriteString("# the last live/restricted. Add `promotion: { from: ENV }` to gate releases.\n")
	b.WriteString("environments:\n")
	for _, e := range envs {
		fmt.Fprintf(&b, "  - name: %s\n", e)
	}
	b.WriteString("\nconfig:\n")
	b.WriteString("  # Lowest precedence first; {env} is each environment's name.\n")
	b.WriteString("  layers:\n")
	for _, l := range ad.Layers {
		if l.At != "" {
			fmt.Fprintf(&b, "    - path: %s\n      at: %s\n", yamlScalar(l.Path), l.At)
			continue
		}
		fmt.Fprintf(&b, "    - %s\n", yamlScalar(l.Path))
	}
	b.WriteString("  env:\n")
	fmt.Fprintf(&b, "    # %s_SERVER__PORT=9000 sets server.port (double underscore = nesting).\n", prefix)
	fmt.Fprintf(&b, "    prefix: %s\n", prefix)
	if ad.Schema != "" {
		fmt.Fprintf(&b, "  schema: %s\n", yamlScalar(ad.Schema))
	} else {
		b.WriteString("  # schema: config/schema.json   # JSON Schema every resolved config must satisfy\n")
	}
	b.WriteString("  # sensitive: [webhook]         # extra key patterns to redact\n")
	if len(ad.Flags) > 0 {
		fmt.Fprintf(&b, "\nflags: [%s]\n", strings.Join(quoteAll(ad.Flags), ", "))
	}
	b.WriteString(`
# Encrypted secrets live in secrets/{env}.enc.yaml; list the age recipients that
# may open each environment's file ("envplane keys generate" prints one).
# secrets:
#   recipients:
#     development: [age1…]

# User rules in CEL over config, env, service and environment (data, protection).
# policies:
#   - name: production-logging
#     environments: [production]
#     rule: config.logging.level in ["warn", "error"]
#     message: production must not log below warn
#     severity: error
`)
	p := filepath.Join(dir, workspace.FileName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return diag.List{diag.Errorf(diag.Pos{File: filepath.ToSlash(p)}, "already exists; init never overwrites (edit it, or pick another DIR)")}
		}
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	w := a.stdout
	fmt.Fprintf(w, "found config files; adopting them as they are:\n")
	if len(ad.Environments) == 0 {
		fmt.Fprintf(w, "  environments: none in the file names; starting with %s\n", strings.Join(envs, ", "))
	} else {
		fmt.Fprintf(w, "  environments: %s\n", strings.Join(envs, ", "))
	}
	fmt.Fprintf(w, "  layers, lowest precedence first:\n")
	width := 0
	for _, l := range ad.Layers {
		width = max(width, len(l.Path))
	}
	for _, l := range ad.Layers {
		what := "base"
		if strings.Contains(l.Path, "{env}") {
			what = "one per environment"
		}
		if l.At != "" {
			what += ", under " + l.At
		}
		fmt.Fprintf(w, "    %-*s  %s\n", width, l.Path, what)
	}
	if ad.Schema != "" {
		fmt.Fprintf(w, "  schema: %s\n", ad.Schema)
	}
	for _, fl := range ad.Flags {
		fmt.Fprintf(w, "  flags: %s\n", fl)
	}
	for _, ig := range ad.Ignored {
		fmt.Fprintf(w, "  not adopted: %s\n", ig)
	}
	fmt.Fprintf(w, "  name: %s, variable prefix %s_\n", name, prefix)
	fmt.Fprintf(w, "created %s\n", filepath.ToSlash(p))
	cd := cdHint(dir)
	fmt.Fprintf(w, "\nnext: envplane %slint\n      envplane %svars --env %s\n", cd, cd, envs[0])
	return nil
}

// yamlScalar quotes s when YAML would not read it back as the same string.
func yamlScalar(s string) string {
	plain := s != ""
	for i, r := range s {
		ok := r == '-' || r == '_' || r == '.' || r == '/' || r == '*' || r == '{' || r == '}' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok || (i == 0 && strings.ContainsRune("-*.{}", r)) {
			plain = false
		}
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~":
		plain = false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = yamlScalar(s)
	}
	return out
}
