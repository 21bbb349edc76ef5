package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/tree"
)

// configOf finds the config of (env, service) in the current snapshot.
func (s *Server) configOf(env, service string) (*resolved, error) {
	st := s.snap.Load().byName[env]
	if st == nil {
		return nil, errs.E(errs.NotFound, "unknown environment %q", env)
	}
	if st.cfg == nil {
		return nil, errs.E(errs.NotFound, "environment %q has no current release yet", env)
	}
	if err := st.cfg.hasService(service); err != nil {
		return nil, err
	}
	res, hit := st.cfg.get(service)
	if hit {
		s.metrics.cacheHits.Inc()
	} else {
		s.metrics.cacheMisses.Inc()
		if len(res.plain.data) > keepTreeBelow {
			s.trim.soon()
		}
	}
	return res, nil
}

// getConfig is the hot path: everything is prepared in the snapshot, so
// it looks up, compares the ETag and writes bytes.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env := r.PathValue("env")
	service, _ := queryValue(r.URL.RawQuery, "service")
	var fe errs.FieldErrors
	reveal := boolQuery(r, "reveal", &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	res, err := s.configOf(env, service)
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	b := &res.plain
	h := w.Header()
	h["Cache-Control"] = hdrRevalid
	// Without the right to reveal, reveal=true quietly gets the redacted
	// config, as the API contract says.
	revealing := reveal && p.Can(auth.RevealConfig, env) == nil
	if revealing {
		b = &res.revealed
		h["Cache-Control"] = hdrNoStore
	}
	h["Etag"] = b.etagHdr
	h["Vary"] = hdrVaryAuth
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	// Audited before the values go out: no audit entry, no values. A
	// config whose revealed form is its redacted one shows nothing hidden.
	if revealing && !bytes.Equal(res.plain.data, res.revealed.data) {
		if err := s.app.RecordReveal(r.Context(), p, app.Reveal{Environment: env, Via: "config", Service: service, Keys: res.revealable}); err != nil {
			return err
		}
	}
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = b.lenHdr
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.data)
	}
	return nil
}

// etagMatch implements If-None-Match's weak comparison against etag.
func etagMatch(values []string, etag string) bool {
	for _, v := range values {
		if v == etag {
			return true
		}
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			item = strings.TrimSpace(item)
			if item == "*" || strings.TrimPrefix(item, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// usableConfig is the config of (env, service) for explain and diff, which
// show references nothing sets as written but nothing else that is wrong.
func (s *Server) usableConfig(env, service string) (*resolved, error) {
	res, err := s.configOf(env, service)
	if err != nil {
		return nil, err
	}
	if res.res == nil {
		return nil, res.err
	}
	if p := config.Blocking(res.res); len(p) > 0 {
		return nil, &errs.Error{Kind: errs.Conflict, Fields: p.Fields(), Message: "the config of " + env + " does not resolve on the server"}
	}
	return res, nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env := r.PathValue("env")
	var fe errs.FieldErrors
	key, _ := queryValue(r.URL.RawQuery, "key")
	if key == "" {
		fe.Add("key", "required: the dotted key to explain, e.g. server.port")
	}
	service, reveal, err := configQuery(r, fe)
	if err != nil {
		return err
	}
	res, err := s.usableConfig(env, service)
	if err != nil {
		return err
	}
	path := tree.SplitKey(key)
	key = strings.Join(path, ".")
	v := res.tree().Lookup(path)
	if v == nil {
		return errs.E(errs.NotFound, "key %q is not set in %s", key, env)
	}
	out := report.Explain(v, key, res.opts)
	if reveal && p.Can(auth.RevealConfig, env) == nil {
		o := res.opts
		o.Reveal = true
		shown := report.Explain(v, key, o)
		// Audited when revealing changes the answer: a hidden value, a
		// hidden value it overrode, or one inside a list.
		if !sameJSON(out, shown) {
			if err := s.app.RecordReveal(r.Context(), p, app.Reveal{Environment: env, Via: "explain", Service: service, Keys: []string{key}}); err != nil {
				return err
			}
		}
		out = shown
	}
	return writeJSON(w, http.StatusOK, out)
}

// configQuery reads the ?service= and ?reveal= of explain and diff, with
// the problems fe already holds.
func configQuery(r *http.Request, fe errs.FieldErrors) (service string, reveal bool, err error) {
	service, _ = queryValue(r.URL.RawQuery, "service")
	reveal = boolQuery(r, "reveal", &fe)
	return service, reveal, fe.Err()
}

// sameJSON reports whether two answers encode alike.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	envA, envB := r.PathValue("env"), r.PathValue("other")
	if err := p.Can(auth.ReadConfig, envB); err != nil {
		return err
	}
	service, reveal, err := configQuery(r, nil)
	if err != nil {
		return err
	}
	ra, err := s.usableConfig(envA, service)
	if err != nil {
		return err
	}
	rb, err := s.usableConfig(envB, service)
	if err != nil {
		return err
	}
	// The two releases may differ: a key sensitive in either is hidden.
	sa, sb := ra.opts.Sensitive, rb.opts.Sensitive
	o := render.Options{
		Reveal:    reveal && p.Can(auth.RevealConfig, envA) == nil && p.Can(auth.RevealConfig, envB) == nil,
		Sensitive: func(path string) bool { return sa(path) || sb(path) },
	}
	changes := report.Diff(ra.tree(), rb.tree(), o)
	if o.Reveal {
		// One entry per environment whose hidden values the answer shows.
		var shown []string
		for _, c := range changes {
			if c.Secret {
				shown = append(shown, c.Path)
			}
		}
		for _, env := range []string{envA, envB} {
			if err := s.app.RecordReveal(r.Context(), p, app.Reveal{Environment: env, Via: "diff", Service: service, Keys: shown}); err != nil {
				return err
			}
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"changes": changes})
}
