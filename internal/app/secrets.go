package app

import (
	"context"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/vault"
)

func (a *App) secretsOn() error {
	if a.vault == nil {
		return errs.E(errs.Unavailable, "server-side secrets are off: this server was started without a master key")
	}
	return nil
}

// PutSecret stores a new version of env's secret name. expect, when set, is
// the version the caller last saw (0: must not exist yet): check-and-set.
func (a *App) PutSecret(ctx context.Context, p *auth.Principal, env, name, value string, expect *int) (m domain.SecretMeta, err error) {
	if err := p.Can(auth.WriteSecrets, env); err != nil {
		return m, err
	}
	if err := a.secretsOn(); err != nil {
		return m, err
	}
	if expect != nil && *expect < 0 {
		return m, errs.Field("version", "must be the version last read (1 or more), or 0 for a secret that must not exist yet")
	}
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		var err error
		if m, err = a.vault.Put(ctx, t.Tx, env, name, value, expect, p.Actor(), t.at); err != nil {
			return err
		}
		if err := t.record(p.Actor(), domain.ActionSecretSet, env+"/"+name, map[string]any{"environment": env, "name": name, "version": m.Version}); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventSecret, Environment: env, ID: name})
		return nil
	})
	return m, err
}

// DeleteSecret records the deletion of env's secret name, keeping its
// history; expect makes it a check-and-set.
func (a *App) DeleteSecret(ctx context.Context, p *auth.Principal, env, name string, expect *int) error {
	if err := p.Can(auth.WriteSecrets, env); err != nil {
		return err
	}
	if err := a.secretsOn(); err != nil {
		return err
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		tomb, err := a.vault.Delete(ctx, t.Tx, env, name, expect, p.Actor(), t.at)
		if err != nil {
			return err
		}
		if err := t.record(p.Actor(), domain.ActionSecretDelete, env+"/"+name, map[string]any{"environment": env, "name": name, "version": tomb}); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventSecret, Environment: env, ID: name})
		return nil
	})
}

// ListSecrets describes env's secrets, never their values.
func (a *App) ListSecrets(ctx context.Context, p *auth.Principal, env string) ([]domain.SecretMeta, error) {
	if err := p.Can(auth.ReadSecrets, env); err != nil {
		return nil, err
	}
	if err := a.secretsOn(); err != nil {
		return nil, err
	}
	return a.vault.List(ctx, a.st, env)
}

// SecretMeta describes one secret, never its value.
func (a *App) SecretMeta(ctx context.Context, p *auth.Principal, env, name string) (domain.SecretMeta, error) {
	if err := p.Can(auth.ReadSecrets, env); err != nil {
		return domain.SecretMeta{}, err
	}
	if err := a.secretsOn(); err != nil {
		return domain.SecretMeta{}, err
	}
	return a.vault.Meta(ctx, a.st, env, name)
}

// RevealSecret returns a secret's value to a token allowed to reveal it,
// audited in the same transaction that reads it: no audit entry, no value.
func (a *App) RevealSecret(ctx context.Context, p *auth.Principal, env, name string) (vault.Secret, error) {
	if err := p.Can(auth.RevealSecrets, env); err != nil {
		return vault.Secret{}, err
	}
	if err := a.secretsOn(); err != nil {
		return vault.Secret{}, err
	}
	var sec vault.Secret
	err := a.write(ctx, func(ctx context.Context, t *txn) error {
		var err error
		if sec, err = a.vault.Get(ctx, t.Tx, env, name); err != nil {
			return err
		}
		return t.record(p.Actor(), domain.ActionSecretReveal, env+"/"+name, map[string]any{"environment": env, "name": name, "version": sec.Version})
	})
	return sec, err
}

// SecretValues are env's server-side secrets for resolution (nil when
// secrets are off).
func (a *App) SecretValues(ctx context.Context, env string) (map[string]domain.Secret, error) {
	if a.vault == nil {
		return nil, nil
	}
	return a.vault.Values(ctx, a.st, env)
}

// VerifyMasterKey checks that the master key opens the stored data keys, so
// that a wrong key stops a start rather than every secret read.
func (a *App) VerifyMasterKey(ctx context.Context) error {
	if a.vault == nil {
		return nil
	}
	return a.vault.Verify(ctx, a.st)
}
