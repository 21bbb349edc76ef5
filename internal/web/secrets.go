package web

import (
	"net/http"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// The secrets page: an environment's server-side secrets by name and
// version, never their values; those allowed to reveal reveal one at a
// time, by POST, audited by the App before the value is read.

type secretsData struct {
	base
	Env       string
	Envs      []string
	Secrets   []domain.SecretMeta
	CanReveal bool
	// Revealed is the secret revealed by this response, shown once.
	Revealed *revealed
}

type revealed struct {
	Name    string
	Version int
	Value   string
}

func (u *UI) secretsData(q *req) (*secretsData, error) {
	env := q.r.PathValue("env")
	list, err := u.app.ListSecrets(q.ctx(), q.p, env)
	if err != nil {
		return nil, err
	}
	d := &secretsData{base: u.base(q, "Secrets of "+env), Env: env, Secrets: list,
		CanReveal: q.p.Can(auth.RevealSecrets, env) == nil}
	d.Nav, d.Live = "secrets", []string{env}
	d.inEnv(q.p, env)
	for _, e := range u.visible(q.p) {
		if q.p.Can(auth.ReadSecrets, e.Name) == nil {
			d.Envs = append(d.Envs, e.Name)
		}
	}
	return d, nil
}

// secretsPage is GET /environments/{env}/secrets.
func (u *UI) secretsPage(q *req) error {
	d, err := u.secretsData(q)
	if err != nil {
		return err
	}
	u.render(q.w, http.StatusOK, "secrets", d)
	return nil
}

// revealSecret is POST /environments/{env}/secrets/{name}/reveal: the
// secrets page with that one value, read and audited in one transaction
// by the App (no audit entry, no value).
func (u *UI) revealSecret(q *req) error {
	env, name := q.r.PathValue("env"), q.r.PathValue("name")
	if err := q.p.Can(auth.RevealSecrets, env); err != nil {
		return errs.E(errs.Forbidden, "role %s may not reveal secrets in %s", q.p.Role, env)
	}
	sec, err := u.app.RevealSecret(q.ctx(), q.p, env, name)
	if err != nil {
		return err
	}
	d, err := u.secretsData(q)
	if err != nil {
		return err
	}
	d.Revealed = &revealed{Name: sec.Name, Version: sec.Version, Value: sec.Value}
	d.Live = nil // a live reload would fetch the page again, without the value
	u.render(q.w, http.StatusOK, "secrets", d)
	return nil
}
