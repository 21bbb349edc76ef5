package app

import (
	"context"
	"regexp"
	"sync"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Audit actions of `envplane data … --server`: the CLI copies or seeds
// where it runs and records the operation here, never a value.
const (
	ActionDataCopy domain.AuditAction = "data.copy"
	ActionDataSeed domain.AuditAction = "data.seed"
)

// DataOperation is a data copy into, or seed of, one environment as the
// CLI reports it: before it writes (phase start: the server's answer
// decides whether it may) and when it ends.
type DataOperation struct {
	Kind   string           `json:"kind"`           // copy | seed
	Phase  string           `json:"phase"`          // start | done | failed | interrupted
	From   string           `json:"from,omitempty"` // copy: the source environment
	Tables []string         `json:"tables"`
	Rows   map[string]int64 `json:"rows,omitempty"`   // per table, when it ended
	Copied []string         `json:"copied,omitempty"` // tables complete, when it ended
	Atomic bool             `json:"atomic,omitempty"`
	// Digest is sha256:<hex> of the rules (copy) or seed spec (seed) file.
	Digest string `json:"digest"`
	Seed   *int64 `json:"seed,omitempty"`
	// No error text: a database's error can quote a value.
}

var (
	digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })
	tableRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^\x00-\x1f]{1,127}$`) })
)

const maxDataTables = 10000

// RecordDataOperation writes the audit entry data.copy or data.seed of op
// into env, which must exist and not hold live data; a copy's source must
// exist too. Editors and admins of env may.
func (a *App) RecordDataOperation(ctx context.Context, p *auth.Principal, env string, op DataOperation) error {
	if err := p.Can(auth.RecordData, env); err != nil {
		return err
	}
	action := ActionDataCopy
	switch op.Kind {
	case "copy":
		if op.From == "" {
			return errs.Field("from", "required for a copy: the source environment")
		}
		if op.From == env {
			return errs.Field("from", "a copy's source is not its target")
		}
	case "seed":
		action = ActionDataSeed
		if op.From != "" || op.Atomic {
			return errs.Field("kind", "a seed has no from and no atomic")
		}
	default:
		return errs.Field("kind", "one of copy, seed")
	}
	switch op.Phase {
	case "start", "done", "failed", "interrupted":
	default:
		return errs.Field("phase", "one of start, done, failed, interrupted")
	}
	if !digestRE().MatchString(op.Digest) {
		return errs.Field("digest", "sha256:<64 hex digits> of the rules or seed file")
	}
	if len(op.Tables) == 0 || len(op.Tables) > maxDataTables {
		return errs.Field("tables", "the tables, 1 to 10000")
	}
	tables := map[string]bool{}
	for _, t := range op.Tables {
		if !tableRE().MatchString(t) {
			return errs.Field("tables", "a table name is 1 to 127 printable characters")
		}
		tables[t] = true
	}
	for t, n := range op.Rows {
		if !tables[t] || n < 0 {
			return errs.Field("rows", "row counts of the listed tables, not negative")
		}
	}
	for _, t := range op.Copied {
		if !tables[t] {
			return errs.Field("copied", "tables of the listed ones")
		}
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		e, err := t.GetEnvironment(ctx, env)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		if err != nil {
			return err
		}
		if e.Data == domain.DataLive {
			return errs.E(errs.Conflict, "environment %q holds live data: envplane never copies into or seeds it", env)
		}
		details := map[string]any{"environment": env, "phase": op.Phase, "tables": op.Tables, "digest": op.Digest}
		if op.Kind == "copy" {
			if _, err := t.GetEnvironment(ctx, op.From); errs.Is(err, errs.NotFound) {
				return errs.Field("from", "unknown environment")
			} else if err != nil {
				return err
			}
			details["from"], details["to"], details["atomic"] = op.From, env, op.Atomic
		}
		if op.Rows != nil {
			details["rows"] = op.Rows
		}
		if op.Copied != nil {
			details["copied"] = op.Copied
		}
		if op.Seed != nil {
			details["seed"] = *op.Seed
		}
		return t.record(p.Actor(), action, env, details)
	})
}
