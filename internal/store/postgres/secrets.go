package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/secretrules"
)

// latestVisible selects, for each secret of an environment, its newest
// version when that is not a deletion; the primary key (environment, name,
// version) makes the subquery an index lookup.
const latestVisible = `FROM secrets s WHERE s.environment = $1 AND NOT s.deleted
	AND s.version = (SELECT max(version) FROM secrets WHERE environment = s.environment AND name = s.name)`

func (r reader) ListSecrets(ctx context.Context, env string) ([]store.SecretMeta, error) {
	rows, err := r.q.Query(ctx, `SELECT s.name, s.version, s.created_at, s.created_by `+latestVisible+` ORDER BY s.name`, env)
	if err != nil {
		return nil, mapErr(err, "postgres: list secrets of %q", env)
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.SecretMeta, error) {
		var m store.SecretMeta
		err := row.Scan(&m.Name, &m.Version, &m.UpdatedAt, &m.UpdatedBy)
		m.UpdatedAt = m.UpdatedAt.UTC()
		return m, err
	})
	return out, mapErr(err, "postgres: list secrets of %q", env)
}

const secretColumns = `s.environment, s.name, s.version, s.ciphertext, s.created_at, s.created_by`

func scanSecret(row pgx.Row, extra ...any) (store.SecretVersion, error) {
	var v store.SecretVersion
	err := row.Scan(append([]any{&v.Environment, &v.Name, &v.Version, &v.Ciphertext, &v.CreatedAt, &v.CreatedBy}, extra...)...)
	v.CreatedAt = v.CreatedAt.UTC()
	if v.Ciphertext == nil {
		v.Ciphertext = []byte{}
	}
	return v, err
}

func (r reader) LatestSecrets(ctx context.Context, env string) ([]store.SecretVersion, error) {
	rows, err := r.q.Query(ctx, `SELECT `+secretColumns+` `+latestVisible+` ORDER BY s.name`, env)
	if err != nil {
		return nil, mapErr(err, "postgres: read secrets of %q", env)
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.SecretVersion, error) { return scanSecret(row) })
	return out, mapErr(err, "postgres: read secrets of %q", env)
}

func (r reader) GetSecret(ctx context.Context, env, name string) (store.SecretVersion, error) {
	var deleted bool
	v, err := scanSecret(r.q.QueryRow(ctx, `SELECT `+secretColumns+`, s.deleted FROM secrets s
		WHERE s.environment = $1 AND s.name = $2 ORDER BY s.version DESC LIMIT 1`, env, name), &deleted)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && deleted) {
		return store.SecretVersion{}, errs.E(errs.NotFound, "secret %q is not set in %q", name, env)
	}
	if err != nil {
		return store.SecretVersion{}, mapErr(err, "postgres: read secret %q of %q", name, env)
	}
	return v, nil
}

func (r reader) LatestSecretVersion(ctx context.Context, env, name string) (int, error) {
	var n int
	err := r.q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM secrets WHERE environment = $1 AND name = $2`, env, name).Scan(&n)
	return n, mapErr(err, "postgres: read secret %q of %q", name, env)
}

const envKeyColumns = `environment, wrapped, master_key_id, created_at`

func scanEnvKey(row pgx.Row) (store.EnvKey, error) {
	var k store.EnvKey
	err := row.Scan(&k.Environment, &k.Wrapped, &k.MasterKeyID, &k.CreatedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	return k, err
}

func (r reader) GetEnvKey(ctx context.Context, env string) (store.EnvKey, error) {
	k, err := scanEnvKey(r.q.QueryRow(ctx, `SELECT `+envKeyColumns+` FROM env_keys WHERE environment = $1`, env))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, errs.Wrap(errs.NotFound, err, "environment %q has no data key", env)
	}
	return k, mapErr(err, "postgres: read the data key of %q", env)
}

func (r reader) ListEnvKeys(ctx context.Context) ([]store.EnvKey, error) {
	rows, err := r.q.Query(ctx, `SELECT `+envKeyColumns+` FROM env_keys ORDER BY environment`)
	if err != nil {
		return nil, mapErr(err, "postgres: list data keys")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.EnvKey, error) { return scanEnvKey(row) })
	return out, mapErr(err, "postgres: list data keys")
}

// KnownEnvironment checks first: a foreign-key violation would abort the
// whole transaction.
func (t *tx) KnownEnvironment(ctx context.Context, env string) error {
	var exists bool
	if err := t.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM environments WHERE name = $1)`, env).Scan(&exists); err != nil {
		return mapErr(err, "postgres: read environment %q", env)
	}
	if !exists {
		return errs.E(errs.NotFound, "environment %q not found", env)
	}
	return nil
}

func (t *tx) PutSecret(ctx context.Context, v store.SecretVersion) error {
	return secretrules.Put(ctx, t, v)
}

func (t *tx) DeleteSecret(ctx context.Context, env, name, actor string, at time.Time) error {
	return secretrules.Delete(ctx, t, env, name, actor, at)
}

// InsertSecret stores one version row for secretrules, which checked it.
func (t *tx) InsertSecret(ctx context.Context, v store.SecretVersion, deleted bool) error {
	_, err := t.q.Exec(ctx, `INSERT INTO secrets (environment, name, version, ciphertext, created_at, created_by, deleted)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, v.Environment, v.Name, v.Version, v.Ciphertext, v.CreatedAt, v.CreatedBy, deleted)
	return mapErr(err, "postgres: store secret %q of %q", v.Name, v.Environment)
}

func (t *tx) PutEnvKey(ctx context.Context, k store.EnvKey) error {
	if err := t.KnownEnvironment(ctx, k.Environment); err != nil {
		return err
	}
	_, err := t.q.Exec(ctx, `INSERT INTO env_keys (`+envKeyColumns+`) VALUES ($1, $2, $3, $4)
		ON CONFLICT (environment) DO UPDATE SET wrapped = excluded.wrapped,
			master_key_id = excluded.master_key_id, created_at = excluded.created_at`,
		k.Environment, k.Wrapped, k.MasterKeyID, k.CreatedAt)
	return mapErr(err, "postgres: store the data key of %q", k.Environment)
}
