package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

const flagOverrideColumns = `environment, flag_key, state, default_variant, targeting, variants_digest, updated_at, updated_by`

func (r reader) ListFlagOverrides(ctx context.Context, env string) ([]store.FlagOverride, error) {
	rows, err := r.q.Query(ctx, `SELECT `+flagOverrideColumns+` FROM flag_overrides
		WHERE $1 = '' OR environment = $1 ORDER BY environment, flag_key`, env)
	if err != nil {
		return nil, mapErr(err, "postgres: list flag overrides")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.FlagOverride, error) {
		var o store.FlagOverride
		var targeting *string
		var at time.Time
		err := row.Scan(&o.Environment, &o.Key, &o.State, &o.DefaultVariant, &targeting, &o.VariantsDigest, &at, &o.UpdatedBy)
		if targeting != nil {
			o.Targeting = json.RawMessage(*targeting)
		}
		o.UpdatedAt = at.UTC()
		return o, err
	})
	return out, mapErr(err, "postgres: list flag overrides")
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
	_, err := t.q.Exec(ctx, `INSERT INTO flag_overrides (`+flagOverrideColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (environment, flag_key) DO UPDATE SET state = excluded.state, default_variant = excluded.default_variant,
			targeting = excluded.targeting, variants_digest = excluded.variants_digest,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		o.Environment, o.Key, o.State, o.DefaultVariant, targeting, o.VariantsDigest, o.UpdatedAt, o.UpdatedBy)
	return mapErr(err, "postgres: store the override of flag %q in %q", o.Key, o.Environment)
}

func (t *tx) DeleteFlagOverride(ctx context.Context, env, key string) error {
	tag, err := t.q.Exec(ctx, `DELETE FROM flag_overrides WHERE environment = $1 AND flag_key = $2`, env, key)
	if err != nil {
		return mapErr(err, "postgres: delete the override of flag %q in %q", key, env)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "flag %q has no override in %q", key, env)
	}
	return nil
}
