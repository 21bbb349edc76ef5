package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/envplane/envplane/internal/dotenv"
	"github.com/envplane/envplane/internal/fsutil"
	"github.com/envplane/envplane/internal/secrets"
)

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage age keys that open secrets files"}
	var out string
	gen := &cobra.Command{
		Use:   "generate [--out FILE]",
		Short: "Create an age identity; print its public recipient (age1…)",
		Long: `Generate creates an X25519 age identity, writes it to FILE with mode 0600 (default:
the envplane config directory's keys.txt, where envplane looks for identities; a new
identity is appended there) and prints its public recipient on stdout. Put the
recipient under secrets.recipients.ENV in envplane.yaml to let this key open ENV.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			identity, recipient, err := secrets.GenerateIdentity()
			if err != nil {
				return err
			}
			path, appendTo := out, false
			if path == "" {
				path, appendTo = secrets.DefaultKeyFile(a.getenv), true
				if path == "" {
					return fmt.Errorf("no --out FILE and neither XDG_CONFIG_HOME nor HOME is set")
				}
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if appendTo {
				flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(path, flags, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("--out %s already exists; not overwriting an identity", path)
			}
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(f, "# public key: %s\n%s\n", recipient, identity); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "envplane: identity written to %s (keep it private)\n", path)
			_, err = fmt.Fprintln(a.stdout, recipient)
			return err
		},
	}
	gen.Flags().StringVar(&out, "out", "", "file to write the identity to (mode 0600)")
	cmd.AddCommand(gen)
	return cmd
}

func (a *app) secretsCommand() *cobra.Command {
	var env string
	var r remote
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage an environment's encrypted secrets",
		Long: `Secrets live in secrets/ENV.enc.yaml, SOPS files that sops opens too: names in
clear, each value sealed with AES-256-GCM under a data key that is wrapped for each
age recipient listed for ENV in envplane.yaml, and an envplane_environment entry that
binds the file to ENV. With --server the commands act on the server's secrets instead.`,
	}
	cmd.PersistentFlags().StringVar(&env, "env", "", envFlagHelp)
	// --server alone acts on $ENVPLANE_SERVER's secrets; --server=URL names one.
	cmd.PersistentFlags().StringVar(&r.server, "server", "", "act on the server's secrets (URL, default $ENVPLANE_SERVER)")
	cmd.PersistentFlags().Lookup("server").NoOptDefVal = serverFromEnv
	cmd.PersistentFlags().StringVar(&r.token, "token", "", "API token (default $ENVPLANE_TOKEN)")
	// An environment is needed but by migrate (all environments without
	// one) and sops-config (every environment): --env, else ENVPLANE_ENV or
	// config.env.select as for resolve (ENVPLANE_ENV alone where no
	// workspace loads, as for --server from elsewhere).
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if env != "" || c.Name() == "migrate" || c.Name() == "sops-config" {
			return nil
		}
		if l, err := a.load(); err == nil {
			env, err = a.environment(l, "", "")
			return err
		}
		if env = a.getenv("ENVPLANE_ENV"); env == "" {
			return fmt.Errorf("no environment: pass --env E or set ENVPLANE_ENV")
		}
		return nil
	}
	remoteMode := func() bool { return r.server != "" }

	set := &cobra.Command{
		Use:   "set --env E NAME [VALUE]",
		Short: "Set a secret (no VALUE: read stdin, or prompt without echo on a terminal)",
		Args:  argCount(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := a.secretValue(args, "value of "+args[0]+": ")
			if err != nil {
				return err
			}
			if remoteMode() {
				return a.remoteSecretSet(cmd, &r, env, args[0], value)
			}
			return a.editSecrets(env, func(o *secrets.Opened) error { return o.Set(args[0], value) })
		},
	}
	get := &cobra.Command{
		Use:   "get --env E NAME",
		Short: "Print a secret's value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remoteMode() {
				var out struct {
					Value string `json:"value"`
				}
				if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/environments/"+url.PathEscape(env)+"/secrets/"+url.PathEscape(args[0]),
					url.Values{"reveal": {"true"}}, nil, &out); err != nil {
					return err
				}
				_, err := fmt.Fprintln(a.stdout, out.Value)
				return err
			}
			l, err := a.load()
			if err != nil {
				return err
			}
			o, _, err := a.openSecrets(l, env, false)
			if err != nil {
				return err
			}
			v, ok := o.Get(args[0])
			if !ok {
				return fmt.Errorf("environment %s has no secret %q (envplane secrets list --env %s)", env, args[0], env)
			}
			_, err = fmt.Fprintln(a.stdout, v)
			return err
		},
	}
	list := &cobra.Command{
		Use:   "list --env E",
		Short: "List secret names, one a line (no key needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remoteMode() {
				var out struct {
					Secrets []struct {
						Name string `json:"name"`
					} `json:"secrets"`
				}
				if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/environments/"+url.PathEscape(env)+"/secrets", nil, nil, &out); err != nil {
					return err
				}
				for _, s := range out.Secrets {
					fmt.Fprintln(a.stdout, s.Name)
				}
				return nil
			}
			l, err := a.load()
			if err != nil {
				return err
			}
			if err := l.Check(env, "").Err(); err != nil {
				return err
			}
			f, _, err := a.readSecretsFile(l, env)
			if err != nil || f == nil {
				return err
			}
			for _, n := range f.Names() {
				fmt.Fprintln(a.stdout, n)
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm --env E NAME",
		Short: "Remove a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remoteMode() {
				_, err := a.call(cmd.Context(), &r, "DELETE", "/api/v1/environments/"+url.PathEscape(env)+"/secrets/"+url.PathEscape(args[0]), nil, nil, nil)
				return err
			}
			return a.editSecrets(env, func(o *secrets.Opened) error {
				if !o.Delete(args[0]) {
					return fmt.Errorf("environment %s has no secret %q", env, args[0])
				}
				return nil
			})
		},
	}
	imp := &cobra.Command{
		Use:   "import --env E FILE.env",
		Short: "Set every NAME=VALUE of a dotenv file as a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			entries, problems := dotenv.Parse(args[0], data)
			if len(problems) > 0 {
				return problems
			}
			if remoteMode() {
				for _, e := range entries {
					if err := a.remoteSecretSet(cmd, &r, env, e.Name, unescapeDotenv(e.Value)); err != nil {
						return err
					}
				}
				return nil
			}
			err = a.editSecrets(env, func(o *secrets.Opened) error {
				for _, e := range entries {
					if err := o.Set(e.Name, unescapeDotenv(e.Value)); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				fmt.Fprintf(a.stderr, "envplane: imported %d secret(s) into %s\n", len(entries), env)
			}
			return err
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate --env E",
		Short: "Re-encrypt every value under a new data key for the current recipients",
		Long: `Rotate seals every value again under a fresh data key, wrapped only for the recipients
envplane.yaml lists now: run it after removing a recipient so that their key cannot
open what is written from now on (rotate the secret values themselves too: they may
have been read).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remoteMode() {
				return fmt.Errorf("rotate works on workspace files; server data keys are rotated with `envplane server rotate-master-key`")
			}
			l, err := a.load()
			if err != nil {
				return err
			}
			rs, err := recipientsFor(l.Workspace, env)
			if err != nil {
				return err
			}
			var before []string
			if err := a.editLoadedSecrets(l, env, func(o *secrets.Opened) error {
				before = o.Recipients()
				return o.Rotate(rs)
			}); err != nil {
				return err
			}
			a.reportRotation(env, before, rs)
			return nil
		},
	}
	edit := &cobra.Command{
		Use:   "edit --env E",
		Short: "Edit the secrets in $EDITOR (a decrypted temporary file, removed afterwards)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remoteMode() {
				return fmt.Errorf("edit works on workspace files; use `secrets set --server` for server secrets")
			}
			return a.editSecrets(env, a.editInEditor)
		},
	}
	cmd.AddCommand(set, get, list, rm, imp, rotate, edit, a.secretsMigrateCommand(&env), a.sopsConfigCommand())
	return cmd
}

// secretValue takes the value from the arguments, a terminal prompt without
// echo, or standard input (one trailing newline, \n or \r\n, dropped). Bytes
// are kept exactly: a value that is not UTF-8 is refused by Opened.Set and
// the server, never repaired.
func (a *app) secretValue(args []string, prompt string) (string, error) {
	if len(args) == 2 {
		return args[1], nil
	}
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		return string(b), err
	}
	if a.stdin == nil {
		return "", fmt.Errorf("no value: give VALUE or pipe it on stdin")
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, maxStdinValue+int64(len("\r\n"))+1))
	if err != nil {
		return "", err
	}
	// Drop exactly one line ending, as `echo` or a heredoc adds; a lone
	// trailing \r is part of the value.
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if int64(len(s)) > maxStdinValue {
		// Cutting it short would store a different secret.
		return "", fmt.Errorf("the value on stdin is over %d bytes (1 MiB); nothing changed", maxStdinValue)
	}
	return s, nil
}

// maxStdinValue bounds a value read from stdin.
const maxStdinValue int64 = 1 << 20

// openSecrets opens an environment's file; with create, a missing file is a
// new one for the recipients envplane.yaml lists.
func (a *app) openSecrets(l *loaded, env string, create bool) (*secrets.Opened, string, error) {
	if err := l.Check(env, "").Err(); err != nil {
		return nil, "", err
	}
	f, path, err := a.readSecretsFile(l, env)
	if err != nil {
		return nil, "", err
	}
	if f == nil {
		if !create {
			return nil, "", fmt.Errorf("environment %s has no secrets file yet (%s); create it with `envplane secrets set --env %s NAME`", env, path, env)
		}
		rs, err := recipientsFor(l.Workspace, env)
		if err != nil {
			return nil, "", err
		}
		o, err := secrets.New(env, rs)
		return o, path, err
	}
	ids, err := a.identities()
	if err != nil {
		return nil, "", err
	}
	o, err := f.Open(ids)
	if err != nil {
		return nil, "", err
	}
	// Follow envplane.yaml's recipients; removing one takes `rotate` to matter.
	if rs := l.Workspace.Secrets.Recipients[env]; len(rs) > 0 && create {
		if err := o.SetRecipients(rs); err != nil {
			return nil, "", err
		}
	}
	return o, path, nil
}

// editSecrets opens (or creates) a file, applies change and writes it back
// atomically — only when something changed.
func (a *app) editSecrets(env string, change func(*secrets.Opened) error) error {
	l, err := a.load()
	if err != nil {
		return err
	}
	return a.editLoadedSecrets(l, env, change)
}

// editLoadedSecrets is editSecrets on an already loaded workspace.
func (a *app) editLoadedSecrets(l *loaded, env string, change func(*secrets.Opened) error) error {
	o, path, err := a.openSecrets(l, env, true)
	if err != nil {
		return err
	}
	if err := change(o); err != nil {
		return err
	}
	if !o.Changed() {
		return nil
	}
	data, err := o.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFile(path, data, 0o600)
}

// editInEditor writes the values as a dotenv file into a private temporary
// directory, runs $EDITOR on it and applies what the user saved.
//
// The plaintext is removed on every exit that can be caught: the editor
// failing, a bad edit, and SIGHUP or SIGTERM (a closed terminal or ssh
// session, a shutdown), which are passed on to the editor and end the edit
// with nothing changed. SIGINT is the editor's to handle. A SIGKILL cannot
// be caught; the directory is named after this process, and the next
// `secrets edit` removes the directories of processes that are gone.
func (a *app) editInEditor(o *secrets.Opened) error {
	base := a.getenv("TMPDIR")
	if base == "" {
		base = os.TempDir()
	}
	if removed, err := fsutil.RemoveStaleTempDirs(base, secrets.TempDirPrefix, nil); len(removed) > 0 {
		fmt.Fprintf(a.stderr, "envplane: removed decrypted secrets left by envplane processes that were killed: %s\n", strings.Join(removed, ", "))
	} else if err != nil {
		fmt.Fprintf(a.stderr, "envplane: warning: cleaning up old decrypted secrets directories: %v\n", err)
	}
	// Catch the signals before any plaintext exists.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(sigs)
	dir, err := fsutil.MkdirPrivateTemp(base, secrets.TempDirPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, o.Environment()+".env")
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Secrets of %s. Save and quit to apply; delete a line to remove a secret.\n", o.Environment())
	values := o.Values()
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s\n", n, dotenv.Quote(values[n]))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return err
	}
	editor := a.getenv("VISUAL")
	if editor == "" {
		editor = a.getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	fields := strings.Fields(editor)
	c := exec.Command(fields[0], append(fields[1:], path)...)
	c.Stdin, c.Stdout, c.Stderr = a.stdin, a.stdout, a.stderr
	if err := runEditor(c, sigs); err != nil {
		return fmt.Errorf("editor %q: %w; nothing changed", editor, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	entries, problems := dotenv.Parse(o.Environment()+".env", data)
	if len(problems) > 0 {
		return fmt.Errorf("the edited file has errors; nothing changed:\n%w", problems)
	}
	seen := map[string]bool{}
	var added, changed, removed []string
	for _, e := range entries {
		seen[e.Name] = true
		v := unescapeDotenv(e.Value)
		switch old, ok := values[e.Name]; {
		case !ok:
			added = append(added, e.Name)
		case old != v:
			changed = append(changed, e.Name)
		default:
			continue
		}
		if err := o.Set(e.Name, v); err != nil {
			return err
		}
	}
	for _, n := range names {
		if !seen[n] {
			o.Delete(n)
			removed = append(removed, n)
		}
	}
	a.reportEdit(o.Environment(), added, changed, removed)
	return nil
}

// reportEdit says what an edit changed: names, never values.
func (a *app) reportEdit(env string, added, changed, removed []string) {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", added}, {"changed", changed}, {"removed", removed}} {
		if len(p.names) > 0 {
			sort.Strings(p.names)
			parts = append(parts, p.what+" "+strings.Join(p.names, ", "))
		}
	}
	if len(parts) == 0 {
		fmt.Fprintf(a.stderr, "envplane: secrets of %s: no changes\n", env)
		return
	}
	fmt.Fprintf(a.stderr, "envplane: secrets of %s: %s\n", env, strings.Join(parts, "; "))
}

// reportRotation says what a rotation did: a new data key for the
// recipients now listed, and whose access it ended.
func (a *app) reportRotation(env string, before, after []string) {
	fmt.Fprintf(a.stderr, "envplane: secrets of %s re-encrypted under a new data key for %d recipient%s\n", env, len(after), pluralS(len(after)))
	var gone []string
	for _, r := range before {
		if !slices.Contains(after, r) {
			gone = append(gone, r)
		}
	}
	if len(gone) > 0 {
		fmt.Fprintf(a.stderr, "envplane: no longer opened by: %s (rotate the secret values too: they may have been read)\n", strings.Join(gone, ", "))
	}
}

// editorGrace is how long an editor has to exit after a signal passed on
// to it, before it is killed.
const editorGrace = 3 * time.Second

// runEditor runs c to its end, or until a signal arrives on sigs: then it
// passes the signal on, gives the editor editorGrace to exit, kills it if
// need be, and reports the signal.
func runEditor(c *exec.Cmd, sigs <-chan os.Signal) error {
	if err := c.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case sig := <-sigs:
		c.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(editorGrace):
			c.Process.Kill()
			<-done
		}
		return fmt.Errorf("interrupted by %v", sig)
	}
}

// unescapeDotenv undoes the "$${" escaping dotenv.Parse applies for
// interpolation: secrets are literal values.
func unescapeDotenv(v string) string { return strings.ReplaceAll(v, "$${", "${") }

func (a *app) remoteSecretSet(cmd *cobra.Command, r *remote, env, name, value string) error {
	if !utf8.ValidString(value) {
		// JSON encoding would send U+FFFD in place of the bad bytes.
		return fmt.Errorf("secret %s: the value is not valid UTF-8; secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first", name)
	}
	var out struct {
		Version int `json:"version"`
	}
	if _, err := a.call(cmd.Context(), r, "PUT", "/api/v1/environments/"+url.PathEscape(env)+"/secrets/"+url.PathEscape(name), nil,
		map[string]any{"value": value}, &out); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "envplane: %s set in %s (version %d)\n", name, env, out.Version)
	return nil
}
