// Package secretrules holds the rules of secret versions that both backends
// share, above their SQL: a new version is the latest plus one, deletions
// included; a deletion is a tombstone version of a secret that is set; an
// unknown environment is NotFound. Backends only find and store rows.
package secretrules

import (
	"context"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// Rows is what a backend's write transaction offers the rules.
type Rows interface {
	// KnownEnvironment is NotFound for an environment that does not exist.
	KnownEnvironment(ctx context.Context, env string) error
	LatestSecretVersion(ctx context.Context, env, name string) (int, error)
	GetSecret(ctx context.Context, env, name string) (store.SecretVersion, error)
	// InsertSecret stores one version row as given.
	InsertSecret(ctx context.Context, v store.SecretVersion, deleted bool) error
}

// Put is store.Tx.PutSecret.
func Put(ctx context.Context, r Rows, v store.SecretVersion) error {
	return insert(ctx, r, v, false)
}

// Delete is store.Tx.DeleteSecret: a tombstone one version after the
// latest, for a secret that is set.
func Delete(ctx context.Context, r Rows, env, name, actor string, at time.Time) error {
	cur, err := r.GetSecret(ctx, env, name)
	if err != nil {
		return err
	}
	return insert(ctx, r, store.SecretVersion{Environment: env, Name: name, Version: cur.Version + 1, CreatedAt: at, CreatedBy: actor}, true)
}

func insert(ctx context.Context, r Rows, v store.SecretVersion, deleted bool) error {
	if err := r.KnownEnvironment(ctx, v.Environment); err != nil {
		return err
	}
	latest, err := r.LatestSecretVersion(ctx, v.Environment, v.Name)
	if err != nil {
		return err
	}
	if v.Version != latest+1 {
		return errs.E(errs.Conflict, "secret %q of %q: version %d is out of sequence: the next version is %d", v.Name, v.Environment, v.Version, latest+1)
	}
	if v.Ciphertext == nil {
		v.Ciphertext = []byte{} // NULL would break NOT NULL
	}
	return r.InsertSecret(ctx, v, deleted)
}
