package app

import (
	"context"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/workspace"
)

// SetRelease makes release id current in env directly, which only an
// environment whose current definition has no promotion block allows. The
// environment takes the definition (position, protection, data class,
// promotion block) the release gives it, in the same transaction. Setting
// the release that is already current changes nothing and writes no audit
// entry.
func (a *App) SetRelease(ctx context.Context, p *auth.Principal, env, id string) (previous string, err error) {
	if err := p.Can(auth.SetRelease, env); err != nil {
		return "", err
	}
	if id == "" {
		return "", errs.Field("release", "required: the ID of the release to make current")
	}
	// The definition is read and parsed before the write transaction, which
	// then only checks and writes: its work does not grow with the release.
	// A release never changes once stored, so reading it outside is safe.
	// Its errors wait until the environment's own checks have spoken.
	def, defErr := a.definitionIn(ctx, id, env)
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		e, err := t.GetEnvironment(ctx, env)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		if err != nil {
			return err
		}
		if e.Promoted {
			return errs.E(errs.Conflict, "environment %q takes releases only through promotions: its workspace definition has a promotion block", env)
		}
		if defErr != nil {
			return defErr
		}
		if e.Release == id {
			previous = id
			return nil
		}
		def.Release, def.UpdatedAt = e.Release, t.at
		if !def.SameDefinition(e) {
			if err := t.UpsertEnvironment(ctx, def); err != nil {
				return err
			}
		}
		if previous, err = t.SetRelease(ctx, env, id, p.Actor(), t.at); err != nil {
			return err
		}
		details := map[string]any{"environment": env, "release": id, "previous": previous}
		if !def.SameDefinition(e) {
			details["definition"] = map[string]any{"protection": def.Protection, "data": def.Data, "promoted": def.Promoted, "position": def.Position, "gates": def.Gates}
		}
		if err := t.record(p.Actor(), domain.ActionSetRelease, env, details); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventEnvironment, Environment: env, ID: id})
		if err := a.staleFlagChanges(ctx, t, env, id); err != nil {
			return err
		}
		return a.autoPromote(ctx, t, env, id)
	})
	return previous, err
}

// definitionIn is env as release id defines it, from the release's
// envplane.yaml alone; a release whose envplane.yaml does not know env
// cannot be current there.
func (a *App) definitionIn(ctx context.Context, id, env string) (domain.Environment, error) {
	data, err := a.st.GetReleaseFile(ctx, id, workspace.FileName)
	if errs.Is(err, errs.NotFound) {
		return domain.Environment{}, errs.E(errs.NotFound, "unknown release %q", id)
	}
	if err != nil {
		return domain.Environment{}, err
	}
	ws, err := workspace.Load(release.FS(map[string][]byte{workspace.FileName: data}))
	if err != nil {
		return domain.Environment{}, errs.Wrap(errs.Conflict, err, "release %s does not load", id)
	}
	for i, e := range ws.Environments {
		if e.Name == env {
			return definition(ws, i), nil
		}
	}
	return domain.Environment{}, &errs.Error{Kind: errs.Invalid, Message: "the release does not define this environment",
		Fields: []errs.FieldError{{Field: "release", Message: "release " + id + " has no environment " + env + " in its envplane.yaml"}}}
}
