package app

import (
	"context"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/resolve"
)

// ReleaseDiff asks what changes in an environment's config (of one
// service, or its own) when release B replaces release A.
type ReleaseDiff struct {
	A, B        string // release IDs
	Environment string // whose definition and server-side secrets resolve both
	Service     string
	// Reveal shows sensitive values, for principals who may reveal config
	// in Environment; audited when the answer shows any.
	Reveal bool
	// Via names the surface in the reveal's audit entry ("diff" when empty).
	Via string
}

// DiffReleases is the diff of release A and release B, each resolved for
// the environment as the server resolves its current release (the
// release's files, its secrets file for the environment when the server's
// identity opens it, then the environment's server-side secrets), by the
// engine of `envplane diff`: a key sensitive in either release is hidden
// unless revealed. Every problem of the request is reported at once; a
// release whose config does not resolve there is a Conflict naming it.
func (a *App) DiffReleases(ctx context.Context, p *auth.Principal, req ReleaseDiff) ([]report.Change, error) {
	if err := p.Can(auth.ReadReleases, ""); err != nil {
		return nil, err
	}
	if err := p.Can(auth.ReadConfig, req.Environment); err != nil {
		return nil, err
	}
	if req.Reveal {
		if err := p.Can(auth.RevealConfig, req.Environment); err != nil {
			return nil, err
		}
	}
	var fe errs.FieldErrors
	if req.A == "" {
		fe.Add("a", "required: the release to compare from")
	}
	if req.B == "" {
		fe.Add("b", "required: the release to compare to")
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	serverSecrets, err := a.SecretValues(ctx, req.Environment)
	if err != nil {
		return nil, err
	}
	trees := [2]*resolve.Result{}
	opts := [2]render.Options{}
	for i, id := range []string{req.A, req.B} {
		field := []string{"a", "b"}[i]
		c, fileSecrets, err := a.loadForDiff(ctx, id, req.Environment)
		if errs.Is(err, errs.NotFound) {
			fe.Add(field, "unknown release %q", id)
			continue
		}
		if err != nil {
			return nil, err
		}
		// As the server resolves it: the release's secrets file for the
		// environment (when the server's identity opens it), then the
		// server-side secrets.
		if ferr := ReleaseSecretsError(id, req.Environment, fileSecrets); ferr != nil {
			fe.Add(field, "%s", msgOf(ferr))
			continue
		}
		secrets := release.Merge(fileSecrets.Values, serverSecrets)
		if p := c.Check(req.Environment, req.Service); len(p) > 0 {
			for _, pr := range p {
				fe.Add(field, "release %s: %s", id, pr.Message)
			}
			continue
		}
		res := c.Resolver.Resolve(resolve.Request{Env: req.Environment, Service: req.Service, Secrets: secrets})
		if p := config.Blocking(res); len(p) > 0 {
			fe.Add(field, "the config of %s does not resolve under release %s: %s", req.Environment, id, p[0].Error())
			continue
		}
		trees[i], opts[i] = res, c.RenderOptions(req.Environment, req.Service, false)
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	sa, sb := opts[0].Sensitive, opts[1].Sensitive
	o := render.Options{Reveal: req.Reveal, Sensitive: func(path string) bool { return sa(path) || sb(path) }}
	changes := report.Diff(trees[0].Tree, trees[1].Tree, o)
	if req.Reveal {
		var shown []string
		for _, c := range changes {
			if c.Secret {
				shown = append(shown, c.Path)
			}
		}
		via := req.Via
		if via == "" {
			via = "diff"
		}
		if err := a.RecordReveal(ctx, p, Reveal{Environment: req.Environment, Via: via, Service: req.Service, Keys: shown}); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// loadForDiff reads and compiles a stored release and opens its secrets
// file for env, in one of the validation slots uploads use, taken without
// waiting: a diff is a reader's request and must not queue uploads.
func (a *App) loadForDiff(ctx context.Context, id, env string) (*config.Compiled, *release.EnvSecrets, error) {
	r, err := a.st.GetRelease(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	select {
	case a.validating <- struct{}{}:
	default:
		return nil, nil, errs.E(errs.Unavailable, "the server is busy loading releases: try the diff again in a moment")
	}
	defer func() { <-a.validating }()
	c, err := release.Load(r.Files)
	if err != nil {
		_, msg, _ := errs.Public(err)
		return nil, nil, errs.E(errs.Conflict, "release %s does not load: %s", id, msg)
	}
	return c, release.OpenSecrets(id, c.Workspace, a.ids, a.log).For(env), nil
}
