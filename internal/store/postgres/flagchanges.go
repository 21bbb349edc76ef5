package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/promocol"
)

func (r reader) GetFlagChange(ctx context.Context, id string) (store.FlagChange, error) {
	var data string
	err := r.q.QueryRow(ctx, `SELECT data FROM flag_changes WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FlagChange{}, errs.Wrap(errs.NotFound, err, "flag change %q not found", id)
	}
	if err != nil {
		return store.FlagChange{}, mapErr(err, "postgres: read flag change %q", id)
	}
	c, err := promocol.DecodeFlagChange(data)
	if err != nil {
		return c, errs.Wrap(errs.Internal, err, "postgres: decode flag change %q", id)
	}
	return c, nil
}

func (r reader) ListFlagChanges(ctx context.Context, f domain.FlagChangeFilter) ([]store.FlagChange, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Environment != "" {
		where = append(where, "environment = "+arg(f.Environment))
	}
	if f.Key != "" {
		where = append(where, "flag_key = "+arg(f.Key))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(string(f.State)))
	}
	q := `SELECT data FROM flag_changes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ` + arg(sqlLimit(f.Limit))
	rows, err := r.q.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err, "postgres: list flag changes")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.FlagChange, error) {
		var data string
		if err := row.Scan(&data); err != nil {
			return store.FlagChange{}, err
		}
		c, err := promocol.DecodeFlagChange(data)
		if err != nil {
			return c, errs.Wrap(errs.Internal, err, "postgres: decode flag change")
		}
		return c, nil
	})
	return out, mapErr(err, "postgres: list flag changes")
}

func (t *tx) InsertFlagChange(ctx context.Context, c store.FlagChange) error {
	data, err := promocol.EncodeFlagChange(c)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "flag change %q", c.ID)
	}
	if err := t.KnownEnvironment(ctx, c.Environment); err != nil {
		return err
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO flag_changes (id, environment, flag_key, state, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.ID, c.Environment, c.Key, string(c.State), c.CreatedAt, c.UpdatedAt, data)
	if err != nil {
		return mapErr(err, "postgres: insert flag change %q", c.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "a flag change with ID %q already exists", c.ID)
	}
	return nil
}

func (t *tx) UpdateFlagChange(ctx context.Context, c store.FlagChange) error {
	data, err := promocol.EncodeFlagChange(c)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "flag change %q", c.ID)
	}
	tag, err := t.q.Exec(ctx, `UPDATE flag_changes SET state = $1, updated_at = $2, data = $3 WHERE id = $4`,
		string(c.State), c.UpdatedAt, data, c.ID)
	if err != nil {
		return mapErr(err, "postgres: update flag change %q", c.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "flag change %q not found", c.ID)
	}
	return nil
}
