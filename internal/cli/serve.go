package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	envapp "github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/startup"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
	"github.com/envplane/envplane/internal/web"
	"github.com/envplane/envplane/internal/workspace"
)

// defaultDatabase is where `envplane serve` keeps its state without --database.
var defaultDatabase = filepath.Join(".envplane", "envplane.db")

func (a *app) serveCommand() *cobra.Command {
	var addr, database, wsDir, certFile, keyFile, logFormat string
	var masterKeyFile, previousKeyFile, checkpointFile, ageIdentityFile string
	var rateLimit float64
	cmd := &cobra.Command{
		Use:   "serve [--addr :8080] [--database URL] [--workspace DIR] [--tls-cert F --tls-key F]",
		Short: "Run the envplane server",
		Long: `Serve runs the HTTP API: releases, environments, resolved config (with ETag and
server-sent events), tokens and the audit log. Without --database it keeps its state
in an embedded SQLite database at ./.envplane/envplane.db; with postgres://… several
replicas share one PostgreSQL database.

The first start creates an admin token: ENVPLANE_BOOTSTRAP_TOKEN when set, otherwise a
generated one printed once on stderr. --workspace DIR uploads DIR as a release and makes
it current in the workspace's first environment when that has no release yet.

Server-side secrets are encrypted under per-environment data keys that a master key
wraps: ENVPLANE_MASTER_KEY (32 random bytes in base64: openssl rand -base64 32) or
--master-key-file. On the SQLite default without either, the first start generates
one next to the database (master.key, mode 0600) and warns once: back it up. With
PostgreSQL the key is required, and every replica must use the same one. During a
master key rotation (envplane server rotate-master-key), --previous-master-key-file
lets a server also open data keys still wrapped by the old key.

The audit log is a chain keyed by the master key. The server signs checkpoints of
its head (every 100 entries or each minute with new entries) into the log and into
audit.checkpoints beside the master key file (or the SQLite database), or
--audit-checkpoint-file; audit verify then fails when the log is behind them.

Workspace secrets files inside releases (secrets/{env}.enc.yaml) are opened with the
server's own age identity, when a file lists its recipient: --age-identity-file
(ENVPLANE_AGE_IDENTITY_FILE; a file as ` + "`envplane keys generate --out FILE`" + ` writes, mode
0600) or the identity itself in ENVPLANE_AGE_IDENTITY. ` + "`envplane server age-recipient`" + `
prints the recipient to add to a workspace's secrets.recipients. Files the identity
does not open are skipped (one log line each); server-side secrets win over them.

A SQLite database serves one process: a second serve (or server command) on the
same file is refused while the first runs.

Flags default to ENVPLANE_ADDR, ENVPLANE_DATABASE, ENVPLANE_TLS_CERT, ENVPLANE_TLS_KEY,
ENVPLANE_MASTER_KEY_FILE, ENVPLANE_PREVIOUS_MASTER_KEY_FILE, ENVPLANE_AUDIT_CHECKPOINT_FILE,
ENVPLANE_RATE_LIMIT and ENVPLANE_LOG_FORMAT; ENVPLANE_LOG_LEVEL (debug, info, warn, error)
sets the log level. Logs go to stderr: readable text lines on a terminal, JSON lines
otherwise (for log collectors), or as --log-format says.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A long-running server wants Go's default GC pacing back.
			startup.RestoreGC(a.getenv)
			fromEnv := func(flag, name string, dst *string) {
				if v := a.getenv(name); v != "" && !cmd.Flags().Changed(flag) {
					*dst = v
				}
			}
			fromEnv("addr", "ENVPLANE_ADDR", &addr)
			fromEnv("database", "ENVPLANE_DATABASE", &database)
			fromEnv("tls-cert", "ENVPLANE_TLS_CERT", &certFile)
			fromEnv("tls-key", "ENVPLANE_TLS_KEY", &keyFile)
			fromEnv("previous-master-key-file", "ENVPLANE_PREVIOUS_MASTER_KEY_FILE", &previousKeyFile)
			fromEnv("audit-checkpoint-file", "ENVPLANE_AUDIT_CHECKPOINT_FILE", &checkpointFile)
			fromEnv("log-format", "ENVPLANE_LOG_FORMAT", &logFormat)
			if logFormat != "" && logFormat != "text" && logFormat != "json" {
				return fmt.Errorf("serve: --log-format %q (or ENVPLANE_LOG_FORMAT): use text or json", logFormat)
			}
			mk := a.masterKeySource(cmd, masterKeyFile)
			ids, idSource, err := a.serverIdentities(cmd, ageIdentityFile)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			if v := a.getenv("ENVPLANE_RATE_LIMIT"); v != "" && !cmd.Flags().Changed("rate-limit") {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return fmt.Errorf("ENVPLANE_RATE_LIMIT=%q: want a number of requests per second", v)
				}
				rateLimit = n
			}
			if (certFile == "") != (keyFile == "") {
				return errors.New("serve: --tls-cert and --tls-key go together")
			}
			return a.serve(serveConfig{addr: addr, database: database, workspace: wsDir, cert: certFile, key: keyFile, rateLimit: rateLimit,
				masterKey: mk, previousKeyFile: previousKeyFile, checkpointFile: checkpointFile, logFormat: logFormat,
				ageIdentities: ids, ageIdentitySource: idSource})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", ":8080", "address to listen on")
	cmd.Flags().StringVar(&database, "database", "", "postgres://… URL or SQLite file path (default ./.envplane/envplane.db)")
	cmd.Flags().StringVar(&wsDir, "workspace", "", "upload this workspace directory as a release on start")
	cmd.Flags().StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&keyFile, "tls-key", "", "TLS private key file (PEM)")
	cmd.Flags().Float64Var(&rateLimit, "rate-limit", server.DefaultRateLimit, "requests per second per token (0 or negative: no limit)")
	cmd.Flags().StringVar(&masterKeyFile, "master-key-file", "", "file holding the master key of server-side secrets, base64 (default $ENVPLANE_MASTER_KEY_FILE, or the key itself in $ENVPLANE_MASTER_KEY)")
	cmd.Flags().StringVar(&previousKeyFile, "previous-master-key-file", "", "during a master key rotation: the old master key, still accepted")
	cmd.Flags().StringVar(&checkpointFile, "audit-checkpoint-file", "", "file of signed audit checkpoints (default: "+auditCheckpointFileName+" beside the master key file or the SQLite database)")
	cmd.Flags().StringVar(&ageIdentityFile, "age-identity-file", "", "file of the server's age identities (mode 0600), which open releases' workspace secrets files listing its recipient (default $ENVPLANE_AGE_IDENTITY_FILE, or the identity itself in $ENVPLANE_AGE_IDENTITY)")
	cmd.Flags().StringVar(&logFormat, "log-format", "", "text or json (default: text on a terminal, else json)")
	return cmd
}

type serveConfig struct {
	addr, database, workspace, cert, key string
	rateLimit                            float64
	masterKey                            vault.Source // Value and File only
	previousKeyFile                      string
	checkpointFile                       string // "": beside the master key file
	logFormat                            string // text, json, or "": by the terminal
	// ageIdentities open the workspace secrets files of releases;
	// ageIdentitySource says where they came from ("": none).
	ageIdentities     []age.Identity
	ageIdentitySource string
}

// serveLogger logs to the command's stderr: text lines for a person at a
// terminal, JSON lines for a collector; format "text" or "json" decides.
func (a *app) serveLogger(format string, level slog.Level) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	o := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(a.stderr, o))
	}
	return slog.New(slog.NewJSONHandler(a.stderr, o))
}

// warnIgnoredBootstrap says why ENVPLANE_BOOTSTRAP_TOKEN does nothing when
// the database already has tokens (unless it is one of them: a restart)
// and how to get an admin token instead.
func warnIgnoredBootstrap(ctx context.Context, uc *envapp.App, bootstrap string, log *slog.Logger) {
	if bootstrap == "" {
		return
	}
	ts, err := uc.ListTokens(ctx, auth.System("envplane serve"))
	if err != nil || len(ts) == 0 {
		return
	}
	hash := auth.HashToken(bootstrap)
	for _, t := range ts {
		if t.Hash == hash {
			return
		}
	}
	log.Warn("ENVPLANE_BOOTSTRAP_TOKEN is set but ignored: it only creates the first token of an empty database, and this one has tokens already. "+
		"To get an admin token, run `envplane server create-token --role admin` with this server's --database", "tokens", len(ts))
}

// auditCheckpointFileName is the checkpoint file's name beside the master
// key file (or the SQLite database, whose generated key lives there).
const auditCheckpointFileName = "audit.checkpoints"

// masterKeySource reads the master key settings: --master-key-file wins
// over the environment; ENVPLANE_MASTER_KEY and ENVPLANE_MASTER_KEY_FILE
// together are ambiguous, which vault.Load reports.
func (a *app) masterKeySource(cmd *cobra.Command, flagFile string) vault.Source {
	if cmd.Flags().Changed("master-key-file") {
		return vault.Source{File: flagFile}
	}
	return vault.Source{Value: a.getenv("ENVPLANE_MASTER_KEY"), File: a.getenv("ENVPLANE_MASTER_KEY_FILE")}
}

// Where serve finds its age identities.
const (
	envAgeIdentity     = "ENVPLANE_AGE_IDENTITY"
	envAgeIdentityFile = "ENVPLANE_AGE_IDENTITY_FILE"
)

// serverIdentities loads the server's own age identities: from
// --age-identity-file, else ENVPLANE_AGE_IDENTITY (the identity text) or
// ENVPLANE_AGE_IDENTITY_FILE, which together are ambiguous. A file must be
// private to the server's user, like the master key file. None set: no
// identities and no error. The user's own keys (ENVPLANE_AGE_KEY, keys.txt)
// are never the server's.
func (a *app) serverIdentities(cmd *cobra.Command, flagFile string) (ids []age.Identity, source string, err error) {
	file, text := flagFile, ""
	if !cmd.Flags().Changed("age-identity-file") {
		file, text = a.getenv(envAgeIdentityFile), a.getenv(envAgeIdentity)
		if file != "" && text != "" {
			return nil, "", fmt.Errorf("both %s and %s are set: use one", envAgeIdentity, envAgeIdentityFile)
		}
	}
	switch {
	case text != "":
		ids, err = secrets.ParseIdentities(envAgeIdentity, text)
		return ids, envAgeIdentity, err
	case file != "":
		ids, err = secrets.ReadIdentityFile(file)
		return ids, file, err
	}
	return nil, "", nil
}

// pendingKeySuffix names the new key an interrupted rotation of the
// generated key left next to it (see rotate-master-key).
const pendingKeySuffix = ".new"

// openVault loads the master key for st (dataDir is the SQLite database's
// directory, "" for PostgreSQL) and checks it opens every data key.
// keyFile is the master key's file, "" when it came from ENVPLANE_MASTER_KEY.
func (a *app) openVault(ctx context.Context, st store.Store, dataDir string, src vault.Source, previousFile string, log *slog.Logger) (v *vault.Vault, keyFile string, err error) {
	src.DataDir, src.Store = dataDir, st
	loaded, err := vault.Load(ctx, src)
	if err != nil {
		return nil, "", err
	}
	if loaded.From != "ENVPLANE_MASTER_KEY" {
		keyFile = loaded.From
	}
	if loaded.Generated {
		log.Warn("generated the master key of server-side secrets; back it up and keep it private: without it the secrets in this database cannot be decrypted. "+
			"Set ENVPLANE_MASTER_KEY or --master-key-file to manage it yourself", "path", loaded.From, "masterKey", loaded.Key.ID())
	}
	var previous []*vault.MasterKey
	if previousFile != "" {
		k, err := vault.ReadKeyFile(previousFile)
		if err != nil {
			return nil, "", fmt.Errorf("--previous-master-key-file: %w", err)
		}
		previous = append(previous, k)
	}
	if dataDir != "" && loaded.From == filepath.Join(dataDir, vault.KeyFileName) {
		// A rotation of the generated key that stopped half-way: accept both.
		if k, err := vault.ReadKeyFile(loaded.From + pendingKeySuffix); err == nil {
			log.Warn("a master key rotation was interrupted; run `envplane server rotate-master-key` again to finish it", "pending", loaded.From+pendingKeySuffix)
			previous = append(previous, k)
		}
	}
	v, err = vault.New(vault.Options{Master: loaded.Key, Previous: previous})
	if err != nil {
		return nil, "", err
	}
	log.Info("server-side secrets", "masterKey", loaded.Key.ID(), "source", loaded.From)
	return v, keyFile, nil
}

func (a *app) serve(c serveConfig) error {
	ctx := a.ctx
	level := slog.LevelInfo
	if v := a.getenv("ENVPLANE_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("ENVPLANE_LOG_LEVEL=%q: use debug, info, warn or error", v)
		}
	}
	logger := a.serveLogger(c.logFormat, level)

	// A workspace that does not load stops serve before anything is written.
	var files map[string][]byte
	if c.workspace != "" {
		var err error
		// The same files as `envplane release create`, hence the same digest.
		if files, err = releaseFiles(c.workspace); err != nil {
			return err
		}
		if _, err := release.Validate(ctx, files); err != nil {
			return fmt.Errorf("serve: --workspace %s: %w", c.workspace, describe(err))
		}
	}
	if !isSQLite(c.database) && c.masterKey.Value == "" && c.masterKey.File == "" {
		// Before connecting: nothing to migrate for a server that will not start.
		_, err := vault.Load(ctx, c.masterKey)
		return fmt.Errorf("serve: %w", err)
	}
	st, where, dataDir, err := openStore(ctx, "serve", c.database)
	if err != nil {
		return err
	}
	defer st.Close()
	v, keyFile, err := a.openVault(ctx, st, dataDir, c.masterKey, c.previousKeyFile, logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Checkpoints live outside the database, beside the master key: whoever
	// can rewrite the database should not be able to rewrite them too.
	checkpoints := c.checkpointFile
	switch {
	case checkpoints != "":
	case keyFile != "":
		checkpoints = filepath.Join(filepath.Dir(keyFile), auditCheckpointFileName)
	case dataDir != "":
		checkpoints = filepath.Join(dataDir, auditCheckpointFileName)
	default:
		logger.Warn("audit checkpoints go to this log only: the master key comes from ENVPLANE_MASTER_KEY; " +
			"set --audit-checkpoint-file (ENVPLANE_AUDIT_CHECKPOINT_FILE) to keep them in a file")
	}
	rate := c.rateLimit
	if rate == 0 {
		rate = -1 // --rate-limit 0 reads as "no limit", not "the default"
	}
	uc, err := envapp.New(envapp.Options{Store: st, Vault: v, Logger: logger, AgeIdentities: c.ageIdentities,
		Audit: envapp.AuditOptions{Checkpoints: audit.CheckpointOptions{File: checkpoints}}})
	if err != nil {
		return err
	}
	if c.ageIdentitySource != "" {
		logger.Info("age identity for workspace secrets files", "source", c.ageIdentitySource, "recipients", strings.Join(uc.AgeRecipients(), ","))
	}
	warnIgnoredBootstrap(ctx, uc, a.getenv("ENVPLANE_BOOTSTRAP_TOKEN"), logger)
	srv, err := server.New(ctx, server.Options{
		App:            uc,
		Store:          st,
		Logger:         logger,
		BootstrapToken: a.getenv("ENVPLANE_BOOTSTRAP_TOKEN"),
		Stderr:         a.stderr,
		RateLimit:      rate,
		TLSCertFile:    c.cert,
		TLSKeyFile:     c.key,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ui, err := web.New(web.Options{App: uc, Source: srv, Logger: logger})
	if err != nil {
		return err
	}
	srv.SetUI(ui)
	if c.workspace != "" {
		if err := a.uploadWorkspace(ctx, uc, st, c.workspace, files); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	scheme := "http"
	if c.cert != "" {
		scheme = "https"
	}
	fmt.Fprintf(a.stderr, "envplane: serving on %s://%s (state in %s)\n", scheme, ln.Addr(), where)
	return srv.Serve(ctx, ln)
}

// isSQLite reports whether a database setting means the embedded SQLite.
func isSQLite(database string) bool {
	return !strings.HasPrefix(database, "postgres://") && !strings.HasPrefix(database, "postgresql://")
}

// openStore picks the backend from the database setting. dataDir is the
// SQLite database's directory, where a generated master key lives; "" for
// PostgreSQL. cmd prefixes errors.
func openStore(ctx context.Context, cmd, database string) (st store.Store, where, dataDir string, err error) {
	switch {
	case !isSQLite(database):
		st, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, "", "", fmt.Errorf("%s: open PostgreSQL: %w", cmd, err)
		}
		return st, "PostgreSQL", "", nil
	case database == "":
		database = defaultDatabase
	case strings.HasPrefix(database, "sqlite:"):
		database = strings.TrimPrefix(strings.TrimPrefix(database, "sqlite:"), "//")
	case strings.Contains(database, "://"):
		return nil, "", "", fmt.Errorf("%s: --database %q: use postgres://… or a SQLite file path", cmd, database)
	}
	sst, err := sqlite.Open(ctx, database)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: open SQLite database %s: %w", cmd, database, err)
	}
	return sst, database, filepath.Dir(database), nil
}

// uploadWorkspace stores dir as a release and makes it current in the
// workspace's first environment when that has none yet, so that
// `envplane serve --workspace examples/arka` serves config at once.
func (a *app) uploadWorkspace(ctx context.Context, uc *envapp.App, st store.Store, dir string, files map[string][]byte) error {
	actor := auth.System("envplane serve --workspace")
	rel, created, err := uc.CreateRelease(ctx, actor, files, map[string]string{"source": "serve-workspace"})
	if err != nil {
		return fmt.Errorf("serve: --workspace %s: %w", dir, describe(err))
	}
	state := "already stored"
	if created {
		state = "new"
	}
	fmt.Fprintf(a.stderr, "envplane: workspace %s is release %s (%s)\n", dir, rel.ID, state)
	ws, err := workspace.Load(os.DirFS(dir))
	if err != nil || len(ws.Environments) == 0 {
		return err
	}
	first := ws.Environments[0].Name
	env, err := st.GetEnvironment(ctx, first)
	if err != nil {
		return err
	}
	switch {
	case env.Release != "":
		fmt.Fprintf(a.stderr, "envplane: %s keeps its current release %s\n", first, env.Release)
	case env.Promoted:
		fmt.Fprintf(a.stderr, "envplane: %s takes releases through promotions; not setting it\n", first)
	default:
		if _, err := uc.SetRelease(ctx, actor, first, rel.ID); err != nil {
			return fmt.Errorf("serve: make %s current in %s: %w", rel.ID, first, describe(err))
		}
		fmt.Fprintf(a.stderr, "envplane: %s now runs release %s\n", first, rel.ID)
	}
	return nil
}

// describe spells out an error's field problems, one a line, for the terminal.
func describe(err error) error {
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	lines := []string{err.Error()}
	for _, f := range e.Fields {
		if strings.HasPrefix(f.Field, "files.") { // the message starts with the file's place
			lines = append(lines, f.Message)
		} else {
			lines = append(lines, f.Field+": "+f.Message)
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}
