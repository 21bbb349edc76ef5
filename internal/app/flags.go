package app

import (
	"context"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// SetFlagOverride stores o, the override of one flag in one environment,
// replacing the one before; in a restricted environment it refuses (flag
// changes there are change requests, flagchanges.go). The caller (the server, which holds the
// compiled flags) has checked it against the flag; here it is authorized,
// audited and announced.
func (a *App) SetFlagOverride(ctx context.Context, p *auth.Principal, o domain.FlagOverride) error {
	if err := p.Can(auth.WriteFlags, o.Environment); err != nil {
		return err
	}
	if o.Key == "" || o.VariantsDigest == "" {
		return errs.E(errs.Internal, "flag override of %q without key or variants digest", o.Environment)
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		e, err := t.GetEnvironment(ctx, o.Environment)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", o.Environment)
		}
		if err != nil {
			return err
		}
		if e.Protection == domain.ProtectionRestricted {
			return errs.E(errs.Conflict, "environment %q is restricted: its flags change through approved change requests (RequestFlagChange)", o.Environment)
		}
		o.UpdatedAt, o.UpdatedBy = t.at, p.Actor()
		if err := t.PutFlagOverride(ctx, o); err != nil {
			return err
		}
		details := map[string]any{"environment": o.Environment, "flag": o.Key}
		if o.State != nil {
			details["state"] = *o.State
		}
		if o.DefaultVariant != nil {
			details["defaultVariant"] = *o.DefaultVariant
		}
		if o.Targeting != nil {
			details["targeting"] = string(o.Targeting)
		}
		if err := t.record(p.Actor(), domain.ActionFlagOverride, o.Environment+"/"+o.Key, details); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventFlag, Environment: o.Environment, ID: o.Key})
		return nil
	})
}

// DropFlagOverride removes the override of key in env because the current
// release changed the flag's variants (or no longer has the flag): reason
// says which. An override already gone (another replica dropped it) is no
// error and no audit entry.
func (a *App) DropFlagOverride(ctx context.Context, env, key, reason string) error {
	err := a.write(ctx, func(ctx context.Context, t *txn) error {
		if err := t.DeleteFlagOverride(ctx, env, key); err != nil {
			return err
		}
		if err := t.record(auth.System("envplane").Actor(), domain.ActionFlagOverrideDrop, env+"/"+key,
			map[string]any{"environment": env, "flag": key, "reason": reason}); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventFlag, Environment: env, ID: key})
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// FlagOverrides lists the overrides of env ("" for all), for the server's
// snapshot.
func (a *App) FlagOverrides(ctx context.Context, env string) ([]domain.FlagOverride, error) {
	return a.st.ListFlagOverrides(ctx, env)
}
