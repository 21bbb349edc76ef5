package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	envapp "github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/data"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/workspace"
)

func (a *app) dataCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Refresh environments' databases: plan and copy with anonymisation, seed synthetic rows",
		Long: `data copies PostgreSQL tables from one environment's database to another's through
per-column transformers (data/rules.yaml), and seeds an empty database with synthetic
rows (data/seed.yaml). Each environment's database URL is its resolved config key named
by data.database in envplane.yaml. See docs/DATA.md.`,
	}
	cmd.AddCommand(a.dataPlanCommand(), a.dataCopyCommand(), a.dataSeedCommand())
	return cmd
}

// dataSetup is a loaded workspace with its data block checked.
type dataSetup struct {
	l *loaded
}

func (a *app) dataLoad(envs ...string) (*dataSetup, error) {
	l, err := a.load()
	if err != nil {
		return nil, err
	}
	if err := a.checkEnvironments(l, envs...); err != nil {
		return nil, err
	}
	if l.Workspace.Data.Database == "" {
		return nil, diag.List{diag.Errorf(diag.Pos{File: workspace.FileName}, "no data.database: add a data: block naming the config key of each environment's database URL (data: {database: database.url, rules: data/rules.yaml})")}
	}
	return &dataSetup{l: l}, nil
}

// endpoint resolves env's config (with its secrets) and finds its database.
func (a *app) endpoint(s *dataSetup, env string) (data.Endpoint, map[string]domain.Secret, error) {
	e, _ := s.l.Workspace.Environment(env)
	ep := data.Endpoint{Env: env, Class: e.Data, Key: s.l.Workspace.Data.Database}
	res, req, err := a.resolveStrictWith(s.l, env, "")
	if err != nil {
		return ep, nil, err
	}
	ep.URL, err = data.URLFromConfig(res.Tree, ep.Key)
	if err != nil {
		return ep, nil, fmt.Errorf("%s: %w", env, err)
	}
	return ep, req.Secrets, nil
}

func (a *app) readRules(s *dataSetup) (*data.Rules, error) {
	name := s.l.Workspace.Data.Rules
	if name == "" {
		name = "data/rules.yaml"
	}
	b, err := os.ReadFile(filepath.Join(s.l.dir, name))
	if err != nil {
		return nil, diag.List{diag.Errorf(diag.Pos{File: name}, "cannot read the rules file (data.rules in %s): %v", workspace.FileName, errors.Unwrap(err))}
	}
	return data.ParseRules(name, b)
}

func splitTables(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (a *app) dataPlanCommand() *cobra.Command {
	var from, to, tables string
	cmd := &cobra.Command{
		Use:   "plan --from E1 --to E2 [--tables a,b]",
		Short: "List every table and column of the source with its rule, or unclassified and a suggestion",
		Long: `plan reads the source's schema and the rules file and prints each column with its rule,
or "unclassified" and a suggested rule from the column's name, type and sampled values.
Exit 1 while a copied column is unclassified, 0 when every column has a rule.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("data plan: needs --from and --to")
			}
			s, err := a.dataLoad(from, to)
			if err != nil {
				return err
			}
			rules, rerr := a.readRules(s)
			src, _, err := a.endpoint(s, from)
			if err != nil {
				return errors.Join(rerr, err)
			}
			if rerr != nil {
				return rerr
			}
			cls, err := data.PlanSource(a.ctx, src, rules, splitTables(tables))
			if err != nil {
				return err
			}
			var table bytes.Buffer
			tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COLUMN\tTYPE\tRULE\tSUGGESTED")
			for _, tn := range cls.Tables {
				for _, cp := range cls.Columns[tn] {
					rule, sugg := cp.Rule.String(), ""
					if cp.Rule != nil && cp.Rule.From != "" {
						rule += " (follows " + cp.Rule.From + ")"
					}
					if cp.Rule == nil {
						sugg = cp.Suggest
						if cp.Why != "" {
							sugg += " (" + cp.Why + ")"
						}
					}
					fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%s\n", tn, cp.Column.Name, cp.Column.Type, rule, sugg)
				}
			}
			tw.Flush()
			for _, line := range strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n") {
				fmt.Fprintln(a.stdout, strings.TrimRight(line, " "))
			}
			for _, tn := range cls.Tables {
				if parts, ok := cls.Partitions[tn]; ok {
					list := strings.Join(parts, ", ")
					if list == "" {
						list = "none yet"
					}
					fmt.Fprintf(a.stdout, "%s is partitioned: copied through it into the target's partitions (source partitions: %s)\n", tn, list)
				}
			}
			if len(cls.Problems) > 0 {
				return cls.Problems
			}
			if n := len(cls.Unclassified()); n > 0 {
				fmt.Fprintf(a.stdout, "%d column%s unclassified: add a rule for each to %s\n", n, pluralS(n), rules.File)
				return findings()
			}
			fmt.Fprintln(a.stdout, "every column has a rule")
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source environment")
	cmd.Flags().StringVar(&to, "to", "", "target environment")
	cmd.Flags().StringVar(&tables, "tables", "", "copy only these tables (comma-separated)")
	return cmd
}

func (a *app) dataCopyCommand() *cobra.Command {
	var from, to, tables, progress string
	var atomic, yes bool
	var workers int
	var r remote
	cmd := &cobra.Command{
		Use:   "copy --from E1 --to E2 [--tables a,b] [--atomic] [--progress bar|json|none] [--yes] [--server [URL]]",
		Short: "Stream tables from one environment's database to another's, transforming each column",
		Long: `copy refuses (exit 2, every problem listed, nothing written) when a column has no rule and
the target's data class is lower than the source's, when the target is live, when both are
the same database, or when the target's tables do not fit. Otherwise it reads every table
under one snapshot with binary COPY, transforms each column by its rule (keyed by the
rules' key, a secret of the target) and loads each table in its own transaction. With
--atomic it loads shadow copies of the tables in a schema of their own, validates them and
swaps them in with one short transaction: readers see the old rows until then, and an
interruption leaves the target as it was; a shadow schema left by a killed --atomic copy
is dropped by the next copy, which says so. Large tables with an integer key are read in
key ranges by --workers readers. Partitioned tables are copied through their parent.
Sequences are reset and foreign keys checked.
With --server the copy is recorded on the server's audit log (data.copy: from, to, tables,
rows, the rules' digest — never a value) before it writes and when it ends; a refusal
there stops it before it writes.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("data copy: needs --from and --to")
			}
			switch progress {
			case "bar", "json", "none":
			default:
				return fmt.Errorf("data copy: --progress %q is not one of bar, json, none", progress)
			}
			s, err := a.dataLoad(from, to)
			if err != nil {
				return err
			}
			var errs diag.List
			rules, err := a.readRules(s)
			appendErr(&errs, err)
			src, _, err := a.endpoint(s, from)
			appendErr(&errs, err)
			dst, secrets, err := a.endpoint(s, to)
			appendErr(&errs, err)
			var key string
			if rules != nil {
				if key = secrets[rules.Key].Value; key == "" {
					key = a.getenv(rules.Key)
				}
				if key == "" {
					errs = append(errs, diag.Errorf(rules.KeyPos, "key %s: no secret of %s and no variable of that name is set: it keys the transformers", rules.Key, to))
				}
			}
			if len(errs) > 0 {
				// with what can be told without the databases: a live target
				return append(errs, data.CheckCopy(&data.Classification{}, nil, nil, src, dst, rules)...)
			}
			opts := data.CopyOptions{Tables: splitTables(tables), Atomic: atomic, Key: []byte(key), Workers: workers}
			opts.Progress = a.progressPrinter(progress)
			opts.Notice = func(msg string) { fmt.Fprintln(a.stderr, "envplane: "+msg) }
			if !yes && a.stdinTerminal() {
				opts.Confirm = a.confirmCopy
			}
			var rec *dataRecorder
			if r.server != "" {
				confirm := opts.Confirm
				opts.Confirm = func(j *data.CopyJob) error {
					if confirm != nil {
						if err := confirm(j); err != nil {
							return err
						}
					}
					rec = a.dataRecorder(&r, to, envapp.DataOperation{Kind: "copy", From: from, Tables: j.Class.Tables,
						Atomic: atomic, Digest: fileDigest(s.l.dir, rules.File)})
					return rec.record(a.ctx, "start")
				}
			}
			job, err := data.PrepareCopy(a.ctx, src, dst, rules, opts)
			if err != nil {
				return err
			}
			defer job.Close()
			rep, err := job.Run(a.ctx)
			if f, ok := a.stderr.(*os.File); ok && progress == "bar" && term.IsTerminal(int(f.Fd())) {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			if rec != nil {
				err = rec.finish(a.ctx, err, rep.Rows, rep.Copied)
			}
			if err != nil {
				if a.ctx.Err() != nil {
					err = errors.Join(err, context.Canceled)
				}
				return copyFailed(rep, atomic, err)
			}
			var total int64
			for _, n := range rep.Rows {
				total += n
			}
			fmt.Fprintf(a.stdout, "copied %d table%s (%d rows) from %s to %s\n", len(rep.Copied), pluralS(len(rep.Copied)), total, from, to)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source environment")
	cmd.Flags().StringVar(&to, "to", "", "target environment")
	cmd.Flags().StringVar(&tables, "tables", "", "copy only these tables (comma-separated)")
	cmd.Flags().BoolVar(&atomic, "atomic", false, "load into a shadow schema swapped in at the end: all or nothing")
	cmd.Flags().StringVar(&progress, "progress", "bar", "progress per table: bar, json (one JSON object a line on stdout) or none")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation on a terminal")
	cmd.Flags().IntVar(&workers, "workers", 4, "tables copied at once, and readers of one large table")
	dataServerFlags(cmd, &r)
	return cmd
}

// copyFailed says what a failed copy left behind.
func copyFailed(rep *data.Report, atomic bool, err error) error {
	var ref *data.Refusal
	if errors.As(err, &ref) || rep == nil {
		return err
	}
	var state string
	switch {
	case errors.Is(err, errConfirm):
		return err
	case atomic:
		state = "the target is as it was (the shadow tables were dropped)"
	case len(rep.Copied) == 0:
		state = "no table was changed"
	default:
		state = "copied completely: " + strings.Join(rep.Copied, ", ")
		if len(rep.Untouched) > 0 {
			state += "; left as they were: " + strings.Join(rep.Untouched, ", ")
		}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("data copy interrupted; %s", state)
	}
	return fmt.Errorf("data copy failed: %w\n%s", err, state)
}

func (a *app) stdinTerminal() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var errConfirm = errors.New("data copy: not confirmed; nothing was written")

func (a *app) confirmCopy(j *data.CopyJob) error {
	fmt.Fprintf(a.stderr, "copy %d table%s from %s (%s) into %s (%s), replacing their rows: %s\nType yes to go on: ",
		len(j.Class.Tables), pluralS(len(j.Class.Tables)), j.From.Env, j.From.Class, j.To.Env, j.To.Class, strings.Join(j.Class.Tables, ", "))
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errConfirm
	}
	return nil
}

func (a *app) progressPrinter(mode string) func(data.Progress) {
	switch mode {
	case "json":
		enc := json.NewEncoder(a.stdout)
		return func(p data.Progress) { _ = enc.Encode(p) }
	case "bar":
		if f, ok := a.stderr.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
			// not a terminal: one line per finished table, no redrawing
			return func(p data.Progress) {
				if p.Done {
					fmt.Fprintf(a.stderr, "%s: %d rows, %.0f rows/s\n", p.Table, p.Rows, p.RowsPerSec)
				}
			}
		}
		return func(p data.Progress) {
			if p.Done {
				fmt.Fprintf(a.stderr, "\r\033[K%-30s %10d rows %10.0f rows/s  done\n", p.Table, p.Rows, p.RowsPerSec)
				return
			}
			eta := ""
			if p.ETASeconds > 0 {
				eta = fmt.Sprintf("  %d%%  ETA %s", min(99, p.Rows*100/max(p.Estimated, 1)), time.Duration(p.ETASeconds)*time.Second)
			}
			fmt.Fprintf(a.stderr, "\r\033[K%-30s %10d rows %10.0f rows/s%s", p.Table, p.Rows, p.RowsPerSec, eta)
		}
	}
	return nil
}

func (a *app) dataSeedCommand() *cobra.Command {
	var env string
	var seed uint64
	var force bool
	var r remote
	cmd := &cobra.Command{
		Use:   "seed --env E [--seed N] [--force] [--server [URL]]",
		Short: "Fill an empty database with synthetic rows (data/seed.yaml)",
		Long: `seed fills the empty tables named in the seed spec with synthetic rows, parents first, in
one transaction. Columns the spec does not name get values from their name, type,
constraints and foreign keys; columns with defaults (serial, identity) keep them. The
same --seed gives the same rows. Only environments whose data class is synthetic are
seeded, unless --force; a live environment never is. With --server the seed is recorded on
the server's audit log (data.seed: tables, rows, the spec's digest) before it writes and
when it ends.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if env == "" {
				return errors.New("data seed: needs --env")
			}
			s, err := a.dataLoad(env)
			if err != nil {
				return err
			}
			e, _ := s.l.Workspace.Environment(env)
			var errs diag.List
			at := diag.Pos{File: workspace.FileName}
			switch {
			case e.Data == domain.DataLive:
				errs = append(errs, diag.Errorf(at, "environment %s holds live data: envplane never seeds it", env))
			case e.Data != domain.DataSynthetic && !force:
				errs = append(errs, diag.Errorf(at, "environment %s holds %s data, not synthetic: seeding it needs --force", env, e.Data))
			}
			name := s.l.Workspace.Data.Seed
			if name == "" {
				name = "data/seed.yaml"
			}
			var spec *data.SeedSpec
			if b, err := os.ReadFile(filepath.Join(s.l.dir, name)); err != nil {
				errs = append(errs, diag.Errorf(diag.Pos{File: name}, "cannot read the seed spec (data.seed in %s): %v", workspace.FileName, errors.Unwrap(err)))
			} else if spec, err = data.ParseSeed(name, b); err != nil {
				appendErr(&errs, err)
			}
			ep, _, err := a.endpoint(s, env)
			appendErr(&errs, err)
			if len(errs) > 0 {
				return errs
			}
			n := int64(seed)
			rec := a.dataRecorder(&r, env, envapp.DataOperation{Kind: "seed", Tables: sortedTables(spec.Tables), Digest: fileDigest(s.l.dir, name), Seed: &n})
			if err := rec.record(a.ctx, "start"); err != nil {
				return err
			}
			rep, err := data.Seed(a.ctx, ep, spec, seed)
			if rec != nil {
				var rows map[string]int64
				if rep != nil {
					rows = map[string]int64{}
					for tn, c := range rep.Rows {
						rows[tn] = int64(c)
					}
				}
				err = rec.finish(a.ctx, err, rows, nil)
			}
			if err != nil {
				return err
			}
			total := 0
			for _, tn := range rep.Tables {
				total += rep.Rows[tn]
				fmt.Fprintf(a.stdout, "%-30s %8d rows\n", tn, rep.Rows[tn])
			}
			fmt.Fprintf(a.stdout, "seeded %d table%s (%d rows) of %s with seed %d\n", len(rep.Tables), pluralS(len(rep.Tables)), total, env, seed)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment to seed")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed: the same seed gives the same rows")
	cmd.Flags().BoolVar(&force, "force", false, "seed an environment whose data class is not synthetic (never live)")
	dataServerFlags(cmd, &r)
	return cmd
}
