package server

import (
	"net/http"
	"strings"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/resolve"
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
	}
	return res, nil
}

// getConfig is the hot path: everything is prepared in the snapshot, so
// it looks up, compares the ETag and writes bytes.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env := r.PathValue("env")
	service, _ := queryValue(r.URL.RawQuery, "service")
	var fe fieldErrors
	reveal := boolQuery(r, "reveal", &fe)
	if len(fe) > 0 {
		return fe.err()
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
	if reveal && p.Can(auth.RevealConfig, env) == nil {
		b = &res.revealed
		h["Cache-Control"] = hdrNoStore
	}
	h["Etag"] = b.etagHdr
	h["Vary"] = hdrVaryAuth
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
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

// blocking is the problems that make a resolved tree unfit for explain and
// diff: everything but references nothing sets, shown as written.
func blocking(res *resolved, env string) error {
	if res.res == nil {
		return res.err
	}
	var fields []errs.FieldError
	for _, p := range res.res.Problems {
		if p.Rule != resolve.RuleUnresolved {
			fields = append(fields, errs.FieldError{Field: problemField(p.Path, p.Pos), Message: p.Error()})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &errs.Error{Kind: errs.Conflict, Fields: fields, Message: "the config of " + env + " does not resolve on the server"}
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env := r.PathValue("env")
	var fe fieldErrors
	key, _ := queryValue(r.URL.RawQuery, "key")
	if key == "" {
		fe.add("key", "required: the dotted key to explain, e.g. server.port")
	}
	service, _ := queryValue(r.URL.RawQuery, "service")
	reveal := boolQuery(r, "reveal", &fe)
	if err := fe.err(); err != nil {
		return err
	}
	res, err := s.configOf(env, service)
	if err != nil {
		return err
	}
	if err := blocking(res, env); err != nil {
		return err
	}
	path := tree.SplitKey(key)
	key = strings.Join(path, ".")
	v := res.res.Tree.Lookup(path)
	if v == nil {
		return errs.E(errs.NotFound, "key %q is not set in %s", key, env)
	}
	o := res.opts
	o.Reveal = reveal && p.Can(auth.RevealConfig, env) == nil
	out := report.Explain(v, key, o)
	return writeJSON(w, http.StatusOK, out)
}

// change is one entry of `envplane diff --format json`, the shape the diff
// endpoint answers with too.

func (s *Server) diff(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	envA, envB := r.PathValue("env"), r.PathValue("other")
	if err := p.Can(auth.ReadConfig, envB); err != nil {
		return err
	}
	var fe fieldErrors
	service, _ := queryValue(r.URL.RawQuery, "service")
	reveal := boolQuery(r, "reveal", &fe)
	if err := fe.err(); err != nil {
		return err
	}
	ra, err := s.configOf(envA, service)
	if err != nil {
		return err
	}
	rb, err := s.configOf(envB, service)
	if err != nil {
		return err
	}
	if err := blocking(ra, envA); err != nil {
		return err
	}
	if err := blocking(rb, envB); err != nil {
		return err
	}
	// The two releases may differ: a key sensitive in either is hidden.
	sa, sb := ra.opts.Sensitive, rb.opts.Sensitive
	o := render.Options{
		Reveal:    reveal && p.Can(auth.RevealConfig, envA) == nil && p.Can(auth.RevealConfig, envB) == nil,
		Sensitive: func(path string) bool { return sa(path) || sb(path) },
	}
	changes := report.Diff(ra.res.Tree, rb.res.Tree, o)
	return writeJSON(w, http.StatusOK, map[string]any{"changes": changes})
}
