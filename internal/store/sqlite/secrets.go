package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/secretrules"
)

// latestVisible selects, for each secret of an environment, its newest
// version when that is not a deletion; the primary key (environment, name,
// version) makes the subquery an index lookup.
const latestVisible = `FROM secrets s WHERE s.environment = ? AND s.deleted = 0
	AND s.version = (SELECT max(version) FROM secrets WHERE environment = s.environment AND name = s.name)`

func (r reader) ListSecrets(ctx context.Context, env string) ([]store.SecretMeta, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT s.name, s.version, s.created_at, s.created_by `+latestVisible+` ORDER BY s.name`, env)
	if err != nil {
		return nil, mapErr(err, "sqlite: list secrets of %q", env)
	}
	defer rows.Close()
	var out []store.SecretMeta
	for rows.Next() {
		var m store.SecretMeta
		var at int64
		if err := rows.Scan(&m.Name, &m.Version, &at, &m.UpdatedBy); err != nil {
			return nil, mapErr(err, "sqlite: list secrets of %q", env)
		}
		m.UpdatedAt = fromMicros(at)
		out = append(out, m)
	}
	return out, mapErr(rows.Err(), "sqlite: list secrets of %q", env)
}

func scanSecret(row scanner) (store.SecretVersion, error) {
	var v store.SecretVersion
	var at int64
	err := row.Scan(&v.Environment, &v.Name, &v.Version, &v.Ciphertext, &at, &v.CreatedBy)
	v.CreatedAt = fromMicros(at)
	if v.Ciphertext == nil {
		v.Ciphertext = []byte{}
	}
	return v, err
}

const secretColumns = `s.environment, s.name, s.version, s.ciphertext, s.created_at, s.created_by`

func (r reader) LatestSecrets(ctx context.Context, env string) ([]store.SecretVersion, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+secretColumns+` `+latestVisible+` ORDER BY s.name`, env)
	if err != nil {
		return nil, mapErr(err, "sqlite: read secrets of %q", env)
	}
	defer rows.Close()
	var out []store.SecretVersion
	for rows.Next() {
		v, err := scanSecret(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: read secrets of %q", env)
		}
		out = append(out, v)
	}
	return out, mapErr(rows.Err(), "sqlite: read secrets of %q", env)
}

func (r reader) GetSecret(ctx context.Context, env, name string) (store.SecretVersion, error) {
	var deleted bool
	var v store.SecretVersion
	var at int64
	err := r.q.QueryRowContext(ctx, `SELECT `+secretColumns+`, s.deleted FROM secrets s
		WHERE s.environment = ? AND s.name = ? ORDER BY s.version DESC LIMIT 1`, env, name).
		Scan(&v.Environment, &v.Name, &v.Version, &v.Ciphertext, &at, &v.CreatedBy, &deleted)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted) {
		return store.SecretVersion{}, errs.E(errs.NotFound, "secret %q is not set in %q", name, env)
	}
	if err != nil {
		return store.SecretVersion{}, mapErr(err, "sqlite: read secret %q of %q", name, env)
	}
	v.CreatedAt = fromMicros(at)
	if v.Ciphertext == nil {
		v.Ciphertext = []byte{}
	}
	return v, nil
}

func (r reader) LatestSecretVersion(ctx context.Context, env, name string) (int, error) {
	var n int
	err := r.q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM secrets WHERE environment = ? AND name = ?`, env, name).Scan(&n)
	return n, mapErr(err, "sqlite: read secret %q of %q", name, env)
}

const envKeyColumns = `environment, wrapped, master_key_id, created_at`

func scanEnvKey(row scanner) (store.EnvKey, error) {
	var k store.EnvKey
	var at int64
	err := row.Scan(&k.Environment, &k.Wrapped, &k.MasterKeyID, &at)
	k.CreatedAt = fromMicros(at)
	return k, err
}

func (r reader) GetEnvKey(ctx context.Context, env string) (store.EnvKey, error) {
	k, err := scanEnvKey(r.q.QueryRowContext(ctx, `SELECT `+envKeyColumns+` FROM env_keys WHERE environment = ?`, env))
	if errors.Is(err, sql.ErrNoRows) {
		return k, errs.Wrap(errs.NotFound, err, "environment %q has no data key", env)
	}
	return k, mapErr(err, "sqlite: read the data key of %q", env)
}

func (r reader) ListEnvKeys(ctx context.Context) ([]store.EnvKey, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+envKeyColumns+` FROM env_keys ORDER BY environment`)
	if err != nil {
		return nil, mapErr(err, "sqlite: list data keys")
	}
	defer rows.Close()
	var out []store.EnvKey
	for rows.Next() {
		k, err := scanEnvKey(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: list data keys")
		}
		out = append(out, k)
	}
	return out, mapErr(rows.Err(), "sqlite: list data keys")
}

// KnownEnvironment turns a missing environment into NotFound before a write
// that a foreign key would otherwise refuse with an opaque error.
func (t *tx) KnownEnvironment(ctx context.Context, env string) error {
	var one int
	err := t.q.QueryRowContext(ctx, `SELECT 1 FROM environments WHERE name = ?`, env).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.Wrap(errs.NotFound, err, "environment %q not found", env)
	}
	return mapErr(err, "sqlite: read environment %q", env)
}

func (t *tx) PutSecret(ctx context.Context, v store.SecretVersion) error {
	return secretrules.Put(ctx, t, v)
}

func (t *tx) DeleteSecret(ctx context.Context, env, name, actor string, at time.Time) error {
	return secretrules.Delete(ctx, t, env, name, actor, at)
}

// InsertSecret stores one version row for secretrules, which checked it.
func (t *tx) InsertSecret(ctx context.Context, v store.SecretVersion, deleted bool) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO secrets (environment, name, version, ciphertext, created_at, created_by, deleted)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, v.Environment, v.Name, v.Version, v.Ciphertext, v.CreatedAt.UnixMicro(), v.CreatedBy, deleted)
	return mapErr(err, "sqlite: store secret %q of %q", v.Name, v.Environment)
}

func (t *tx) PutEnvKey(ctx context.Context, k store.EnvKey) error {
	if err := t.KnownEnvironment(ctx, k.Environment); err != nil {
		return err
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO env_keys (`+envKeyColumns+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (environment) DO UPDATE SET wrapped = excluded.wrapped,
			master_key_id = excluded.master_key_id, created_at = excluded.created_at`,
		k.Environment, k.Wrapped, k.MasterKeyID, k.CreatedAt.UnixMicro())
	return mapErr(err, "sqlite: store the data key of %q", k.Environment)
}
