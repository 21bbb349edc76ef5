package web

import (
	"net/http"
	"strings"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
)

// The diff page: two environments (?a=ENV&b=ENV) or two releases resolved
// for one environment (?ra=ID&rb=ID&env=ENV), by the engine of `envplane
// diff`, sensitive values redacted. Users who may reveal config in the
// environments compared reveal with a POST of the same fields (CSRF), which
// the audit log records.

// releaseChoices bounds the releases the page offers to pick from.
const releaseChoices = 100

type diffRow struct {
	report.Change
	A, B string
}

type releaseChoice struct {
	ID, Text string
}

type diffData struct {
	base
	Envs []string
	// Releases mode: RA and RB resolved for REnv; else environments A, B.
	Releases   bool
	A, B       string
	RA, RB     string
	REnv       string
	Service    string
	Choices    []releaseChoice
	CanRelease bool // the user may read releases
	Changes    []diffRow
	Err        string
	Fields     []errs.FieldError
	// CanReveal: the user may reveal what the diff hides; Revealed: it did.
	CanReveal, Revealed, Hidden bool
}

// diff is GET /diff, and POST /diff with reveal=1.
func (u *UI) diff(q *req) error {
	form := q.r.URL.Query()
	reveal := false
	if q.r.Method == http.MethodPost {
		form, reveal = q.r.PostForm, q.r.PostForm.Get("reveal") == "1"
	}
	d := diffData{base: u.base(q, "Diff"), A: form.Get("a"), B: form.Get("b"), Service: strings.TrimSpace(form.Get("service")),
		RA: strings.TrimSpace(form.Get("ra")), RB: strings.TrimSpace(form.Get("rb")), REnv: form.Get("env"),
		CanRelease: q.p.Can(auth.ReadReleases, "") == nil}
	d.Nav = "diff"
	for _, e := range u.visible(q.p) {
		if q.p.Can(auth.ReadConfig, e.Name) == nil {
			d.Envs = append(d.Envs, e.Name)
		}
	}
	d.Releases = d.RA != "" || d.RB != ""
	if d.A == "" && d.B == "" && len(d.Envs) >= 2 {
		d.A, d.B = d.Envs[len(d.Envs)-2], d.Envs[len(d.Envs)-1]
	}
	if d.CanRelease {
		rels, err := u.app.ListReleases(q.ctx(), q.p, releaseChoices)
		if err != nil {
			return err
		}
		for _, r := range rels {
			d.Choices = append(d.Choices, releaseChoice{r.ID, releaseText(r)})
		}
	}
	if d.Releases {
		if d.REnv == "" && len(d.Envs) > 0 {
			d.REnv = d.Envs[len(d.Envs)-1]
		}
		d.CanReveal = q.p.Can(auth.RevealConfig, d.REnv) == nil
		if reveal && !d.CanReveal {
			return q.p.Can(auth.RevealConfig, d.REnv)
		}
		changes, err := u.app.DiffReleases(q.ctx(), q.p, app.ReleaseDiff{A: d.RA, B: d.RB, Environment: d.REnv, Service: d.Service, Reveal: reveal, Via: "web diff"})
		if errs.Is(err, errs.Forbidden) || errs.Is(err, errs.Unavailable) || errs.Is(err, errs.Internal) {
			return err
		}
		d.set(changes, err, reveal)
		d.Live = []string{d.REnv}
	} else if d.A != "" && d.B != "" {
		d.CanReveal = q.p.Can(auth.RevealConfig, d.A) == nil && q.p.Can(auth.RevealConfig, d.B) == nil
		if reveal && !d.CanReveal {
			return errs.E(errs.Forbidden, "revealing this diff needs the right to reveal config in %s and %s", d.A, d.B)
		}
		changes, err := u.changes(q.p, d.A, d.B, d.Service, reveal)
		if errs.Is(err, errs.Forbidden) {
			return err
		}
		if err == nil && reveal {
			err = u.recordDiffReveal(q, changes, d.Service, d.A, d.B)
			if err != nil {
				return err
			}
		}
		d.set(changes, err, reveal)
		d.Live = []string{d.A, d.B}
	}
	if reveal {
		d.Live = nil // a live reload would fetch the page redacted again
	}
	u.render(q.w, http.StatusOK, "diff", d)
	return nil
}

func (d *diffData) set(changes []report.Change, err error, revealed bool) {
	if err != nil {
		_, d.Err, d.Fields = errs.Public(err)
		return
	}
	d.Revealed = revealed
	for _, c := range changes {
		d.Hidden = d.Hidden || c.Secret
		d.Changes = append(d.Changes, diffRow{Change: c, A: display(string(c.A)), B: display(string(c.B))})
	}
}

// recordDiffReveal audits a revealed environment diff: one entry per
// environment, naming the keys whose hidden values it showed.
func (u *UI) recordDiffReveal(q *req, changes []report.Change, service string, envs ...string) error {
	var shown []string
	for _, c := range changes {
		if c.Secret {
			shown = append(shown, c.Path)
		}
	}
	for _, env := range envs {
		if err := u.app.RecordReveal(q.ctx(), q.p, app.Reveal{Environment: env, Via: "web diff", Service: service, Keys: shown}); err != nil {
			return err
		}
	}
	return nil
}

// releaseText describes a release in a picker: its ID, labels and when.
func releaseText(r domain.Release) string {
	var b strings.Builder
	b.WriteString(r.ID)
	for _, k := range []string{"git.sha", "version", "git.branch"} {
		if v, ok := r.Labels[k]; ok {
			b.WriteString(" · " + k + "=" + v)
		}
	}
	b.WriteString(" · " + r.CreatedAt.UTC().Format("2006-01-02 15:04"))
	return b.String()
}

// changes is the diff from environment a to b as the CLI computes it,
// when p may read both: a key sensitive in either is hidden unless reveal.
func (u *UI) changes(p *auth.Principal, a, b, service string, reveal bool) ([]report.Change, error) {
	for _, env := range []string{a, b} {
		if err := p.Can(auth.ReadConfig, env); err != nil {
			return nil, err
		}
	}
	ta, oa, err := u.src.Resolved(a, service)
	if err != nil {
		return nil, err
	}
	tb, ob, err := u.src.Resolved(b, service)
	if err != nil {
		return nil, err
	}
	sa, sb := oa.Sensitive, ob.Sensitive
	o := render.Options{Reveal: reveal, Sensitive: func(path string) bool { return sa(path) || sb(path) }}
	return report.Diff(ta, tb, o), nil
}
