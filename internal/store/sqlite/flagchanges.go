package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/promocol"
)

func (r reader) GetFlagChange(ctx context.Context, id string) (store.FlagChange, error) {
	var data string
	err := r.q.QueryRowContext(ctx, `SELECT data FROM flag_changes WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.FlagChange{}, errs.Wrap(errs.NotFound, err, "flag change %q not found", id)
	}
	if err != nil {
		return store.FlagChange{}, mapErr(err, "sqlite: read flag change %q", id)
	}
	c, err := promocol.DecodeFlagChange(data)
	return c, mapErr(err, "sqlite: decode flag change %q", id)
}

func (r reader) ListFlagChanges(ctx context.Context, f domain.FlagChangeFilter) ([]store.FlagChange, error) {
	var where []string
	var args []any
	if f.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Environment)
	}
	if f.Key != "" {
		where, args = append(where, "flag_key = ?"), append(args, f.Key)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	q := `SELECT data FROM flag_changes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := r.q.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, mapErr(err, "sqlite: list flag changes")
	}
	defer rows.Close()
	var out []store.FlagChange
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, mapErr(err, "sqlite: list flag changes")
		}
		c, err := promocol.DecodeFlagChange(data)
		if err != nil {
			return nil, mapErr(err, "sqlite: decode flag change")
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err(), "sqlite: list flag changes")
}

func (t *tx) InsertFlagChange(ctx context.Context, c store.FlagChange) error {
	data, err := promocol.EncodeFlagChange(c)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "flag change %q", c.ID)
	}
	if err := t.KnownEnvironment(ctx, c.Environment); err != nil {
		return err
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO flag_changes (id, seq, environment, flag_key, state, created_at, updated_at, data)
		VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM flag_changes), ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Environment, c.Key, string(c.State), c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro(), data)
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, "a flag change with ID %q already exists", c.ID)
	}
	return mapErr(err, "sqlite: insert flag change %q", c.ID)
}

func (t *tx) UpdateFlagChange(ctx context.Context, c store.FlagChange) error {
	data, err := promocol.EncodeFlagChange(c)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "flag change %q", c.ID)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE flag_changes SET state = ?, updated_at = ?, data = ? WHERE id = ?`,
		string(c.State), c.UpdatedAt.UnixMicro(), data, c.ID)
	if err != nil {
		return mapErr(err, "sqlite: update flag change %q", c.ID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err, "sqlite: update flag change %q", c.ID)
	} else if n == 0 {
		return errs.E(errs.NotFound, "flag change %q not found", c.ID)
	}
	return nil
}
