package app

import (
	"context"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// ClearFlagOverride removes the override of flag key in env, so that the
// flag is again as its release defines it: authorized as any flag write,
// audited (flag.override-clear, with what the override held), announced.
// NotFound when the flag has no override there.
func (a *App) ClearFlagOverride(ctx context.Context, p *auth.Principal, env, key string) error {
	if err := p.Can(auth.WriteFlags, env); err != nil {
		return err
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		e, err := t.GetEnvironment(ctx, env)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		if err != nil {
			return err
		}
		if e.Protection == domain.ProtectionRestricted {
			return errs.E(errs.Conflict, "environment %q is restricted: its flags change through approved change requests, not by removing an override", env)
		}
		all, err := t.ListFlagOverrides(ctx, env)
		if err != nil {
			return err
		}
		var held *domain.FlagOverride
		for i := range all {
			if all[i].Key == key {
				held = &all[i]
			}
		}
		if held == nil {
			return errs.E(errs.NotFound, "flag %q has no override in %q", key, env)
		}
		if err := t.DeleteFlagOverride(ctx, env, key); err != nil {
			return err
		}
		details := map[string]any{"environment": env, "flag": key}
		if held.State != nil {
			details["state"] = *held.State
		}
		if held.DefaultVariant != nil {
			details["defaultVariant"] = *held.DefaultVariant
		}
		if held.Targeting != nil {
			details["targeting"] = string(held.Targeting)
		}
		if err := t.record(p.Actor(), domain.ActionFlagOverrideClear, env+"/"+key, details); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventFlag, Environment: env, ID: key})
		return nil
	})
}
