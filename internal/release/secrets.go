package release

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sync"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/workspace"
)

// Secrets are the workspace secrets files of one release as a server opens
// them with its own age identities (DESIGN §8): each environment's file,
// secrets/{env}.enc.yaml, opened at most once, on first use, and kept with
// the release. A file the identities do not open is skipped, logged once;
// a file that does not parse or fails authentication is a problem of the
// release. Safe for concurrent use.
type Secrets struct {
	release string
	ws      *workspace.Workspace
	ids     []age.Identity
	log     *slog.Logger

	mu   sync.Mutex
	envs map[string]*EnvSecrets
}

// EnvSecrets is one environment's secrets file in a release, as opened.
// Nothing in it but Values holds a secret value.
type EnvSecrets struct {
	// File is the file's path in the release; "" when it has none.
	File string
	// Values are the file's secrets, each with File set; nil unless the
	// file opened.
	Values map[string]domain.Secret
	// Skipped: the identities do not open the file (the server has none,
	// or none of its recipients); Names are its secrets' names, Recipients
	// who would open it.
	Skipped bool
	// NoIdentity: skipped because the server has no age identity at all.
	NoIdentity bool
	Names      []string
	Recipients []string
	// Err: the file does not parse, or fails authentication (a changed
	// value, a MAC that does not match, a file of another environment).
	Err error
}

// OpenSecrets prepares the secrets files of release id (its loaded
// workspace ws) for opening with ids; log (nil: discarded) gets one line
// per file that is skipped or fails.
func OpenSecrets(id string, ws *workspace.Workspace, ids []age.Identity, log *slog.Logger) *Secrets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Secrets{release: id, ws: ws, ids: ids, log: log, envs: map[string]*EnvSecrets{}}
}

// SecretsFile is the path of env's secrets file in a workspace.
func SecretsFile(ws *workspace.Workspace, env string) string {
	return path.Join(ws.Secrets.Dir, secrets.FileName(env))
}

// For returns env's secrets file, opening it on first use. s may be nil
// (no secrets files): the answer is then empty.
func (s *Secrets) For(env string) *EnvSecrets {
	if s == nil || s.ws == nil {
		return &EnvSecrets{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.envs[env]; e != nil {
		return e
	}
	e := s.open(env)
	s.envs[env] = e
	return e
}

func (s *Secrets) open(env string) *EnvSecrets {
	file := SecretsFile(s.ws, env)
	data, err := fs.ReadFile(s.ws.FS, file)
	if errors.Is(err, fs.ErrNotExist) {
		return &EnvSecrets{}
	}
	e := &EnvSecrets{File: file}
	if err != nil {
		e.Err = err
		return e
	}
	f, err := secrets.Parse(file, data)
	if err != nil {
		e.Err = err
		s.log.Error("workspace secrets file does not parse; the environment's config is not served", "release", s.release, "environment", env, "file", file, "err", err)
		return e
	}
	opened, err := f.Open(s.ids)
	var noID *secrets.NoIdentityError
	if errors.As(err, &noID) {
		e.Skipped, e.NoIdentity, e.Names, e.Recipients = true, len(s.ids) == 0, f.Names(), f.Recipients
		if len(s.ids) == 0 {
			s.log.Info("workspace secrets file skipped: the server has no age identity (--age-identity-file)", "release", s.release, "environment", env, "file", file)
		} else {
			s.log.Warn("workspace secrets file skipped: the server's age identity is not among its recipients", "release", s.release, "environment", env, "file", file,
				"recipients", len(f.Recipients))
		}
		return e
	}
	if err != nil {
		e.Err = err
		s.log.Error("workspace secrets file does not open; the environment's config is not served", "release", s.release, "environment", env, "file", file, "err", err)
		return e
	}
	if !opened.Bound() || opened.Environment() != env {
		// A file plain sops wrote carries no binding: a copy of another
		// environment's file would be served as this one's.
		e.Err = fmt.Errorf("%s: the file is not bound to environment %q (written by plain sops, or another environment's file): run `envplane secrets migrate --env %s` to bind it", file, env, env)
		s.log.Error("workspace secrets file is not bound to its environment; the environment's config is not served", "release", s.release, "environment", env, "file", file)
		return e
	}
	values := opened.Values()
	e.Values = make(map[string]domain.Secret, len(values))
	for n, v := range values {
		e.Values[n] = domain.Secret{Value: v, File: file}
	}
	return e
}

// Fields are e's problem as API field errors on its file, one per
// positioned problem; nil when it has none.
func (e *EnvSecrets) Fields() []errs.FieldError {
	if e.Err == nil {
		return nil
	}
	var out []errs.FieldError
	var l diag.List
	if errors.As(e.Err, &l) {
		for _, d := range l {
			out = append(out, errs.FieldError{Field: "files." + e.File, Message: d.Error()})
		}
		return out
	}
	return []errs.FieldError{{Field: "files." + e.File, Message: e.Err.Error()}}
}

// Merge layers server-side secrets over a file's values (DESIGN §8: the
// release's files, then the workspace secrets files the server opens, then
// the server-side secrets): a new map, unless one side is empty.
func Merge(file, server map[string]domain.Secret) map[string]domain.Secret {
	switch {
	case len(file) == 0:
		return server
	case len(server) == 0:
		return file
	}
	out := make(map[string]domain.Secret, len(file)+len(server))
	for n, v := range file {
		out[n] = v
	}
	for n, v := range server {
		out[n] = v
	}
	return out
}
