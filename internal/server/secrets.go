package server

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/vault"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// secretJSON describes a secret; Value only in a permitted reveal.
type secretJSON struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Value     *string   `json:"value,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

func secretOf(m store.SecretMeta) secretJSON {
	return secretJSON{Name: m.Name, Version: m.Version, UpdatedAt: m.UpdatedAt.UTC(), UpdatedBy: m.UpdatedBy}
}

type putSecretRequest struct {
	// Value decodes exactly or not at all: never a repaired copy.
	Value *vault.JSONValue `json:"value"`
	// Version is the version the client last saw (0: not set), making the
	// write a check-and-set; absent: write unconditionally.
	Version *int `json:"version"`
}

func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req putSecretRequest
	if err := decodeSecretBody(r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return errs.Field("value", "required: the secret's value, a string")
	}
	m, err := s.app.PutSecret(r.Context(), p, r.PathValue("env"), r.PathValue("name"), string(*req.Value), req.Version)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Name      string    `json:"name"`
		Version   int       `json:"version"`
		UpdatedAt time.Time `json:"updatedAt"`
	}{m.Name, m.Version, m.UpdatedAt})
}

// decodeSecretBody is decodeJSON without syntax details: a JSON error
// message quotes characters of the body, and this body holds a secret.
func decodeSecretBody(r *http.Request, dst any) error { return decodeBody(r, dst, true) }

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ms, err := s.app.ListSecrets(r.Context(), p, r.PathValue("env"))
	if err != nil {
		return err
	}
	out := make([]secretJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, secretOf(m))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"secrets": out})
}

// getSecret answers a secret's metadata, or with reveal=true its value to
// tokens allowed to reveal (audited). Unlike config, where reveal=true
// quietly redacts, asking for one value without the right is refused.
func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var fe errs.FieldErrors
	reveal := boolQuery(r, "reveal", &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	ctx, env, name := r.Context(), r.PathValue("env"), r.PathValue("name")
	if !reveal {
		m, err := s.app.SecretMeta(ctx, p, env, name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, secretOf(m))
	}
	sec, err := s.app.RevealSecret(ctx, p, env, name)
	if err != nil {
		return err
	}
	out := secretOf(sec.SecretMeta)
	out.Value = &sec.Value
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var expect *int
	if v, ok := queryValue(r.URL.RawQuery, "version"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errs.Field("version", "must be the version last read (1 or more)")
		}
		expect = &n
	}
	if err := s.app.DeleteSecret(r.Context(), p, r.PathValue("env"), r.PathValue("name"), expect); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// secretGens counts changes to each environment's secrets. A config
// resolved at generation g is current while the count is still g.
type secretGens struct {
	mu    sync.Mutex
	all   uint64 // bumped by resyncs: every environment may have changed
	byEnv map[string]uint64
}

func (g *secretGens) get(env string) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.all + g.byEnv[env]
}

// bump records a change to env's secrets; "" means every environment.
func (g *secretGens) bump(env string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if env == "" {
		g.all++
		return
	}
	if g.byEnv == nil {
		g.byEnv = map[string]uint64{}
	}
	g.byEnv[env]++
}

// loadSecrets gives c what its resolution gets (DESIGN §8): the release's
// workspace secrets file for the environment, opened with the server's age
// identity once per release (skipped when it does not open it), under the
// environment's server-side secrets. Only an unreachable store aborts the
// reload (to be retried); a secrets file that fails authentication, or
// server-side secrets that do not decrypt, make the environment's config
// fail, loudly in the log.
func (s *Server) loadSecrets(ctx context.Context, c *envConfig) error {
	file := c.rel.secrets.For(c.env)
	c.secretsFile = file
	if err := app.ReleaseSecretsError(c.rel.id, c.env, file); err != nil {
		c.secretsErr = err // logged once, when the file was opened
		return nil
	}
	vals, err := s.app.SecretValues(ctx, c.env)
	switch {
	case err == nil:
		c.secrets = release.Merge(file.Values, vals)
	case errs.Is(err, errs.Unavailable) || ctx.Err() != nil:
		return err
	default:
		s.log.Error("server-side secrets do not decrypt; the environment's config is not served", "environment", c.env, "err", err)
		c.secretsErr = errs.Wrap(errs.Internal, err, "the secrets of %s do not decrypt", c.env)
	}
	return nil
}

// hintSkipped adds to err, the answer for a config with problems p, why
// references may be unresolved: a secrets file the server does not open.
func (c *envConfig) hintSkipped(err error, p config.Problems) {
	var e *errs.Error
	if c.secretsFile == nil || !c.secretsFile.Skipped || !errors.As(err, &e) ||
		!slices.ContainsFunc(p, func(pr resolve.Problem) bool { return pr.Rule == resolve.RuleUnresolved }) {
		return
	}
	e.Fields = append(e.Fields, errs.FieldError{Field: "files." + c.secretsFile.File, Message: app.SkippedSecretsHint(c.secretsFile)})
}

// sameSecrets reports whether two secret sets hold the same versions.
func sameSecrets(a, b map[string]domain.Secret) bool {
	return maps.EqualFunc(a, b, func(x, y domain.Secret) bool { return x.Version == y.Version })
}
