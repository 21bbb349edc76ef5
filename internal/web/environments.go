package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
)

// The environment page: one environment's resolved config per service
// (redacted as the matrix is, each value linking to its explain chain),
// its current release and the history of the releases set in it, and
// forms opening a promotion into it or a rollback, through the App.

// historySource is the read side the environment page needs beyond
// Source (*server.Server implements it).
type historySource interface {
	History(ctx context.Context, p *auth.Principal, env string, limit int) ([]domain.Assignment, error)
	Services(env string) []string
}

const historyRows = 50

type envValue struct {
	Key, Value, Source string
	Hidden             bool
}

type envData struct {
	base
	Env      domain.Environment
	From     string // the stage promotions into Env come from
	Release  *domain.Release
	Labels   []label
	History  []domain.Assignment
	Services []string
	Service  string
	// Values is Env's resolved config for Service; ConfigErr why there is
	// none; CanRead whether the user may read it at all.
	Values    []envValue
	ConfigErr string
	CanRead   bool
	CanSecret bool
	// CanPromote: the user may open promotions into Env, which takes its
	// releases through promotions; Candidate the release of From.
	CanPromote bool
	Candidate  string
	// CanEmergency: the user may open an emergency rollback (approvers
	// and admins), which Previous (the release before the current one)
	// makes possible.
	CanEmergency bool
	Previous     string
	// Refusal is why the App refused the form just posted.
	Refusal string
	// Posted is the release ID the refused promotion form was posted with.
	Posted string
}

// environmentData builds env's page for q's principal.
func (u *UI) environmentData(q *req, env, service string) (*envData, error) {
	if err := q.p.Can(auth.ReadEnvironments, env); err != nil {
		return nil, err
	}
	all := u.visible(q.p)
	i := slices.IndexFunc(all, func(e domain.Environment) bool { return e.Name == env })
	if i < 0 {
		return nil, errs.E(errs.NotFound, "unknown environment %q", env)
	}
	d := &envData{base: u.base(q, env), Env: all[i], From: previous(all, i), Service: service,
		Release: u.releaseOf(q, all[i].Release), CanRead: q.p.Can(auth.ReadConfig, env) == nil,
		CanSecret:  q.p.Can(auth.ReadSecrets, env) == nil,
		CanPromote: all[i].Promoted && q.p.Can(auth.Promote, env) == nil}
	d.Nav, d.Live = "environment", []string{env}
	d.inEnv(q.p, env)
	if d.Release != nil {
		for k, v := range d.Release.Labels {
			d.Labels = append(d.Labels, label{k, v})
		}
		slices.SortFunc(d.Labels, func(a, b label) int { return strings.Compare(a.Key, b.Key) })
	}
	if d.From != "" {
		if j := slices.IndexFunc(all, func(e domain.Environment) bool { return e.Name == d.From }); j >= 0 && all[j].Release != all[i].Release {
			d.Candidate = all[j].Release
		}
	}
	if hs, ok := u.src.(historySource); ok {
		d.Services = hs.Services(env)
		hist, err := hs.History(q.ctx(), q.p, env, historyRows)
		if err != nil && !errs.Is(err, errs.NotFound) {
			return nil, err
		}
		d.History = hist
		if len(hist) > 0 && hist[0].Release == all[i].Release {
			d.Previous = hist[0].Previous
		}
	}
	d.CanEmergency = d.CanPromote && d.Previous != "" && q.p.Can(auth.ApprovePromotion, env) == nil
	if service != "" && !slices.Contains(d.Services, service) {
		return nil, errs.Field("service", "not a service of "+env+"'s release: one of "+strings.Join(d.Services, ", "))
	}
	if !d.CanRead {
		return d, nil
	}
	t, o, err := u.src.Resolved(env, service)
	if err != nil {
		_, d.ConfigErr, _ = errs.Public(err)
		return d, nil
	}
	tree.Walk(t, func(p string, v *tree.Value) {
		if p == "" || (v.Kind == tree.Map && len(v.Fields) == 0) {
			return
		}
		d.Values = append(d.Values, envValue{Key: p, Value: display(render.JSON(v, p, o)), Source: sourceText(v), Hidden: o.Hidden(p, v)})
	})
	return d, nil
}

// environment is GET /environments/{env}.
func (u *UI) environment(q *req) error {
	d, err := u.environmentData(q, q.r.PathValue("env"), q.r.URL.Query().Get("service"))
	if err != nil {
		return err
	}
	u.render(q.w, http.StatusOK, "environment", d)
	return nil
}

// envPromote is POST /environments/{env}/promote (release=ID) and POST
// /environments/{env}/rollback: a promotion opened through the App, then
// the promotions page; a refusal shows the environment page with its
// reason and status. An emergency rollback (emergency=1) skips the wait
// timer only; it needs the confirmation field to repeat the environment's
// name, else the confirmation page comes back with the field marked.
func (u *UI) envPromote(q *req) error {
	env := q.r.PathValue("env")
	var pr domain.Promotion
	var err error
	rel := strings.TrimSpace(q.r.PostFormValue("release"))
	switch {
	case strings.HasSuffix(q.r.URL.Path, "/rollback") && q.r.PostFormValue("emergency") == "1":
		if q.r.PostFormValue("confirm") != env {
			d, derr := u.rollbackData(q, env)
			if derr != nil {
				return derr
			}
			d.ConfirmErr = "type " + env + " to confirm the emergency rollback"
			u.render(q.w, http.StatusUnprocessableEntity, "rollback", d)
			return nil
		}
		pr, err = u.app.Rollback(q.ctx(), q.p, env, rel, true)
	case strings.HasSuffix(q.r.URL.Path, "/rollback"):
		pr, err = u.app.Rollback(q.ctx(), q.p, env, rel, false)
	default:
		pr, err = u.app.Promote(q.ctx(), q.p, app.PromoteRequest{Release: rel, Environment: env})
	}
	if err == nil {
		http.Redirect(q.w, q.r, "/promotions#"+pr.ID, http.StatusSeeOther)
		return nil
	}
	kind, msg, fields := errs.Public(err)
	d, derr := u.environmentData(q, env, "")
	if derr != nil {
		return err // the page itself is refused: answer the first refusal
	}
	for _, f := range fields {
		msg += "; " + f.Field + ": " + f.Message
	}
	d.Refusal, d.Posted = msg, rel
	u.render(q.w, kind.Status(), "environment", d)
	return nil
}

type rollbackData struct {
	*envData
	ConfirmErr string
}

// rollbackData is the emergency rollback's confirmation page of env, for
// users who may open one.
func (u *UI) rollbackData(q *req, env string) (*rollbackData, error) {
	d, err := u.environmentData(q, env, "")
	if err != nil {
		return nil, err
	}
	if err := q.p.Can(auth.ApprovePromotion, env); err != nil {
		return nil, errs.E(errs.Forbidden, "an emergency rollback skips the wait timer: approvers and admins only")
	}
	if !d.CanPromote {
		return nil, errs.E(errs.Conflict, "%s takes no promotions: its release is set directly", env)
	}
	if d.Previous == "" {
		return nil, errs.E(errs.Conflict, "%s has no previous release to roll back to", env)
	}
	d.Title = "Emergency rollback of " + env
	return &rollbackData{envData: d}, nil
}

// emergencyForm is GET /environments/{env}/rollback/emergency: what the
// emergency rollback does, and the form that confirms it.
func (u *UI) emergencyForm(q *req) error {
	d, err := u.rollbackData(q, q.r.PathValue("env"))
	if err != nil {
		return err
	}
	u.render(q.w, http.StatusOK, "rollback", d)
	return nil
}
