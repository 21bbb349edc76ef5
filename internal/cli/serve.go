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

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/startup"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/workspace"
)

// defaultDatabase is where `envplane serve` keeps its state without --database.
var defaultDatabase = filepath.Join(".envplane", "envplane.db")

func (a *app) serveCommand() *cobra.Command {
	var addr, database, wsDir, certFile, keyFile string
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

Flags default to ENVPLANE_ADDR, ENVPLANE_DATABASE, ENVPLANE_TLS_CERT, ENVPLANE_TLS_KEY
and ENVPLANE_RATE_LIMIT; ENVPLANE_LOG_LEVEL (debug, info, warn, error) sets the log level.`,
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
			return a.serve(serveConfig{addr: addr, database: database, workspace: wsDir, cert: certFile, key: keyFile, rateLimit: rateLimit})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", ":8080", "address to listen on")
	cmd.Flags().StringVar(&database, "database", "", "postgres://… URL or SQLite file path (default ./.envplane/envplane.db)")
	cmd.Flags().StringVar(&wsDir, "workspace", "", "upload this workspace directory as a release on start")
	cmd.Flags().StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&keyFile, "tls-key", "", "TLS private key file (PEM)")
	cmd.Flags().Float64Var(&rateLimit, "rate-limit", server.DefaultRateLimit, "requests per second per token (0 or negative: no limit)")
	return cmd
}

type serveConfig struct {
	addr, database, workspace, cert, key string
	rateLimit                            float64
}

func (a *app) serve(c serveConfig) error {
	ctx := a.ctx
	level := slog.LevelInfo
	if v := a.getenv("ENVPLANE_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("ENVPLANE_LOG_LEVEL=%q: use debug, info, warn or error", v)
		}
	}
	logger := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))

	// A workspace that does not load stops serve before anything is written.
	var files map[string][]byte
	if c.workspace != "" {
		var err error
		// The same files as `envplane release create`, hence the same digest.
		if files, err = releaseFiles(c.workspace); err != nil {
			return err
		}
		if _, err := release.Validate(files); err != nil {
			return fmt.Errorf("serve: --workspace %s: %w", c.workspace, describe(err))
		}
	}
	st, where, err := openStore(ctx, c.database)
	if err != nil {
		return err
	}
	defer st.Close()
	rate := c.rateLimit
	if rate == 0 {
		rate = -1 // --rate-limit 0 reads as "no limit", not "the default"
	}
	srv, err := server.New(ctx, server.Options{
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
	if c.workspace != "" {
		if err := a.uploadWorkspace(ctx, srv, st, c.workspace, files); err != nil {
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

// openStore picks the backend from the database setting.
func openStore(ctx context.Context, database string) (store.Store, string, error) {
	switch {
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		st, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, "", fmt.Errorf("serve: open PostgreSQL: %w", err)
		}
		return st, "PostgreSQL", nil
	case database == "":
		database = defaultDatabase
	case strings.HasPrefix(database, "sqlite:"):
		database = strings.TrimPrefix(strings.TrimPrefix(database, "sqlite:"), "//")
	case strings.Contains(database, "://"):
		return nil, "", fmt.Errorf("serve: --database %q: use postgres://… or a SQLite file path", database)
	}
	st, err := sqlite.Open(ctx, database)
	if err != nil {
		return nil, "", fmt.Errorf("serve: open SQLite database %s: %w", database, err)
	}
	return st, database, nil
}

// uploadWorkspace stores dir as a release and makes it current in the
// workspace's first environment when that has none yet, so that
// `envplane serve --workspace examples/arka` serves config at once.
func (a *app) uploadWorkspace(ctx context.Context, srv *server.Server, st store.Store, dir string, files map[string][]byte) error {
	const actor = "envplane serve --workspace"
	rel, created, err := srv.CreateRelease(ctx, files, map[string]string{"source": "serve-workspace"}, actor)
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
		if _, err := srv.SetRelease(ctx, first, rel.ID, actor); err != nil {
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
