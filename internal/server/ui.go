package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/flags"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
)

// This file is the read side the web UI (internal/web) is given: the
// snapshot's environments and resolved configs and its change streams. The
// UI writes only through the App, like the API's handlers.

// SetUI mounts h at every path the API does not own (/api/, /ofrep/,
// /health/, /metrics); call it before Serve. nil unmounts it.
func (s *Server) SetUI(h http.Handler) { s.ui = h }

// App is the App the server runs its use cases on.
func (s *Server) App() *app.App { return s.app }

// Environments lists every environment of the snapshot in promotion order.
func (s *Server) Environments() []domain.Environment {
	snap := s.snap.Load()
	out := make([]domain.Environment, len(snap.envs))
	for i, st := range snap.envs {
		out[i] = st.env
	}
	return out
}

// Resolved is the resolved tree of (env, service) as explain and diff see
// it, with the options that redact it; callers must not modify the tree.
func (s *Server) Resolved(env, service string) (*tree.Value, render.Options, error) {
	res, err := s.usableConfig(env, service)
	if err != nil {
		return nil, render.Options{}, err
	}
	return res.res.Tree, res.opts, nil
}

// Watch streams env's change events (SSE-formatted messages) until cancel
// is called; the channel gone is closed when the watcher lagged behind or
// the server is stopping.
func (s *Server) Watch(env string) (msgs <-chan []byte, gone <-chan struct{}, cancel func()) {
	sub := s.hub.subscribe(env)
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-sub.poke:
				// Heartbeats and token checks are the UI's own (web.events).
				if sub.flags.Swap(0)&(subLagged|subStop) != 0 {
					return
				}
			case <-stop:
				return
			}
		}
	}()
	return sub.ch, done, func() {
		close(stop)
		<-done
		s.hub.unsubscribe(env, sub)
	}
}

// apiPath reports whether path belongs to the API rather than the UI.
func apiPath(path string) bool {
	return path == "/api" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/ofrep/") ||
		strings.HasPrefix(path, "/health/") || path == "/metrics"
}

// handler is the API, with the UI mounted at the rest when there is one.
func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ui := s.ui; ui != nil && !apiPath(r.URL.Path) {
			ui.ServeHTTP(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
}

// FlagList is the listing of env's flags in effect, the JSON body GET
// /api/v1/environments/{env}/flags answers.
func (s *Server) FlagList(env string) ([]byte, error) {
	f, err := s.flagsOf(env)
	if err != nil {
		return nil, err
	}
	return f.list.data, nil
}

// EvaluateFlag is the OFREP answer (JSON) for flag key of env and the
// evaluation context contextJSON (a JSON object), computed as POST
// /ofrep/v1/evaluate/flags/{key} computes it: an evaluation, or a failure
// with errorCode and errorDetails.
func (s *Server) EvaluateFlag(env, key string, contextJSON []byte) []byte {
	raw := bytes.TrimSpace(contextJSON)
	var out any
	if jsonDepth(raw) > ofrepMaxDepth-1 {
		out = ofrepFailure{Key: key, ErrorCode: string(flags.ErrInvalidContext), ErrorDetails: "the context nests deeper than 14 levels"}
	} else if ctx, failure := parseContext(raw); failure != nil {
		failure.Key = key
		out = failure
	} else {
		out = evaluate(s.ofrepSet(env), key, ctx)
	}
	b, err := json.Marshal(out)
	if err != nil { // values come from YAML/JSON and always encode
		b, _ = json.Marshal(ofrepFailure{Key: key, ErrorCode: string(flags.ErrGeneral), ErrorDetails: err.Error()})
	}
	return b
}

// OverrideFlag overrides flag key's state and/or default variant in env
// for p, as PATCH /api/v1/environments/{env}/flags/{key} does: checked
// against the flag, then stored through the App (authorized, audited) —
// in a restricted environment, as a change request awaiting approvals.
func (s *Server) OverrideFlag(ctx context.Context, p *auth.Principal, env, key string, state, defaultVariant *string) error {
	_, err := s.overrideFlag(ctx, p, env, key, state, defaultVariant, nil)
	return err
}

// History is env's release assignments (who set which release when, and
// what it replaced), newest first, at most limit (0: all), when p may read
// environments there. Read-only, straight from the store.
func (s *Server) History(ctx context.Context, p *auth.Principal, env string, limit int) ([]domain.Assignment, error) {
	if err := p.Can(auth.ReadEnvironments, env); err != nil {
		return nil, err
	}
	return s.st.History(ctx, env, limit)
}

// Services lists the services env's current release declares (none when
// it has no release or the release does not load).
func (s *Server) Services(env string) []string {
	st := s.snap.Load().byName[env]
	if st == nil || st.cfg == nil || st.cfg.rel == nil || st.cfg.rel.loaded == nil || st.cfg.rel.loaded.Workspace == nil {
		return nil
	}
	return slices.Clone(st.cfg.rel.loaded.Workspace.Services)
}

// OverrideFlagTargeting overrides flag key's targeting in env for p (a
// JSONLogic rule; {} or null: none), as PATCH
// /api/v1/environments/{env}/flags/{key} with only "targeting" does:
// checked against the flag (422 naming the field "targeting"), merged
// with the override's state and default variant, stored through the App.
func (s *Server) OverrideFlagTargeting(ctx context.Context, p *auth.Principal, env, key string, targeting json.RawMessage) error {
	if targeting == nil {
		targeting = json.RawMessage("null")
	}
	_, err := s.overrideFlag(ctx, p, env, key, nil, nil, targeting)
	return err // in a restricted environment: a change request, listed on the flags page
}
