package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/vault"
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

func (s *Server) secretsOn() error {
	if s.vault == nil {
		return errs.E(errs.Unavailable, "server-side secrets are off: this server was started without a master key")
	}
	return nil
}

type putSecretRequest struct {
	Value *string `json:"value"`
	// Version is the version the client last saw (0: not set), making the
	// write a check-and-set; absent: write unconditionally.
	Version *int `json:"version"`
}

func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.secretsOn(); err != nil {
		return err
	}
	var req putSecretRequest
	if err := decodeSecretBody(r, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.Value == nil {
		fe.add("value", "required: the secret's value, a string")
	}
	if req.Version != nil && *req.Version < 0 {
		fe.add("version", "must be the version last read (1 or more), or 0 for a secret that must not exist yet")
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx, env, name := r.Context(), r.PathValue("env"), r.PathValue("name")
	var m store.SecretMeta
	err := s.st.WithTx(ctx, func(tx store.Tx) error {
		var err error
		now := s.now()
		if m, err = s.vault.Put(ctx, tx, env, name, *req.Value, req.Version, p.Actor(), now); err != nil {
			return err
		}
		details := map[string]any{"environment": env, "name": name, "version": m.Version}
		if _, err := s.audit.Append(ctx, tx, now, audit.Record{Actor: p.Actor(), Action: "secret.set", Target: env + "/" + name, Details: details}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "secret", Environment: env, ID: name})
		return nil
	})
	if err != nil {
		return err
	}
	s.secretsChanged(ctx, env)
	return writeJSON(w, http.StatusOK, struct {
		Name      string    `json:"name"`
		Version   int       `json:"version"`
		UpdatedAt time.Time `json:"updatedAt"`
	}{m.Name, m.Version, m.UpdatedAt})
}

// decodeSecretBody is decodeJSON without its syntax details: a JSON error
// message quotes characters of the body, and this body holds a secret.
func decodeSecretBody(r *http.Request, dst any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return invalidField("body", "a JSON object is required")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if dec.Decode(new(json.RawMessage)) != io.EOF {
			return invalidField("body", "the body must hold one JSON object and nothing after it")
		}
		return nil
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return invalidField("body", "not valid JSON at byte "+strconv.FormatInt(syntax.Offset, 10))
	}
	return bodyError(err) // sizes, types and field names only
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := s.secretsOn(); err != nil {
		return err
	}
	ms, err := s.vault.List(r.Context(), s.st, r.PathValue("env"))
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
// tokens allowed to reveal, each reveal audited in the same transaction
// that reads it: no audit entry, no value.
func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.secretsOn(); err != nil {
		return err
	}
	var fe fieldErrors
	reveal := boolQuery(r, "reveal", &fe)
	if err := fe.err(); err != nil {
		return err
	}
	ctx, env, name := r.Context(), r.PathValue("env"), r.PathValue("name")
	if !reveal {
		m, err := s.vault.Meta(ctx, s.st, env, name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, secretOf(m))
	}
	// Unlike config, where reveal=true quietly redacts, asking for one
	// value without the right to see it is refused.
	if err := p.Can(auth.RevealSecrets, env); err != nil {
		return err
	}
	var sec vault.Secret
	err := s.st.WithTx(ctx, func(tx store.Tx) error {
		var err error
		if sec, err = s.vault.Get(ctx, tx, env, name); err != nil {
			return err
		}
		_, err = s.audit.Append(ctx, tx, s.now(), audit.Record{Actor: p.Actor(), Action: "secret.reveal", Target: env + "/" + name,
			Details: map[string]any{"environment": env, "name": name, "version": sec.Version}})
		return err
	})
	if err != nil {
		return err
	}
	out := secretOf(sec.SecretMeta)
	out.Value = &sec.Value
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.secretsOn(); err != nil {
		return err
	}
	var expect *int
	if v, ok := queryValue(r.URL.RawQuery, "version"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalidField("version", "must be the version last read (1 or more)")
		}
		expect = &n
	}
	ctx, env, name := r.Context(), r.PathValue("env"), r.PathValue("name")
	err := s.st.WithTx(ctx, func(tx store.Tx) error {
		now := s.now()
		tomb, err := s.vault.Delete(ctx, tx, env, name, expect, p.Actor(), now)
		if err != nil {
			return err
		}
		if _, err := s.audit.Append(ctx, tx, now, audit.Record{Actor: p.Actor(), Action: "secret.delete", Target: env + "/" + name,
			Details: map[string]any{"environment": env, "name": name, "version": tomb}}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "secret", Environment: env, ID: name})
		return nil
	})
	if err != nil {
		return err
	}
	s.secretsChanged(ctx, env)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// secretsChanged makes this replica re-resolve env at once after its own
// write; other replicas do when the store event reaches them.
func (s *Server) secretsChanged(ctx context.Context, env string) {
	s.secretGens.bump(env)
	s.refresh(ctx)
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

// loadSecrets gives c its environment's server-side secrets. Only an
// unreachable store aborts the reload (to be retried); secrets that do not
// decrypt make the environment's config fail, loudly in the log.
func (s *Server) loadSecrets(ctx context.Context, c *envConfig) error {
	if s.vault == nil {
		return nil
	}
	vals, err := s.vault.Values(ctx, s.st, c.env)
	switch {
	case err == nil:
		c.secrets = vals
	case errs.Is(err, errs.Unavailable) || ctx.Err() != nil:
		return err
	default:
		s.log.Error("server-side secrets do not decrypt; the environment's config is not served", "environment", c.env, "err", err)
		c.secretsErr = errs.Wrap(errs.Internal, err, "the secrets of %s do not decrypt", c.env)
	}
	return nil
}

// sameSecrets reports whether two secret sets hold the same versions.
func sameSecrets(a, b map[string]resolve.Secret) bool {
	return maps.EqualFunc(a, b, func(x, y resolve.Secret) bool { return x.Version == y.Version })
}
