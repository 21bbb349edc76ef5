package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/envplane/envplane/internal/domain"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/workspace"
)

// readSecretsFile parses an environment's secrets file; nil when there is none.
func (a *app) readSecretsFile(l *loaded, env string) (*secrets.File, string, error) {
	ws := l.Workspace
	path := filepath.Join(l.dir, filepath.FromSlash(ws.Secrets.Dir), secrets.FileName(env))
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, err
	}
	rel := filepath.ToSlash(filepath.Join(ws.Secrets.Dir, secrets.FileName(env)))
	f, err := secrets.Parse(rel, data)
	return f, path, err
}

func (a *app) identities() ([]age.Identity, error) {
	ids, _, err := secrets.LoadIdentities(a.getenv)
	return ids, err
}

// envSecrets loads what resolution needs from an environment's secrets file.
// strict commands (resolve, run) fail when the file cannot be opened; the
// others (explain, diff, lint) go on with the names sealed, since names are in
// clear and references to them are satisfiable.
func (a *app) envSecrets(l *loaded, env string, strict bool) (map[string]domain.Secret, error) {
	f, _, err := a.readSecretsFile(l, env)
	if err != nil || f == nil {
		return nil, err
	}
	ids, err := a.identities()
	if err != nil {
		return nil, err
	}
	opened, err := f.Open(ids)
	var noID *secrets.NoIdentityError
	if errors.As(err, &noID) && !strict {
		out := make(map[string]domain.Secret, len(f.Names()))
		for _, n := range f.Names() {
			out[n] = domain.Secret{Sealed: true}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	values := opened.Values()
	out := make(map[string]domain.Secret, len(values))
	for n, v := range values {
		out[n] = domain.Secret{Value: v, File: f.Path} // provenance: the file, as on the server
	}
	return out, nil
}

// request builds a resolution request with the runtime environment and the
// environment's secrets.
func (a *app) request(l *loaded, env, service string, strict bool) (resolve.Request, error) {
	sec, err := a.envSecrets(l, env, strict)
	if err != nil {
		return resolve.Request{}, err
	}
	return resolve.Request{Env: env, Service: service, Getenv: a.lookup(), Secrets: sec}, nil
}

// recipientsFor are the age recipients envplane.yaml gives an environment.
func recipientsFor(ws *workspace.Workspace, env string) ([]string, error) {
	rs := ws.Secrets.Recipients[env]
	if len(rs) == 0 {
		return nil, fmt.Errorf("no recipients for environment %q: list who may open its secrets under secrets.recipients.%s in %s (age1… public keys from `envplane keys generate`)", env, env, workspace.FileName)
	}
	return rs, nil
}
