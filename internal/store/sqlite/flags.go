package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

const flagOverrideColumns = `environment, flag_key, state, default_variant, targeting, variants_digest, updated_at, updated_by`

func (r reader) ListFlagOverrides(ctx context.Context, env string) ([]store.FlagOverride, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+flagOverrideColumns+` FROM flag_overrides
		WHERE ? = '' OR environment = ? ORDER BY environment, flag_key`, env, env)
	if err != nil {
		return nil, mapErr(err, "sqlite: list flag overrides")
	}
	defer rows.Close()
	var out []store.FlagOverride
	for rows.Next() {
		var o store.FlagOverride
		var state, dv, targeting sql.NullString
		var at int64
		if err := rows.Scan(&o.Environment, &o.Key, &state, &dv, &targeting, &o.VariantsDigest, &at, &o.UpdatedBy); err != nil {
			return nil, mapErr(err, "sqlite: list flag overrides")
		}
		if state.Valid {
			o.State = &state.String
		}
		if dv.Valid {
			o.DefaultVariant = &dv.String
		}
		if targeting.Valid {
			o.Targeting = json.RawMessage(targeting.String)
		}
		o.UpdatedAt = fromMicros(at)
		out = append(out, o)
	}
	return out, mapErr(rows.Err(), "sqlite: list flag overrides")
}

func (t *tx) PutFlagOverride(ctx context.Context, o store.FlagOverride) error {
	if err := t.KnownEnvironment(ctx, o.Environment); err != nil {
		return err
	}
	var targeting *string
	if o.Targeting != nil {
		s := string(o.Targeting)
		targeting = &s
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO flag_overrides (`+flagOverrideColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (environment, flag_key) DO UPDATE SET state = excluded.state, default_variant = excluded.default_variant,
			targeting = excluded.targeting, variants_digest = excluded.variants_digest,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		o.Environment, o.Key, o.State, o.DefaultVariant, targeting, o.VariantsDigest, o.UpdatedAt.UnixMicro(), o.UpdatedBy)
	return mapErr(err, "sqlite: store the override of flag %q in %q", o.Key, o.Environment)
}

func (t *tx) DeleteFlagOverride(ctx context.Context, env, key string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM flag_overrides WHERE environment = ? AND flag_key = ?`, env, key)
	if err != nil {
		return mapErr(err, "sqlite: delete the override of flag %q in %q", key, env)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.NotFound, "flag %q has no override in %q", key, env)
	}
	return nil
}
